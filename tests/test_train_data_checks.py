"""What training checks of its data before and while it trains: the files' own durations, the
valid set scored as `asr evaluate` scores it, and problems named (a few, then a total)."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.config import Config
from asr.config_files import load_config
from asr.data import collate
from asr.losses import ctc_loss
from asr.metrics import char_errors, word_errors
from asr.model import AcousticModel
from asr.selection import validate
from asr.text import CharTokenizer
from asr.train import train
from asr.train_checks import TrainingError
from asr.train_setup import load_split
from conftest import ctc_log_probs, write_sine

RATE = 16000
SMALL = ["model.hidden_size=32", "model.num_layers=1", "model.dropout=0.0", "model.conv_channels=4",
         "train.batch_seconds=20", "train.warmup_steps=1", "train.epochs=1", "train.progress=false",
         "train.threads=1", "augment.speed_factors=[1.0]"]


def manifest(path, rows):
    """Write ``rows`` (audio file name, duration, text[, id]) as a manifest in ``path``'s folder."""
    entries = [{"audio_filepath": r[0], "duration": r[1], "text": r[2], "id": r[3] if len(r) > 3 else r[0]}
               for r in rows]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def clips(folder, **seconds):
    """Sine clips ``name=seconds`` as name.wav in ``folder``."""
    for name, s in seconds.items():
        write_sine(folder / f"{name}.wav", seconds=s, freq=300.0 + 50 * len(name))


def small_config(folder, *extra, valid=""):
    return load_config("configs/small.yaml", [f"train.train_manifest={folder / 'train.jsonl'}",
                                              f"train.valid_manifest={valid}", f"train.output_dir={folder / 'run'}",
                                              *SMALL, *extra])


def test_a_manifest_duration_that_is_not_the_file_s_is_named_and_the_file_s_is_used(tmp_path, capsys):
    clips(tmp_path, long=3.0, short=0.5, right=1.0)
    path = manifest(tmp_path / "train.jsonl", [("long.wav", 0.5, "ab"), ("short.wav", 100.0, "ab"),
                                               ("right.wav", 1.004, "ab")])
    cfg = load_config("configs/small.yaml", ["train.max_duration=2"])
    dataset = load_split(str(path), cfg, CharTokenizer.build(["ab"]), "train")
    err = capsys.readouterr().err
    # batched and filtered by what the files hold: the 3 s clip is over max_duration, the 0.5 s one is not
    assert [(u.id, u.duration) for u in dataset.utterances] == [("short.wav", 0.5), ("right.wav", 1.0)]
    assert "train utterance long.wav: " + str(tmp_path / "long.wav") + " lasts 3.00 s, not the manifest's 0.5 s" in err
    assert "lasts 0.50 s, not the manifest's 100 s" in err and "right.wav lasts" not in err  # 4 ms is rounding
    assert f"{path}: 2 train utterance(s) whose manifest duration is not their file's" in err
    assert "skipped train utterance long.wav: 3.00 s" in err
    assert f"{path}: skipped 1 train utterance(s) longer than train.max_duration=2 s" in err


def test_transcript_skips_are_listed_up_to_twenty_then_totalled(tmp_path, capsys):
    clips(tmp_path, a=0.3)
    path = manifest(tmp_path / "train.jsonl", [("a.wav", 0.3, "ab", "good")]
                    + [("a.wav", 0.3, f"ab {n}", f"digit{n}") for n in range(25)])
    load_split(str(path), Config(), CharTokenizer.build(["ab"]), "train")
    err = capsys.readouterr().err
    assert err.count("skipped train utterance digit") == 20
    assert "skipped train utterance digit19: characters outside the vocabulary" in err and "digit20" not in err
    assert f"{path}: skipped 25 of 26 train utterance(s) (96%) for their transcripts (5 more not listed)" in err


