"""Entropy-based pruning of a backoff n-gram LM (Stolcke 1998; SRILM's ``ngram -prune``).

A general-purpose LM is large: speechocean762's mix holds 4.2 M n-grams, a 119 MB ARPA file that
takes 2.6 GB to mix and makes every search slower. Most of its n-grams change the model very
little, because backing off to the shorter history already predicts the word almost as well.
Pruning removes those. For an n-gram (h, w), with h' = h minus its oldest word, removing it
changes the model by the relative entropy

    D = -P(h) * [ p(w|h) (log p'(w|h) - log p(w|h)) + a(h) * B(h) * (log a'(h) - log a(h)) ]

where p'(w|h) = a'(h) p(w|h') is what the model gives w once it backs off, a(h) and a'(h) are
h's backoff weight before and after (recomputed so that h still sums to 1), B(h) is the mass of
the words h backs off for under h', and P(h) is the model's probability of the history itself.
exp(D) - 1 estimates the relative perplexity increase; each n-gram is judged alone against the
full model and removed when that is below the threshold (SRILM's ``-prune``: 1e-8 is gentle,
1e-7 is Kaldi's "small" LMs). Every backoff weight is then recomputed.

Unigrams stay, so the vocabulary and any lexicon built from it do not change. An n-gram that is
the context or the suffix of a kept longer one stays too, so the result is a well-formed ARPA
model that KenLM reads (it needs every context present).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from asr.arpa import ArpaModel, NgramModel, write_arpa
from asr.lm import BOS, LMError
from asr.lm_mix import load_arpa, with_backoffs

_FLOOR = 1e-12  # keeps a context whose seen words hold all its mass (or none) finite


@dataclass(frozen=True)
class PruneResult:
    before: tuple[int, ...]  # n-grams per order
    after: tuple[int, ...]


def removal_costs(model: ArpaModel, n: int) -> dict[tuple[str, ...], float]:
    """D (natural log) for each n-gram of order ``n`` >= 2: what removing it alone would cost."""
    history_log10: dict[tuple[str, ...], float] = {(BOS,): 0.0}  # <s> is given, not predicted

    def log10_history(h: tuple[str, ...]) -> float:
        """log10 P(h) under the model, by the chain rule (cached: histories share prefixes)."""
        if h not in history_log10:
            prefix = h[:-1]
            history_log10[h] = (log10_history(prefix) if prefix else 0.0) + model.log10_prob(h[-1], prefix)
        return history_log10[h]

    followers: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for g in model.ngrams:
        if len(g) == n:
            followers[g[:-1]].append(g[-1])
    costs = {}
    for h, words in followers.items():
        p = [10 ** model.ngrams[(*h, w)][0] for w in words]
        q = [10 ** model.log10_prob(w, h[1:]) for w in words]
        num = max(1.0 - sum(p), _FLOOR)  # the mass h leaves to backing off: a(h) * B(h)
        den = max(1.0 - sum(q), _FLOOR)  # B(h): what h' gives the words h has not seen
        log_bo = math.log(num) - math.log(den)
        p_h = 10 ** log10_history(h)
        for w, pw, qw in zip(words, p, q):
            log_bo_new = math.log(num + pw) - math.log(den + qw)
            costs[(*h, w)] = -p_h * (pw * (math.log(qw) + log_bo_new - math.log(pw)) + num * (log_bo_new - log_bo))
    return costs


def check_threshold(threshold: float) -> None:
    # NaN compares false with everything, so it would keep every n-gram; inf would drop all but unigrams.
    if not (math.isfinite(threshold) and threshold >= 0):
        raise LMError(f"pruning threshold must be a finite number >= 0, got {threshold}")


def prune(model: ArpaModel, threshold: float) -> NgramModel:
    """``model`` without the n-grams whose removal raises its perplexity by less than
    ``threshold`` (relative, each judged alone against the full model; 0 keeps all);
    backoff weights recomputed."""
    check_threshold(threshold)
    tables: list[dict[tuple[str, ...], float]] = [{} for _ in range(model.order)]
    for g, (lp, _) in model.ngrams.items():
        tables[len(g) - 1][g] = lp
    keep_anyway: set[tuple[str, ...]] = set()  # contexts and suffixes of kept longer n-grams
    for n in range(model.order, 1, -1):  # longest first: what they keep, shorter orders must keep
        table = tables[n - 1]
        if threshold:
            for g, cost in removal_costs(model, n).items():
                if g not in keep_anyway and math.expm1(cost) < threshold:
                    del table[g]
        for g in table:
            keep_anyway.add(g[:-1])
            keep_anyway.add(g[1:])
    while len(tables) > 1 and not tables[-1]:
        tables.pop()
    return with_backoffs(tables)


def prune_file(lm: str | Path, output: str | Path, threshold: float) -> PruneResult:
    """Prune an ARPA file into another; the n-gram counts before and after."""
    check_threshold(threshold)  # before loading what may be a large file
    model = load_arpa(lm)
    before = [0] * model.order
    for g in model.ngrams:
        before[len(g) - 1] += 1
    pruned = prune(model, threshold)
    write_arpa(pruned, output)
    after = [len(t) for t in pruned.ngrams]
    return PruneResult(tuple(before), tuple(after + [0] * (len(before) - len(after))))
