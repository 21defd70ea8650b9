"""Training end to end on a few real utterances: loss falls, resume is exact, bad cases are
counted or stopped cleanly."""

import json
import math
import re

import pytest
import torch
from safetensors.torch import load_file

import asr.losses as losses_module
from asr.config import ConfigError
from asr.config_files import load_config
from asr.model_dir import load_model_dir
from asr.selection import refresh_batch_norm
from asr.phones import PhoneLexicon
from asr.text import normalize_text
from asr.tokenizers import PhoneTokenizer, SubwordTokenizer
from asr.train import train
from asr.train_checks import TrainingError
from asr.train_log import epoch_progress
from asr.train_setup import load_split
from conftest import SHARED_SO762

TINY = [
    "model.cell=gru", "model.num_layers=1", "model.hidden_size=48", "model.conv_channels=4",
    "model.dropout=0.0", "train.batch_seconds=20", "train.max_batch_size=8", "train.lr=3e-3",
    "train.warmup_steps=2", "train.progress=false",
]


def tiny_config(corpus, out, *extra):
    return load_config("configs/small.yaml", [
        f"train.train_manifest={corpus / 'train.jsonl'}", f"train.valid_manifest={corpus / 'valid.jsonl'}",
        f"train.output_dir={out}", *TINY, *extra])


def epochs(run_dir):
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def straight_and_resumed(corpus, tmp_path, *extra):
    """The same run twice: once straight through, once killed at step 3 (mid-epoch 1) and resumed."""
    straight = train(tiny_config(corpus, tmp_path / "straight", *extra))
    killed = tmp_path / "killed"
    train(tiny_config(corpus, killed, *extra), stop_at_step=3)
    assert not (killed / "log.jsonl").exists()
    return straight, train(tiny_config(corpus, killed, *extra), resume=True)


def last_weights(run_dir):
    return load_file(str(run_dir / "last" / "model.safetensors"))


def assert_same_weights(run_a, run_b):
    a, b = last_weights(run_a), last_weights(run_b)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def assert_different_weights(run_a, run_b):
    a, b = last_weights(run_a), last_weights(run_b)
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_training_reduces_the_loss_and_writes_loadable_models(tiny_corpus, tmp_path):
    run = train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=6"))
    log = epochs(run)
    assert len(log) == 6
    assert log[-1]["train_loss"] < 0.7 * log[0]["train_loss"]
    assert {"valid_loss", "valid_wer", "valid_cer", "audio_seconds_per_second"} <= log[-1].keys()
    for name in ("best", "last"):
        assert load_model_dir(run / name).model.num_parameters() > 0
    assert (run / "last" / "train_state.pt").is_file()
    assert any((run / "tb").iterdir())  # TensorBoard event file


def test_the_last_epochs_are_averaged_and_the_average_kept_only_if_it_validates_better(tiny_corpus, tmp_path):
    run = train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=3", "train.average_last=2"))
    saved = sorted(p.name for p in (run / "epochs").iterdir())
    assert saved == ["epoch-002.safetensors", "epoch-003.safetensors"]  # only the epochs averaged
    e2, e3 = (load_file(str(run / "epochs" / name)) for name in saved)
    avg = load_file(str(run / "avg" / "model.safetensors"))
    for key in avg:
        if avg[key].is_floating_point():
            torch.testing.assert_close(avg[key], (e2[key] + e3[key]) / 2)
    record = epochs(run)[-1]
    assert record["averaged"] == ["epoch-002", "epoch-003"] and "valid_wer" in record
    rank = lambda e: (e["valid_wer"], e["valid_cer"], e["valid_loss"])  # noqa: E731  (WER, ties: CER, loss)
    best_epoch = min(epochs(run)[:-1], key=rank)
    best = load_file(str(run / "best" / "model.safetensors"))
    same_as_avg = all(torch.equal(best[k], avg[k]) for k in avg)
    assert same_as_avg == (rank(record) < rank(best_epoch)) == record.get("best", False)


def test_an_average_with_batch_norm_carries_the_statistics_of_its_own_weights_not_the_epochs_mean(
        tiny_corpus, tmp_path, capsys):
    run = train(tiny_config(tiny_corpus, tmp_path / "run", "model.norm=batch", "train.epochs=2",
                            "train.average_last=2"))
    e1, e2 = (load_file(str(p)) for p in sorted((run / "epochs").iterdir()))
    avg = load_file(str(run / "avg" / "model.safetensors"))
    stats = [k for k in avg if k.endswith(("running_mean", "running_var"))]
    assert stats and all(k in e1 for k in stats)
    for key in (k for k in avg if avg[k].is_floating_point()):
        mean = (e1[key] + e2[key]) / 2
        assert torch.allclose(avg[key], mean) == (key not in stats), key  # weights averaged, statistics not
    loaded = load_model_dir(run / "avg")  # measured again on the train set, they come out the same
    train_set = load_split(str(tiny_corpus / "train.jsonl"), loaded.config, loaded.tokenizer, "train", quiet=True)
    assert refresh_batch_norm(loaded.model, train_set, loaded.config, torch.device("cpu")) == len(train_set)
    for key, value in loaded.model.state_dict().items():
        if key in stats:
            torch.testing.assert_close(value, avg[key])
    assert f"batch norm: statistics of the averaged weights measured on {len(train_set)} train utterances" in \
        capsys.readouterr().err


@pytest.mark.parametrize("keep", [True, False])
def test_keep_average_makes_the_average_best_even_when_valid_ranks_it_last(tiny_corpus, tmp_path, monkeypatch, keep):
    import asr.selection as selection

    averaging, validate, average = [], selection.validate, selection.average_state_dicts

    def scored(*args, **kwargs):  # every epoch perfect on valid, the average all wrong
        wer = 1.0 if averaging else 0.0
        return {**validate(*args, **kwargs), "valid_wer": wer, "valid_cer": wer}

    monkeypatch.setattr(selection, "validate", scored)
    monkeypatch.setattr(selection, "average_state_dicts", lambda states: averaging.append(1) or average(states))
    run = train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=2", "train.average_last=2",
                            f"train.keep_average={str(keep).lower()}"))
    best, avg = (load_file(str(run / name / "model.safetensors")) for name in ("best", "avg"))
    assert all(torch.equal(best[k], avg[k]) for k in avg) == keep
    assert epochs(run)[-1]["valid_wer"] == 1.0 and epochs(run)[-1].get("best", False) == keep


def test_a_killed_run_resumes_to_exactly_the_same_weights(tiny_corpus, tmp_path):
    straight, resumed = straight_and_resumed(tiny_corpus, tmp_path, "train.epochs=2", "train.checkpoint_every=2")
    assert_same_weights(straight, resumed)
    assert_same_epoch_sums(straight, resumed)


def assert_same_epoch_sums(straight, resumed):
    """The resumed epoch's log line covers the steps before the kill too, as the straight run's does."""
    keys = ("epoch", "step", "train_loss", "skipped_too_short", "skipped_unreadable")
    for a, b in zip(epochs(straight), epochs(resumed), strict=True):
        assert {k: a.get(k) for k in keys} == pytest.approx({k: b.get(k) for k in keys})


def test_a_new_run_refuses_to_overwrite_an_existing_one(tiny_corpus, tmp_path):
    cfg = tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1")
    train(cfg, stop_at_step=1)
    with pytest.raises(TrainingError, match="--resume"):
        train(cfg)


def test_resuming_a_finished_run_says_there_is_nothing_left_and_changes_nothing(tiny_corpus, tmp_path, capsys):
    run = train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1"))
    weights = (run / "best" / "model.safetensors").read_bytes()
    capsys.readouterr()
    train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1"), resume=True)
    err = capsys.readouterr().err
    assert "has trained all its 1 epochs: nothing to resume" in err and f"resuming {run}" not in err
    assert (run / "best" / "model.safetensors").read_bytes() == weights and len(epochs(run)) == 1


def test_each_epoch_line_says_where_the_run_is_and_how_long_the_rest_will_take(tiny_corpus, tmp_path, capsys):
    train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=2"))
    lines = [line for line in capsys.readouterr().err.splitlines() if " epoch=" in line]
    assert len(lines) == 2
    assert re.match(r"\[1/2, ~\d+ s left\] epoch=1 step=\d+ train_loss=", lines[0]), lines[0]
    assert lines[1].startswith("[2/2] epoch=2 "), lines[1]  # nothing left to estimate


def test_the_time_left_is_the_pace_of_the_epochs_after_the_first_which_also_decodes_the_audio():
    assert epoch_progress(1, 20, [], 130.0) == "[1/20, ~41 min left]"  # no epoch finished: this one's training
    assert epoch_progress(2, 20, [300.0], 130.0) == "[2/20, ~90 min left]"  # the first, while it is alone
    assert epoch_progress(3, 20, [300.0, 140.0], 130.0) == "[3/20, ~40 min left]"
    assert epoch_progress(20, 20, [300.0, 140.0], 130.0) == "[20/20]"
    assert epoch_progress(2, 100, [400.0], 350.0) == "[2/100, ~10.9 h left]"
    assert epoch_progress(1, 2, [], 20.4) == "[1/2, ~20 s left]"


