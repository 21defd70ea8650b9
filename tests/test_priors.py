"""Prior-corrected beam search: a model's token priors (its mean posterior over training frames)
are estimated once, kept in the model directory, and divided out at a tuned scale."""

import json
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.beam_search import BeamSearchDecoder
from asr.cli import main
from asr.decoding_config import PRIORS_FILE, load_log_priors, model_decoder, read_decoding_defaults, \
    write_decoding_defaults
from asr.lm import LMError, build_lm
from asr.priors import estimate_priors
from asr.text import CharTokenizer
from asr.transcribe import load_model
from asr.evaluate import readable_batches
from conftest import ctc_log_probs, spelled_frames

TOKENIZER = CharTokenizer.build(["the cat sat on a mat with zebra dogs quiz"])


@pytest.fixture
def model(tiny_model_dir, tmp_path):
    shutil.copytree(tiny_model_dir, tmp_path / "model")
    return tmp_path / "model"


def test_the_priors_are_the_mean_posterior_over_every_frame_of_the_manifest(model, tiny_corpus):
    from asr.data import read_manifest

    utterances = read_manifest(tiny_corpus / "train.jsonl")[:5]
    transcriber = load_model(model, decoder="greedy", device="cpu")
    estimate = estimate_priors(transcriber, utterances, batch_seconds=3.0)  # several batches

    posteriors = []
    for waves, _ in readable_batches(transcriber, utterances, 300.0, []):
        log_probs, lengths = transcriber.log_probs(waves)
        posteriors += [log_probs[b, : int(lengths[b])].exp() for b in range(len(waves))]
    expected = torch.cat(posteriors).double().mean(0)
    assert estimate.frames == sum(len(p) for p in posteriors) and estimate.skipped == []
    assert (estimate.used, estimate.silent) == (5, 0)
    priors = estimate.priors
    assert torch.tensor(priors, dtype=torch.float64).allclose(expected, atol=1e-6) and sum(priors) == pytest.approx(1.0)


def test_priors_of_a_model_whose_outputs_are_not_finite_are_refused_not_written(model, tiny_corpus, monkeypatch):
    from asr.data import ManifestError, read_manifest

    transcriber = load_model(model, decoder="greedy", device="cpu")
    log_probs = transcriber.log_probs
    monkeypatch.setattr(transcriber, "log_probs", lambda waves: (torch.full_like(log_probs(waves)[0], math.nan),
                                                                  log_probs(waves)[1]))
    with pytest.raises(ManifestError, match="outputs on some of the 2 utterances are not finite"):
        estimate_priors(transcriber, read_manifest(tiny_corpus / "train.jsonl")[:2])


def test_asr_priors_writes_them_into_the_model_directory(model, tiny_corpus, capsys):
    assert main(["priors", str(model), str(tiny_corpus / "train.jsonl"), "--every", "4"]) == 0
    assert "5 utterances" in capsys.readouterr().out  # 20 utterances, every 4th
    stored = json.loads((model / PRIORS_FILE).read_text())
    assert stored["manifest"] == str(tiny_corpus / "train.jsonl") and stored["frames"] > 0
    logs = load_log_priors(model, len(stored["priors"]))
    assert logs == pytest.approx([math.log(p) for p in stored["priors"]])
    with pytest.raises(LMError, match=f"{PRIORS_FILE}: {len(logs)} priors for a model with 3 tokens \\(estimated "
                                      f"for another model: run `asr priors {model} TRAIN_MANIFEST` again\\)"):
        load_log_priors(model, 3)


def test_a_token_the_model_almost_never_emits_keeps_its_prior_in_the_file_not_zero(model):
    # the built-in model's 'q' (mean posterior under 5e-9) was stored as 0.0: its correction then
    # came from the loader's floor, not from the model
    from asr.priors import save_priors

    priors = [0.5, 0.49999999, 1.2345678e-9, 3.4e-10]
    save_priors(model, priors, 1000, "train.jsonl")
    assert load_log_priors(model, 4) == pytest.approx([math.log(p) for p in priors], rel=1e-7)


