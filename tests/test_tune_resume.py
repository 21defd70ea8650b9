"""A tuning grid cut short goes on where it stopped: the points it searched are kept in the model's
folder as they are searched, a run on the same inputs searches only the rest and chooses as an
uncut run does, and a run on other inputs (another LM, another model) starts again."""

import os
import signal

import pytest

from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
from asr.cli import main
from asr.data import Utterance, read_manifest
from asr.transcribe import load_model
from asr.tune_progress import GridProgress
from asr.tuning import tune

WEIGHTS = (0.0, 0.5, 1.0)


class Cut(Exception):
    """What a job killed at its time limit is, to the grid: it stops after some point."""


@pytest.fixture
def lm(tiny_corpus, tmp_path):
    path = tmp_path / "lm.arpa"
    assert main(["lm", "build", str(tiny_corpus / "train.jsonl"), "-o", str(path), "--order", "2"]) == 0
    return path


@pytest.fixture
def setup(tiny_model_dir, tiny_corpus, lm):
    transcriber = load_model(tiny_model_dir, decoder="greedy", device="cpu")
    decoder = BeamSearchDecoder(transcriber.tokenizer, lm=str(lm), options=BeamSearchOptions(beam_size=4))
    return transcriber, decoder, read_manifest(tiny_corpus / "valid.jsonl")[:4], lm


def searched_weights(monkeypatch) -> list[float]:
    """The LM weight of every point that is searched (not read back), in order."""
    seen, with_options = [], BeamSearchDecoder.with_options

    def recording(self, workers=None, **changes):
        seen.append(changes["lm_weight"])
        return with_options(self, workers, **changes)

    monkeypatch.setattr(BeamSearchDecoder, "with_options", recording)
    return seen


def cut_after(points: int):
    """A progress callback that stops the grid once ``points`` points were told."""
    told = []

    def progress(point):
        told.append(point)
        if len(told) == points:
            raise Cut

    return progress


def run(setup, folder, weights=WEIGHTS, **kwargs):
    transcriber, decoder, utterances, lm = setup
    return tune(transcriber, decoder, utterances, lm_weights=weights, word_scores=(0.0,), keep_in=folder,
                files=[lm], say=kwargs.pop("say", lambda message: None), **kwargs)


def test_a_cut_grid_searches_only_the_points_it_had_not_and_chooses_as_an_uncut_one(setup, tmp_path, monkeypatch):
    uncut = run(setup, None)
    with pytest.raises(Cut):
        run(setup, tmp_path, progress=cut_after(2))
    [kept] = tmp_path.glob("tune-progress-*.jsonl")
    assert len(kept.read_text().splitlines()) == 2
    seen, told = searched_weights(monkeypatch), []
    resumed = run(setup, tmp_path, say=told.append)
    assert seen == [1.0]
    assert told == [f"resuming: 2 of 3 grid points were searched before, kept in {kept} (delete it to search "
                    "them again)"]
    assert resumed.grid == uncut.grid and (resumed.lm_weight, resumed.wer) == (uncut.lm_weight, uncut.wer)
    assert not list(tmp_path.glob("tune-progress-*"))  # done: nothing left in the model's folder


def test_a_grid_given_more_values_after_a_cut_searches_only_the_new_ones(setup, tmp_path, monkeypatch):
    with pytest.raises(Cut):
        run(setup, tmp_path, weights=(0.0, 0.5), progress=cut_after(2))  # cut as its last point was told
    seen = searched_weights(monkeypatch)
    grown = run(setup, tmp_path, weights=(0.0, 0.5, 1.0, 1.5))
    assert seen == [1.0, 1.5] and len(grown.grid) == 4


