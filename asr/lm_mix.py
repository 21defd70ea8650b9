"""Mixing n-gram LMs: linear interpolation of ARPA models into one ARPA model, and perplexity.

A small in-domain LM (the training transcripts) and a large general one (LJ Speech text) each
miss what the other knows; their linear interpolation ``p(w|h) = sum_i l_i p_i(w|h)`` keeps
both, with the weights chosen by perplexity on a dev text (SRILM's ``ngram -mix-lm`` and
``compute-best-mix``). The result is one static backoff model, which beam search loads like any
other: every n-gram of any component gets its exact mixed probability, and backoff weights are
recomputed so that each context still sums to 1. N-grams that no component holds then back off
in the mixture rather than in each component, the same approximation as SRILM's static mix.
A word one component does not know gets probability 0 from it (not its ``<unk>`` mass).

The components must have the same units (words, characters, or one model's tokens), and dev text
is read in those units: scored in others, nearly every unit is out of vocabulary and the fitted
weights and perplexities mean nothing.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from asr.arpa import ArpaModel, LMInfo, NgramModel, inspect_lm, write_arpa
from asr.lm import BOS, EOS, UNK, LMError, read_sentences, unspellable
from asr.text import WORD_SEP

UNIT_NAMES = {"word": "word LM", "char": "character LM", "token": "token LM"}


def _prob(model: ArpaModel, vocab: set[str], word: str, history: tuple[str, ...]) -> float:
    return 10 ** model.log10_prob(word, history) if word in vocab else 0.0


def interpolate(models: Sequence[ArpaModel], weights: Sequence[float]) -> NgramModel:
    """The linear interpolation of ``models`` with ``weights`` (which must sum to 1)."""
    if len(models) != len(weights) or len(models) < 2:
        raise LMError("give at least two LMs and one weight per LM")
    # 0.333,0.333,0.333 is meant as thirds: a sum within 1e-3 of 1 is scaled to 1 exactly
    if any(w < 0 for w in weights) or not math.isclose(sum(weights), 1.0, abs_tol=1e-3):
        raise LMError(f"mixture weights must be >= 0 and sum to 1, got {list(weights)} (sum {sum(weights):g})")
    weights = [w / sum(weights) for w in weights]
    order = max(m.order for m in models)
    vocabs = [set(m.vocabulary) for m in models]
    grams_by_order: list[set[tuple[str, ...]]] = [set() for _ in range(order)]
    for m in models:
        for g in m.ngrams:
            grams_by_order[len(g) - 1].add(g)

    def mixed(word: str, history: tuple[str, ...]) -> float:
        return sum(w * _prob(m, v, word, history) for m, v, w in zip(models, vocabs, weights))

    probs: list[dict[tuple[str, ...], float]] = []
    for grams in grams_by_order:
        table = {}
        for g in grams:
            table[g] = 0.0 if g == (BOS,) else math.log10(max(mixed(g[-1], g[:-1]), 1e-99))  # as lmplz writes <s>
        probs.append(table)

    return with_backoffs(probs)


def with_backoffs(probs: list[dict[tuple[str, ...], float]]) -> NgramModel:
    """A backoff model from its n-grams' log10 probabilities (``probs[n-1]``: the n-grams), with
    every backoff weight computed so that each context sums to 1 (lowest order first):
    bow(h) = (1 - sum p(w|h)) / (1 - sum p(w|h[1:])) over the words w seen after h, where
    p(w|h[1:]) may itself back off through lower-order weights."""
    order = len(probs)
    backoffs: dict[tuple[str, ...], float] = {}

    def lookup(word: str, history: tuple[str, ...]) -> float:
        penalty = 0.0
        while (*history, word) not in probs[len(history)]:
            if not history:
                return penalty + probs[0].get((UNK,), -99.0)
            penalty += backoffs.get(history, 0.0)
            history = history[1:]
        return penalty + probs[len(history)][(*history, word)]

    for n in range(1, order):
        followers: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for g in probs[n]:
            followers[g[:-1]].append(g[-1])
        for context in probs[n - 1]:
            words = followers.get(context)
            if not words:
                continue
            seen = sum(10 ** probs[n][(*context, w)] for w in words)
            lower = sum(10 ** lookup(w, context[1:]) for w in words)
            backoffs[context] = math.log10(max(1.0 - seen, 1e-12) / max(1.0 - lower, 1e-12))
    return NgramModel([{g: (lp, backoffs.get(g, 0.0) if n < order - 1 else None) for g, lp in table.items()}
                       for n, table in enumerate(probs)])


def _scored(sentences: Iterable[list[str]], order: int) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Each (unit, history) to score, ``</s>`` last in each sentence; the history keeps the last
    ``order - 1`` units, all an LM of that order looks at (a longer one would make scoring a long
    sentence quadratic in its length)."""
    keep = max(order - 1, 0)
    for words in sentences:
        history: tuple[str, ...] = (BOS,)[:keep]
        for word in [*words, EOS]:
            yield word, history
            if keep:
                history = (*history, word)[-keep:]