def test_training_again_into_a_run_says_how_to_resume_it_from_the_command_line_and_from_python(tiny_corpus,
                                                                                                  tmp_path):
    cfg = tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=2")
    train(cfg, stop_at_step=1)
    with pytest.raises(TrainingError, match=r"run already holds a run: resume it \(--resume; from Python, "
                                            r"train\(cfg, resume=True\)\), or use another train.output_dir$"):
        train(cfg)


def test_resuming_with_another_model_or_units_is_refused_by_name(tiny_corpus, tmp_path):
    cfg = tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=2")
    train(cfg, stop_at_step=1)
    with pytest.raises(TrainingError, match=r"last, resumed \(--resume or, from Python, train\(cfg, resume=True\)\): "
                                            "its config differs.*units: 'char' there, train.units='bpe'"):
        train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=2", "train.units=bpe"), resume=True)
    with pytest.raises(TrainingError, match="model.hidden_size: 48 there, 64 here"):
        train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=2", "model.hidden_size=64"), resume=True)
    assert load_config(tmp_path / "run" / "config.yaml").train.units == "char"  # the record is left as it was


def test_utterances_too_short_for_their_label_are_named_skipped_and_counted(tiny_corpus, tmp_path, capsys):
    rows = [json.loads(line) for line in (tiny_corpus / "train.jsonl").read_text().splitlines()]
    rows[0]["text"] = " ".join(["abcdefghij"] * 40)  # 440 labels in ~1 s of audio
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "valid.jsonl").write_text((tiny_corpus / "valid.jsonl").read_text())
    run = train(tiny_config(tmp_path, tmp_path / "run", "train.epochs=1", "augment.speed_factors=[1.0]"))
    log = epochs(run)[0]
    assert log["skipped_too_short"] == 1
    assert log["train_loss"] == pytest.approx(log["train_loss"]) and log["train_loss"] < float("inf")
    err = capsys.readouterr().err
    assert f"train utterance {rows[0]['id']}: too short for its transcript (" in err and "439 needed)" in err
    assert f"{tmp_path / 'train.jsonl'}: 1 train utterance(s) too short for their transcripts" in err


def poisoned_in_epochs(monkeypatch, bad_epochs):
    """Every training loss of the epochs (counted from 0) in ``bad_epochs`` is NaN; validation's are not."""
    from asr.data import SpeechDataset

    real_loss, real_set_epoch = losses_module.ctc_loss, SpeechDataset.set_epoch
    now = {}

    def set_epoch(self, epoch):
        now["epoch"] = epoch
        real_set_epoch(self, epoch)

    def poisoned(*args, **kwargs):
        losses, valid = real_loss(*args, **kwargs)
        return (losses * float("nan") if torch.is_grad_enabled() and now["epoch"] in bad_epochs else losses), valid

    monkeypatch.setattr(SpeechDataset, "set_epoch", set_epoch)
    monkeypatch.setattr(losses_module, "ctc_loss", poisoned)


def test_an_epoch_in_which_no_step_trained_logs_a_nan_loss_and_says_why(tiny_corpus, tmp_path, monkeypatch, capsys):
    poisoned_in_epochs(monkeypatch, {1})
    run = train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=2", "train.max_nan_steps=100"))
    first, second = epochs(run)
    assert first["train_loss"] > 0 and second["train_loss"] != second["train_loss"]  # NaN: not a perfect 0
    steps = second["step"] - first["step"]
    assert (f"epoch 2: no step trained the model ({steps} step(s) with a non-finite loss or gradient): train_loss "
            "is NaN") in capsys.readouterr().err


def test_a_run_in_which_no_step_trained_stops_and_saves_no_best_model(tiny_corpus, tmp_path, monkeypatch):
    poisoned_in_epochs(monkeypatch, {0, 1})
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"train\.jsonl: no step of epoch 1 trained the model \(\d+ step\(s\) with "
                                            r"a non-finite loss or gradient\), nor any before it: the run stops"):
        train(tiny_config(tiny_corpus, out, "train.epochs=2", "train.max_nan_steps=100"))
    assert not (out / "best").exists() and not (out / "log.jsonl").exists()


def test_the_last_good_checkpoint_named_holds_the_weights_of_the_last_step_that_trained(tiny_corpus, tmp_path,
                                                                                    monkeypatch):
    real = losses_module.ctc_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):  # step 1 trains; every step after it is non-finite
        losses, valid = real(*args, **kwargs)
        calls["n"] += torch.is_grad_enabled()
        return (losses * float("nan") if calls["n"] > 1 else losses), valid

    monkeypatch.setattr(losses_module, "ctc_loss", poisoned)
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as error:
        train(tiny_config(tiny_corpus, out, "train.epochs=3", "train.checkpoint_every=1", "train.max_nan_steps=3"))
    assert str(error.value).endswith(f"the last good checkpoint is {out / 'last'} (saved at step 3 with the weights "
                                     "of step 1: no step between them trained)")
    monkeypatch.setattr(losses_module, "ctc_loss", real)
    clean = train(tiny_config(tiny_corpus, tmp_path / "clean", "train.epochs=3"), stop_at_step=1)
    assert_same_weights(out, clean)


def test_repeated_non_finite_losses_stop_the_run_and_keep_the_last_checkpoint(tiny_corpus, tmp_path, monkeypatch):
    real = losses_module.ctc_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        losses, valid = real(*args, **kwargs)
        return (losses * float("nan"), valid) if calls["n"] > 2 else (losses, valid)

    monkeypatch.setattr(losses_module, "ctc_loss", poisoned)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match="non-finite"):
        train(tiny_config(tiny_corpus, out, "train.epochs=3", "train.checkpoint_every=1", "train.max_nan_steps=3"))
    monkeypatch.setattr(losses_module, "ctc_loss", real)
    clean = train(tiny_config(tiny_corpus, tmp_path / "clean", "train.epochs=3"), stop_at_step=2)
    kept = load_file(str(out / "last" / "model.safetensors"))
    good = load_file(str(clean / "last" / "model.safetensors"))
    for key in good:  # the checkpoint holds the weights of the last finite step, untouched
        torch.testing.assert_close(kept[key], good[key], rtol=0, atol=0, msg=key)
    assert load_model_dir(out / "last").model.num_parameters() > 0


def one_batch_gradients(corpus, n, phone_layer=0, **model_kw):
    """A seeded tiny model (dropout off) and one batch of ``n`` real utterances. Returns the
    model and ``grads(module=model, **kwargs)``, which runs ``forward_backward`` once and gives
    (its result, every parameter's gradient). With ``phone_layer`` the model has a phone head
    there and the batch the phones of the corpus's own lexicon."""
    from asr.config import Config, ModelConfig
    from asr.data import SpeechDataset, collate, read_manifest
    from asr.model import AcousticModel
    from asr.text import CharTokenizer

    utts = read_manifest(corpus / "train.jsonl")[:n]
    tok = CharTokenizer.build(u.text for u in utts)
    torch.manual_seed(0)
    cfg = Config(model=ModelConfig(hidden_size=16, conv_channels=4, dropout=0.0, **model_kw))
    model = AcousticModel(cfg.features, cfg.model, len(tok)).eval()
    lexicon = None
    if phone_layer:
        lexicon = PhoneLexicon.load(SHARED_SO762 / "resource" / "lexicon.txt")
        model.add_phone_head(len(lexicon), phone_layer)
    batch = collate([SpeechDataset(utts, tok, 16000, phone_lexicon=lexicon)[i] for i in range(n)])
    scaler = torch.amp.GradScaler("cuda", enabled=False)

    def grads(module=None, **kwargs):
        model.zero_grad()
        out = losses_module.forward_backward(module or model, batch, tok.blank_id, scaler, False,
                                            torch.device("cpu"), **kwargs)
        return out, [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()]

    grads.batch = batch
    return model, grads


def test_a_batch_that_runs_out_of_memory_is_split_and_gives_the_same_gradient(tiny_corpus):
    model, grads = one_batch_gradients(tiny_corpus, 4, cell="gru", num_layers=1)
    whole, expected = grads()

    class Cramped(torch.nn.Module):  # "runs out of memory" above two utterances
        def forward(self, waves, lengths, **kwargs):
            if waves.shape[0] > 2:
                raise torch.OutOfMemoryError("simulated")
            return model(waves, lengths, **kwargs)

    split, got = grads(Cramped())
    assert split[1] == whole[1] == 4 and split[0] == pytest.approx(whole[0], rel=1e-5)
    for a, b in zip(got, expected):  # summation order differs: tolerance relative to the largest entry
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * float(b.abs().max()))