def test_duplicate_ids_and_audio_below_the_model_s_rate_are_warned_about_once_by_name(tmp_path, capsys):
    clips(tmp_path, a=0.3)
    write_sine(tmp_path / "phone.wav", seconds=0.3, sample_rate=8000)
    path = manifest(tmp_path / "train.jsonl", [("a.wav", 0.3, "ab", "x"), ("phone.wav", 0.3, "ab", "x"),
                                               ("a.wav", 0.3, "ab", "y")])
    load_split(str(path), Config(), CharTokenizer.build(["ab"]), "train")
    err = capsys.readouterr().err
    assert (f"warning: {path}: 1 utterance id(s) occur more than once (e.g. 'x'): each entry is trained on" in err)
    assert f"train utterance x: {tmp_path / 'phone.wav'} is recorded at 8000 Hz" in err
    assert f"warning: {path}: 1 train utterance(s) recorded below the model's 16000 Hz: upsampled" in err
    assert err.count("occur more than once") == 1


def cut_files(folder, prefix, count):
    """``count`` copies of a 1 s clip cut to its first 0.5 s, and a manifest of them."""
    data = write_sine(folder / "whole.wav", seconds=1.0).read_bytes()
    for n in range(count):
        (folder / f"{prefix}{n}.wav").write_bytes(data[: 44 + RATE])
    return manifest(folder / f"{prefix}.jsonl", [(f"{prefix}{n}.wav", 0.5, "ab") for n in range(count)])


def test_files_cut_short_are_listed_up_to_twenty_then_totalled(tmp_path, capsys):
    path = cut_files(tmp_path, "cut", 25)
    assert len(load_split(str(path), Config(), CharTokenizer.build(["ab"]), "train")) == 25
    err = capsys.readouterr().err
    assert err.count(": truncated: 0.50 s of audio where its header declares 1.00 s") == 20
    assert "asr: warning:" not in err  # listed as every other problem is, not one warning line per file
    assert (f"warning: {path}: 25 train audio file(s) cut short or damaged: the audio before the cut is used "
            "(5 more not listed)") in err


def test_a_rank_that_does_not_report_says_nothing_of_files_cut_short_then_or_when_it_reads_them(tmp_path, capsys):
    from asr.audio import load_audio

    path = cut_files(tmp_path, "cut", 3)
    load_split(str(path), Config(), CharTokenizer.build(["ab"]), "train", quiet=True)  # as a rank but the first
    load_audio(tmp_path / "cut0.wav", RATE)
    assert capsys.readouterr().err == ""


def evaluated_valid_set(folder):
    """A valid manifest with what training would leave out: a digit and an accent the training text
    lacks, an empty transcript, and a clip over train.max_duration."""
    clips(folder, a=0.5, b=0.5, c=0.5, d=3.0)
    path = manifest(folder / "valid.jsonl", [("a.wav", 0.5, "so it is"), ("b.wav", 0.5, "so it is 42"),
                                             ("c.wav", 0.5, ""), ("d.wav", 3.0, "café is so")])
    tokenizer = CharTokenizer.build(["so it is cafe"])
    cfg = load_config("configs/small.yaml", ["train.max_duration=2"])
    return path, tokenizer, cfg


def test_the_valid_set_keeps_every_utterance_asr_evaluate_scores(tmp_path):
    path, tokenizer, cfg = evaluated_valid_set(tmp_path)
    assert [u.id for u in load_split(str(path), cfg, tokenizer, "valid").utterances] == ["a.wav"]  # as training
    valid = load_split(str(path), cfg, tokenizer, "valid", read_audio=True, as_evaluated=True)
    assert sorted(valid.texts) == sorted(["so it is", "so it is 42", "", "café is so"])  # normalized as evaluate
    assert {valid.utterances[i].id for i in valid.unspellable} == {"b.wav", "d.wav"}
    assert "outside the vocabulary" in valid.unspellable[next(iter(valid.unspellable))]
    assert [valid.utterances[i].id for i in range(len(valid)) if valid.targets[i] is None] == ["b.wav", "d.wav"]
    assert [u.id for u in valid.utterances[-2:]] == ["b.wav", "d.wav"]  # the posteriorgram's (the first) is spelled


def test_the_train_split_leaves_out_what_it_cannot_spell_so_no_training_batch_lacks_labels(tmp_path):
    path, tokenizer, cfg = evaluated_valid_set(tmp_path)
    train_set = load_split(str(path), cfg, tokenizer, "train", read_audio=True)
    assert [u.id for u in train_set.utterances] == ["a.wav"] and not train_set.unspellable
    assert [u.id for u, _ in train_set.skipped] == ["b.wav", "c.wav"]  # d.wav: over train.max_duration
    assert all(t is not None for t in train_set.targets)
    assert collate([train_set[i] for i in range(len(train_set))]).has_labels.all()


