"""The processes that run beam searches in parallel (``BeamSearchDecoder(workers=N)``), and how
they and their parent take Ctrl-C and SIGTERM.

Ctrl-C reaches the whole process group, and SIGTERM often does (SLURM): the parent handles them.
A worker's own KeyboardInterrupt, raised while it waits for work, would print a traceback, and one
dying leaves the pool broken: a worker finishes the search it is in and refuses the rest, which
goes back to the parent as a result, not printed. A worker whose parent is killed outright
(SIGKILL: the OOM killer, a batch system after its grace period) ends itself. A batch whose worker
is killed is searched again in fresh workers, once; killed again, its utterances are searched one
at a time, and only those that kill a worker alone fail (``SearchWorkerDied``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager

import numpy as np

from asr.arpa import LMError
from asr.text import plural

_WORKER = None  # this process's asr.beam_search.BeamSearchDecoder (not imported: it imports this module)
_STOPPING = False
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SearchWorkerDied(LMError):
    """Beam searches that killed their worker process (out of memory?): a batch's, twice, in fresh
    processes each time, then each of ``failed`` (indices into the batch) searched alone in a fresh
    one. ``results``: what the call would have returned, with None for each failed item, so that a
    caller can keep the rest (``survivors``; ``passing_on`` hands them up). With ``path``: a file one
    of whose segments failed, not transcribed (the rest of a run goes on: ``Transcriber.transcribe_files``,
    ``asr.evaluate``)."""

    _ADVICE = "(out of memory?); run again with fewer --decode-workers, or 1"
    problem = f"a beam search worker process died searching it alone, after twice on its batch {_ADVICE}"

    def __init__(self, path=None, failed=(), results=None):
        self.path, self.failed, self.results = None if path is None else str(path), list(failed), results
        super().__init__(f"a beam search worker process died searching {plural(len(self.failed), 'utterance')} of "
                         f"one batch alone, after twice on the whole batch {self._ADVICE}" if path is None
                         else f"{path}: {self.problem}")

    def with_results(self, results) -> "SearchWorkerDied":
        """The same failure, carrying ``results`` (a caller's, made from this one's) instead."""
        return SearchWorkerDied(self.path, self.failed, results)


def survivors(call, *args, **kwargs):
    """(``call``'s results, None), or, when it raised a ``SearchWorkerDied`` that carries the
    others' results: (those, with None for the failed, and the error)."""
    try:
        return call(*args, **kwargs), None
    except SearchWorkerDied as e:
        if e.results is None:
            raise
        return e.results, e


def passing_on(convert, call, *args, **kwargs):
    """``convert(call(*args, **kwargs))``; when ``call`` raised a ``SearchWorkerDied`` that carries
    the others' results, it is raised again carrying ``convert`` of them (None for each failed item,
    which ``convert`` keeps), so that a caller's caller can keep the rest in its own terms."""
    results, died = survivors(call, *args, **kwargs)
    converted = convert(results)
    if died:
        raise died.with_results(converted)
    return converted


@contextmanager
def signals_held():
    """Ctrl-C or SIGTERM is noted, then acted on when the block ends. An exception raised by
    their handlers inside CPython's fork hooks is swallowed ("Exception ignored"): a Ctrl-C that
    landed while the search workers forked was lost, and the run went on to exit 0."""
    if threading.current_thread() is not threading.main_thread():  # only it can set handlers
        yield
        return
    caught = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:  # what the handler in place would have done
        handler = previous[caught[0]]
        if callable(handler):
            handler(caught[0], None)
        elif handler == signal.SIG_DFL:
            os.kill(os.getpid(), caught[0])


def set_worker(decoder, parent: int) -> None:
    """The pool's initializer: this process searches with ``decoder``, stops on a signal and ends
    with ``parent``, the PID that forked it (given, not asked: it may be gone by now)."""
    global _WORKER
    _WORKER = decoder
    signal.signal(signal.SIGINT, _stop_searching)
    signal.signal(signal.SIGTERM, _stop_searching)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """An orphaned worker waits for work forever, holding its copy of the LM: it ends instead
    (once its search, which holds the GIL, is done). Reparented, it has another parent id."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _stop_searching(signum, frame) -> None:
    global _STOPPING
    _STOPPING = True


def worker_search(emissions: np.ndarray):
    if _STOPPING:
        raise KeyboardInterrupt  # sent back to the parent as the result, not printed
    return _WORKER._search_one(emissions)