def test_priors_estimated_for_another_tokenizer_of_the_same_size_are_refused_by_token(model, tiny_corpus):
    # a model retrained with other subword units of the same count: the sizes agree, the tokens do not
    assert main(["priors", str(model), str(tiny_corpus / "train.jsonl"), "--every", "4"]) == 0
    stored = json.loads((model / PRIORS_FILE).read_text())
    tokens = list(load_model(model, decoder="greedy").tokenizer.tokens)
    assert stored["tokens"] == tokens
    assert load_log_priors(model, len(tokens), tokens) is not None
    other = tokens[:2] + tokens[2:][::-1]
    with pytest.raises(LMError, match=f"{PRIORS_FILE}: estimated for another model's tokens \\(token 2 is "
                                      f"{other[2]!r} here, {tokens[2]!r} there\\): run `asr priors {model} "
                                      "TRAIN_MANIFEST` again"):
        load_log_priors(model, len(tokens), other)
    del stored["tokens"]  # a file from before tokens were kept: its size is all there is to check
    (model / PRIORS_FILE).write_text(json.dumps(stored))
    assert load_log_priors(model, len(tokens), other) is not None


def test_dividing_out_the_prior_lets_a_rare_token_beat_a_frequent_one_it_trails_slightly():
    frames = spelled_frames("the cat sat on the mat")
    frames[frames.index("m") + 2] = {"q": 0.45, "a": 0.55}
    lp = ctc_log_probs(TOKENIZER, frames)
    priors = torch.full((len(TOKENIZER),), 0.01)
    priors[TOKENIZER.tokens.index("a")] = 0.5  # "a" is everywhere in training; "q" is rare
    plain = BeamSearchDecoder(TOKENIZER, log_priors=priors.log().tolist())
    assert plain.decode(*lp)[0].text == "the cat sat on the mat"
    # log .55 - .5 log .5 = -0.25 against log .45 - .5 log .01 = 1.50
    corrected = plain.with_options(prior_scale=0.5)
    assert corrected.decode(*lp)[0].text == "the cat sat on the mqt"
    assert "prior_scale 0.5" in corrected.describe()
    assert lp[0].exp().sum(-1).allclose(torch.ones(1))  # the caller's log-probs are left as they were


def test_a_prior_scale_without_priors_is_refused_naming_what_to_run(model, tmp_path):
    with pytest.raises(LMError, match="asr priors"):
        BeamSearchDecoder(TOKENIZER).with_options(prior_scale=0.3)
    (tmp_path / "text.txt").write_text("hello world\n")
    lm = build_lm([tmp_path / "text.txt"], tmp_path / "lm.arpa", order=2, use_lmplz=False)[0]
    write_decoding_defaults(model, {"lm_weight": 0.5, "prior_scale": 0.3})  # tuned with this LM
    tokenizer = load_model(model, decoder="greedy", device="cpu").tokenizer
    with pytest.raises(LMError, match=f"{model / PRIORS_FILE}: missing, and prior_scale is 0.3"):
        model_decoder(model, tokenizer, lm=lm)


def test_lm_tune_searches_prior_scales_and_the_stored_scale_decodes_later(model, tiny_corpus, tmp_path, capsys):
    valid = str(tiny_corpus / "valid.jsonl")
    lm = tmp_path / "lm.arpa"
    assert main(["lm", "build", str(tiny_corpus / "train.jsonl"), "-o", str(lm), "--order", "2"]) == 0
    tune = ["lm", "tune", valid, "--model", str(model), "--lm", str(lm), "--lm-weights", "0.5", "--word-scores", "0",
            "--beam-size", "4", "--decode-workers", "1"]
    capsys.readouterr()
    assert main(tune + ["--prior-scales", "0,0.3"]) == 2  # no priors yet
    assert f"{model / PRIORS_FILE}: missing" in capsys.readouterr().err

    assert main(["priors", str(model), str(tiny_corpus / "train.jsonl")]) == 0
    assert main(tune + ["--prior-scales", "0,0.3"]) == 0
    assert capsys.readouterr().err.count("prior_scale 0.3") == 1  # the second grid point
    assert main(tune + ["--prior-scales", "0.3"]) == 0
    assert read_decoding_defaults(model)["prior_scale"] == 0.3
    decoder, _ = model_decoder(model, load_model(model, decoder="greedy", device="cpu").tokenizer, lm=str(lm))
    assert decoder.options.prior_scale == 0.3 and decoder.log_priors is not None