def test_intermediate_ctc_mixes_the_gradient_of_a_lower_layer_and_reports_the_final_loss(tiny_corpus):
    model, grads = one_batch_gradients(tiny_corpus, 3, cell="lstm", num_layers=3)
    (final_loss, *_), final = grads(inter=(0, 0.0))
    _, inter_only = grads(inter=(2, 1.0))
    (mixed_loss, *_), mixed = grads(inter=(2, 0.3))
    assert mixed_loss == pytest.approx(final_loss, rel=1e-6)  # logged loss stays comparable
    top = list(model.layers[2].parameters())
    for p, a, b, g in zip(model.parameters(), final, inter_only, mixed):
        torch.testing.assert_close(g, 0.7 * a + 0.3 * b, rtol=1e-4, atol=1e-5 * float(g.abs().max()))
        if any(p is q for q in top):
            assert not b.any()  # the intermediate loss does not reach the layer above it
    assert any(not torch.allclose(a, g) for a, g in zip(final, mixed))


def test_the_confidence_penalty_takes_its_weight_times_the_outputs_entropy_off_the_loss(tiny_corpus):
    from asr.losses import frame_entropy

    model, grads = one_batch_gradients(tiny_corpus, 3, cell="lstm", num_layers=2)
    (ctc_loss, n, *_), plain = grads()
    (logged, *_), penalized = grads(confidence=0.5)
    assert n == 3 and logged == pytest.approx(ctc_loss, rel=1e-6)  # the logged loss stays the CTC alone
    model.zero_grad()
    log_probs, lengths = model(grads.batch.waveforms, grads.batch.wave_lengths)
    (frame_entropy(log_probs, lengths).sum() / n).backward()  # over the batch size, as the loss is
    for p, a, g in zip(model.parameters(), plain, penalized):
        torch.testing.assert_close(g, a - 0.5 * p.grad, rtol=1e-4, atol=1e-5 * float(g.abs().max()))
    assert any(not torch.allclose(a, g) for a, g in zip(plain, penalized))


def test_frame_entropy_sums_each_utterance_s_own_frames_and_leaves_the_padding_out():
    from asr.losses import frame_entropy

    uniform = torch.full((2, 5, 8), -math.log(8))
    uniform[1, 3:] = torch.tensor([0.0] + [-30.0] * 7)  # padding, whatever it holds
    sure = torch.full((1, 4, 8), -30.0).index_fill_(2, torch.tensor([0]), 0.0)
    torch.testing.assert_close(frame_entropy(uniform, torch.tensor([5, 3])), torch.tensor([5, 3]) * math.log(8))
    assert float(frame_entropy(sure, torch.tensor([4]))) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("value", ["-0.1", ".nan", ".inf"])  # YAML's NaN and infinity
def test_a_negative_or_non_finite_confidence_penalty_is_refused_by_name(value):
    with pytest.raises(ConfigError, match=r"train.confidence_penalty must be >= 0 \(0: off\)"):
        load_config("configs/small.yaml", [f"train.confidence_penalty={value}"])


def test_a_run_with_a_confidence_penalty_says_so_and_trains_elsewhere_than_one_without(tiny_corpus, tmp_path,
                                                                                       capsys):
    plain = train(tiny_config(tiny_corpus, tmp_path / "plain", "train.epochs=1"))
    penalized = train(tiny_config(tiny_corpus, tmp_path / "penalized", "train.epochs=1",
                                  "train.confidence_penalty=0.2"))
    assert "confidence penalty: 0.2 x each output frame's entropy off the loss" in capsys.readouterr().err
    assert_different_weights(plain, penalized)


def test_phone_ctc_mixes_the_gradient_of_its_own_head_on_a_lower_layer(tiny_corpus):
    model, grads = one_batch_gradients(tiny_corpus, 3, phone_layer=1, cell="lstm", num_layers=2)
    (final_loss, *_), final = grads()
    _, phone_only = grads(phone_weight=1.0)
    (mixed_loss, n, _, _, phone_loss, n_phone), mixed = grads(phone_weight=0.3)
    assert mixed_loss == pytest.approx(final_loss, rel=1e-6)  # the logged loss is the characters' CTC
    assert n == n_phone == 3 and phone_loss > 0  # and the phone loss is reported beside it
    names = [n for n, _ in model.named_parameters()]
    for name, a, b, g in zip(names, final, phone_only, mixed):
        torch.testing.assert_close(g, 0.7 * a + 0.3 * b, rtol=1e-4, atol=1e-5 * float(g.abs().max()))
        if name.startswith(("layers.1.", "head.")):
            assert not b.any(), name  # phones are read below the top layer and the character head
        if name.startswith("phone_head."):
            assert not a.any() and b.any(), name  # trained by the phone loss alone


def test_phone_ctc_trains_resumes_exactly_and_saves_the_model_without_its_head(tiny_corpus, tmp_path):
    lexicon = SHARED_SO762 / "resource" / "lexicon.txt"
    extra = ["model.num_layers=2", "train.epochs=2", "train.checkpoint_every=2", "train.phone_ctc_weight=0.3",
             f"train.phone_lexicon={lexicon}"]
    straight, resumed = straight_and_resumed(tiny_corpus, tmp_path, *extra)
    assert_same_weights(straight, resumed)  # exact only if the phone head's weights and moments came back too
    plain = train(tiny_config(tiny_corpus, tmp_path / "plain", "model.num_layers=2", "train.epochs=1"))
    assert last_weights(straight).keys() == load_file(str(plain / "best" / "model.safetensors")).keys()
    logged = epochs(straight)
    assert 0 < logged[-1]["train_phone_loss"] < logged[0]["train_phone_loss"]  # the phone head learns
    assert "train_phone_loss" not in epochs(plain)[0]
    assert "phone_head" in torch.load(straight / "last" / "train_state.pt", weights_only=True)
    assert load_model_dir(straight / "best").model.phone_head is None


def test_resuming_with_other_phone_settings_is_refused_by_name(tiny_corpus, tmp_path):
    lexicon = SHARED_SO762 / "resource" / "lexicon.txt"
    phones = ["train.epochs=2", "train.phone_ctc_weight=0.3", f"train.phone_lexicon={lexicon}"]
    train(tiny_config(tiny_corpus, tmp_path / "run", *phones), stop_at_step=1)
    with pytest.raises(TrainingError, match="phone CTC head does not match this config .saved: .*here: none"):
        train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=2"), resume=True)
    small = tmp_path / "small.txt"  # a lexicon with fewer phones: a head of another shape
    small.write_text("".join(line for line in lexicon.read_text().splitlines(keepends=True)
                             if line.split()[0] in {"A", "BEAR"}))
    with pytest.raises(TrainingError, match="does not match"):
        train(tiny_config(tiny_corpus, tmp_path / "run", *phones[:2], f"train.phone_lexicon={small}"), resume=True)


def test_a_phone_lexicon_that_cannot_be_read_stops_training_before_it_starts(tiny_corpus, tmp_path):
    with pytest.raises(ConfigError, match="train.phone_lexicon: .*absent.txt: no such lexicon file"):
        train(tiny_config(tiny_corpus, tmp_path / "run", "train.phone_ctc_weight=0.3",
                          f"train.phone_lexicon={tmp_path / 'absent.txt'}"))


def test_intermediate_ctc_trains_and_leaves_the_saved_model_unchanged_in_shape(tiny_corpus, tmp_path):
    cfg = tiny_config(tiny_corpus, tmp_path / "run", "model.num_layers=2", "train.epochs=1",
                      "train.inter_ctc_weight=0.3")
    assert cfg.inter_ctc_layer == 1
    run_dir = train(cfg)
    plain = train(tiny_config(tiny_corpus, tmp_path / "plain", "model.num_layers=2", "train.epochs=1"))
    assert load_file(run_dir / "best" / "model.safetensors").keys() == load_file(
        plain / "best" / "model.safetensors").keys()
    assert epochs(run_dir)[0]["train_loss"] != epochs(plain)[0]["train_loss"]


def test_fine_tuning_starts_from_a_trained_model_and_refuses_one_of_another_shape(tiny_corpus, tmp_path):
    base = train(tiny_config(tiny_corpus, tmp_path / "base", "train.epochs=1")) / "best"
    # At a negligible learning rate the fine-tuned weights are still the starting ones.
    tuned = train(tiny_config(tiny_corpus, tmp_path / "tuned", "train.epochs=1", "train.lr=1e-10",
                              f"train.init_from={base}"))
    start, after = load_file(base / "model.safetensors"), load_file(tuned / "last" / "model.safetensors")
    assert start.keys() == after.keys()
    assert all(torch.allclose(start[k].float(), after[k].float(), atol=1e-6) for k in start)
    assert (tuned / "last" / "tokenizer.json").read_text() == (base / "tokenizer.json").read_text()
    with pytest.raises(TrainingError, match="model.hidden_size: 48 there, 32 here"):
        train(tiny_config(tiny_corpus, tmp_path / "other", "model.hidden_size=32", f"train.init_from={base}"))


