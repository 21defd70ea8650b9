"""The beam-search worker processes end with their parent, however it ends."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")


def alive(pid: int) -> bool:
    """Running, not a zombie that nobody reaped yet (a container's pid 1 may never reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


@linux_only
def test_search_workers_end_when_their_parent_is_killed_outright(tmp_path):
    # SIGKILL (the OOM killer, a batch system after its grace period) leaves no time to stop
    # them: they waited for work forever, orphaned, each holding its copy of the LM.
    script = """
import os, signal, sys, torch
from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
from asr.text import CharTokenizer
from conftest import ctc_log_probs, spelled_frames
tokenizer = CharTokenizer.build(["the cat sat"])
decoder = BeamSearchDecoder(tokenizer, options=BeamSearchOptions(beam_size=8), workers=2)
lp = ctc_log_probs(tokenizer, spelled_frames("the cat"))
decoder.decode(torch.cat([lp[0]] * 2), torch.cat([lp[1]] * 2))
with open(sys.argv[1], "w") as f:
    f.write(" ".join(str(pid) for pid in decoder._pool._processes))
os.kill(os.getpid(), signal.SIGKILL)
"""
    pids_file = tmp_path / "pids"
    # (no pipes: a surviving worker would hold them open, and run() would wait for it)
    subprocess.run([sys.executable, "-c", script, str(pids_file)], cwd=REPO_ROOT / "tests", timeout=120,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = [int(pid) for pid in pids_file.read_text().split()]
    assert len(workers) == 2
    try:
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in workers)
    finally:
        for pid in workers:  # left by a failing run: not to outlive the test
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def searches_that_kill_their_worker(monkeypatch, longer_than: int, once: Path | None = None, times: int | None = None,
                                    marker: Path | None = None, after: float = 0.0, only=None) -> list[int]:
    """From now on a beam search of more than ``longer_than`` frames kills its process, as the
    out-of-memory killer would (SIGKILL); with ``once`` (a file it leaves), only the first such
    search does; with ``times`` and ``marker`` (files it leaves beside it), only the first ``times``.
    ``after``: each dies that many seconds into its search (one that ran a while); ``only``: a
    decoder, whose searches alone die. Returns the lengths of such searches run in this process,
    which must stay empty: one here would have killed the whole run."""
    from asr.beam_search import BeamSearchDecoder

    parent, in_parent, search = os.getpid(), [], BeamSearchDecoder._search_one
    if once is not None:
        times, marker = 1, once

    def dying(self, emissions):
        if emissions.shape[0] > longer_than and (only is None or self is only):  # (forked: the same address)
            if os.getpid() == parent:
                in_parent.append(emissions.shape[0])
            elif times is None or _within(marker, times):
                time.sleep(after)
                os.kill(os.getpid(), signal.SIGKILL)
        return search(self, emissions)

    monkeypatch.setattr(BeamSearchDecoder, "_search_one", dying)  # the workers fork with it
    return in_parent


def _within(marker: Path, times: int) -> bool:
    """Whether this is one of the first ``times`` calls (across processes: files ``marker``.0, .1, ...)."""
    for k in range(times):
        try:
            os.close(os.open(f"{marker}.{k}" if times > 1 else marker, os.O_CREAT | os.O_EXCL))
            return True
        except FileExistsError:
            continue
    return False


def spelled_batch(tokenizer, texts):
    import torch

    from conftest import ctc_log_probs, spelled_frames

    rows = [ctc_log_probs(tokenizer, spelled_frames(t))[0][0] for t in texts]
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True), torch.tensor([len(r) for r in rows])


@pytest.fixture
def decoder():
    from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
    from asr.text import CharTokenizer

    decoder = BeamSearchDecoder(CharTokenizer.build(["the cat sat on a mat"]), options=BeamSearchOptions(beam_size=8),
                                workers=2)
    yield decoder
    decoder.close()


def test_a_batch_whose_search_worker_is_killed_once_is_searched_again_in_fresh_processes(decoder, monkeypatch,
                                                                                       tmp_path):
    texts = ["the cat sat on a mat", "a cat", "the mat", "a cat sat"]
    in_parent = searches_that_kill_their_worker(monkeypatch, longer_than=20, once=tmp_path / "killed")
    assert [h.text for h in decoder.decode(*spelled_batch(decoder.tokenizer, texts))] == texts
    assert (tmp_path / "killed").exists() and in_parent == []  # a worker died; the parent searched nothing