def test_exports_carry_the_priors_with_or_without_a_new_lm(model, tiny_corpus, tmp_path, monkeypatch):
    from asr import decoding_config

    monkeypatch.setattr(decoding_config, "kenlm_tool", lambda name: None)
    assert main(["priors", str(model), str(tiny_corpus / "train.jsonl"), "--every", "5"]) == 0
    assert main(["export", str(model), str(tmp_path / "copy"), "--half"]) == 0
    assert (tmp_path / "copy" / PRIORS_FILE).read_text() == (model / PRIORS_FILE).read_text()
    lm = tmp_path / "lm.arpa"
    assert main(["lm", "build", str(tiny_corpus / "train.jsonl"), "-o", str(lm), "--order", "2"]) == 0
    assert main(["export", str(model), str(tmp_path / "with_lm"), "--lm", str(lm)]) == 0
    assert (tmp_path / "with_lm" / PRIORS_FILE).is_file()


@pytest.fixture
def two_systems(tiny_model_dir, tiny_corpus, tmp_path):
    """The tiny model twice (packaged with a word LM, and plain), each with its token priors."""
    from asr.config import Config, ModelConfig
    from asr.model import AcousticModel
    from asr.model_dir import load_model_dir, save_model_dir

    (tmp_path / "text.txt").write_text("hello world\nhello hello world\nworld hello\n")
    lm = build_lm([tmp_path / "text.txt"], tmp_path / "hw.arpa", order=2, use_lmplz=False)[0]
    write_decoding_defaults(shutil.copytree(tiny_model_dir, tmp_path / "first"), {"lm_weight": 0.5, "beam_size": 8})
    assert main(["export", str(tmp_path / "first"), str(tmp_path / "first_pkg"), "--lm", str(lm)]) == 0
    torch.manual_seed(1)
    cfg = Config(model=ModelConfig(cell="lstm", num_layers=1, hidden_size=8, conv_channels=4, dropout=0.0))
    tokenizer = load_model_dir(tiny_model_dir).tokenizer
    second = save_model_dir(tmp_path / "second", cfg, AcousticModel(cfg.features, cfg.model, len(tokenizer)), tokenizer)
    for model in (tmp_path / "first_pkg", second):
        assert main(["priors", str(model), str(tiny_corpus / "train.jsonl"), "--every", "5"]) == 0
    return tmp_path / "first_pkg", second


def test_rescoring_scores_each_system_s_candidates_over_its_posteriors_divided_by_its_priors(two_systems,
                                                                                              tiny_corpus):
    from asr.rescoring import RescoringOptions, RescoringTranscriber, ctc_log_likelihoods

    systems = [load_model(m, device="cpu") for m in two_systems]
    combined = RescoringTranscriber(systems, RescoringOptions((1.0, 0.5), nbest=4))
    waves = [systems[0].load(json.loads(line)["audio_filepath"])
             for line in (tiny_corpus / "valid.jsonl").read_text().splitlines()[:2]]
    at = combined.candidates_at(waves, (0.0, 0.7))
    assert [(c.texts, c.lm) for c in at[0.0]] == [(c.texts, c.lm) for c in at[0.7]]  # one search, one LM run
    for s, (system, model) in enumerate(zip(systems, two_systems)):
        log_probs, lengths = system.log_probs(waves[:1])
        offsets = 0.7 * torch.tensor(load_log_priors(model, len(system.tokenizer)))
        offsets[system.tokenizer.blank_id] = 0.0  # the blank is left to the blank penalty
        texts = at[0.7][0].texts
        divided = ctc_log_likelihoods((log_probs - offsets)[0, : int(lengths[0])], system.tokenizer, texts)
        assert at[0.7][0].ctc[s] == pytest.approx(divided, rel=1e-5)
        assert at[0.0][0].ctc[s] == pytest.approx(ctc_log_likelihoods(log_probs[0, : int(lengths[0])],
                                                                      system.tokenizer, texts), rel=1e-5)
        assert at[0.7][0].ctc[s] != pytest.approx(at[0.0][0].ctc[s])


