"""The tuning and comparison tools met as a user meets them: odd grids, manifests with nothing to
tune on, hand-edited rescoring files and reports that do not match refuse clearly, and never
leave settings that were chosen from nothing."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import yaml

from asr.cli import main
from asr.compare import compare_reports, render_comparison
from asr.decoding_config import DECODING_FILE, PRIORS_FILE
from asr.evaluate import UtteranceResult
from asr.report import ReportError, build_report, write_report
from asr.rescoring import RescoringError
from asr.rescoring_files import read_rescoring


@pytest.fixture
def model(tiny_model_dir, tmp_path):
    shutil.copytree(tiny_model_dir, tmp_path / "model")
    return tmp_path / "model"


@pytest.fixture
def tune_args(model, tiny_corpus, tmp_path):
    lm = tmp_path / "lm.arpa"
    assert main(["lm", "build", str(tiny_corpus / "train.jsonl"), "-o", str(lm), "--order", "2"]) == 0
    return ["--model", str(model), "--lm", str(lm), "--lm-weights", "0.5", "--word-scores", "0", "--beam-size", "4",
            "--decode-workers", "1"]


@pytest.fixture
def silent_manifest(tmp_path):
    sf.write(str(tmp_path / "silence.wav"), np.zeros(16000, dtype=np.float32), 16000)
    rows = [{"audio_filepath": str(tmp_path / "silence.wav"), "duration": 1.0, "text": f"words {i}"} for i in range(2)]
    (tmp_path / "silent.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path / "silent.jsonl"


def test_lm_tune_refuses_a_nan_beam_threshold_naming_the_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["lm", "tune", "dev.jsonl", "--model", "m", "--lm", "lm.arpa", "--beam-threshold", "nan"])
    assert exit_.value.code == 2 and "argument --beam-threshold" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "transcribe"])
def test_evaluate_and_transcribe_refuse_a_nan_beam_threshold_naming_the_option(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "x", "--beam-threshold", "nan"])
    assert exit_.value.code == 2 and "argument --beam-threshold" in capsys.readouterr().err


@pytest.mark.parametrize("option, grid, why", [
    ("--lm-weights", "0,-0.5,1", "the LM would favour unlikely words), got -0.5"),
    ("--prior-scales", "-0.3,0.3", "the posteriors would be multiplied by the priors, not divided), got -0.3")])
def test_lm_tune_refuses_a_negative_lm_weight_or_prior_scale_as_it_reads_its_arguments(option, grid, why,
                                                                                      monkeypatch, capsys):
    from asr import cli_lm

    monkeypatch.setattr(cli_lm, "cmd_lm_tune", lambda args: pytest.fail("the command ran: the model would load"))
    with pytest.raises(SystemExit) as exit_:
        main(["lm", "tune", "dev.jsonl", "--model", "m", "--lm", "lm.arpa", f"{option}={grid}"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"asr lm tune: error: argument {option}: must each be at least 0 (below, {why}")


def test_lm_tune_searches_negative_word_scores_and_blank_penalties(tune_args, tiny_corpus, capsys):
    # a word score below 0 charges each word, a blank penalty below 0 favours blank: both have their uses
    assert main(["lm", "tune", str(tiny_corpus / "valid.jsonl"), *tune_args, "--word-scores=-1",
                 "--blank-penalties=-0.5", "--dry-run"]) == 0
    assert "lm_weight 0.5 word_score -1 blank_penalty -0.5: WER" in capsys.readouterr().err


def test_a_decoding_yaml_that_is_not_yaml_is_refused_in_one_line_naming_file_line_and_column(model):
    from asr.decoding_config import read_decoding_defaults
    from asr.lm import LMError

    (model / DECODING_FILE).write_text("lm_weight: [2.5\nword_score: 1\n")
    with pytest.raises(LMError) as error:
        read_decoding_defaults(model)
    assert str(error.value) == (f"{model / DECODING_FILE}:2:11: expected ',' or ']', but got ':' "
                                "(while parsing a flow sequence at 1:12)")


def test_a_decoding_yaml_that_is_not_utf8_is_refused_in_one_line_naming_the_file(tmp_path):
    from asr.decoding_config import read_decoding_defaults
    from asr.lm import LMError
    from asr.user_errors import user_error_types

    (tmp_path / DECODING_FILE).write_bytes("lm_weight: 2.5  # café\n".encode("latin-1"))
    with pytest.raises(LMError) as error:
        read_decoding_defaults(tmp_path)
    assert str(error.value) == f"{tmp_path / DECODING_FILE}: not valid YAML: not UTF-8 text (byte 0xe9 at position 21)"
    assert isinstance(error.value, user_error_types())  # the CLI says it as is


def test_a_key_given_twice_in_decoding_yaml_is_refused_at_its_line_as_in_configs(tmp_path):
    from asr.decoding_config import read_decoding_defaults
    from asr.lm import LMError

    (tmp_path / DECODING_FILE).write_text("lm_weight: 2.5\nword_score: 1.0\nlm_weight: 0.5\n", encoding="utf-8")
    with pytest.raises(LMError) as error:
        read_decoding_defaults(tmp_path)
    assert str(error.value) == f"{tmp_path / DECODING_FILE}:3:1: the key 'lm_weight' is given twice (first on line 1)"


def test_decoding_yaml_keeps_its_numbers_typed_and_a_merge_key_still_merges(tmp_path):
    from asr.decoding_config import read_decoding_defaults

    (tmp_path / DECODING_FILE).write_text("base: &b {lm_weight: 2.5}\ntuned:\n  <<: *b\n  lm_weight: 1.5\n  wer: 0.3\n",
                                          encoding="utf-8")
    assert read_decoding_defaults(tmp_path)["tuned"] == {"lm_weight": 1.5, "wer": 0.3}


def test_lm_tune_searches_a_value_given_twice_once(tune_args, tiny_corpus, capsys):
    assert main(["lm", "tune", str(tiny_corpus / "valid.jsonl"), *tune_args, "--lm-weights", "0.5,0.5,1",
                 "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert err.count("lm_weight 0.5 word_score 0") == 1 and err.count("lm_weight 1 word_score 0") == 1


def test_lm_tune_on_silent_audio_alone_is_refused_and_keeps_the_stored_settings(model, tune_args, silent_manifest,
                                                                                  capsys):
    (model / DECODING_FILE).write_text("lm_weight: 2.5\nword_score: 1.0\n")
    assert main(["lm", "tune", str(silent_manifest), *tune_args]) == 2
    assert "no speech to tune on: all 2 readable utterances are silent or steady noise alone" in capsys.readouterr().err
    assert (model / DECODING_FILE).read_text() == "lm_weight: 2.5\nword_score: 1.0\n"


@pytest.mark.parametrize("command", [["lm", "tune", "{manifest}", "--model", "{model}", "--lm", "{model}/lm.arpa"],
                                     ["priors", "{model}", "{manifest}"],
                                     ["tune-rescoring", "{manifest}", "--model", "{model}", "--combine", "{model}",
                                      "-o", "{manifest}.yaml"]])
def test_an_empty_manifest_is_named_before_the_model_loads(command, tmp_path, capsys):
    (tmp_path / "empty.jsonl").write_text("\n")
    argv = [a.format(manifest=tmp_path / "empty.jsonl", model=tmp_path / "no_model") for a in command]
    assert main(argv) == 2  # the model directory does not exist: the manifest is refused first
    assert f"{tmp_path / 'empty.jsonl'}: no utterances to" in capsys.readouterr().err


def test_priors_from_silent_audio_alone_say_silent_not_unreadable_and_write_nothing(model, silent_manifest, capsys):
    assert main(["priors", str(model), str(silent_manifest)]) == 2
    assert ("no speech to estimate token priors from: 2 of 2 utterances are silent or steady noise alone"
            in capsys.readouterr().err)
    assert not (model / PRIORS_FILE).exists()


GOOD = {"models": ["a", "b"], "weights": [1.0, 0.5], "lm_weight": 2.0, "word_score": -1.0, "nbest": 8}


@pytest.mark.parametrize("edit, message", [
    ({"nbest": 0}, "nbest must be a whole number of at least 1, got 0"),
    ({"nbest": -3}, "nbest must be a whole number of at least 1, got -3"),
    ({"nbest": 2.7}, "nbest must be a whole number of at least 1, got 2.7"),
    ({"nbest": True}, "nbest must be a whole number of at least 1, got True"),
    ({"weights": [1.0, float("nan")]}, "weights[1] must be a finite number, got nan"),
    ({"lm_weight": float("inf")}, "lm_weight must be a finite number, got inf"),
    ({"weights": [1.0, -0.5]}, "weights, lm_weight and prior_scale must be at least 0, got -0.5"),
    ({"prior_scale": -0.3}, "weights, lm_weight and prior_scale must be at least 0, got -0.3"),
    ({"lm_weight": -2.0}, "weights, lm_weight and prior_scale must be at least 0, got -2"),
    ({"rnnlm": "rnn", "rnnlm_lambda": 1.5}, "rnnlm_lambda is the RNN LM's share: between 0 and 1, got 1.5"),
])
def test_a_hand_edited_rescoring_file_with_a_bad_value_is_refused_naming_file_and_value(edit, message, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **edit}))
    with pytest.raises(RescoringError) as e:
        read_rescoring(path)
    assert str(e.value) == f"{path}: {message}"


def test_a_rescoring_file_s_whole_float_nbest_is_read_as_an_integer(tmp_path):
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({**GOOD, "nbest": 8.0}))
    assert read_rescoring(tmp_path / "r.yaml")[1].nbest == 8


def test_an_infinite_nbest_is_refused_naming_the_file_not_a_traceback(tmp_path):
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({**GOOD, "nbest": float("inf")}))
    with pytest.raises(RescoringError, match=r"r\.yaml: "):
        read_rescoring(tmp_path / "r.yaml")


def _report(directory, pairs):
    write_report(build_report([UtteranceResult(i, f"{i}.wav", ref, hyp, "s") for i, ref, hyp in pairs]), directory)
    return directory


def test_compare_says_a_report_is_empty_rather_than_that_ids_do_not_match(tmp_path):
    a = _report(tmp_path / "a", [("u1", "one two", "one two")])
    empty = _report(tmp_path / "empty", [])
    with pytest.raises(ReportError, match=f"^{empty}: the report has no utterances, so nothing to compare$"):
        compare_reports(a, empty)


def test_compare_with_different_references_gives_no_interval_that_contradicts_its_table(tmp_path):
    a = _report(tmp_path / "a", [("u1", "one two three four", "one two three four"), ("u2", "five", "five")])
    b = _report(tmp_path / "b", [("u1", "one two three four five six", "one two three four"), ("u2", "five", "five")])
    text = render_comparison(compare_reports(a, b))
    assert "warning: 1 utterance(s) have different references in A and B" in text
    assert "WER B - A: not tested for significance, as the references differ" in text
    assert "paired bootstrap" not in text


def test_compare_of_a_report_with_itself_shows_no_change(tmp_path):
    a = _report(tmp_path / "a", [("u1", "one two", "one too"), ("u2", "three", "three")])
    text = render_comparison(compare_reports(a, a))
    assert "WER B - A: +0.00 points" in text and "better in B: 0, worse in B: 0, unchanged: 2" in text


def searches_that_kill_their_worker_at(monkeypatch, lm_weight: float, longer_than: int) -> None:
    """From now on a beam search of more than ``longer_than`` frames at ``lm_weight`` kills its worker
    process, as the out-of-memory killer would: an utterance that searched at the points before dies later."""
    import os
    import signal

    from asr.beam_search import BeamSearchDecoder

    parent, search = os.getpid(), BeamSearchDecoder._search_one

    def dying(self, emissions):
        if emissions.shape[0] > longer_than and self.options.lm_weight == lm_weight and os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return search(self, emissions)

    monkeypatch.setattr(BeamSearchDecoder, "_search_one", dying)  # the workers fork with it


def test_an_utterance_dropped_at_a_later_grid_point_is_named_once_and_the_points_before_are_given_again_without_it(
        tiny_model_dir, tmp_path, monkeypatch):
    from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
    from asr.data import Utterance
    from asr.search_workers import SearchWorkerDied
    from asr.tuning import tune
    from conftest import write_sine
    from tests.test_transcribe import HOP, RATE, speller

    t = speller(tiny_model_dir)  # spells "hohoho..." over loud frames
    paths = [str(write_sine(tmp_path / f"{n}.wav", seconds=s)) for n, s in zip("abc", (1.0, 1.0, 3.0))]
    texts = [t.transcribe(p).text for p in paths[:2]] + ["not what it says"]  # only c's would count errors
    searches_that_kill_their_worker_at(monkeypatch, lm_weight=0.5, longer_than=int(2.0 * RATE / HOP))  # c's, 2nd point
    decoder = BeamSearchDecoder(t.tokenizer, options=BeamSearchOptions(beam_size=4), workers=2)
    told = []
    result = tune(t, decoder, [Utterance(p, s, x) for p, s, x in zip(paths, (1.0, 1.0, 3.0), texts)],
                  lm_weights=(0.0, 0.5), word_scores=(0.0,), say=told.append,
                  progress=lambda point: told.append((point.lm_weight, point.wer)))
    assert told[0][0] == 0.0 and told[0][1] > 0  # c's errors counted: it had not died yet
    assert told[1:] == [f"dropped {paths[2]}: its beam search killed its worker process; the grid is scored without "
                        "it (the points before are given again)", (0.0, 0.0), (0.5, 0.0)]
    assert {(point[0], point[4]) for point in result.grid} == {(0.0, 0.0), (0.5, 0.0)}  # as last told
    assert result.skipped == [(paths[2], SearchWorkerDied.problem)] and result.utterances == 2


def test_an_utterance_dropped_at_the_first_grid_point_is_named_once_and_nothing_is_given_again(
        tiny_model_dir, tmp_path, monkeypatch):
    from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
    from asr.data import Utterance
    from asr.tuning import tune
    from conftest import write_sine
    from tests.test_transcribe import HOP, RATE, speller

    t = speller(tiny_model_dir)
    paths = [str(write_sine(tmp_path / f"{n}.wav", seconds=s)) for n, s in zip("ab", (1.0, 3.0))]
    searches_that_kill_their_worker_at(monkeypatch, lm_weight=0.0, longer_than=int(2.0 * RATE / HOP))  # b's, 1st
    decoder = BeamSearchDecoder(t.tokenizer, options=BeamSearchOptions(beam_size=4), workers=2)
    told = []
    tune(t, decoder, [Utterance(paths[0], 1.0, t.transcribe(paths[0]).text), Utterance(paths[1], 3.0, "x")],
         lm_weights=(0.0, 0.5), word_scores=(0.0,), say=told.append,
         progress=lambda point: told.append((point.lm_weight, point.wer)))
    assert told == [f"dropped {paths[1]}: its beam search killed its worker process; the grid is scored without it",
                    (0.0, 0.0), (0.5, 0.0)]