def test_validation_scores_all_of_them_and_takes_the_loss_over_those_it_can_spell(tmp_path):
    path, tokenizer, cfg = evaluated_valid_set(tmp_path)
    valid = load_split(str(path), cfg, tokenizer, "valid", read_audio=True, as_evaluated=True)
    frames = ["s", "<blank>", "o", "|", "i", "t", "|", "i", "s"]

    class Emits(torch.nn.Module):  # says "so it is" to anything
        frame_shift = 0.04

        def forward(self, waves, lengths):
            log_probs, out_lengths = ctc_log_probs(tokenizer, frames)
            return log_probs.expand(len(waves), -1, -1), out_lengths.expand(len(waves))

    scores = validate(Emits(), valid, cfg, "cpu", tokenizer)
    refs = ["so it is", "so it is 42", "", "café is so"]
    assert scores["valid_wer"] == pytest.approx(word_errors(refs, ["so it is"] * 4).rate)
    assert scores["valid_cer"] == pytest.approx(char_errors(refs, ["so it is"] * 4).rate)
    log_probs, lengths = ctc_log_probs(tokenizer, frames)
    spelled = [i for i in range(len(valid)) if i not in valid.unspellable]  # "so it is" and the empty one
    batch = collate([valid[i] for i in spelled])
    losses, ok = ctc_loss(log_probs.expand(len(spelled), -1, -1), lengths.expand(len(spelled)), batch,
                          tokenizer.blank_id)
    assert ok.all() and scores["valid_loss"] == pytest.approx(float(losses.mean()), rel=1e-5)


def test_the_valid_loss_note_counts_what_the_loss_leaves_out(tmp_path):
    from asr.train_checks import valid_loss_note

    path, tokenizer, cfg = evaluated_valid_set(tmp_path)
    clips(tmp_path, tiny=0.05, long=20.0)
    with open(path, "a") as f:
        f.write(json.dumps({"audio_filepath": "tiny.wav", "duration": 0.05, "text": "so it is so it is"}) + "\n")
        f.write(json.dumps({"audio_filepath": "long.wav", "duration": 20.0, "text": "so it is"}) + "\n")
    valid = load_split(str(path), cfg, tokenizer, "valid", read_audio=True, as_evaluated=True)
    model = AcousticModel(cfg.features, cfg.model, len(tokenizer))
    note = valid_loss_note(valid, model)
    assert note.startswith(f"{path}: the valid loss is over 2 of its 6 utterances (not 2 with a transcript "
                           "the model cannot spell, e.g. b.wav: characters outside the vocabulary")
    assert ("1 too short for their transcripts; 1 of 20 s or more, decoded in pieces and never run whole); valid "
            "WER and CER are over all 6") in note


def test_output_frames_follow_the_model_s_own_length_rule():
    from asr.train_checks import output_frames

    for subsampling, factor in (("conv", 4), ("conv", 8), ("stack", 3)):
        cfg = load_config("configs/small.yaml", [f"model.subsampling={subsampling}",
                                                 f"model.subsampling_factor={factor}", "model.hidden_size=32"])
        model = AcousticModel(cfg.features, cfg.model, 5).eval()
        samples = [1, 159, 160, 161, 1000, 4321]
        waves = torch.zeros(len(samples), max(samples))
        with torch.no_grad():
            _, lengths = model(waves, torch.tensor(samples))
        assert output_frames(model, samples) == lengths.tolist()


def test_a_training_set_too_short_for_its_transcripts_is_named_and_refused_before_it_trains(tmp_path, capsys):
    clips(tmp_path, a=0.1, b=0.2)
    manifest(tmp_path / "train.jsonl", [("a.wav", 0.1, "please call stella"), ("b.wav", 0.2, "ask her to bring it")])
    with pytest.raises(TrainingError, match=r"train\.jsonl: every one of its 2 train utterances is too short for its "
                                            r"transcript at the model's 40 ms output frames .*nothing can train"):
        train(small_config(tmp_path))
    err = capsys.readouterr().err
    assert "train utterance a.wav: too short for its transcript (3 output frames, 20 needed)" in err
    assert "2 train utterance(s) too short for their transcripts" in err
    assert not (tmp_path / "run" / "best").exists()