def test_subword_units_train_save_their_sentencepiece_model_and_must_match_when_fine_tuning(tiny_corpus, tmp_path):
    run = train(tiny_config(tiny_corpus, tmp_path / "bpe", "train.epochs=1", "train.units=bpe",
                            "train.bpe_vocab_size=40"))
    loaded = load_model_dir(run / "best")
    assert isinstance(loaded.tokenizer, SubwordTokenizer) and len(loaded.tokenizer) == 41
    assert loaded.model.head.out_features == 41
    text = json.loads((tiny_corpus / "train.jsonl").read_text().splitlines()[0])["text"]
    assert loaded.tokenizer.decode(loaded.tokenizer.encode(normalize_text(text))) == normalize_text(text)
    with pytest.raises(TrainingError, match="units: 'bpe' there, train.units='char' here"):
        train(tiny_config(tiny_corpus, tmp_path / "char", f"train.init_from={run / 'best'}"))


def test_phone_units_train_on_the_lexicons_phones_and_a_missing_lexicon_is_named(tiny_corpus, tmp_path):
    lexicon = SHARED_SO762 / "resource" / "lexicon.txt"
    run = train(tiny_config(tiny_corpus, tmp_path / "phones", "train.epochs=1", "train.units=phone",
                            f"train.phone_lexicon={lexicon}"))
    loaded = load_model_dir(run / "best")
    assert isinstance(loaded.tokenizer, PhoneTokenizer)
    assert len(loaded.tokenizer) == len(PhoneLexicon.load(lexicon).phones) + 2 == loaded.model.head.out_features
    text = normalize_text(json.loads((tiny_corpus / "train.jsonl").read_text().splitlines()[0])["text"])
    assert loaded.tokenizer.decode(loaded.tokenizer.encode(text)) == text
    with pytest.raises(ConfigError, match="train.phone_lexicon: .*nowhere.txt: no such lexicon file"):
        train(tiny_config(tiny_corpus, tmp_path / "none", "train.units=phone", f"train.phone_lexicon={tmp_path}/nowhere.txt"))