def test_tune_rescoring_searches_prior_scales_and_the_file_keeps_the_chosen_one(two_systems, tiny_corpus, tmp_path,
                                                                                capsys):
    from asr.rescoring_files import read_rescoring

    first, second = two_systems
    valid = str(tiny_corpus / "valid.jsonl")
    tune = ["tune-rescoring", valid, "--model", str(first), "--combine", str(second), "--nbest", "4",
            "--decode-workers", "1", "-o", str(tmp_path / "r.yaml")]
    assert main(tune + ["--prior-scales", "0,0.5"]) == 0
    assert "240 settings" in capsys.readouterr().out  # 2 prior scales x 4 weights x 5 LM weights x 6 word scores
    assert main(tune + ["--prior-scales", "0.5"]) == 0
    assert read_rescoring(tmp_path / "r.yaml")[1].prior_scale == 0.5
    assert main(["evaluate", valid, "--rescoring", str(tmp_path / "r.yaml"), "--json"]) == 0
    assert "prior_scale 0.5" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["decoder"]
    assert main(["export", str(tmp_path / "r.yaml"), str(tmp_path / "pkg")]) == 0  # one package: it all travels
    assert read_rescoring(tmp_path / "pkg" / "rescoring.yaml")[1].prior_scale == 0.5
    assert (tmp_path / "pkg" / PRIORS_FILE).is_file() and (tmp_path / "pkg" / "system2" / PRIORS_FILE).is_file()

    (second / PRIORS_FILE).unlink()
    assert main(tune + ["--prior-scales", "0,0.5"]) != 0
    assert f"{second}: none (run `asr priors" in capsys.readouterr().err


def test_an_unreadable_file_is_skipped_and_named_and_the_rest_still_count(model, tiny_corpus, tmp_path, capsys):
    rows = (tiny_corpus / "train.jsonl").read_text().splitlines()[:3]
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio")
    rows.append(json.dumps({"audio_filepath": str(broken), "duration": 1.0, "text": "hello"}))
    (tmp_path / "m.jsonl").write_text("\n".join(rows) + "\n")
    assert main(["priors", str(model), str(tmp_path / "m.jsonl")]) == 0
    captured = capsys.readouterr()
    assert f"skipped {broken}" in captured.err and "3 utterances" in captured.out
    assert (model / PRIORS_FILE).is_file()


def test_a_manifest_with_no_readable_audio_is_a_clear_error_naming_the_first_problem(model, tmp_path, capsys):
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio")
    (tmp_path / "m.jsonl").write_text(json.dumps({"audio_filepath": str(broken), "duration": 1.0, "text": "hi"}) + "\n")
    assert main(["priors", str(model), str(tmp_path / "m.jsonl")]) == 2
    assert f"no readable utterances to estimate token priors from: 1 of 1 unreadable (first: {broken}:" \
        in capsys.readouterr().err
    assert not (model / PRIORS_FILE).exists()


def with_silent_files(rows: list[str], tmp_path, count: int) -> str:
    """A manifest of ``rows`` and then ``count`` one-second files of digital silence."""
    for i in range(count):
        sf.write(tmp_path / f"quiet{i}.wav", np.zeros(16000, dtype=np.float32), 16000)
        rows = rows + [json.dumps({"audio_filepath": str(tmp_path / f"quiet{i}.wav"), "duration": 1.0,
                                   "text": "hello"})]
    (tmp_path / "m.jsonl").write_text("\n".join(rows) + "\n")
    return str(tmp_path / "m.jsonl")


