"""N-best rescoring across systems (``asr tune-rescoring``, then ``--rescoring FILE``).

Each system (a model package, searching as its package says) proposes its ``nbest`` best
transcripts of an utterance. Every candidate is then scored by every system's acoustic model,
by the first system's word LM and by its length, and the best total wins:

    score(W) = sum_s weight_s * log P_s(W | X) + lm_weight * log10 P_LM(W) + word_score * |W|

``log P_s(W | X)`` is CTC's log-likelihood of W spelled in system s's units: the sum over all
its alignments (torch's ``ctc_loss``), so a phone model and a BPE model judge the same words in
their own terms. With ``prior_scale`` each system's frame posteriors are first divided by its
token priors to that power (``asr priors``; the blank is left alone), so the sum is over scaled
likelihoods, as in prior-corrected search: frequent tokens lose their head start. ``P_LM`` is
the first system's word n-gram, or, given a recurrent LM (``asr lm rnn``), the two interpolated
word by word. The first system's weight is 1. A candidate that some
system weighed (not at weight 0) cannot spell (a word without a pronunciation, for a phone model)
is left out, unless no candidate is left.

Unlike ROVER (``asr combine``), which votes word by word and needs three systems to outvote
one, two systems already help here, since each scores the other's hypotheses; the weights are
tuned on a dev manifest (``tune``) and kept in a small YAML file that names the systems.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from asr.arpa import LMError
from asr.data import Utterance
from asr.decoding import Hypothesis
from asr.decoding_config import load_log_priors
from asr.evaluate import first_pieces, join_pieces, none_readable, readable_batches
from asr.metrics import word_errors
from asr.rescoring_grid import PieceTable, joined_oracle_errors  # noqa: F401 (the latter: asr.rescoring's API)
from asr.rnnlm import interpolate, interpolation_weight, load_rnnlm
from asr.search_workers import SearchWorkerDied, passing_on, survivors
from asr.text import normalize_text, plural
from asr.tokenizers import Tokenizer
from asr.transcribe import RUN_OPTIONS, Transcriber

DEFAULT_WEIGHTS = (0.25, 0.5, 1.0, 1.5)  # of each system after the first
DEFAULT_LM_WEIGHTS = (0.5, 1.0, 2.0, 3.0, 4.0)
DEFAULT_WORD_SCORES = (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0)


class RescoringError(ValueError):
    pass


class NothingToTune(RescoringError):
    """The tuning manifest gave nothing to tune on (its caller names the manifest)."""


@dataclass(frozen=True)
class RescoringOptions:
    weights: tuple[float, ...] = (1.0,)  # per system, the first 1
    lm_weight: float = 1.0
    word_score: float = 0.0
    nbest: int = 16  # candidates each system proposes
    rnnlm: str | None = None  # a recurrent LM (asr lm rnn) interpolated with the word LM, if any
    rnnlm_lambda: float = 0.0  # its share, chosen by perplexity on the tuning manifest's transcripts
    prior_scale: float = 0.0  # each system's CTC scores over p(k|x) / p(k)^prior_scale (asr.priors)


@dataclass
class Candidates:
    """One utterance's candidate transcripts and their scores, system by system."""

    texts: list[str]
    ctc: list[list[float]]  # [system][candidate]: log P_s(W | X), -inf where s cannot spell W
    lm: list[float]  # log10 P_LM(W), with the sentence end

    def best(self, options: RescoringOptions) -> int:
        def total(i: int) -> float:
            acoustic = sum(w * scores[i] for w, scores in zip(options.weights, self.ctc) if w)
            return acoustic + options.lm_weight * self.lm[i] + options.word_score * len(self.texts[i].split())

        # Candidates the weighed systems can all spell; a system at weight 0 has no say, not even a veto
        asked = [scores for w, scores in zip(options.weights, self.ctc) if w]
        spellable = [i for i in range(len(self.texts)) if all(s[i] > -math.inf for s in asked)]
        return max(spellable or range(len(self.texts)), key=total)  # ties: the first system's order