def test_a_run_leaves_torch_s_thread_count_and_denormal_flushing_as_it_found_them(tiny_corpus, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    torch.set_flush_denormal(False)
    try:
        train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1", "train.threads=1"))
        assert torch.get_num_threads() == 2
        assert torch.tensor([1e-40]).mul(1.0).item() != 0  # a denormal float is not flushed to zero
    finally:
        torch.set_num_threads(threads)


def test_a_phone_model_fine_tuned_with_another_lexicon_learns_its_spellings_and_refuses_phones_it_lacks(
        tiny_corpus, tmp_path, capsys):
    corpus_lexicon = (SHARED_SO762 / "resource" / "lexicon.txt").read_text()
    base = train(tiny_config(tiny_corpus, tmp_path / "base", "train.epochs=1", "train.units=phone",
                             f"train.phone_lexicon={SHARED_SO762 / 'resource' / 'lexicon.txt'}")) / "best"
    word = normalize_text(json.loads((tiny_corpus / "train.jsonl").read_text().splitlines()[0])["text"]).split()[0]
    other = tmp_path / "other.txt"
    other.write_text(f"{word.upper()} Z Z Z\n" + corpus_lexicon)  # the first pronunciation wins
    capsys.readouterr()
    tuned = train(tiny_config(tiny_corpus, tmp_path / "tuned", "train.epochs=1", "train.units=phone",
                              f"train.phone_lexicon={other}", f"train.init_from={base}"))
    assert load_model_dir(tuned / "last").tokenizer.pronunciations[word] == ("Z", "Z", "Z")
    assert load_model_dir(base).tokenizer.pronunciations[word] != ("Z", "Z", "Z")
    said = capsys.readouterr()
    assert "spells 1 of the" in said.out + said.err and f"{word}: " in said.out + said.err
    # Resumed with the first lexicon again, the run keeps its spellings, and says so
    train(tiny_config(tiny_corpus, tmp_path / "tuned", "train.epochs=2", "train.units=phone",
                      f"train.phone_lexicon={SHARED_SO762 / 'resource' / 'lexicon.txt'}",
                      f"train.init_from={base}"), resume=True)
    said = capsys.readouterr()
    assert f"is not the run's own ({other}): a resumed run keeps its spellings" in said.out + said.err
    assert load_model_dir(tuned / "last").tokenizer.pronunciations[word] == ("Z", "Z", "Z")
    # Its own lexicon named by another path is its own: nothing to say
    (tmp_path / "sub").mkdir()
    train(tiny_config(tiny_corpus, tmp_path / "tuned", "train.epochs=3", "train.units=phone",
                      f"train.phone_lexicon={tmp_path / 'sub' / '..' / 'other.txt'}", f"train.init_from={base}"),
          resume=True)
    assert "is not the run's own" not in "".join(capsys.readouterr())
    # The model's own lexicon is not read again: a fine-tune need not have it (gone here)
    own = tmp_path / "own.txt"
    own.write_text(corpus_lexicon)
    moved = train(tiny_config(tiny_corpus, tmp_path / "own_run", "train.epochs=1", "train.units=phone",
                              f"train.phone_lexicon={own}")) / "best"
    own.unlink()
    again = train(tiny_config(tiny_corpus, tmp_path / "again", "train.epochs=1", "train.units=phone",
                              f"train.phone_lexicon={own}", f"train.init_from={moved}"))
    assert load_model_dir(again / "last").tokenizer == load_model_dir(moved).tokenizer
    new_phone = tmp_path / "new_phone.txt"
    new_phone.write_text(f"{word.upper()} Q\n" + corpus_lexicon)
    with pytest.raises(TrainingError, match=r"train.phone_lexicon \(the targets of the phone model .*\): .*phones Q "
                                            r"are none of the model's outputs"):
        train(tiny_config(tiny_corpus, tmp_path / "q", "train.epochs=1", "train.units=phone",
                          f"train.phone_lexicon={new_phone}", f"train.init_from={base}"))


def test_an_audio_file_that_vanishes_mid_run_is_skipped_with_a_warning(tiny_corpus, tmp_path, capsys):
    import shutil

    from asr.batching import BatchLoader, BucketBatchSampler
    from asr.data import SpeechDataset, read_manifest
    from asr.text import CharTokenizer

    utts = read_manifest(tiny_corpus / "train.jsonl")[:6]
    copies = []
    for u in utts:
        dst = tmp_path / f"{u.id}.flac"
        shutil.copy(u.audio_filepath, dst)
        copies.append(type(u)(str(dst), u.duration, u.text, u.speaker, u.id))
    dataset = SpeechDataset(copies, CharTokenizer.build(u.text for u in utts), 16000, cache=False)
    (tmp_path / f"{utts[0].id}.flac").unlink()
    sampler = BucketBatchSampler(dataset.durations, 100, 3, shuffle=False)
    seen = [i for batch in BatchLoader(dataset, sampler) if batch is not None for i in batch.indices]
    assert sorted(seen) == [1, 2, 3, 4, 5]
    assert f"{utts[0].id}.flac: file not found" in capsys.readouterr().err


def with_bad_audio(corpus, out, splits=("train", "valid"), keep_good=True):
    """``corpus`` with one entry whose audio file does not exist and one whose file is not audio
    added to each of ``splits`` (relative paths, resolved against ``out``)."""
    out.mkdir()
    (out / "corrupt.wav").write_text("junk\n")
    text = json.loads((corpus / "train.jsonl").read_text().splitlines()[0])["text"]  # in the vocabulary
    for split in ("train", "valid"):
        lines = (corpus / f"{split}.jsonl").read_text().splitlines() if keep_good or split not in splits else []
        if split in splits:
            lines += [json.dumps({"audio_filepath": name, "duration": 1.0, "text": text, "id": f"{split}-{name}"})
                      for name in ("nope.wav", "corrupt.wav")]
        (out / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return out


def test_missing_and_corrupt_audio_in_the_train_and_valid_manifests_is_skipped_named_and_counted(
        tiny_corpus, tmp_path, capsys):
    corpus = with_bad_audio(tiny_corpus, tmp_path / "corpus")
    run = train(tiny_config(corpus, tmp_path / "run", "train.epochs=2"))
    assert (run / "best" / "model.safetensors").is_file()
    assert [e["skipped_unreadable"] for e in epochs(run)] == [1, 1]  # the corrupt one, each epoch
    err = capsys.readouterr().err
    for split in ("train", "valid"):
        manifest = corpus / f"{split}.jsonl"
        assert f"skipped {split} utterance {split}-nope.wav: {corpus / 'nope.wav'}: file not found" in err
        assert f"{manifest}: skipped 1 {split} utterance(s) whose audio file is missing, empty or not a file" in err
        assert f"warning: {manifest}: skipped {corpus / 'corrupt.wav'}: not readable as audio" in err
    assert err.count("corrupt.wav: not readable") == 2  # said once per manifest, not every epoch
    # the corrupt train file is found when read; the valid set is read up front (one of its 4 has a
    # character unseen in training: scored all the same, as asr evaluate scores it)
    assert "train: 21 utterances" in err and "valid: 4 utterances" in err
    assert "1 utterance(s) with unreadable audio left out of training" in err
    assert f"{corpus / 'valid.jsonl'}: skipped 1 valid utterance(s) whose audio is unreadable" in err


def test_a_run_with_a_corrupt_training_file_resumes_exactly(tiny_corpus, tmp_path):
    corpus = with_bad_audio(tiny_corpus, tmp_path / "corpus", splits=("train",))
    straight, resumed = straight_and_resumed(corpus, tmp_path, "train.epochs=2", "train.checkpoint_every=2")
    assert_same_weights(straight, resumed)  # found by the statistics pass in one, in the epoch in the other
    assert_same_epoch_sums(straight, resumed)


def test_a_train_manifest_whose_only_audio_is_missing_is_named_and_not_the_valid_manifest(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    line = json.loads((tiny_corpus / "train.jsonl").read_text().splitlines()[0])
    (corpus / "train.jsonl").write_text(json.dumps({**line, "audio_filepath": "nope.wav"}) + "\n")
    (corpus / "valid.jsonl").write_text((tiny_corpus / "valid.jsonl").read_text())
    with pytest.raises(TrainingError) as error:
        train(tiny_config(corpus, tmp_path / "run"))
    assert str(error.value) == (f"{corpus / 'train.jsonl'}: no readable train utterances: 1 of 1 unreadable "
                                f"(first: {corpus / 'nope.wav'}: file not found)")


@pytest.mark.parametrize("normalize", ["global", "utterance"])
def test_a_train_manifest_with_no_readable_audio_stops_the_run_naming_it(tiny_corpus, tmp_path, normalize):
    corpus = with_bad_audio(tiny_corpus, tmp_path / "corpus", splits=("train",), keep_good=False)
    # the missing file is left out as the manifest loads, the corrupt one as it is read: both count
    with pytest.raises(TrainingError, match=r"train\.jsonl: no readable train utterances: 2 of 2 unreadable "
                                            r"\(first: .*nope\.wav: file not found; .*corrupt\.wav: not readable "
                                            r"as audio"):
        train(tiny_config(corpus, tmp_path / "run", f"features.normalize={normalize}", "train.valid_manifest="))
    assert not (tmp_path / "run" / "best").exists()


def test_asr_train_check_answers_for_the_config_and_overrides_and_writes_nothing(tiny_corpus, tmp_path, capsys):
    from asr.cli import main

    args = ["train", "configs/small.yaml", f"train.train_manifest={tiny_corpus / 'train.jsonl'}",
            f"train.output_dir={tmp_path / 'run'}", "--check"]
    assert main(args) == 0 and "can train into" in capsys.readouterr().out
    assert main([*args, "train.epochs=2O"]) == 2  # the recipes ask before they move a finished run aside
    assert "train.epochs: expected an integer, got '2O'" in capsys.readouterr().err
    assert main([*args, f"train.valid_manifest={tmp_path / 'nope.jsonl'}"]) == 2
    assert not (tmp_path / "run").exists()


def test_asr_train_check_names_a_missing_phone_lexicon_or_init_from_model_before_a_recipe_moves_a_run_aside(
        tiny_corpus, tmp_path, capsys):
    from asr.cli import main

    args = ["train", "configs/small.yaml", f"train.train_manifest={tiny_corpus / 'train.jsonl'}",
            f"train.output_dir={tmp_path / 'run'}", "--check"]
    assert main([*args, "train.phone_ctc_weight=0.3", f"train.phone_lexicon=cmudict,{tmp_path / 'lex.txt'}"]) == 2
    assert f"train.phone_lexicon: {tmp_path / 'lex.txt'}: no such lexicon file (or use 'cmudict')" \
        in capsys.readouterr().err
    (tmp_path / "model").mkdir()
    assert main([*args, f"train.init_from={tmp_path / 'model'}"]) == 2
    assert f"train.init_from: {tmp_path / 'model'}: not a model directory (missing " in capsys.readouterr().err
    # --resume with nothing to resume starts a new run from it: asked too
    assert main([*args, f"train.init_from={tmp_path / 'model'}", "--resume"]) == 2
    # a run that goes on starts from its own checkpoint, not from the model it was first given
    (tmp_path / "run" / "last").mkdir(parents=True)
    (tmp_path / "run" / "last" / "train_state.pt").write_bytes(b"")
    assert main([*args, f"train.init_from={tmp_path / 'model'}", "--resume"]) == 0
    assert main([*args, "train.phone_ctc_weight=0.3", "train.phone_lexicon=cmudict,"]) == 2
    assert "train.phone_lexicon='cmudict,': an empty name" in capsys.readouterr().err
    assert main([*args, "train.init_from=asr/pretrained/default"]) == 0  # a model directory
    assert not (tmp_path / "run" / "config.yaml").exists()  # --check writes nothing


def test_training_without_a_train_manifest_says_it_is_not_set(tmp_path):
    with pytest.raises(ConfigError, match="train.train_manifest is not set"):
        train(load_config("configs/small.yaml", [f"train.output_dir={tmp_path / 'run'}"]))
    assert not (tmp_path / "run").exists()


def test_a_frequency_mask_as_wide_as_the_features_is_refused_before_training(tiny_corpus, tmp_path):
    # 13 MFCCs under small.yaml's 15-wide mask: a mask could blank every feature of a frame.
    with pytest.raises(ConfigError, match=r"augment.freq_mask_width 15 is as wide as the 13 features"):
        train(tiny_config(tiny_corpus, tmp_path / "run", "features.kind=mfcc", "features.n_mfcc=13"))
    assert not (tmp_path / "run").exists()


def test_noise_augmentation_trains_and_an_unusable_noise_folder_stops_the_run_before_it_starts(
        tiny_corpus, tmp_path, capsys):
    with pytest.raises(TrainingError, match="augment.noise_dir .*absent: not a directory"):
        train(tiny_config(tiny_corpus, tmp_path / "bad", "augment.noise_prob=0.5",
                          f"augment.noise_dir={tmp_path / 'absent'}"))
    assert not (tmp_path / "bad").exists()
    run = train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1", "augment.noise_prob=1",
                            "augment.noise_snr=[5,20]"))
    assert "noise: white/pink/brown noise on 100% of utterances at 5-20 dB SNR" in capsys.readouterr().err
    assert len(epochs(run)) == 1 and load_model_dir(run / "last").model.num_parameters() > 0


def test_weight_noise_trains_from_a_trained_model_and_changes_where_it_goes(tiny_corpus, tmp_path):
    base = train(tiny_config(tiny_corpus, tmp_path / "base", "train.epochs=2"))
    runs = {}
    for std in ("0", "0.05"):
        runs[std] = train(tiny_config(tiny_corpus, tmp_path / f"wn{std}", "train.epochs=1",
                                      f"train.init_from={base / 'best'}", f"train.weight_noise={std}"))
        assert all(torch.isfinite(torch.tensor(e["train_loss"])) for e in epochs(runs[std]))
    assert_different_weights(runs["0"], runs["0.05"])  # same seed and data: only the noise differs


def test_weight_drop_changes_the_training_and_a_killed_run_resumes_exactly(tiny_corpus, tmp_path):
    extra = ["train.epochs=2", "train.checkpoint_every=2", "train.weight_drop=0.3"]
    straight, resumed = straight_and_resumed(tiny_corpus, tmp_path, *extra)
    assert_same_weights(straight, resumed)  # the masks are a function of (seed, step)
    plain = train(tiny_config(tiny_corpus, tmp_path / "plain", *extra[:-1]))
    assert_different_weights(straight, plain)  # same seed and data: only the masks differ


def test_bpe_dropout_draws_new_labels_each_epoch_and_a_killed_run_resumes_exactly(tiny_corpus, tmp_path):
    extra = ["train.epochs=2", "train.checkpoint_every=2", "train.units=bpe", "train.bpe_vocab_size=40",
             "train.bpe_dropout=0.3"]
    straight, resumed = straight_and_resumed(tiny_corpus, tmp_path, *extra)
    assert_same_weights(straight, resumed)
    plain = train(tiny_config(tiny_corpus, tmp_path / "plain", *extra[:-1]))
    assert_different_weights(straight, plain)  # the labels it saw were other segmentations


def test_bpe_dropout_is_refused_for_character_units():
    with pytest.raises(ConfigError, match="train.bpe_dropout needs subword units"):
        load_config("configs/small.yaml", ["train.bpe_dropout=0.1"])


def test_the_valid_set_is_cut_of_long_quiet_edges_as_evaluate_cuts_it(tiny_corpus, tmp_path, monkeypatch):
    """Validation picks the best checkpoint, so it must score the audio `asr evaluate` scores:
    a valid clip after 3 s of digital silence is cut as Transcriber.speech cuts it."""
    import numpy as np
    import soundfile as sf

    import asr.train as train_module
    from asr.audio import load_audio
    from asr.transcribe import Transcriber

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.jsonl").write_text((tiny_corpus / "train.jsonl").read_text())
    lines = []
    for i, line in enumerate((tiny_corpus / "valid.jsonl").read_text().splitlines()):
        entry = json.loads(line)
        wave = load_audio(entry["audio_filepath"], 16000).numpy()
        path = corpus / f"padded{i}.wav"
        sf.write(str(path), np.concatenate([np.zeros(3 * 16000, np.float32), wave]), 16000)
        lines.append(json.dumps({**entry, "audio_filepath": str(path), "duration": entry["duration"] + 3}))
    (corpus / "valid.jsonl").write_text("\n".join(lines) + "\n")
    made = []
    load_split = train_module.load_split
    monkeypatch.setattr(train_module, "load_split", lambda *a, **k: made.append(load_split(*a, **k)) or made[-1])
    run = train(tiny_config(corpus, tmp_path / "run", "train.epochs=1"))
    valid = made[-1]
    evaluate_cut = Transcriber(load_model_dir(run / "best"), decoder="greedy", device="cpu")
    assert len(valid) == 4  # one has a character unseen in training: scored all the same, as evaluate does
    for i, utt in enumerate(valid.utterances):
        expected = evaluate_cut.speech(load_audio(utt.audio_filepath, 16000))
        assert len(expected) < len(load_audio(utt.audio_filepath, 16000)) - 2 * 16000
        torch.testing.assert_close(valid.waveform(i), expected, rtol=0, atol=1 / 32767)  # as its int16 cache holds it


def test_a_non_finite_gradient_skips_its_update_and_the_run_goes_on_with_finite_weights(
        tiny_corpus, tmp_path, monkeypatch, capsys):
    real_clip = torch.nn.utils.clip_grad_norm_
    calls = {"n": 0}

    def poisoned_clip(parameters, max_norm, *args, **kwargs):  # step 3's gradient: inf, its loss finite
        parameters = list(parameters)
        calls["n"] += 1
        if calls["n"] == 3:
            parameters[0].grad.fill_(float("inf"))
        return real_clip(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", poisoned_clip)
    run = train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=2"))
    assert "step 3: non-finite gradient (1 in a row); batch skipped" in capsys.readouterr().err
    assert all(torch.isfinite(w).all() for w in last_weights(run).values())  # clipping by inf would make NaN
    assert len(epochs(run)) == 2 and (run / "best").is_dir()


def overflowing_fp16(monkeypatch, init_scale, overflows=lambda step: True):
    """fp16 loss scaling (CUDA's, run on CPU) whose gradient overflows at the steps (from 1) that
    ``overflows`` picks, as it does when the scale is too high: the real scaler finds the inf,
    skips the update and lowers its scale."""
    import asr.train as train_module

    steps = {"n": 0}

    class Overflowing(torch.amp.GradScaler):
        def unscale_(self, optimizer):
            steps["n"] += 1
            if overflows(steps["n"]):
                optimizer.param_groups[0]["params"][0].grad.fill_(float("inf"))
            super().unscale_(optimizer)

    monkeypatch.setattr(train_module, "grad_scaler", lambda device, amp: Overflowing("cpu", init_scale=init_scale))


def test_an_epoch_whose_every_fp16_step_overflowed_is_not_counted_as_trained(tiny_corpus, tmp_path, monkeypatch,
                                                                             capsys):
    overflowing_fp16(monkeypatch, init_scale=2.0 ** 20)  # halved each step, never near the minimum here
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"no step of epoch 1 trained the model \(\d+ step\(s\) with a "
                                            r"non-finite loss or gradient\), nor any before it"):
        train(tiny_config(tiny_corpus, out, "train.epochs=1"))
    err = capsys.readouterr().err
    assert "step 1: gradient overflow at fp16 loss scale 1.04858e+06; batch skipped, scale lowered to 524288" in err
    assert not (out / "best").exists()


def test_an_fp16_overflow_trains_nothing_lowers_the_scale_and_the_next_step_trains(tiny_corpus, tmp_path,
                                                                                   monkeypatch):
    overflowing_fp16(monkeypatch, init_scale=1.0, overflows=lambda step: step == 1)
    out = tmp_path / "run"
    train(tiny_config(tiny_corpus, out, "train.epochs=1"), stop_at_step=1)
    state = torch.load(out / "last" / "train_state.pt", weights_only=True)
    assert (state["trained_step"], state["scaler"]["scale"]) == (None, 0.5)
    train(tiny_config(tiny_corpus, out, "train.epochs=1"), resume=True, stop_at_step=2)
    state = torch.load(out / "last" / "train_state.pt", weights_only=True)
    assert (state["trained_step"], state["scaler"]["scale"]) == (2, 0.5)


def test_an_fp16_gradient_that_overflows_at_every_loss_scale_stops_the_run(tiny_corpus, tmp_path, monkeypatch):
    overflowing_fp16(monkeypatch, init_scale=2.0 ** -12)
    with pytest.raises(TrainingError, match=r"^step 2: the fp16 loss scale fell to 6.1e-05 \(2 overflow\(s\) since the "
                                            r"last step that trained\): no loss scale keeps the gradient finite; the "
                                            r"run stops: no checkpoint was saved before it \(lower train.lr or "
                                            r"train.grad_clip, or train.amp=false\)$"):
        train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=3"))


def test_fp16_overflows_since_the_last_trained_step_are_counted_across_a_resume(tiny_corpus, tmp_path, monkeypatch):
    overflowing_fp16(monkeypatch, init_scale=2.0 ** -12)
    out = tmp_path / "run"
    train(tiny_config(tiny_corpus, out, "train.epochs=3"), stop_at_step=1)
    with pytest.raises(TrainingError, match=r"^step 2: the fp16 loss scale fell to 6.1e-05 \(2 overflow\(s\) since"):
        train(tiny_config(tiny_corpus, out, "train.epochs=3"), resume=True)


def test_a_gradient_whose_fp32_norm_alone_overflows_under_fp16_counts_as_non_finite_not_as_an_overflow(
        tiny_corpus, tmp_path, monkeypatch, capsys):
    # the scaler finds nothing to lower its scale for: without this the step would be skipped for ever
    import asr.train as train_module

    monkeypatch.setattr(train_module, "grad_scaler", lambda device, amp: torch.amp.GradScaler("cpu", init_scale=1.0))
    real = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, max_norm: real(params, max_norm) * math.inf)
    with pytest.raises(TrainingError, match="non-finite losses or gradients in a row"):
        train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1", "train.max_nan_steps=2"))
    assert "step 1: non-finite gradient (1 in a row); batch skipped" in capsys.readouterr().err