def test_silent_files_are_left_out_of_the_priors_and_counted_in_a_warning(model, tiny_corpus, tmp_path, capsys):
    manifest = with_silent_files((tiny_corpus / "train.jsonl").read_text().splitlines()[:3], tmp_path, 2)
    assert main(["priors", str(model), manifest]) == 0
    assert ("token priors: 2 of 5 utterances are silent (no sound, or steady noise alone: no speech for the model "
            "to run on): left out") in capsys.readouterr().err


def test_the_summary_counts_only_the_utterances_whose_frames_were_used(model, tiny_corpus, tmp_path, capsys):
    manifest = with_silent_files((tiny_corpus / "train.jsonl").read_text().splitlines()[:3], tmp_path, 2)
    assert main(["priors", str(model), manifest]) == 0
    assert "frames of 3 utterances;" in capsys.readouterr().out  # not of 5: the silent two gave none


def test_a_manifest_of_silent_files_only_is_an_error_naming_the_manifest(model, tmp_path, capsys):
    manifest = with_silent_files([], tmp_path, 2)
    assert main(["priors", str(model), manifest]) == 2
    assert (f"{manifest}: no speech to estimate token priors from: 2 of 2 utterances are silent or steady noise "
            "alone") in capsys.readouterr().err
    assert not (model / PRIORS_FILE).exists()


def test_asr_priors_on_a_package_that_rescores_says_which_of_its_systems_kept_their_old_priors(model, tiny_corpus,
                                                                                                capsys):
    # The package's first system is the model directory itself; its other systems have priors of their own,
    # which rescoring at the package's prior_scale divides out too: left as they were, they must be named.
    shutil.copytree(model, model / "system2", ignore=shutil.ignore_patterns("system2"))
    (model / "rescoring.yaml").write_text("models: [., system2]\nweights: [1.0, 0.5]\nlm_weight: 0.0\n"
                                          "word_score: 0.0\nprior_scale: 0.3\n")
    assert main(["priors", str(model), str(tiny_corpus / "train.jsonl"), "--every", "5"]) == 0
    assert (model / PRIORS_FILE).is_file() and not (model / "system2" / PRIORS_FILE).exists()
    err = capsys.readouterr().err
    assert f"{model} rescores with 2 systems: only its first" in err
    assert f"asr priors {model / 'system2'} " in err


def test_a_priors_file_of_another_model_blocks_no_search_at_prior_scale_0_and_is_named_at_any_other(model):
    from asr.decoding_config import log_priors_for

    (model / PRIORS_FILE).write_text(json.dumps({"priors": [0.1] * 10}))  # estimated for another model
    assert log_priors_for(model, 29, [0.0]) is None
    with pytest.raises(LMError, match=f"{PRIORS_FILE}: 10 priors for a model with 29 tokens"):
        log_priors_for(model, 29, [0.0, 0.3])


def test_a_stale_priors_file_of_one_system_blocks_no_rescoring_at_prior_scale_0_and_is_named_at_any_other(
        two_systems, tiny_corpus):
    # as beam search takes it (log_priors_for): a file that is not needed blocks nothing
    from asr.rescoring import RescoringError, RescoringOptions, RescoringTranscriber

    first, second = two_systems
    (second / PRIORS_FILE).write_text(json.dumps({"priors": [0.1] * 10}))  # estimated for another model
    systems = [load_model(m, device="cpu") for m in two_systems]
    combined = RescoringTranscriber(systems, RescoringOptions((1.0, 0.5), nbest=2))
    wave = systems[0].load(json.loads((tiny_corpus / "valid.jsonl").read_text().splitlines()[0])["audio_filepath"])
    assert len(combined.candidates_at([wave], (0.0,))[0.0]) == 1
    with pytest.raises(RescoringError, match=f"{second / PRIORS_FILE}: 10 priors for a model with"):
        combined.candidates_at([wave], (0.0, 0.3))
    with pytest.raises(RescoringError, match=f"{second / PRIORS_FILE}: 10 priors"):
        RescoringTranscriber(systems, RescoringOptions((1.0, 0.5), nbest=2, prior_scale=0.3))