def ctc_log_likelihoods(log_probs: torch.Tensor, tokenizer: Tokenizer, texts: Sequence[str]) -> list[float]:
    """(T, V) log-probs of one utterance -> log P(text | audio) per text, summed over all CTC
    alignments of its spelling; -inf for a text the tokenizer cannot spell or the frames cannot fit."""
    log_probs = log_probs.detach().float().cpu()
    scores = []
    for text in texts:
        try:
            ids = tokenizer.encode(text)
        except ValueError:  # UnknownCharacterError / UnknownWordError
            scores.append(-math.inf)
            continue
        if not ids:
            scores.append(float(log_probs[:, tokenizer.blank_id].sum()))
            continue
        loss = F.ctc_loss(log_probs[:, None, :], torch.tensor([ids]), torch.tensor([log_probs.shape[0]]),
                          torch.tensor([len(ids)]), blank=tokenizer.blank_id, reduction="sum")
        scores.append(-float(loss))  # inf loss (too few frames) -> -inf
    return scores


class WordLM:
    """log10 P(sentence) under the word n-gram LM that a beam search decoder has loaded, or under
    its interpolation with a recurrent LM (``asr.rnnlm``): word by word,
    P = (1 - rnnlm_lambda) P_ngram + rnnlm_lambda P_rnn."""

    def __init__(self, decoder, rnnlm=None):
        space = getattr(decoder, "space", None)
        if space is None or space.kenlm is None or space.words is None:
            raise RescoringError("n-best rescoring needs a word LM: the first system must search with a word LM "
                                 "and lexicon: give it one with `asr export MODEL PACKAGE --lm LM` and rescore "
                                 "with PACKAGE first")
        self.kenlm, self.words = space.kenlm, space.words
        self.unknown = self.words.get_index("<unk>")
        self.rnnlm = rnnlm

    def ngram_word_log_probs(self, text: str) -> np.ndarray:
        """ln P of each word and of the sentence end under the n-gram."""
        state, scores = self.kenlm.start(False), []
        for word in text.split():
            state, s = self.kenlm.score(state, self.words.get_index(word))  # unknown words: <unk>'s index
            scores.append(s)
        scores.append(self.kenlm.finish(state)[1])
        return np.array(scores) * math.log(10)

    def scores(self, texts: Sequence[str], rnnlm_lambda: float = 0.0) -> list[float]:
        ngram = [self.ngram_word_log_probs(t) for t in texts]
        if self.rnnlm is None or rnnlm_lambda <= 0:
            return [float(n.sum() / math.log(10)) for n in ngram]
        sentences = [t.split() for t in texts]
        rnn = self.rnnlm.word_log_probs(sentences)
        for s, n, r in zip(sentences, ngram, rnn):
            # a word the RNN LM does not know would get its <unk>, which it never trained on (every
            # training word is in its vocabulary): the n-gram alone scores it, as choose_rnnlm_lambda
            # leaves such words out of the perplexity that sets the share
            unknown = np.array([not self.rnnlm.known(w) for w in s] + [False])
            r[unknown] = n[unknown]
        return [interpolate(n, r, rnnlm_lambda) for n, r in zip(ngram, rnn)]

    def score(self, text: str, rnnlm_lambda: float = 0.0) -> float:
        return self.scores([text], rnnlm_lambda)[0]


