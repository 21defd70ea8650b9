"""Decoders turn frame-level log-probabilities into text. They are interchangeable
strategies behind one interface: ``decoder.decode(log_probs, lengths) -> [Hypothesis]``.
Greedy decoding is here; beam search (with n-gram LMs, lexicons, hotwords) is in
``asr/beam_search.py``; ``asr/decoder_factory.py`` builds either by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from asr.tokenizers import Tokenizer


@dataclass(frozen=True)
class Hypothesis:
    text: str
    tokens: tuple[int, ...]  # emitted token ids, blanks and repeats removed
    frames: tuple[int, ...]  # output frame at which each token was emitted
    score: float  # log-probability of the path


class Decoder(ABC):
    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer

    @abstractmethod
    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        """log_probs: (B, T, V), lengths: (B,) -> one best hypothesis per utterance."""

    def decode_nbest(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        """The n best hypotheses per utterance, best first (just the best unless overridden)."""
        return [[h] for h in self.decode(log_probs, lengths)]

    def close(self) -> None:
        """Release worker processes, if any."""

    def describe(self) -> str:
        """One line for logs and reports."""
        return "greedy"


class GreedyDecoder(Decoder):
    """Best token per frame, then CTC's collapse: merge repeats, drop blanks."""

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        best, ids = log_probs.max(dim=-1)
        results = []
        for b in range(log_probs.shape[0]):
            n = int(lengths[b])
            path = ids[b, :n]
            keep = torch.ones(n, dtype=torch.bool, device=path.device)
            if n > 1:
                keep[1:] = path[1:] != path[:-1]
            keep &= path != self.tokenizer.blank_id
            frames = keep.nonzero().flatten().tolist()
            tokens = path[keep].tolist()
            results.append(Hypothesis(self.tokenizer.decode(tokens), tuple(tokens), tuple(frames),
                                      float(best[b, :n].sum())))
        return results


def wants_alternatives(decoder: Decoder) -> bool:
    """Whether ``decoder`` was asked for more than its best transcript (beam search's nbest)."""
    return getattr(getattr(decoder, "options", None), "nbest", 1) > 1
