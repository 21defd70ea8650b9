"""Text for reports, in a terminal or monospace font and in Markdown: display widths, sclite's
aligned REF/HYP lines, error rates (None where undefined) as percentages, and text escaped so
that Markdown shows it as itself."""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal or monospace font: 0 for combining accents and
    invisible format characters, 2 for East Asian wide characters, else 1 (as wcwidth counts)."""
    return sum(0 if unicodedata.category(ch) in ("Mn", "Me", "Cf")
               else 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def sclite_lines(alignment: Sequence) -> tuple[str, str]:
    """("REF:  the CAT sat ON  the mat ****", "HYP:  the BAT sat *** the mat DOWN") for a word
    alignment's columns (``asr.report.Column``: ``op``, ``ref``, ``hyp``).

    Columns are as wide as their words are shown: upper-cased first (``ß`` -> ``SS``), then
    measured in display columns, so that accents and CJK characters keep the lines aligned."""
    ref_cells, hyp_cells = [], []
    for c in alignment:
        r, h = (c.ref, c.hyp) if c.op == "ok" else (None if w is None else w.upper() for w in (c.ref, c.hyp))
        width = max(display_width(r or ""), display_width(h or ""), 1 if c.op == "ok" else 3)
        for word, cells in ((r, ref_cells), (h, hyp_cells)):
            word = "*" * width if word is None else word
            cells.append(word + " " * (width - display_width(word)))
    return "REF:  " + " ".join(ref_cells).rstrip(), "HYP:  " + " ".join(hyp_cells).rstrip()


UNDEFINED = "\u2014"  # an error rate over no reference words


def pct(x: float | None) -> str:
    """A rate as a percentage; ``UNDEFINED`` for none."""
    return UNDEFINED if x is None else f"{100 * x:.2f}%"


def _share(count: int, total: int) -> float | None:
    """``count`` of ``total`` reference units, None (shown as UNDEFINED) of none: 13 insertions
    in references that normalized to nothing are no rate at all, not 1300%."""
    return count / total if total else None


def shown_rates(s: dict) -> dict:
    """The rates of an ``asr.report.Report.summary()`` as shown: None where there is nothing to
    divide by. (``summary()`` keeps ``ErrorCounts.rate``'s number for them, as ``asr evaluate``
    prints it.)"""
    return {"correct": _share(s["correct"], s["words"]), "substitutions": _share(s["substitutions"], s["words"]),
            "deletions": _share(s["deletions"], s["words"]), "insertions": _share(s["insertions"], s["words"]),
            "wer": _share(s["word_errors"], s["words"]), "cer": _share(s["char_errors"], s["chars"]),
            "ser": _share(s["sentence_errors"], s["utterances"])}


# Markdown would read these as markup wherever they stand: backslash-escaped (CommonMark escapes
# any ASCII punctuation). <, > and & become entities instead, which every renderer shows as the
# characters: not all of them honour a backslash before raw HTML.
_MD_INLINE = re.compile(r"([\\`*_\[\]~])")
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# ... and these only at the start of a list item's text: a heading, a list, a setext underline
_MD_LINE_START = re.compile(r"^(?:([#+\-=])|(\d+)([.)]))")


def md(text, cell: bool = True) -> str:
    """``text`` shown as itself in Markdown, on one line; in a table ``cell``, ``|`` escaped too."""
    text = " ".join(str(text).split())  # a line break would end the table row or the list item
    text = _MD_INLINE.sub(r"\\\1", text)
    text = "".join(_MD_ENTITIES.get(ch, ch) for ch in text)
    text = _MD_LINE_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", text)
    return text.replace("|", "\\|") if cell else text


def fenced(lines: list[str]) -> list[str]:
    """``lines`` as a Markdown code block (shown verbatim), fenced with more backticks than any
    run of them inside, so that nothing inside can close it."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *lines, fence]