class RescoringTranscriber(Transcriber):
    """The first system's transcriber (its tokenizer, segmenter and word times), whose n-best
    comes from every system and is rescored; ``options.weights`` has one weight per system."""

    def __init__(self, systems: Sequence[Transcriber], options: RescoringOptions):
        first = systems[0]
        if len(options.weights) != len(systems):
            raise RescoringError(f"{len(options.weights)} weight(s) for {len(systems)} systems")
        rates = {t.sample_rate for t in systems}
        if len(rates) > 1:
            raise RescoringError(f"the systems' sample rates differ ({', '.join(map(str, sorted(rates)))} Hz)")
        super().__init__(first.loaded, first.decoder, device=str(first.device), segmenter=first.segmenter.options,
                         batch_size=first.batch_size)
        rnnlm = load_rnnlm(options.rnnlm) if options.rnnlm else None
        self.systems, self.options = list(systems), options
        self.lm = WordLM(first.decoder, rnnlm)  # its share in the LM: options.rnnlm_lambda
        # each system's own search, asked for the n best (a greedy decoder has one)
        self.searches = [t.decoder.with_options(nbest=options.nbest) if hasattr(t.decoder, "with_options")
                         else t.decoder for t in self.systems]
        # each system's log p(k), the blank's 0 (left alone): what its log-probs lose, times the scale;
        # a file of another model's priors blocks nothing at scale 0, as in beam search (log_priors_for)
        self.prior_offsets, self._prior_errors = [], []
        for t in self.systems:
            try:
                logs = load_log_priors(t.loaded.path, len(t.tokenizer), t.tokenizer.tokens)
            except LMError as e:
                logs = None
                self._prior_errors.append(str(e))
            self.prior_offsets.append(None if logs is None else torch.tensor(logs).index_fill_(
                0, torch.tensor([t.tokenizer.blank_id]), 0.0))
        self._check_priors(options.prior_scale)

    def _check_priors(self, prior_scale: float) -> None:
        if prior_scale and self._prior_errors:
            raise RescoringError(self._prior_errors[0])
        missing = [str(t.loaded.path) for t, p in zip(self.systems, self.prior_offsets) if p is None]
        if prior_scale and missing:
            raise RescoringError(f"prior_scale {prior_scale:g} needs every system's token priors; "
                                 f"{', '.join(missing)}: none (run `asr priors MODEL TRAIN_MANIFEST`)")

    def candidates(self, waves: Sequence[torch.Tensor], first_log_probs=None, searches=None) -> list[Candidates]:
        """Every system's n-best of each wave, pooled (first system first), and their scores."""
        scale = self.options.prior_scale
        return passing_on(lambda pooled: pooled[scale], self.candidates_at, waves, (scale,), first_log_probs, searches)

    def candidates_at(self, waves: Sequence[torch.Tensor], prior_scales: Sequence[float], first_log_probs=None,
                      searches=None) -> dict[float, list[Candidates]]:
        """``candidates`` scored at each prior scale: the systems search once (as their packages
        say, or with ``searches``: ``search_for``'s) and the LM scores once; only the CTC scores differ.
        A wave whose search killed its worker alone in any system (``SearchWorkerDied``) has None."""
        self._check_priors(max(prior_scales, default=0.0))
        outputs = [first_log_probs if i == 0 and first_log_probs is not None else t.log_probs(waves)
                   for i, t in enumerate(self.systems)]
        nbests = [survivors(search.decode_nbest, *out)[0] for search, out in zip(searches or self.searches, outputs)]
        texts = {b: list(dict.fromkeys(h.text for nbest in nbests for h in nbest[b][: self.options.nbest]))
                 for b in range(len(waves)) if all(nbest[b] is not None for nbest in nbests)}
        lm = iter(self.lm.scores([text for t in texts.values() for text in t], self.options.rnnlm_lambda))  # one run
        lm_scores = {b: [next(lm) for _ in t] for b, t in texts.items()}
        pooled = {}
        for scale in dict.fromkeys(prior_scales):
            scored = [(self._divided(lp, i, scale), n) for i, (lp, n) in enumerate(outputs)]
            pooled[scale] = [Candidates(texts[b], [ctc_log_likelihoods(lp[b, : int(n[b])], t.tokenizer, texts[b])
                                                   for t, (lp, n) in zip(self.systems, scored)], lm_scores[b])
                             if b in texts else None for b in range(len(waves))]
        if len(texts) < len(waves):
            raise SearchWorkerDied(failed=[b for b in range(len(waves)) if b not in texts], results=pooled)
        return pooled

    def _divided(self, log_probs: torch.Tensor, system: int, scale: float) -> torch.Tensor:
        """log p(k|x) - scale * log p(k) for every token but the blank."""
        return log_probs - scale * self.prior_offsets[system] if scale else log_probs

    def search_for(self, workers: int | None = None) -> tuple:
        """Each system's search, in ``workers`` processes when given."""
        return tuple(self._with_workers(search, workers) for search in self.searches)

    def nbests(self, waves, log_probs, out_lengths, search=None) -> list[list[Hypothesis]]:
        return passing_on(lambda candidates: [None if c is None else [self._chosen(c)] for c in candidates],
                          self.candidates, waves, (log_probs, out_lengths), search)

    def _chosen(self, candidates: Candidates) -> Hypothesis:
        text = candidates.texts[candidates.best(self.options)]
        try:  # the first system's spelling; word times come from aligning it (asr.alignment)
            tokens = tuple(self.tokenizer.encode(text))
        except ValueError:
            tokens = ()
        return Hypothesis(text, tokens, (), 0.0)

    def transcribe(self, audio, sample_rate=None, decoder=None, lm=None, **decoder_options):
        """As ``Transcriber.transcribe``; a decoder, LM or search option for one call is the first
        system's alone (as ``--decoder greedy|beam`` is for a package that rescores); run options
        alone (``workers``, ``batch_size``) keep the rescoring."""
        search = {k for k in decoder_options if k not in RUN_OPTIONS}
        if decoder not in (None, "auto") or lm is not None or search:  # auto: this rescoring
            return self.systems[0].transcribe(audio, sample_rate, decoder=decoder, lm=lm, **decoder_options)
        return super().transcribe(audio, sample_rate, **decoder_options)

    def describe(self) -> str:
        o = self.options
        rnn = f", with an RNN LM at {o.rnnlm_lambda:g}" if self.lm.rnnlm is not None and o.rnnlm_lambda > 0 else ""
        systems = plural(len(self.systems), "system")
        prior = f", prior_scale {o.prior_scale:g}" if o.prior_scale else ""
        return (f"n-best rescoring of {systems} ({o.nbest} each; weights "
                f"{', '.join(f'{w:g}' for w in o.weights)}, lm_weight {o.lm_weight:g}{rnn}, "
                f"word_score {o.word_score:g}{prior})")