def test_a_checkpoint_whose_weights_validated_to_a_non_finite_loss_is_not_called_good(tiny_corpus, tmp_path,
                                                                                      monkeypatch):
    import asr.selection as selection_module

    real = losses_module.ctc_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):  # step 1 trains; every loss after it is NaN, validation's too
        losses, valid = real(*args, **kwargs)
        calls["n"] += 1
        return (losses * float("nan") if calls["n"] > 1 else losses), valid

    monkeypatch.setattr(losses_module, "ctc_loss", poisoned)
    monkeypatch.setattr(selection_module, "ctc_loss", poisoned)
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as error:
        train(tiny_config(tiny_corpus, out, "train.epochs=3", "train.checkpoint_every=1", "train.max_nan_steps=3"))
    assert str(error.value).endswith(f"no checkpoint has a finite valid loss: {out / 'last'} (saved at step 3) "
                                     "holds the weights of step 1, whose valid_loss was not finite")
    assert epochs(out)[0]["valid_loss"] != epochs(out)[0]["valid_loss"]  # NaN: those weights, validated


def test_weights_that_become_non_finite_stop_the_run_before_they_are_validated_or_saved(
        tiny_corpus, tmp_path, monkeypatch):
    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def poisoned_step(self, *args, **kwargs):  # step 3's update leaves a NaN weight, whatever caused it
        result = real_step(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            self.param_groups[0]["params"][0].data.fill_(float("nan"))
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", poisoned_step)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"step 3: the weights became non-finite .*the last good "
                                            rf"checkpoint is {out / 'last'} \(step 2\)"):
        train(tiny_config(tiny_corpus, out, "train.epochs=3", "train.checkpoint_every=2"))
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    assert not (out / "best").exists() and not (out / "log.jsonl").exists()
    clean = train(tiny_config(tiny_corpus, tmp_path / "clean", "train.epochs=3"), stop_at_step=2)
    assert_same_weights(out, clean)  # last/ is the clean step-2 checkpoint, never overwritten


def validated(tokenizer, text, frames, tmp_path, sine_wav, silent=(False,)):
    """selection.validate on utterances of ``text`` for which the model puts out ``frames``: a tone,
    or digital silence, per entry of ``silent``."""
    import numpy as np
    import soundfile as sf

    from asr.config import Config
    from asr.data import SpeechDataset, Utterance
    from asr.selection import validate
    from conftest import ctc_log_probs

    class Emits(torch.nn.Module):
        def forward(self, waves, lengths):
            log_probs, out_lengths = ctc_log_probs(tokenizer, frames)
            return log_probs.expand(len(waves), -1, -1), out_lengths.expand(len(waves))

    quiet = tmp_path / "silence.wav"
    sf.write(str(quiet), np.zeros(8000, np.float32), 16000)
    audio = [str(quiet if s else sine_wav()) for s in silent]
    dataset = SpeechDataset([Utterance(a, 0.5, text) for a in audio], tokenizer, 16000, source="valid.jsonl")
    return validate(Emits(), dataset, Config(), "cpu", tokenizer)