@pytest.mark.parametrize("change", ["another LM file", "the LM rewritten", "another beam", "other audio"])
def test_points_searched_with_other_inputs_are_not_taken(setup, tmp_path, monkeypatch, change):
    transcriber, decoder, utterances, lm = setup
    with pytest.raises(Cut):
        run(setup, tmp_path, progress=cut_after(2))
    if change == "another LM file":
        other = tmp_path / "other.arpa"
        other.write_bytes(lm.read_bytes())
        setup = transcriber, decoder, utterances, other
    elif change == "the LM rewritten":
        os.utime(lm, ns=(lm.stat().st_atime_ns, lm.stat().st_mtime_ns + 10**9))
    elif change == "another beam":
        setup = transcriber, decoder.with_options(beam_size=5), utterances, lm
    else:
        setup = transcriber, decoder, utterances[1:], lm
    [kept] = tmp_path.glob("tune-progress-*.jsonl")
    seen, told = searched_weights(monkeypatch), []
    run(setup, tmp_path, say=told.append)
    assert seen == list(WEIGHTS)
    assert told == [f"note: {kept} holds grid points searched with other inputs (model outputs, references, LM or "
                    "lexicon file, search settings): not taken; delete it unless a run on those is to resume"]
    assert list(tmp_path.glob("tune-progress-*.jsonl")) == [kept]  # the other run's, left for it to resume


def test_a_line_cut_as_it_was_written_is_dropped_and_the_points_before_it_kept(setup, tmp_path, monkeypatch):
    with pytest.raises(Cut):
        run(setup, tmp_path, progress=cut_after(2))
    kept = next(tmp_path.glob("tune-progress-*.jsonl"))
    lines = kept.read_text().splitlines()
    kept.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # killed inside the second point's line
    seen = searched_weights(monkeypatch)
    with pytest.raises(Cut):
        run(setup, tmp_path, progress=cut_after(2))  # the second point searched again, and kept whole
    assert seen == [0.5]
    assert [line[:30] for line in kept.read_text().splitlines()] == [line[:30] for line in lines]


def test_a_kept_file_that_is_not_json_lines_is_searched_over_not_refused(setup, tmp_path, monkeypatch):
    with pytest.raises(Cut):
        run(setup, tmp_path, progress=cut_after(1))
    [kept] = tmp_path.glob("tune-progress-*.jsonl")
    kept.write_bytes(b"\xff\xfe garbage\n[1, 2]\n")
    seen = searched_weights(monkeypatch)
    assert len(run(setup, tmp_path).grid) == 3 and seen == list(WEIGHTS) and not kept.exists()


def test_an_utterance_dropped_before_the_cut_stays_dropped_after_it(tiny_model_dir, tmp_path, monkeypatch):
    from asr.search_workers import SearchWorkerDied
    from conftest import write_sine
    from tests.test_transcribe import HOP, RATE, speller
    from tests.test_tuning_tools import searches_that_kill_their_worker_at

    t = speller(tiny_model_dir)  # spells "hohoho..." over loud frames
    paths = [str(write_sine(tmp_path / f"{n}.wav", seconds=s)) for n, s in zip("ab", (1.0, 3.0))]
    utterances = [Utterance(paths[0], 1.0, t.transcribe(paths[0]).text), Utterance(paths[1], 3.0, "x")]
    decoder = BeamSearchDecoder(t.tokenizer, options=BeamSearchOptions(beam_size=4), workers=2)
    model = tmp_path / "model"
    model.mkdir()
    with monkeypatch.context() as m:
        searches_that_kill_their_worker_at(m, lm_weight=0.0, longer_than=int(2.0 * RATE / HOP))  # b's, 1st point
        with pytest.raises(Cut):
            tune(t, decoder, utterances, lm_weights=WEIGHTS, word_scores=(0.0,), keep_in=model, say=lambda _: None,
                 progress=cut_after(1))
    told = []  # b's search no longer kills its worker: it was dropped, so its points are scored without it
    result = tune(t, decoder, utterances, lm_weights=WEIGHTS, word_scores=(0.0,), keep_in=model, say=told.append)
    assert told[1:] == [f"dropped {paths[1]}: its beam search killed its worker process; the grid is scored without it"]
    assert result.skipped == [(paths[1], SearchWorkerDied.problem)] and result.utterances == 1
    assert [point[4] for point in result.grid] == [0.0, 0.0, 0.0]