def test_a_set_that_only_slowing_down_makes_long_enough_still_trains(tmp_path, capsys):
    clips(tmp_path, a=0.3)  # 8 frames at normal speed; 0.3 / 0.5 s gives 16: "abcdefghij" needs 10
    manifest(tmp_path / "train.jsonl", [("a.wav", 0.3, "abcdefghij")])
    train(small_config(tmp_path, "augment.speed_factors=[0.5]"))
    assert "train utterance a.wav: too short for its transcript (8 output frames, 10 needed)" in capsys.readouterr().err


def test_silent_training_audio_with_a_transcript_is_named_and_counted(tmp_path, capsys):
    # steady noise alone is no speech either: validation and evaluate leave it out as they do silence
    clips(tmp_path, a=0.6, b=0.6)
    sf.write(str(tmp_path / "hush.wav"), np.zeros(RATE // 2, np.float32), RATE)
    hiss = 0.01 * np.random.default_rng(0).standard_normal(RATE // 2)
    sf.write(str(tmp_path / "hiss.wav"), hiss.astype(np.float32), RATE)
    manifest(tmp_path / "train.jsonl", [("a.wav", 0.6, "so"), ("hush.wav", 0.5, "so it is"), ("b.wav", 0.6, "it"),
                                        ("hiss.wav", 0.5, "is it")])
    train(small_config(tmp_path, "train.epochs=2"))
    err = capsys.readouterr().err
    assert f"silent train utterance hush.wav: {tmp_path / 'hush.wav'}" in err
    assert f"silent train utterance hiss.wav: {tmp_path / 'hiss.wav'}" in err
    assert "2 train utterance(s) are digital silence (below -80 dBFS) or steady noise alone yet have a transcript" \
        in err
    assert err.count("are digital silence") == 1  # the first epoch's finding, not every epoch's


def test_warmup_longer_than_the_run_is_warned_about_at_the_start_with_the_rate_the_log_then_shows(tmp_path, capsys):
    clips(tmp_path, a=0.6, b=0.6)
    manifest(tmp_path / "train.jsonl", [("a.wav", 0.6, "so"), ("b.wav", 0.6, "it")])
    run = train(small_config(tmp_path, "train.warmup_steps=300", "train.epochs=2"))
    assert ("warning: train.warmup_steps=300 is more than the run's 2 steps: the learning rate rises to 1e-05, "
            "0.67% of train.lr=0.0015, and never decays") in capsys.readouterr().err
    logged = [json.loads(line)["lr"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert logged == pytest.approx([5e-06, 1e-05])  # each epoch's last step's rate: not the step after it


def _silence_on_rank(rank, folder, silent):
    """One of two gloo processes: warn_of_silence of the silent utterances this rank saw; the log of
    the first rank goes to folder/said.txt."""
    import io
    import sys
    from types import SimpleNamespace

    import torch.distributed as dist

    from asr.data import Utterance
    from asr.distributed import Dist
    from asr.train_checks import warn_of_silence

    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=2)
    sys.stderr = said = io.StringIO()
    dataset = SimpleNamespace(utterances=[Utterance(f"{i}.wav", 1.0, "so", id=f"u{i}") for i in range(6)])
    warn_of_silence("train.jsonl", dataset, silent[rank], Dist(rank, 2), "cpu")
    dist.destroy_process_group()
    if rank == 0:
        (folder / "said.txt").write_text(said.getvalue())


def test_silent_utterances_seen_by_two_ranks_are_counted_once_and_all_named(tmp_path):
    # the last round of an epoch's batches is filled with its first ones, so another rank may see
    # a silent utterance the first one saw too; and the first one names those only others saw
    import torch.multiprocessing as mp

    mp.start_processes(_silence_on_rank, args=(tmp_path, [[0], [0, 3]]), nprocs=2, start_method="spawn")
    said = (tmp_path / "said.txt").read_text()
    assert "silent train utterance u0: 0.wav" in said and "silent train utterance u3: 3.wav" in said
    assert "warning: train.jsonl: 2 train utterance(s) are digital silence" in said
