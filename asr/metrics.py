"""Word and character error rates (jiwer), with the error counts behind them, and how sure a
difference between two systems is (paired bootstrap); how a validated model ranks (``selection_key``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import jiwer
import numpy as np


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
        """Errors per reference unit; with no reference units, 1 if anything was said, else 0 (a
        convention, so that a corpus total is always a number: jiwer 4 would say the insertion count)."""
        return self.errors / self.reference_length if self.reference_length else float(self.errors > 0)

    @property
    def rate_or_none(self) -> float | None:
        """Errors per reference unit, or None with no reference units: undefined, as for a speaker
        whose references are all empty (whose insertions are still counted)."""
        return self.errors / self.reference_length if self.reference_length else None


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


@dataclass(frozen=True)
class BootstrapResult:
    """NaN where there are no reference words: the whole set's (``difference``), every resample's (the rest)."""
    difference: float  # error rate of B minus that of A, on the whole set
    low: float  # the central ``level`` interval of that difference over the resamples that hold reference words
    high: float
    prob_b_better: float  # share of those resamples where B made fewer errors
    groups: int
    resamples: int
    level: float


def paired_bootstrap(errors_a, errors_b, lengths, groups=None, resamples: int = 1000, level: float = 0.95,
                     seed: int = 0) -> BootstrapResult:
    """Bisani & Ney (2004): resample the test set's groups with replacement and recompute both
    systems' error rates on each resample, scored on the same units, so the interval reflects
    how much the difference depends on which speakers (``groups``; default: each utterance) were
    tested. Per-utterance error counts and reference lengths in, one entry each."""
    if not len(errors_a) == len(errors_b) == len(lengths) or (groups is not None and len(groups) != len(lengths)):
        raise ValueError("errors_a, errors_b, lengths (and groups) must have one entry per utterance")
    if not len(lengths):
        raise ValueError("no utterances to compare")
    keys = list(groups) if groups is not None else list(range(len(lengths)))
    index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    sums = np.zeros((3, len(index)))
    for k, ea, eb, n in zip(keys, errors_a, errors_b, lengths):
        sums[:, index[k]] += (ea, eb, n)
    pick = np.random.default_rng(seed).integers(0, len(index), size=(resamples, len(index)))
    a, b, n = (sums[row][pick].sum(axis=1) for row in range(3))
    # A resample (or set) with no reference words has no rate: its insertions are not a rate difference
    defined = n > 0
    total = sums[2].sum()
    difference = float((sums[1].sum() - sums[0].sum()) / total) if total else math.nan
    if not defined.any():  # every reference empty (nan-aware numpy would warn of an all-NaN slice)
        return BootstrapResult(difference, math.nan, math.nan, math.nan, len(index), resamples, level)
    delta = np.where(defined, b - a, np.nan) / np.where(defined, n, 1)
    tail = (1 - level) / 2
    return BootstrapResult(difference, float(np.nanquantile(delta, tail)), float(np.nanquantile(delta, 1 - tail)),
                           float(np.nanmean(np.where(defined, b < a, np.nan))), len(index), resamples, level)


def selection_key(record: dict) -> tuple[float, float, float] | None:
    """How a validated model ranks for best/, lower first: valid WER, ties broken on CER, then on
    loss; None when validation scored no words. Without a valid set the latest epoch ranks first.
    A NaN loss (no utterance had one: each too long to run whole, say) ranks last among ties: WER
    and CER still score every utterance, as asr evaluate would."""
    if "valid_wer" not in record:
        return (-record["epoch"], 0.0, 0.0)
    if math.isnan(record["valid_wer"]):
        return None
    cer, loss = record.get("valid_cer", math.nan), record.get("valid_loss", math.nan)  # (a log another tool wrote)
    return (record["valid_wer"], math.inf if math.isnan(cer) else cer, math.inf if math.isnan(loss) else loss)