@dataclass
class RescoringTuneResult:
    options: RescoringOptions
    wer: float
    first_wer: float  # the first system alone, as its package searches
    oracle_wer: float = math.nan  # the best candidate of each utterance (piece): what no weights can beat
    candidates_per_utterance: float = 0.0  # pooled, on average (per piece of an utterance cut at pauses)
    grid: list[tuple[tuple[float, ...], float, float, float, float]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    utterances: int = 0
    seconds: float = 0.0
    perplexities: dict[float, float] = field(default_factory=dict)  # RNN LM share -> dev perplexity


def tune(combined: RescoringTranscriber, utterances: Sequence[Utterance], weights=DEFAULT_WEIGHTS,
         lm_weights=DEFAULT_LM_WEIGHTS, word_scores=DEFAULT_WORD_SCORES, batch_seconds: float = 300.0,
         prior_scales: Sequence[float] = (0.0,)) -> RescoringTuneResult:
    """Grid search on a dev manifest: every system runs once; each grid point only re-ranks the
    pooled candidates. Ties go to the smaller weights, then the word score nearer 0, then the
    smaller prior scale (which needs every system's token priors). With an RNN
    LM (``combined.options.rnnlm``) its share of the LM is chosen first, by perplexity on the
    manifest's transcripts: a smoother criterion than the WER of a few hundred words.

    Utterances are run as ``asr evaluate`` runs them (``readable_batches``): one of the
    segmenter's ``max_seconds`` or more is cut at pauses, each piece gets its own candidates and
    choice, and the choices' texts are joined and scored against the whole reference
    (``PieceTable``), as evaluate joins and scores them. An utterance whose search kills its
    worker alone in any system (``SearchWorkerDied``) is skipped, as an unreadable one is."""
    start = time.perf_counter()
    # A repeated value would only score the same points again (and count them as settings).
    weights, lm_weights, word_scores, prior_scales = (
        list(dict.fromkeys(g)) for g in (weights, lm_weights, word_scores, prior_scales))
    base, perplexities = combined.options, {}
    if combined.lm.rnnlm is not None:
        lam, perplexities = choose_rnnlm_lambda(combined.lm, [normalize_text(u.text) for u in utterances])
        combined.options = base = replace(base, rnnlm_lambda=lam)  # the candidates are scored with it
    pooled, refs, skipped, silent, paths = {s: [] for s in prior_scales}, [], [], [], []
    for waves, batch_refs in readable_batches(combined, list(utterances), batch_seconds, skipped, silent, paths):
        refs += batch_refs  # per piece: None continues the utterance before it
        with torch.inference_mode():
            for scale, candidates in survivors(combined.candidates_at, waves, prior_scales)[0].items():
                pooled[scale] += candidates
    refs, pooled = _without_failed(refs, pooled, paths, skipped)
    for ref in silent:  # no model run, no candidate: transcribed as silence, as evaluate and transcribe do
        refs.append(ref)
        for scale in pooled:
            pooled[scale].append(Candidates([], [[] for _ in combined.systems], []))
    if not refs:
        raise NothingToTune(none_readable(len(utterances), skipped, "to tune on"))
    if len(refs) == len(silent):  # every point would score the same: the "best" would be the grid's first
        raise NothingToTune(f"no speech to tune on: all {len(silent)} readable utterances are silent "
                             "or steady noise alone")
    lists = [c.texts for c in pooled[prior_scales[0]]]  # per piece
    # the first system's best (n-best lists are pooled in order), as evaluate scores it
    whole_refs, first_hyps = join_pieces(refs, [normalize_text(texts[0]) if texts else "" for texts in lists])
    others = len(combined.systems) - 1
    tables, grid = {scale: PieceTable(candidates, refs) for scale, candidates in pooled.items()}, []
    for scale, rest, lm_weight, word_score in itertools.product(
            pooled, itertools.product(weights, repeat=others), lm_weights, word_scores):
        wer = tables[scale].word_error_rate((1.0, *rest), lm_weight, word_score)
        grid.append(((1.0, *rest), lm_weight, word_score, scale, wer))
    best = min(grid, key=lambda g: (round(g[4], 9), sum(g[0]), g[1], abs(g[2]), g[3]))
    return RescoringTuneResult(replace(base, weights=best[0], lm_weight=best[1], word_score=best[2],
                                       prior_scale=best[3]), best[4],
                               word_errors(whole_refs, first_hyps).rate, tables[prior_scales[0]].oracle_rate(),
                               sum(map(len, lists)) / len(lists), grid, skipped, len(whole_refs),
                               time.perf_counter() - start, perplexities)


def _without_failed(refs: list, pooled: dict, paths: list, skipped: list) -> tuple[list, dict]:
    """``refs`` and ``pooled`` without every piece of an utterance one of whose pieces has no
    candidates (its search killed its worker alone: ``candidates_at``), which goes to ``skipped``."""
    firsts = first_pieces(refs)
    failed = dict.fromkeys(firsts[row] for row, c in enumerate(next(iter(pooled.values()))) if c is None)
    skipped += [(paths[row], SearchWorkerDied.problem) for row in failed]
    kept = [row for row in range(len(refs)) if firsts[row] not in failed]
    return [refs[row] for row in kept], {scale: [c[row] for row in kept] for scale, c in pooled.items()}


def choose_rnnlm_lambda(lm: WordLM, texts: Sequence[str]) -> tuple[float, dict[float, float]]:
    """The RNN LM's share with the lowest perplexity on ``texts`` (words both LMs know, and the
    sentence ends) -> (share, {share: perplexity})."""
    given, texts = len(texts), [t for t in texts if t.strip()]
    if not texts:  # the sentence ends alone would choose it on nothing said
        raise NothingToTune(f"no words to choose the RNN LM's share on: the transcripts of all {given} "
                             "utterances are empty")
    sentences = [t.split() for t in texts]
    ngram = [lm.ngram_word_log_probs(t) for t in texts]
    rnn = lm.rnnlm.word_log_probs(sentences)
    known = [np.array([lm.rnnlm.known(w) and lm.words.get_index(w) != lm.unknown for w in s] + [True])
             for s in sentences]
    return interpolation_weight(ngram, rnn, known)