def test_each_point_is_told_with_its_place_in_the_grid_and_the_time_the_points_left_to_search_will_take(
        setup, tmp_path):
    told = []
    run(setup, tmp_path, progress=told.append)
    assert [(p.lm_weight, p.number, p.points) for p in told] == [(0.0, 1, 3), (0.5, 2, 3), (1.0, 3, 3)]
    assert told[0].seconds_left > 0 and told[-1].seconds_left == 0
    with pytest.raises(Cut):
        run(setup, tmp_path, progress=cut_after(2))
    told = []
    run(setup, tmp_path, progress=told.append)  # the two kept points take no time: nothing to estimate from
    assert [(p.number, p.seconds_left) for p in told] == [(1, None), (2, None), (3, 0.0)]


def test_lm_tune_says_where_the_grid_is_and_how_long_the_rest_will_take():
    from asr.lm_commands import _point_line
    from asr.tuning import PointScore

    assert _point_line(PointScore(1.5, -1.0, 0.0, 0.0, 0.523, 12, 840, 1212.0)) == \
        "[12/840, ~20 min left] lm_weight 1.5 word_score -1 blank_penalty 0: WER 52.30%"
    assert _point_line(PointScore(1.0, 0.0, 2.0, 0.3, 0.5, 2, 3, 40.2)) == \
        "[2/3, ~40 s left] lm_weight 1 word_score 0 blank_penalty 2 prior_scale 0.3: WER 50.00%"
    assert _point_line(PointScore(1.0, 0.0, 0.0, 0.0, 0.5, 1, 3, None)).startswith("[1/3] ")  # read back: no estimate
    assert _point_line(PointScore(1.0, 0.0, 0.0, 0.0, 0.5, 3, 3, 0.0)).startswith("[3/3] ")


def test_lm_tune_leaves_nothing_behind_in_the_model_and_a_dry_run_keeps_nothing(tiny_model_dir, tiny_corpus, lm,
                                                                                 tmp_path, monkeypatch, capsys):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    args = ["lm", "tune", str(tiny_corpus / "valid.jsonl"), "--model", str(model), "--lm", str(lm),
            "--lm-weights", "0.5,1", "--word-scores", "0", "--beam-size", "4", "--decode-workers", "1"]
    before = sorted(p.name for p in model.iterdir())
    assert main(args) == 0
    assert capsys.readouterr().err.splitlines()[-1].startswith("asr: [2/2] lm_weight 1 word_score 0 blank_penalty 0: WER ")
    assert sorted(p.name for p in model.iterdir()) == sorted(before + ["decoding.yaml"])
    added = []
    monkeypatch.setattr(GridProgress, "add", lambda self, *a: added.append(a))
    assert main(args + ["--dry-run"]) == 0 and added == []


def test_a_kill_leaves_the_points_searched_so_far_for_the_next_run(setup, tiny_model_dir, tiny_corpus, tmp_path):
    """A SIGKILL (no exception, no clean-up: the OOM killer, a batch system) loses only the point
    being searched: each is written out as it is done, not when the run ends."""
    import subprocess
    import sys

    _, _, _, lm = setup
    script = f"""
import os, signal
from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
from asr.data import read_manifest
from asr.transcribe import load_model
from asr.tuning import tune
t = load_model({str(tiny_model_dir)!r}, decoder="greedy", device="cpu")
decoder = BeamSearchDecoder(t.tokenizer, lm={str(lm)!r}, options=BeamSearchOptions(beam_size=4))
tune(t, decoder, read_manifest({str(tiny_corpus / "valid.jsonl")!r})[:4], lm_weights={WEIGHTS!r}, word_scores=(0.0,),
     keep_in={str(tmp_path)!r}, files=[{str(lm)!r}],
     progress=lambda point: point.lm_weight == 0.5 and os.kill(os.getpid(), signal.SIGKILL))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    kept = next(tmp_path.glob("tune-progress-*.jsonl"))
    assert len(kept.read_text().splitlines()) == 2
    resumed = run(setup, tmp_path)  # and this process's key is the killed one's: it resumes
    assert len(resumed.grid) == 3 and not kept.exists()
