"""A rescoring grid's points scored as arrays (``asr tune-rescoring``).

Each grid point of the rescoring's weights only re-ranks the same pooled candidates, so their
scores and word errors go into arrays once, and a point costs a few array operations instead of
a Python pass over every candidate of every utterance: a six-system grid has 92,160 points.
The choice and the WER are those of ``Candidates.best`` and ``metrics.word_errors``, ties and
the fall-back for candidates no system can spell included.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from asr.metrics import word_errors
from asr.text import normalize_text


class CandidateTable:
    """One prior scale's pooled candidates (``rescoring.Candidates``: ``texts``, ``ctc`` per
    system, ``lm``) and each candidate's word errors against its utterance's reference."""

    def __init__(self, candidates: Sequence, references: Sequence[str]):
        if len(candidates) != len(references):
            raise ValueError(f"{len(references)} references but {len(candidates)} candidate lists")
        rows, width = len(candidates), max([len(c.texts) for c in candidates] + [1])
        systems = max([len(c.ctc) for c in candidates] + [1])
        self.ctc = np.full((systems, rows, width), -np.inf)
        self.lm = np.zeros((rows, width))
        self.words = np.zeros((rows, width))
        self.errors = np.zeros((rows, width))
        self.allowed = np.zeros((rows, width), dtype=bool)
        for u, (c, ref) in enumerate(zip(candidates, references)):
            n = len(c.texts)
            if n == 0:  # nothing proposed: the utterance is transcribed as silence
                self.errors[u, 0] = word_errors([ref], [""]).errors
                self.allowed[u, 0] = True
                continue
            self.ctc[:, u, :n] = c.ctc
            self.lm[u, :n] = c.lm
            self.words[u, :n] = [len(t.split()) for t in c.texts]
            self.errors[u, :n] = [word_errors([ref], [normalize_text(t)]).errors for t in c.texts]  # as evaluate
            spellable = np.isfinite(self.ctc[:, u, :n]).all(axis=0)
            self.allowed[u, :n] = spellable if spellable.any() else True  # none left: all of them
        self.first_allowed = self.allowed.argmax(axis=1)
        self.reference_words = word_errors(list(references), list(references)).reference_length

    def choices(self, weights: Sequence[float], lm_weight: float, word_score: float) -> np.ndarray:
        """The index each utterance's candidate has under these weights (``Candidates.best``)."""
        acoustic = 0.0
        for w, scores in zip(weights, self.ctc):
            if w:  # a system at weight 0 is not asked, so its -inf cannot poison the sum
                acoustic = acoustic + w * scores
        # Summed in Candidates.best's order, so equal totals (and ties) are bit for bit the same.
        total = np.where(self.allowed, acoustic + lm_weight * self.lm + word_score * self.words, -np.inf)
        best = total.argmax(axis=1)  # the first of equals, as max() in the first system's order
        return np.where(np.isneginf(total.max(axis=1)), self.first_allowed, best)

    def word_error_rate(self, weights: Sequence[float], lm_weight: float, word_score: float) -> float:
        chosen = self.choices(weights, lm_weight, word_score)
        errors = float(self.errors[np.arange(len(chosen)), chosen].sum())
        return errors / self.reference_words if self.reference_words else float(errors > 0)
