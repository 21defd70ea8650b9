"""The warnings a user sees: each said once a process, or gathered by a batch job that names a few
and a total (``report_cut``, ``listed``); and C libraries' notes kept off stderr (``quiet_stderr``)
while a warning here says the same in words.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

_warned: dict[str, tuple[str, str]] = {}  # each line said or gathered: its file's name and message, for report_cut
_listed: set[str] = set()  # the lines report_cut has named
_warned_lock = threading.Lock()
_gathering: list[list[str]] = []  # the lists of the open gathered_warnings, innermost last
_quieted = {"depth": 0, "saved": None, "held": []}  # quiet_stderr's: blocks open, the real fd 2, warnings held back
SHOWN = 20  # problems listed one per line; a wrong audio folder would list the whole corpus


def warn(name, message: str) -> None:
    """``asr: warning: NAME: message`` on stderr, once a process: a file read every epoch, or
    probed and then read, is named once. Inside ``gathered_warnings`` the line is kept instead."""
    line = f"{name}: {message}"
    with _warned_lock:  # one write, under the lock: lines from threads (asr prepare's) never interleave
        if _gathering:  # kept even if said before: a job counts every cut file it used
            if line not in _gathering[-1]:
                _gathering[-1].append(line)
            _warned[line] = (str(name), message)
            return
        if line in _warned:
            return
        _warned[line] = (str(name), message)
        if _quieted["depth"]:  # fd 2 is /dev/null meanwhile: said when it is back
            _quieted["held"].append(line)
            return
        sys.stderr.write(f"asr: warning: {line}\n")
        sys.stderr.flush()


@contextmanager
def quiet_stderr(when: bool = True) -> Iterator[None]:
    """fd 2 to /dev/null meanwhile (if ``when``): C libraries (libmpg123, KenLM) write their notes
    straight to it. Blocks in several threads at once share one swap, undone when the last ends;
    a ``warn`` meanwhile is held back and said then. (The lock is not held during the block: a big
    LM loads for minutes. Other lines written to fd 2 meanwhile are lost: keep blocks short.)"""
    if not when:
        yield
        return
    with _warned_lock:
        if not _quieted["depth"]:
            sys.stderr.flush()
            try:
                saved = os.dup(2)
            except OSError:  # no fd 2 to quiet
                saved = None
            if saved is not None:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 2)
                os.close(null)
            _quieted["saved"] = saved
        _quieted["depth"] += 1
    try:
        yield
    finally:
        with _warned_lock:
            _quieted["depth"] -= 1
            if not _quieted["depth"]:
                if _quieted["saved"] is not None:
                    os.dup2(_quieted["saved"], 2)
                    os.close(_quieted["saved"])
                held, _quieted["held"], _quieted["saved"] = _quieted["held"], [], None
                for line in held:
                    sys.stderr.write(f"asr: warning: {line}\n")
                sys.stderr.flush()


@contextmanager
def gathered_warnings() -> Iterator[list[str]]:
    """The warnings of the files read inside it, each once, gathered in the list it gives rather
    than printed: a batch job that reads a corpus names a few and a total (``report_cut``), as it
    does every other kind of problem, or none at all on a process that does not report (a
    training rank other than the first); the job's count includes files warned of before. The
    list is global, not per thread: warnings from any thread (asr prepare's probing pool) land
    in it. Gathered lines are not printed by a later ``warn``."""
    lines: list[str] = []
    with _warned_lock:
        _gathering.append(lines)
    try:
        yield lines
    finally:
        with _warned_lock:
            _gathering[:] = [g for g in _gathering if g is not lines]  # by identity: two may be equal


def _say(message: str) -> None:
    sys.stderr.write(f"asr: {message}\n")  # as the CLI's other messages
    sys.stderr.flush()


def listed(lines: list[str], summary: str, say=_say, unit: str = "") -> None:
    """The first ``SHOWN`` of ``lines``, then ``summary`` with how many more there were (of
    ``unit``, where the summary counts something else: files, where a file may have two lines)."""
    for line in lines[:SHOWN]:
        say(line)
    more = f"{len(lines) - SHOWN} more{f' {unit}' if unit else ''} not listed"
    say(summary + (f" ({more})" if len(lines) > SHOWN else ""))


def _name_and_message(line: str) -> tuple[str, str]:
    """A gathered line's file and message, by the name warn was given (a file's name may hold
    ": "); a line from elsewhere, by its text. Call with ``_warned_lock`` held."""
    return _warned.get(line) or tuple(line.partition(": ")[::2])


def _is_cut(message: str) -> bool:
    return message.startswith("truncated")  # asr.audio.check_ending's


def cut_short(lines) -> list[str]:
    """Of the gathered warnings ``lines``, those saying a file was cut short or damaged (the
    audio before the cut was used), one a file: not a header's channel count, an MP3 holding
    more than its tag says, a low rate."""
    with _warned_lock:
        parts = {line: _name_and_message(line) for line in dict.fromkeys(lines)}
    files: dict[str, str] = {}
    for line, (name, message) in parts.items():
        if _is_cut(message):
            files.setdefault(name, line)
    return list(files.values())


def report_cut(lines, where=None, what: str = "", say=_say) -> None:
    """Name a few of the gathered warnings ``lines`` and total the files they name, those not
    named before in this process (a file probed then read, or scored by several systems, is named
    once): "warning: WHERE: N WHAT audio file(s) cut short or damaged: the audio before the cut is
    used" where each was, else "N WHAT audio file(s) read with a warning[, M of them cut short...]"
    (a header's channel count, an MP3 holding more than its tag says, a low rate)."""
    with _warned_lock:
        fresh = [line for line in dict.fromkeys(lines) if line not in _listed]
        _listed.update(fresh)
        parts = [_name_and_message(line) for line in fresh]
    if fresh:
        files = set(name for name, _ in parts)
        cut = set(name for name, message in parts if _is_cut(message))
        total = f"{f'{where}: ' if where else ''}{len(files)} {f'{what} ' if what else ''}audio file(s)"
        used = "cut short or damaged: the audio before the cut is used"
        summary = (f"{total} {used}" if cut == files else
                   f"{total} read with a warning" + (f", {len(cut)} of them {used}" if cut else ""))
        listed(fresh, f"warning: {summary}", say, unit="" if len(fresh) == len(files) else "warnings")
