"""Word and character error rates (jiwer), with the error counts behind them."""

from __future__ import annotations

from dataclasses import dataclass

import jiwer


@dataclass(frozen=True)
class ErrorCounts:
    substitutions: int
    deletions: int
    insertions: int
    reference_length: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        return self.errors / self.reference_length if self.reference_length else float(self.errors > 0)


def _errors(references, hypotheses, process, units) -> ErrorCounts:
    """jiwer's counts over the pairs with a reference; a hypothesis for an empty reference
    adds its ``units`` as insertions (jiwer refuses empty references)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    pairs = [(r, h) for r, h in zip(references, hypotheses) if r.strip()]
    extra = sum(units(h) for r, h in zip(references, hypotheses) if not r.strip())
    if not pairs:
        return ErrorCounts(0, 0, extra, 0)
    out = process([r for r, _ in pairs], [h for _, h in pairs])
    return ErrorCounts(out.substitutions, out.deletions, out.insertions + extra,
                       out.substitutions + out.deletions + out.hits)


def word_errors(references: list[str], hypotheses: list[str]) -> ErrorCounts:
    """Corpus-level word errors. Empty references are allowed (their words count as insertions)."""
    return _errors(references, hypotheses, jiwer.process_words, lambda h: len(h.split()))


def char_errors(references: list[str], hypotheses: list[str]) -> ErrorCounts:
    """Corpus-level character errors (spaces between words count as characters)."""
    return _errors(references, hypotheses, jiwer.process_characters, lambda h: len(h.strip()))


def wer(references: list[str], hypotheses: list[str]) -> float:
    return word_errors(references, hypotheses).rate


def cer(references: list[str], hypotheses: list[str]) -> float:
    return char_errors(references, hypotheses).rate