def _is_word(unit: str) -> bool:
    """A unit of the text itself: ``</s>`` and a character LM's ``|`` are known to every LM."""
    return unit not in (EOS, WORD_SEP)


def perplexity(model: ArpaModel, sentences: Iterable[list[str]]) -> tuple[float, int, int]:
    """(perplexity, words scored, out-of-vocabulary words): ``</s>`` counts, OOVs are skipped.
    Text with no known word is refused: its perplexity would come from ``</s>`` alone."""
    vocab = set(model.vocabulary)
    total, scored, oov, known_words = 0.0, 0, 0, 0
    for word, history in _scored(sentences, model.order):
        if word in vocab:
            total += model.log10_prob(word, history)
            scored += 1
            known_words += _is_word(word)
        else:
            oov += 1
    if not known_words:
        raise LMError(f"no word of the text is in the LM's vocabulary (all {oov} are out of vocabulary): "
                      "no perplexity to give")
    return 10 ** (-total / scored), scored, oov


def best_weights(models: Sequence[ArpaModel], sentences: list[list[str]]) -> list[float]:
    """Weights that minimize the mixture's perplexity on ``sentences`` (``mixture_weights``).
    Dev text none of whose words any LM knows is refused: ``</s>`` alone would set the weights."""
    vocabs = [set(m.vocabulary) for m in models]
    rows = []  # per word: the probability each model gives it
    known_words = 0
    for word, history in _scored(sentences, max(m.order for m in models)):
        ps = [_prob(m, v, word, history) for m, v in zip(models, vocabs)]
        if any(ps):
            rows.append(ps)
            known_words += _is_word(word)
    if not known_words:
        raise LMError("no word of the dev text is in any LM's vocabulary: it cannot fit mixture weights")
    return mixture_weights(rows)


def mixture_weights(rows: Sequence[Sequence[float]], tolerance: float = 1e-10, max_steps: int = 1000) -> list[float]:
    """The weights ``w`` that maximize the mean of ``log(sum_i w_i p_i)`` over ``rows`` (per
    word: the probability each LM gives it; none all 0). The objective is concave in ``w``. Two
    LMs: exactly, by bisection on its derivative in the first weight (a fixed 50 EM steps stopped
    ~1e-3 nats a word short where the best weight is 0 or 1: EM crawls there). More: EM (as
    SRILM's compute-best-mix), each step a model's weight becoming its mean posterior share, until
    a step gains less than ``tolerance`` nats a word (at most ``max_steps``)."""
    probs = np.asarray(rows, dtype=np.float64)
    if probs.shape[1] == 2:
        first = _best_share(probs[:, 0], probs[:, 1])
        return [first, 1.0 - first]
    weights = np.full(probs.shape[1], 1.0 / probs.shape[1])
    mixed = probs @ weights
    fit = np.log(mixed).mean()
    for _ in range(max_steps):
        weights = (probs * weights / mixed[:, None]).mean(axis=0)
        mixed = probs @ weights
        before, fit = fit, np.log(mixed).mean()
        if fit - before < tolerance:
            break
    return [float(w) for w in weights / weights.sum()]


def _best_share(a: np.ndarray, b: np.ndarray) -> float:
    """The ``l`` in [0, 1] that maximizes mean(log(l a + (1 - l) b)): where the derivative
    mean((a - b) / (l a + (1 - l) b)), which falls as ``l`` grows, crosses 0, else the bound it
    points to (infinite at a bound where some word would get probability 0)."""
    def slope(share: float) -> float:
        with np.errstate(divide="ignore"):  # a word only one LM knows, at the other's bound
            return float(np.mean((a - b) / (share * a + (1 - share) * b)))

    if slope(0.0) <= 0 <= slope(1.0):  # (the slope falls: 0 throughout) the LMs agree on every word
        return 0.5  # equal weights, as EM left them
    if slope(0.0) <= 0:
        return 0.0
    if slope(1.0) >= 0:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(60):  # halving 60 times: past a double's precision
        middle = (low + high) / 2
        low, high = (middle, high) if slope(middle) > 0 else (low, middle)
    return (low + high) / 2


