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


def _counts(output) -> ErrorCounts:
    return ErrorCounts(output.substitutions, output.deletions, output.insertions,
                       output.substitutions + output.deletions + output.hits)


def word_errors(references: list[str], hypotheses: list[str]) -> ErrorCounts:
    """Corpus-level word errors. Empty references are allowed (their words count as insertions)."""
    refs, hyps = _nonempty_pairs(references, hypotheses)
    counts = _counts(jiwer.process_words(refs, hyps)) if refs else ErrorCounts(0, 0, 0, 0)
    extra = sum(len(h.split()) for r, h in zip(references, hypotheses) if not r.strip())
    return ErrorCounts(counts.substitutions, counts.deletions, counts.insertions + extra,
                       counts.reference_length)


def char_errors(references: list[str], hypotheses: list[str]) -> ErrorCounts:
    refs, hyps = _nonempty_pairs(references, hypotheses)
    counts = _counts(jiwer.process_characters(refs, hyps)) if refs else ErrorCounts(0, 0, 0, 0)
    extra = sum(len(h.strip()) for r, h in zip(references, hypotheses) if not r.strip())
    return ErrorCounts(counts.substitutions, counts.deletions, counts.insertions + extra,
                       counts.reference_length)


def _nonempty_pairs(references, hypotheses):
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    # jiwer refuses empty references; a hypothesis may be empty (all deletions).
    pairs = [(r, h) for r, h in zip(references, hypotheses) if r.strip()]
    return [r for r, _ in pairs], [h for _, h in pairs]


def wer(references: list[str], hypotheses: list[str]) -> float:
    return word_errors(references, hypotheses).rate


def cer(references: list[str], hypotheses: list[str]) -> float:
    return char_errors(references, hypotheses).rate