def test_validation_scores_a_silent_utterance_as_saying_nothing_as_evaluate_does(tmp_path, sine_wav):
    from asr.text import CharTokenizer

    chars = CharTokenizer.build(["so it is"])
    emitted = ["s", "<blank>", "o", "<blank>"]  # what a model may make up for silence
    assert validated(chars, "so", emitted, tmp_path, sine_wav)["valid_wer"] == 0.0
    scores = validated(chars, "so", emitted, tmp_path, sine_wav, silent=(True,))
    assert scores["valid_wer"] == 1.0 and scores["valid_cer"] == 1.0  # deleted: nothing was said


def test_validation_finds_digital_silence_utterance_by_utterance_as_it_reads_the_valid_set(tmp_path, sine_wav):
    # asr.train does not read the valid set for silence before training: validation tells, batch by batch
    from asr.text import CharTokenizer

    chars = CharTokenizer.build(["so it is"])
    scores = validated(chars, "so", ["s", "<blank>", "o", "<blank>"], tmp_path, sine_wav, silent=(False, True))
    assert scores["valid_wer"] == 0.5  # the tone's "so" right, the silence's deleted, in one batch


def test_validation_scores_a_phone_model_against_the_transcript_not_its_homophone(tmp_path, sine_wav):
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("READ R EH1 D\nRED R EH1 D\n")
    phones = PhoneTokenizer.build(["red"], lexicon)  # "red" wins the homophones
    scores = validated(phones, "read", ["R", "<blank>", "EH", "<blank>", "D", "<blank>"], tmp_path, sine_wav)
    assert scores["valid_wer"] == 1.0  # as asr evaluate scores "red" against "read"


def test_validation_normalizes_the_hypothesis_as_evaluate_does(tmp_path, sine_wav):
    from asr.text import CharTokenizer

    chars = CharTokenizer.build(["it's"])
    scores = validated(chars, "s", ["'", "<blank>", "s", "<blank>"], tmp_path, sine_wav)
    assert scores["valid_wer"] == 0.0 and scores["valid_cer"] == 0.0  # "'s" normalizes to "s"


def test_a_valid_set_with_no_utterance_a_loss_can_count_logs_a_nan_loss_and_picks_best_on_wer(
        tiny_corpus, tmp_path, capsys):
    rows = [json.loads(line) for line in (tiny_corpus / "valid.jsonl").read_text().splitlines()]
    (tmp_path / "train.jsonl").write_text((tiny_corpus / "train.jsonl").read_text())
    # each its transcript 30 times over in ~1 s of audio: too short for CTC, yet WER scores it
    # (as a valid set of recordings all too long to run whole would be): the run must not end with no best/
    (tmp_path / "valid.jsonl").write_text("\n".join(json.dumps({**r, "text": " ".join([r["text"]] * 30)})
                                                    for r in rows[:2]) + "\n")
    run = train(tiny_config(tmp_path, tmp_path / "run", "train.epochs=2"))
    log = epochs(run)
    assert all(r["valid_loss"] != r["valid_loss"] for r in log)  # NaN, not a perfect 0
    err = capsys.readouterr().err
    assert "the valid loss is over 0 of its 2 utterances" in err  # said before the first epoch
    assert "none of its 2 utterances could be scored" in err and "picked on WER and CER alone" in err
    assert (run / "best").is_dir()
    assert "trained on too" not in err  # its audio is not the train split's


def test_a_valid_set_whose_audio_is_trained_on_is_warned_of_before_the_first_epoch(tiny_corpus, tmp_path, capsys):
    train_manifest = str(tiny_corpus / "train.jsonl")
    train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1", f"train.valid_manifest={train_manifest}"))
    err = capsys.readouterr().err
    assert f"warning: {train_manifest}: 20 of its 20 utterances are trained on too ({train_manifest} has their " \
           "audio, e.g. " in err
    assert err.index("trained on too") < err.index("[1/1]")


def test_validation_that_scored_no_words_ranks_no_epoch_and_a_nan_loss_ranks_last_among_ties():
    from asr.metrics import selection_key

    assert selection_key({"epoch": 1, "valid_wer": math.nan, "valid_cer": math.nan, "valid_loss": math.nan}) is None
    scored = {"epoch": 1, "valid_wer": 0.5, "valid_cer": 0.2}
    assert selection_key({**scored, "valid_loss": math.nan}) > selection_key({**scored, "valid_loss": 90.0})
    assert selection_key({**scored, "valid_loss": math.nan}) < selection_key({**scored, "valid_wer": 0.6,
                                                                               "valid_loss": 1.0})


def test_a_valid_wer_tie_goes_to_the_epoch_with_the_lower_cer_then_loss(tiny_corpus, tmp_path):
    run = train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=3"))
    log = epochs(run)
    assert len({e["valid_wer"] for e in log}) == 1  # the tie this is about (an untrained model outputs little)
    ranked = min(log, key=lambda e: (e["valid_cer"], e["valid_loss"]))
    assert ranked["epoch"] == len(log) > 1  # the last ranks first here: best/ must be last/
    best, last = (load_file(str(run / name / "model.safetensors")) for name in ("best", "last"))
    assert all(torch.equal(best[k], last[k]) for k in last)


def test_averaging_more_epochs_than_the_run_has_says_why_there_is_no_average(tiny_corpus, tmp_path, capsys):
    run = train(tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1", "train.average_last=3"))
    assert "train.average_last=3: no average, as 1 epoch file(s) were saved" in capsys.readouterr().err
    assert not (run / "avg").exists()


def test_resuming_with_more_epochs_stretches_the_learning_rate_schedule_to_them(tiny_corpus, tmp_path):
    straight = train(tiny_config(tiny_corpus, tmp_path / "straight", "train.epochs=3"))
    killed = tmp_path / "killed"
    train(tiny_config(tiny_corpus, killed, "train.epochs=2"), stop_at_step=1)  # in warmup: plans alike so far
    resumed = train(tiny_config(tiny_corpus, killed, "train.epochs=3"), resume=True)
    assert [e["lr"] for e in epochs(resumed)] == pytest.approx([e["lr"] for e in epochs(straight)])
    assert_same_weights(straight, resumed)


# At 8 s a batch the 20 utterances of about 2 s pack into 6, 6 and 7 batches (sortagrad's sorted first
# epoch, then shuffled ones): 19 steps in 3 epochs, where 3 times the first epoch's would be 18.
UNEVEN = ("train.epochs=3", "train.batch_seconds=8")


def assert_ends_at_the_floor(run, cfg, epochs_run=3):
    """The run's last step took it to the floor of its learning rate, and no step before it did."""
    state = torch.load(run / "last" / "train_state.pt", weights_only=True)
    counts, floor = state["batch_counts"][:epochs_run], cfg.train.lr * cfg.train.final_lr_fraction
    assert counts[0] < max(counts)  # the premise: epochs of different numbers of steps
    assert state["step"] == state["scheduler"]["last_epoch"] == sum(counts) == epochs(run)[-1]["step"]
    assert state["scheduler"]["_last_lr"][0] == pytest.approx(floor, rel=1e-9)  # the rate once the last step is taken
    assert epochs(run)[-1]["lr"] > floor * 1.001  # the last step's own: the decay is still above the floor


def test_a_sortagrad_run_whose_epochs_make_different_numbers_of_steps_decays_to_the_floor_on_its_last_step(
        tiny_corpus, tmp_path):
    straight, resumed = straight_and_resumed(tiny_corpus, tmp_path, *UNEVEN)
    cfg = tiny_config(tiny_corpus, straight, *UNEVEN)
    for run in (straight, resumed):
        assert_ends_at_the_floor(run, cfg)
    assert [e["lr"] for e in epochs(resumed)] == [e["lr"] for e in epochs(straight)]  # the same schedule exactly
    assert_same_weights(straight, resumed)


def test_a_time_budget_that_keeps_fewer_epochs_decays_to_the_floor_on_the_last_step_of_the_last_one(
        tiny_corpus, tmp_path, monkeypatch):
    import asr.train as train_module

    monkeypatch.setattr(train_module, "replan_to_budget", lambda *args: 3)  # after the first epoch, 3 of 5 fit the budget
    cfg = tiny_config(tiny_corpus, tmp_path / "run", *UNEVEN, "train.epochs=5", "train.time_budget_minutes=60")
    run = train(cfg)
    assert len(epochs(run)) == 3
    assert_ends_at_the_floor(run, cfg)


def test_a_train_state_from_before_epochs_were_counted_one_by_one_resumes_to_its_true_end(tiny_corpus, tmp_path,
                                                                                           capsys):
    # its schedule ended at 3 times the first epoch's steps, one step short: stretched to the last from where it is
    run = tmp_path / "run"
    cfg = tiny_config(tiny_corpus, run, *UNEVEN)
    train(cfg, stop_at_step=3)
    path = run / "last" / "train_state.pt"
    state = torch.load(path, weights_only=True)
    first = state.pop("batch_counts")[0]
    state["steps_per_epoch"], state["scheduler"]["lr_lambdas"][0]["total_steps"] = first, 3 * first
    torch.save(state, path)
    capsys.readouterr()
    train(cfg, resume=True)
    assert "resuming with" not in capsys.readouterr().err  # the same batches: nothing to say
    assert_ends_at_the_floor(run, cfg)


def test_resuming_with_twice_the_batch_seconds_goes_on_from_the_same_fraction_of_the_run_and_of_its_epoch(
        tiny_corpus, tmp_path, capsys):
    from asr.schedule import WarmupCosine

    # 20 utterances of about 2 s: 10 batches an epoch at 5 s, 5 at 10 s; 2 epochs, so 20 steps then 10
    run, extra = tmp_path / "run", ("train.epochs=2", "train.warmup_steps=3")
    train(tiny_config(tiny_corpus, run, *extra, "train.batch_seconds=5"), stop_at_step=6)  # 6 of 10 batches
    cfg = tiny_config(tiny_corpus, run, *extra, "train.batch_seconds=10")
    train(cfg, resume=True, stop_at_step=4)  # goes on as step 3, after 3 of 5 batches; one step more
    state = torch.load(run / "last" / "train_state.pt", weights_only=True)
    assert (state["epoch"], state["global_batch_in_epoch"], state["step"]) == (0, 4, 4)
    # the rate at 4 of the 10 steps is the saved run's schedule's at the same fraction: 8 of its 20
    saved_schedule = WarmupCosine(warmup_steps=3, total_steps=20, final_fraction=cfg.train.final_lr_fraction)
    assert state["scheduler"]["_last_lr"][0] == pytest.approx(cfg.train.lr * saved_schedule(8), rel=1e-9)
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("resuming with")]
    assert said == ["resuming with another batch size (train.batch_seconds 5 -> 10): 10 steps in 2 epoch(s), 20 "
                    "before: step 6 goes on as step 3, the learning-rate schedule rescaled to the same point of "
                    "training (warmup 3 -> 1.5 steps); epoch 1 goes on after 3 of its 5 batches, the same "
                    "fraction as 6 of 10 before (other batches: until it ends, some of its utterances may come "
                    "twice and others not at all)"]