def test_after_a_batch_kills_its_search_worker_twice_only_the_utterances_that_kill_one_alone_fail(decoder, monkeypatch):
    from asr.lm import LMError
    from asr.search_workers import SearchWorkerDied

    texts = ["a cat", "the cat sat on a mat", "the mat", "a mat on the cat sat"]
    in_parent = searches_that_kill_their_worker(monkeypatch, longer_than=20)  # the 2nd and the 4th
    with pytest.raises(SearchWorkerDied, match=r"^a beam search worker process died searching 2 utterances of one "
                                               r"batch alone, after twice on the whole batch \(out of memory\?\); "
                                               r"run again with fewer --decode-workers, or 1$") as died:
        decoder.decode(*spelled_batch(decoder.tokenizer, texts))
    assert died.value.failed == [1, 3]
    assert [None if h is None else h.text for h in died.value.results] == ["a cat", None, "the mat", None]
    assert issubclass(SearchWorkerDied, LMError)  # as the CLI reports asr's errors: one line
    assert [h.text for h in decoder.decode(*spelled_batch(decoder.tokenizer, ["a cat", "the mat"]))] == ["a cat",
                                                                                                         "the mat"]
    assert in_parent == []


def test_a_batch_searched_again_after_a_worker_death_counts_once_and_the_broken_off_try_s_wall_time_as_lost(
        decoder, monkeypatch, tmp_path):
    texts = ["the cat sat on a mat", "a cat"]
    decoder.decode(*spelled_batch(decoder.tokenizer, texts))
    assert (decoder.lost_seconds, decoder.retried_batches) == (0.0, 0)  # nothing died: nothing lost
    decoder.close()  # (its workers were forked with the search that does not die)
    searches_that_kill_their_worker(monkeypatch, longer_than=20, once=tmp_path / "killed", after=0.5)
    assert [h.text for h in decoder.decode(*spelled_batch(decoder.tokenizer, texts))] == texts
    assert decoder.retried_batches == 1 and decoder.lost_seconds >= 0.5
    lost = decoder.lost_seconds
    decoder.decode(*spelled_batch(decoder.tokenizer, texts))  # (the marker is left: no worker dies)
    assert (decoder.lost_seconds, decoder.retried_batches) == (lost, 1)


def test_every_try_a_killed_worker_broke_off_counts_as_lost_those_of_one_utterance_alone_too(decoder, monkeypatch):
    from asr.search_workers import SearchWorkerDied

    searches_that_kill_their_worker(monkeypatch, longer_than=20, after=0.5)  # the 2nd and 4th
    with pytest.raises(SearchWorkerDied):  # 4 deaths: 2 with the batch, then each of them alone
        decoder.decode(*spelled_batch(decoder.tokenizer, ["a cat", "the cat sat on a mat", "the mat",
                                                          "a mat on the cat sat"]))
    assert decoder.retried_batches == 1  # one batch, however often it died
    assert decoder.lost_seconds >= 4 * 0.5


def test_passing_on_converts_the_results_and_a_worker_death_is_raised_again_carrying_the_survivors_converted():
    from asr.search_workers import SearchWorkerDied, passing_on

    def raising(error):
        def call(*args):
            raise error
        return call

    doubled = lambda results: [None if r is None else 2 * r for r in results]  # noqa: E731
    assert passing_on(doubled, lambda *items: list(items), 1, 2) == [2, 4]
    with pytest.raises(SearchWorkerDied) as died:
        passing_on(doubled, raising(SearchWorkerDied(failed=[1], results=[1, None, 3])))
    assert died.value.failed == [1] and died.value.results == [2, None, 6]
    file_failed = SearchWorkerDied("a.wav")  # carries no results: raised as it is, nothing converted
    with pytest.raises(SearchWorkerDied) as died:
        passing_on(lambda results: pytest.fail("converted"), raising(file_failed))
    assert died.value is file_failed


def test_a_killed_batch_is_retried_in_half_the_processes_then_searched_one_utterance_at_a_time_forking_anew_per_death(
        decoder, monkeypatch):
    from concurrent.futures import ProcessPoolExecutor

    from asr.search_workers import SearchWorkerDied

    maps = []  # (pool, its processes, utterances handed to it) per map
    real_map = ProcessPoolExecutor.map
    monkeypatch.setattr(ProcessPoolExecutor, "map", lambda pool, fn, items, **k: maps.append(
        (pool, pool._max_workers, len(items))) or real_map(pool, fn, items, **k))
    searches_that_kill_their_worker(monkeypatch, longer_than=20)
    with pytest.raises(SearchWorkerDied):
        decoder.decode_nbest(*spelled_batch(decoder.tokenizer, ["a cat", "the cat sat on a mat", "the mat", "a mat"]))
    assert [(size, n) for _, size, n in maps] == [(2, 4), (1, 4)] + [(1, 1)] * 4
    # alone: one process for the first two, a fresh one after the second killed it
    pools = [pool for pool, _, _ in maps]
    assert len({id(p) for p in pools}) == 4 and pools[2] is pools[3] and pools[4] is pools[5] is not pools[3]


