"""A rescoring grid's points scored as arrays (``asr tune-rescoring``).

Each grid point of the rescoring's weights only re-ranks the same pooled candidates, so their
scores and word errors go into arrays once, and a point costs a few array operations instead of
a Python pass over every candidate of every utterance: a six-system grid has 92,160 points.
An utterance cut at pauses is scored on its pieces' choices joined (``PieceTable``).
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
        self.exists = np.zeros((rows, width), dtype=bool)  # a candidate there (or the silence of none)
        for u, (c, ref) in enumerate(zip(candidates, references)):
            n = len(c.texts)
            if n == 0:  # nothing proposed: the utterance is transcribed as silence
                self.errors[u, 0] = word_errors([ref], [""]).errors
                self.exists[u, 0] = True  # (no system spells it: allowed as the only one there)
                continue
            self.ctc[:, u, :n] = c.ctc
            self.lm[u, :n] = c.lm
            self.words[u, :n] = [len(t.split()) for t in c.texts]
            self.errors[u, :n] = [word_errors([ref], [normalize_text(t)]).errors for t in c.texts]  # as evaluate
            self.exists[u, :n] = True
        self._allowed: dict[tuple[bool, ...], tuple[np.ndarray, np.ndarray]] = {}
        self.reference_words = word_errors(list(references), list(references)).reference_length

    def allowed(self, weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """The candidates every system weighed (not 0) can spell, per utterance (none: all of
        them), and the first such of each utterance: as ``Candidates.best`` chooses among."""
        asked = tuple(bool(w) for w in weights)
        if asked not in self._allowed:
            finite = np.isfinite(self.ctc[[i for i, a in enumerate(asked) if a]]).all(axis=0) & self.exists
            allowed = np.where(finite.any(axis=1, keepdims=True), finite, self.exists)
            self._allowed[asked] = allowed, allowed.argmax(axis=1)
        return self._allowed[asked]

    def choices(self, weights: Sequence[float], lm_weight: float, word_score: float) -> np.ndarray:
        """The index each utterance's candidate has under these weights (``Candidates.best``)."""
        allowed, first_allowed = self.allowed(weights)
        acoustic = 0.0
        for w, scores in zip(weights, self.ctc):
            if w:  # a system at weight 0 is not asked, so its -inf cannot poison the sum
                acoustic = acoustic + w * scores
        # Summed in Candidates.best's order, so equal totals (and ties) are bit for bit the same.
        total = np.where(allowed, acoustic + lm_weight * self.lm + word_score * self.words, -np.inf)
        best = total.argmax(axis=1)  # the first of equals, as max() in the first system's order
        return np.where(np.isneginf(total.max(axis=1)), first_allowed, best)

    def word_error_rate(self, weights: Sequence[float], lm_weight: float, word_score: float) -> float:
        chosen = self.choices(weights, lm_weight, word_score)
        errors = float(self.errors[np.arange(len(chosen)), chosen].sum())
        return errors / self.reference_words if self.reference_words else float(errors > 0)


class PieceTable:
    """A ``CandidateTable`` whose rows are pieces (``readable_batches``' references: None continues
    the utterance before): an utterance cut at pauses is scored on its pieces' chosen texts
    joined, against its whole reference, as evaluate scores it; the others as the table does."""

    def __init__(self, candidates: Sequence, references: Sequence[str | None]):
        groups: list[tuple[str, list[int]]] = []  # (reference, rows)
        for row, ref in enumerate(references):
            if ref is None:
                groups[-1][1].append(row)
            else:
                groups.append((ref, [row]))
        self.whole = {rows[0]: ref for ref, rows in groups if len(rows) == 1}
        # a piece's errors against the whole reference mean nothing: the table scores it against ""
        self.table = CandidateTable(candidates, [self.whole.get(row, "") for row in range(len(references))])
        self.whole_rows = np.array(sorted(self.whole), dtype=int)
        self.texts = [c.texts for c in candidates]
        self.cut = [(ref, rows, [self.texts[r] for r in rows]) for ref, rows in groups if len(rows) > 1]
        references = [ref for ref, _ in groups]
        self.reference_words = word_errors(references, references).reference_length
        self._joined_errors: dict[tuple, int] = {}  # a grid repeats few of a cut utterance's combinations

    def word_error_rate(self, weights: Sequence[float], lm_weight: float, word_score: float) -> float:
        chosen = self.table.choices(weights, lm_weight, word_score)
        errors = float(self.table.errors[self.whole_rows, chosen[self.whole_rows]].sum())
        for u, (ref, rows, texts) in enumerate(self.cut):
            picks = tuple(int(chosen[r]) for r in rows)
            if (u, *picks) not in self._joined_errors:
                hyp = " ".join(normalize_text(t[k]) for t, k in zip(texts, picks) if k < len(t))
                self._joined_errors[(u, *picks)] = word_errors([ref], [hyp]).errors
            errors += self._joined_errors[(u, *picks)]
        return errors / self.reference_words if self.reference_words else float(errors > 0)

    def oracle_rate(self) -> float:
        """The WER of the best candidate of each utterance (of each piece, jointly, for a cut one)."""
        # An uncut utterance's candidates' errors are in the table already (no candidate: the
        # empty text's, in column 0); the columns past its candidates are padding.
        counts = np.array([max(len(self.texts[r]), 1) for r in self.whole_rows], dtype=int)
        padding = np.arange(self.table.errors.shape[1]) >= counts[:, None]
        errors = int(np.where(padding, np.inf, self.table.errors[self.whole_rows]).min(axis=1).sum())
        errors += sum(joined_oracle_errors(ref, texts) for ref, _, texts in self.cut)
        return errors / self.reference_words if self.reference_words else float(errors > 0)


def joined_oracle_errors(reference: str, pieces: Sequence[Sequence[str]]) -> int:
    """The fewest word errors against ``reference`` of one candidate per piece, joined in order
    (no candidates: the empty text). Exact without trying every combination: Levenshtein's row
    over the reference is carried from piece to piece, keeping at each reference position the
    best of the piece's candidates (the rest of the alignment only adds to it)."""
    ref = np.array(reference.split(), dtype=object)
    positions = np.arange(len(ref) + 1)
    row = positions.copy()  # the empty hypothesis against each prefix of the reference: deletions
    for texts in pieces:
        best = None
        for text in texts or [""]:
            current = row
            for word in normalize_text(text).split():
                step = current + 1  # the word inserted
                step[1:] = np.minimum(step[1:], current[:-1] + (ref != word))  # matched or substituted
                current = np.minimum.accumulate(step - positions) + positions  # then reference words deleted
            best = current if best is None else np.minimum(best, current)
        row = best
    return int(row[-1])