def test_a_run_resumed_half_a_batch_into_its_epoch_goes_on_at_the_step_of_its_position_and_ends_at_the_floor(
        tiny_corpus, tmp_path, capsys):
    # 4 batches an epoch at 12 s become 3 at 20 s; saved 2 into epoch 2 (step 6): 1.5 of 3, rounded to
    # 2, where 6 * 0.75 = 4.5 steps rounded on their own would be 4 and the run would end on step 5
    run, extra = tmp_path / "run", ("train.epochs=2", "train.warmup_steps=1")
    train(tiny_config(tiny_corpus, run, *extra, "train.batch_seconds=12"), stop_at_step=6)
    cfg = tiny_config(tiny_corpus, run, *extra, "train.batch_seconds=20")
    train(cfg, resume=True)
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("resuming with")]
    assert "step 6 goes on as step 5" in said[0] and "after 2 of its 3 batches, the same fraction as 2 of 4" in said[0]
    assert [e["step"] for e in epochs(run)] == [4, 6]  # step 5 = 1 epoch of 3 + 2 batches; one more ends it
    state = torch.load(run / "last" / "train_state.pt", weights_only=True)
    assert (state["step"], state["scheduler"]["last_epoch"]) == (6, 6)  # the schedule's 3 * 2 steps
    assert state["scheduler"]["_last_lr"][0] == pytest.approx(cfg.train.lr * cfg.train.final_lr_fraction, rel=1e-9)


def test_resuming_with_a_lower_max_duration_goes_on_from_the_same_fraction_of_the_epoch_and_says_why(
        tiny_corpus, tmp_path, capsys):
    # 20 utterances in 10 batches at 5 s; 9 of them up to 1.95 s make 5. Saved 4 into the first epoch: 2 of 5
    # now (the same batch index, 4, would skip most of today's epoch)
    run, extra = tmp_path / "run", ("train.epochs=2", "train.warmup_steps=3", "train.batch_seconds=5")
    train(tiny_config(tiny_corpus, run, *extra), stop_at_step=4)
    train(tiny_config(tiny_corpus, run, *extra, "train.max_duration=1.95"), resume=True, stop_at_step=3)
    state = torch.load(run / "last" / "train_state.pt", weights_only=True)
    assert (state["epoch"], state["global_batch_in_epoch"], state["step"]) == (0, 3, 3)
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("resuming with")]
    assert said == ["resuming with other utterances (train.max_duration 30 -> 1.95): 10 steps in 2 epoch(s), 20 "
                    "before: step 4 goes on as step 2, the learning-rate schedule rescaled to the same point of "
                    "training (warmup 3 -> 1.5 steps); epoch 1 goes on after 2 of its 5 batches, the same "
                    "fraction as 4 of 10 before (other batches: until it ends, some of its utterances may come "
                    "twice and others not at all)"]


def test_resuming_on_a_train_or_valid_manifest_that_changed_since_is_refused(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for split in ("train", "valid"):
        (corpus / f"{split}.jsonl").write_text((tiny_corpus / f"{split}.jsonl").read_text())
    run = train(tiny_config(corpus, tmp_path / "run", "train.epochs=1"))
    for split in ("train", "valid"):
        manifest = corpus / f"{split}.jsonl"
        kept = manifest.read_text()
        manifest.write_text("".join(kept.splitlines(keepends=True)[1:]))  # a re-split: one line fewer
        with pytest.raises(TrainingError) as error:
            train(tiny_config(corpus, run, "train.epochs=2"), resume=True)
        assert str(error.value) == (f"{run} was trained on another {manifest} (changed since); use another "
                                    f"train.output_dir, or delete {run}")
        manifest.write_text(kept)
    assert len(epochs(run)) == 1


def test_resuming_a_fine_tuning_run_whose_starting_model_was_trained_on_since_is_refused(tiny_corpus, tmp_path):
    # a recipe's finetune stage, redone after the main run trained on: a finished fine-tuning run
    # of the old model must not pass for one of the new
    base = train(tiny_config(tiny_corpus, tmp_path / "base", "train.epochs=1"))
    tuned = train(tiny_config(tiny_corpus, tmp_path / "tuned", "train.epochs=1", f"train.init_from={base / 'best'}"))
    from safetensors.torch import save_file

    weights = load_file(str(base / "best" / "model.safetensors"))  # the main run trained on: best/ changed
    save_file({k: v + 0.01 if v.is_floating_point() else v for k, v in weights.items()},
              str(base / "best" / "model.safetensors"))
    with pytest.raises(TrainingError) as error:
        train(tiny_config(tiny_corpus, tuned, "train.epochs=1", f"train.init_from={base / 'best'}"), resume=True)
    assert str(error.value) == (f"{tuned} was trained on another train.init_from model: {base / 'best'}'s weights "
                                f"changed since; use another train.output_dir, or delete {tuned}")


def test_a_train_state_from_before_tie_breaks_and_data_identities_still_resumes(tiny_corpus, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(tiny_corpus, run, "train.epochs=2"), stop_at_step=1)
    path = run / "last" / "train_state.pt"
    state = torch.load(path, weights_only=True)
    del state["best_key"], state["data"], state["trained_step"]  # nor the last step that trained
    state["epoch_totals"] = state["epoch_totals"][:8]  # nor the count of non-finite steps
    torch.save(state, path)
    train(tiny_config(tiny_corpus, run, "train.epochs=2"), resume=True)
    assert len(epochs(run)) == 2


def test_a_kill_as_last_appears_leaves_a_run_that_resumes(tiny_corpus, tmp_path, monkeypatch, capsys):
    import asr.train as train_module

    real_save = train_module.save_model_dir

    def killed_after_last(path, *args, **kwargs):
        saved = real_save(path, *args, **kwargs)
        if saved.name == "last":
            raise KeyboardInterrupt  # the process dies the moment last/ is in place
        return saved

    monkeypatch.setattr(train_module, "save_model_dir", killed_after_last)
    cfg = tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1", "train.checkpoint_every=1")
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    monkeypatch.setattr(train_module, "save_model_dir", real_save)
    capsys.readouterr()
    run = train(cfg, resume=True)
    assert f"resuming {run} at epoch 1, step 1" in capsys.readouterr().err and len(epochs(run)) == 1


def test_a_run_directory_without_a_checkpoint_but_with_results_is_never_run_into(tiny_corpus, tmp_path):
    import shutil

    cfg = tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1")
    run = train(cfg)
    shutil.rmtree(run / "last")  # killed between best/ and the epoch's checkpoint, say
    for resume in (False, True):
        with pytest.raises(TrainingError, match=f"{run} holds a run with no checkpoint to resume from .*delete {run}"):
            train(cfg, resume=resume)
    assert len(epochs(run)) == 1
