"""Subtitle cues for the srt and vtt writers (asr.writers): a result's words grouped into cues
of readable length, and their times as subtitle timestamps."""

from __future__ import annotations

from dataclasses import dataclass

from asr.results import Result, Segment, Word


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]


def make_cues(result: Result, max_seconds: float = 7.0, line_chars: int = 42, max_lines: int = 2) -> list[Cue]:
    """Subtitle cues from the words' times: a cue closes before it would last more than
    ``max_seconds``, need more than ``max_lines`` lines of ``line_chars``, or span a pause > 1 s.
    A segment without word times has its words spread over it by their length (``_spread``)."""
    cues, used = [], set()
    for seg in result.segments:
        # each word in one cue: one of no length on the boundary of two segments fits both
        picked = [i for i, w in enumerate(result.words)
                  if i not in used and seg.start - 1e-3 <= w.start and w.end <= seg.end + 1e-3]
        used.update(picked)
        words = [result.words[i] for i in picked]
        if not words:
            words = _spread(seg)
        if not words:  # no text: no cue (an empty one ends at its blank line, malformed)
            continue
        group: list[Word] = []
        for w in words:
            if group and (w.end - group[0].start > max_seconds or w.start - group[-1].end > 1.0
                          or len(_wrap([x.word for x in group + [w]], line_chars)) > max_lines):
                cues.append(_cue(group, line_chars))
                group = []
            group.append(w)
        if group:
            cues.append(_cue(group, line_chars))
    return cues


def _spread(seg: Segment) -> list[Word]:
    """The segment's words timed by where their characters fall in its text, evenly over its
    time: a guess, but one that cuts a long untimed segment into cues of readable size (as one
    cue, 20 s of speech would be ten lines on screen at once)."""
    words = seg.text.split()
    total = sum(len(w) + 1 for w in words)
    out, done = [], 0
    for w in words:
        start = seg.start + (seg.end - seg.start) * done / total
        done += len(w) + 1
        out.append(Word(w, round(start, 3), round(seg.start + (seg.end - seg.start) * done / total, 3)))
    return out


def _cue(words: list[Word], line_chars: int) -> Cue:
    return Cue(words[0].start, max(words[-1].end, words[0].start + 0.001),
               tuple(_wrap([w.word for w in words], line_chars)))


def _wrap(words: list[str], width: int) -> list[str]:
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def timestamp(seconds: float, decimal: str = ".", hours: bool = True) -> str:
    ms = int(round(max(seconds, 0.0) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return (f"{h:02d}:" if hours or h else "") + f"{m:02d}:{s:02d}{decimal}{ms:03d}"