def arpa_info(path: str | Path) -> LMInfo:
    """The checks of ``inspect_lm`` (missing, malformed), and that the file is an ARPA file."""
    info = inspect_lm(path)
    if info.binary:
        raise LMError(f"{path}: a KenLM binary; mixing, pruning and perplexity read ARPA files")
    return info


def load_arpa(path: str | Path) -> ArpaModel:
    """An ARPA file in memory, after the checks of ``arpa_info``."""
    arpa_info(path)
    return ArpaModel(path)


def text_unit(info: LMInfo, tokenizer=None) -> str:
    """The units to read text in to score the ARPA LM of ``info``: words for a word LM, characters
    for a character LM, ``tokenizer``'s tokens for a token LM (or a character LM of a character
    model). Text in other units is almost all out of vocabulary and gives a meaningless number,
    so a mismatch is refused, saying what to give instead."""
    if info.unit == "word":
        if tokenizer is not None:
            raise LMError(f"{info.path}: a word LM, which scores text as words; leave out the tokenizer "
                          "(--tokenizer is for token LMs)")
        return "word"
    if tokenizer is not None:
        if info.is_token_lm(tokenizer):
            return "token"
        if info.unit == "char":
            raise LMError(f"{info.path}: a character LM, whose units are not the tokenizer's tokens; leave out "
                          "--tokenizer to score it on characters")
        raise LMError(f"{info.path}: a token LM whose units are not the tokenizer's tokens; give the model it was "
                      "built with (--tokenizer MODEL)")
    if info.unit == "char":
        return "char"
    examples = " ".join([u for u in info.words if u != WORD_SEP][:5])
    raise LMError(f"{info.path}: a token LM (units such as {examples}), which cannot score text "
                  "read as words; give the model it was built with (--tokenizer MODEL) to spell the text in its tokens")


def read_scored_text(paths: Sequence[str | Path], unit: str, tokenizer=None, skipped: list[str] | None = None,
                     what: str = "text") -> list[list[str]]:
    """``read_sentences``, refusing text with no sentences (``what`` names it: "dev text")."""
    skipped = [] if skipped is None else skipped
    sentences = list(read_sentences(paths, unit, tokenizer, skipped))
    if not sentences:
        names = ", ".join(map(str, paths))
        if skipped:
            raise LMError(f"{names}: each of the {len(skipped)} sentences of the {what} has {unspellable(tokenizer)}, "
                          f"e.g. {skipped[0]}")
        raise LMError(f"{names}: the {what} has no sentences (empty after normalization)")
    return sentences


def mix_files(lms: Sequence[str | Path], output: str | Path, weights: Sequence[float] | None = None,
              dev: Sequence[str | Path] = (), tokenizer=None,
              skipped: list[str] | None = None) -> tuple[Path, list[float]]:
    """Interpolate ARPA files of the same units; weights given, or fitted on ``dev`` texts/manifests
    (or equal). The dev text is read in the LMs' units: token LMs need ``tokenizer``, and the dev
    sentences it cannot spell go to ``skipped``."""
    infos = [arpa_info(lm) for lm in lms]  # all checked before any is loaded: large files load slowly
    for info in infos[1:]:
        if info.unit != infos[0].unit:
            raise LMError(f"{infos[0].path} is a {UNIT_NAMES[infos[0].unit]} and {info.path} a "
                          f"{UNIT_NAMES[info.unit]}: mix LMs of the same units")
    sentences = None
    if weights is None and dev:
        unit = [text_unit(info, tokenizer) for info in infos][0]  # each checked: token LMs of another model
        sentences = read_scored_text(dev, unit, tokenizer, skipped, what="dev text")
    models = [ArpaModel(lm) for lm in lms]
    if sentences is not None:
        weights = best_weights(models, sentences)
    elif weights is None:
        weights = [1.0 / len(models)] * len(models)
    return write_arpa(interpolate(models, weights), output), list(weights)