def test_a_batch_whose_utterances_each_survive_alone_is_searched_whole_after_two_deaths(decoder, monkeypatch,
                                                                                       tmp_path):
    # what kills a worker may be the batch's memory together (the OOM killer), not one utterance
    texts = ["the cat sat on a mat", "a cat"]
    in_parent = searches_that_kill_their_worker(monkeypatch, longer_than=20, times=2, marker=tmp_path / "killed")
    assert [h.text for h in decoder.decode(*spelled_batch(decoder.tokenizer, texts))] == texts
    assert in_parent == []


def test_a_search_worker_killed_between_batches_costs_the_next_batch_nothing(decoder, monkeypatch):
    from concurrent.futures import ProcessPoolExecutor

    batch = spelled_batch(decoder.tokenizer, ["a cat", "the mat"])
    decoder.decode(*batch)
    old = decoder._pool
    before = set(old._processes)
    os.kill(next(iter(before)), signal.SIGKILL)  # idle, as the out-of-memory killer may pick it
    deadline = time.monotonic() + 10
    while not old._broken and time.monotonic() < deadline:  # (the pool notices)
        time.sleep(0.01)
    pools = []  # the pools the batch is handed to: one, a fresh one, not a retry after the broken one
    real_map = ProcessPoolExecutor.map
    monkeypatch.setattr(ProcessPoolExecutor, "map", lambda pool, *a, **k: pools.append(pool) or real_map(pool, *a, **k))
    assert [h.text for h in decoder.decode(*batch)] == ["a cat", "the mat"]
    assert len(pools) == 1 and pools[0] is not old
    assert not before & set(decoder._pool._processes)


def test_an_empty_batch_searched_with_workers_gives_no_results_and_forks_nothing(decoder):
    import torch

    lp = torch.zeros(0, 5, len(decoder.tokenizer))
    assert decoder.decode_nbest(lp, torch.zeros(0, dtype=torch.long)) == []
    assert decoder._pool is None


def test_lm_tuning_skips_an_utterance_whose_search_kills_its_worker_alone_and_tunes_on_the_rest(tiny_model_dir,
                                                                                             tmp_path, monkeypatch):
    from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
    from asr.data import Utterance
    from asr.search_workers import SearchWorkerDied
    from asr.tuning import tune
    from conftest import write_sine
    from tests.test_transcribe import HOP, RATE, speller

    t = speller(tiny_model_dir)  # spells "hohoho..." over loud frames
    paths = [str(write_sine(tmp_path / f"{n}.wav", seconds=s)) for n, s in zip("abc", (1.0, 1.0, 3.0))]
    texts = [t.transcribe(p).text for p in paths[:2]] + ["not what it says"]  # only c's would count errors
    in_parent = searches_that_kill_their_worker(monkeypatch, longer_than=int(2.0 * RATE / HOP))  # c's
    decoder = BeamSearchDecoder(t.tokenizer, options=BeamSearchOptions(beam_size=4), workers=2)
    result = tune(t, decoder, [Utterance(p, s, x) for p, s, x in zip(paths, (1.0, 1.0, 3.0), texts)],
                  lm_weights=(0.0, 0.5), word_scores=(0.0,))
    assert result.skipped == [(paths[2], SearchWorkerDied.problem)] and result.utterances == 2
    assert result.greedy_wer == 0.0 and [point[4] for point in result.grid] == [0.0, 0.0]  # a and b alone
    assert in_parent == []


def test_lm_tuning_whose_every_search_kills_its_worker_is_refused_not_stored_as_tuned(tiny_model_dir, tmp_path,
                                                                                     monkeypatch):
    from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
    from asr.data import ManifestError, Utterance
    from asr.tuning import tune
    from conftest import write_sine
    from tests.test_transcribe import HOP, RATE, speller

    t = speller(tiny_model_dir)
    paths = [str(write_sine(tmp_path / f"{n}.wav", seconds=3.0)) for n in "ab"]
    searches_that_kill_their_worker(monkeypatch, longer_than=int(2.0 * RATE / HOP))  # both
    decoder = BeamSearchDecoder(t.tokenizer, options=BeamSearchOptions(beam_size=4), workers=2)
    with pytest.raises(ManifestError, match=f"no speech to tune on: the search of all 2 utterances with speech "
                                            f"killed its worker process \\(first: {paths[0]}: "):
        tune(t, decoder, [Utterance(p, 3.0, "x y") for p in paths], lm_weights=(0.0, 0.5), word_scores=(0.0,))
