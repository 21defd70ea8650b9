"""CTC beam search with flashlight-text (torchaudio's decoder's engine): n-gram LMs, lexicons, hotwords.

Which search runs follows from the files given:

- a lexicon (``--lexicon FILE``): lexicon-constrained search, every word from the lexicon;
- a word LM in ARPA format and no lexicon: lexicon-constrained search over the LM's words
  (a word LM in lexicon-free search scores characters as if they were words, and fails badly);
- an LM over the model's own tokens (``asr lm build --unit token --tokenizer MODEL``; for a
  character model a character LM is one), or ``lexicon="none"``: lexicon-free, so words
  outside any word list can be written;
- neither: lexicon-free prefix beam search without an LM.

KenLM binary files carry no readable word list, so a binary word LM needs ``--lexicon``.
The search holds the GIL, so batches are spread over worker processes (forked: the loaded LM
is shared copy-on-write, not loaded again).
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing as mp
import os
import signal
import sys
import weakref
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from flashlight.lib.text.decoder import (CriterionType, LexiconDecoder, LexiconDecoderOptions, LexiconFreeDecoder,
                                         LexiconFreeDecoderOptions, SmearingMode, Trie, ZeroLM)
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from asr.decoding import Decoder, Hypothesis
from asr.hotwords import HotwordLM, PhraseMatcher, parse_hotwords
from asr.lexicon import Lexicon, lexicon_from_words, read_lexicon, spell
from asr.lm import KENLM_MAX_ORDER, UNK, LMError, inspect_lm
from asr.search_workers import set_worker, signals_held, worker_search
from asr.text import WORD_SEP
from asr.tokenizers import Tokenizer

@dataclass(frozen=True)
class BeamSearchOptions:
    """Search settings. Lexicon words the LM does not know get the LM's <unk> probability."""

    beam_size: int = 50
    beam_size_token: int | None = None  # tokens tried per frame (None: all)
    beam_threshold: float = 25.0  # drop hypotheses this far below the best
    lm_weight: float = 1.0  # KenLM scores are log10
    word_score: float = 0.0  # added per word (per | without a lexicon)
    # Subtracted from the blank's log-prob at every frame (icefall's --blank-penalty). CTC
    # posteriors are dominated by blank, so a letter the model half-hears loses to it; a penalty
    # keeps such letters in the search, and the LM, at a higher weight, chooses among them.
    blank_penalty: float = 0.0
    # Subtracted, times log p(k), from each non-blank token's log-prob (asr/priors.py): the
    # posterior becomes a scaled likelihood, which is what should meet the LM. Needs the
    # model's token priors (``log_priors``).
    prior_scale: float = 0.0
    nbest: int = 1
    log_add: bool = False
    hotword_weight: float = 5.0  # bonus per hotword word, in the model's log-prob units

    def __post_init__(self):
        # flashlight takes a beam of 0 or less without complaint and returns nothing (100% WER),
        # or kills the decoding worker: refuse it here, where every caller passes through.
        for name in ("beam_size", "beam_size_token", "nbest"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise LMError(f"{name} must be at least 1, got {value}")
        # Below zero every hypothesis falls under the best and is pruned: an empty transcript.
        if self.beam_threshold < 0:
            raise LMError(f"beam_threshold must be 0 or more, got {self.beam_threshold}")


@contextmanager
def _quiet_stderr():
    """KenLM prints progress bars to fd 2 while loading; keep the CLI's stderr for messages."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            sys.stderr.flush()
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclass
class SearchSpace:
    """What the files give: tokens, words, the loaded LM and hotword phrases; shared by decoders."""

    tokens: Dictionary
    words: Dictionary | None  # None without a lexicon
    lexicon: Lexicon | None
    kenlm: KenLM | None
    phrases: list[tuple[int, ...]] = field(default_factory=list)
    shares: list[tuple[float, ...]] = field(default_factory=list)  # of the hotword weight, per unit
    notes: list[str] = field(default_factory=list)  # what was left out, for the user
    source: str = ""  # the LM and lexicon files, for describe()
    zero_lm: ZeroLM = field(default_factory=ZeroLM, repr=False)  # the LM when there is none
    _tries: dict = field(default_factory=dict, repr=False)  # id(lm) -> trie, for kenlm and zero_lm

    @classmethod
    def load(cls, tokenizer: Tokenizer, lm: str | Path | None = None, lexicon: str | Path | None = None,
             hotwords=None) -> "SearchSpace":
        """The search space of these files, shared with any decoder that asked for the same ones
        while it lives (a package's phone systems search one lexicon with one LM: loaded once)."""
        key = _share_key(tokenizer, lm, lexicon, hotwords)
        space = _SHARED.get(key) if key else None
        if space is None:
            space = cls._load(tokenizer, lm, lexicon, hotwords)
            if key:
                _SHARED[key] = space
        return space

    @classmethod
    def _load(cls, tokenizer: Tokenizer, lm, lexicon, hotwords) -> "SearchSpace":
        info = inspect_lm(lm) if lm else None
        lexicon_free = isinstance(lexicon, str) and lexicon.lower() == "none"
        notes: list[str] = []
        lex = None
        if lexicon and not lexicon_free:
            report = read_lexicon(lexicon, tokenizer)
            lex = report.lexicon
            if report.skipped:
                notes.append(report.summary(str(lexicon)))
        elif info is not None and not lexicon_free and not info.searches_lexicon_free(tokenizer):
            if info.binary:
                raise LMError(f"{info.path}: a binary KenLM file has no readable word list; give --lexicon "
                              "(or --lexicon none for an LM over the model's tokens)")
            report = lexicon_from_words(info.words, tokenizer)
            lex = report.lexicon
            if report.skipped:
                notes.append(report.summary(str(info.path)))
        phrases = parse_hotwords(hotwords)
        if lex is not None:
            for word in {w for p in phrases for w in p.split()} - lex.keys():
                if spell(word, tokenizer):
                    lex[word] = [spell(word, tokenizer)]
        tokens = Dictionary(list(tokenizer.tokens))
        if lex is not None:
            words = Dictionary([*lex, UNK] if UNK not in lex else list(lex))
            words.set_default_index(words.get_index(UNK))
            lm_words = words
        else:
            words = None
            lm_words = Dictionary([*tokenizer.tokens, UNK])
            if info is not None and not info.binary and not info.is_token_lm(tokenizer) and tokenizer.kind != "char":
                raise LMError(f"{info.path}: lexicon-free search scores the model's tokens with the LM, and its "
                              f"units are not this model's {tokenizer.kind} pieces: build one with `asr lm build "
                              "--unit token --tokenizer MODEL`, or give a word LM and a lexicon")
        kenlm = None
        if info is not None:
            if info.order and info.order > KENLM_MAX_ORDER:
                raise LMError(f"{info.path}: a {info.order}-gram LM; the KenLM in flashlight-text loads up to "
                              f"{KENLM_MAX_ORDER}-grams")
            try:
                with _quiet_stderr():
                    kenlm = KenLM(str(info.path), lm_words)
            except Exception as e:  # KenLM's errors arrive as RuntimeError: where it threw, then why
                lines = str(e).strip().splitlines()
                raise LMError(f"{info.path}: KenLM cannot load it: {' '.join(lines[1:2] or lines[:1])}") from None
        source = ", ".join(f"{k} {v}" for k, v in (("lm", lm), ("lexicon", lexicon)) if v)
        space = cls(tokens, words, lex, kenlm, notes=notes, source=source)
        space._add_phrases(phrases, tokenizer)
        return space

    def trie(self, lm) -> Trie:
        """The lexicon as flashlight's trie, each word's unigram score under ``lm`` smeared along
        its spelling (as torchaudio's ctc_decoder builds it). Built once per LM of this space:
        73 k words take seconds, and tuning and rescoring make a search per setting."""
        if lm is not self.kenlm and lm is not self.zero_lm:  # a hotword wrapper: its own
            return self._build_trie(lm)
        if id(lm) not in self._tries:  # both LMs live as long as this space, so their ids stay theirs
            self._tries[id(lm)] = self._build_trie(lm)
        return self._tries[id(lm)]

    def _build_trie(self, lm) -> Trie:
        ids = {self.tokens.get_entry(i): i for i in range(self.tokens.index_size())}
        trie = Trie(self.tokens.index_size(), self.tokens.get_index(WORD_SEP))
        start = lm.start(False)
        for word, spellings in self.lexicon.items():
            index = self.words.get_index(word)
            _, score = lm.score(start, index)
            for spelling in spellings:
                trie.insert([ids[t] for t in spelling], index, score)
        trie.smear(SmearingMode.MAX)
        return trie

    def _add_phrases(self, phrases: list[str], tokenizer: Tokenizer) -> None:
        for phrase in phrases:
            unknown = sorted(tokenizer.unknown_chars(phrase))
            if unknown:
                what = (f"words without a pronunciation: {' '.join(unknown)}" if tokenizer.kind == "phone"
                        else f"characters outside the tokenizer {''.join(unknown)!r}")
                self.notes.append(f"hotword {phrase!r} left out: {what}")
                continue
            if self.words is not None:  # the search asks the LM once per word
                self.phrases.append(tuple(self.words.get_index(w) for w in phrase.split()))
                self.shares.append(tuple(1.0 for _ in phrase.split()))
            else:  # once per token: the phrase is |w o r d|, the bonus spread over its tokens
                units, shares = [tokenizer.word_sep_id], [0.0]
                for word in phrase.split():
                    ids = tokenizer.encode(word)
                    units += ids + [tokenizer.word_sep_id]
                    shares += [1.0 / len(ids)] * len(ids) + [0.0]
                self.phrases.append(tuple(units))
                self.shares.append(tuple(shares))


_SHARED: "weakref.WeakValueDictionary[tuple, SearchSpace]" = weakref.WeakValueDictionary()


def _share_key(tokenizer: Tokenizer, lm, lexicon, hotwords) -> tuple | None:
    """What makes two spaces the same: the tokens, the LM file and the lexicon file's content.
    Only for a lexicon file without hotwords (else the tokenizer's own spellings enter)."""
    if hotwords or not lexicon or str(lexicon).lower() == "none" or not Path(lexicon).is_file() \
            or (lm and not Path(lm).is_file()):  # (a missing file: loading says so)
        return None
    lm_stat = None
    if lm:
        st = Path(lm).stat()
        lm_stat = (str(Path(lm).resolve()), st.st_size, st.st_mtime_ns)
    digest = hashlib.sha1(Path(lexicon).read_bytes()).hexdigest()
    return tuple(tokenizer.tokens), lm_stat, digest


@dataclass
class _Search:
    """A flashlight decoder and what it was given: pybind11 keeps no reference to them, so
    they must outlive it here (pytorch/audio#3218)."""

    decoder: LexiconDecoder | LexiconFreeDecoder
    lm: object
    trie: Trie | None = None


class BeamSearchDecoder(Decoder):
    """CTC beam search; see the module docstring for how files choose the search.

    ``workers`` > 1 decodes the utterances of a batch in that many processes.
    """

    def __init__(self, tokenizer: Tokenizer, lm: str | Path | None = None, lexicon: str | Path | None = None,
                 hotwords=None, options: BeamSearchOptions = BeamSearchOptions(), workers: int = 1,
                 space: SearchSpace | None = None, log_priors: Sequence[float] | None = None):
        super().__init__(tokenizer)
        self.options = options
        self.workers = max(1, workers)
        self.log_priors = log_priors
        self._offsets = self._emission_offsets()
        self.space = space or SearchSpace.load(tokenizer, lm, lexicon, hotwords)
        self.notes = self.space.notes
        self._pool: ProcessPoolExecutor | None = None
        self._search = self._build()

    def with_options(self, **changes) -> "BeamSearchDecoder":
        """Same files and loaded LM, other settings (for tuning)."""
        return BeamSearchDecoder(self.tokenizer, options=replace(self.options, **changes), workers=self.workers,
                                 space=self.space, log_priors=self.log_priors)

    def describe(self) -> str:
        o = self.options
        return (f"beam {o.beam_size}, {self.space.source or 'no LM'}, lm_weight {o.lm_weight:g}, "
                f"word_score {o.word_score:g}" + (f", blank_penalty {o.blank_penalty:g}" if o.blank_penalty else "")
                + (f", prior_scale {o.prior_scale:g}" if o.prior_scale else ""))

    def _emission_offsets(self) -> np.ndarray | None:
        """What each frame's log-probs lose: the blank penalty, and prior_scale * log p(k) elsewhere."""
        o = self.options
        if not o.blank_penalty and not o.prior_scale:
            return None
        offsets = np.zeros(len(self.tokenizer), dtype=np.float32)
        if o.prior_scale:
            if self.log_priors is None:
                raise LMError(f"prior_scale {o.prior_scale:g} needs the model's token priors: run `asr priors MODEL "
                              "TRAIN_MANIFEST` first")
            if len(self.log_priors) != len(self.tokenizer):
                raise LMError(f"{len(self.log_priors)} token priors for {len(self.tokenizer)} tokens")
            offsets[:] = o.prior_scale * np.asarray(self.log_priors, dtype=np.float32)
        offsets[self.tokenizer.blank_id] = o.blank_penalty
        return offsets

    @property
    def lexicon_free(self) -> bool:
        return self.space.lexicon is None

    def _build(self) -> _Search:
        o, s = self.options, self.space
        lm, lm_weight = s.kenlm, o.lm_weight
        if s.phrases:  # the wrapper applies lm_weight itself, so hotword bonuses stay in log-prob units
            bonuses = [tuple(o.hotword_weight * x for x in shares) for shares in s.shares]
            lm, lm_weight = HotwordLM(s.kenlm, o.lm_weight, PhraseMatcher(
                s.phrases, bonuses, None if s.words is not None else self.tokenizer.word_sep_id)), 1.0
        elif lm is None:
            lm = s.zero_lm
        token_beam = o.beam_size_token or len(self.tokenizer)
        if s.lexicon is not None:
            opts = LexiconDecoderOptions(beam_size=o.beam_size, beam_size_token=token_beam,
                                         beam_threshold=o.beam_threshold, lm_weight=lm_weight,
                                         word_score=o.word_score, unk_score=-math.inf, sil_score=0.0,
                                         log_add=o.log_add, criterion_type=CriterionType.CTC)
        else:  # no words here: the word score goes to the word separator
            opts = LexiconFreeDecoderOptions(beam_size=o.beam_size, beam_size_token=token_beam,
                                             beam_threshold=o.beam_threshold, lm_weight=lm_weight,
                                             sil_score=o.word_score, log_add=o.log_add,
                                             criterion_type=CriterionType.CTC)
        blank, sep = self.tokenizer.blank_id, self.tokenizer.word_sep_id
        if s.lexicon is not None:
            trie = s.trie(lm)
            return _Search(LexiconDecoder(opts, trie, lm, sep, blank, s.words.get_index(UNK), [], False), lm, trie)
        return _Search(LexiconFreeDecoder(opts, lm, sep, blank, []), lm)

    # -- searching ------------------------------------------------------------------------------

    def _search_one(self, emissions: np.ndarray) -> list[tuple[list[int], list[int], float]]:
        """(T, V) float32 log-probs -> [(frame path, word ids, score)], best first."""
        frames = emissions.shape[0]
        if frames == 0:
            return [([], [], 0.0)]
        if self._offsets is not None:
            emissions = emissions - self._offsets
        if self.space.lexicon is not None:
            # A lexicon word is complete only after its |, which our models do not emit at the
            # end of an utterance: a free extra frame of | (or blank) lets the last word end.
            end = np.full((1, emissions.shape[1]), -1e4, dtype=np.float32)
            end[0, [self.tokenizer.blank_id, self.tokenizer.word_sep_id]] = 0.0
            emissions = np.concatenate([emissions, end])
        emissions = np.ascontiguousarray(emissions, dtype=np.float32)
        results = self._search.decoder.decode(emissions.ctypes.data, emissions.shape[0], emissions.shape[1])
        # flashlight's paths have one extra step at each end (the start and end states).
        return [(list(r.tokens)[1: frames + 1], [w for w in r.words if w >= 0], float(r.score))
                for r in results[: self.options.nbest]] or [([], [], -math.inf)]

    def _hypothesis(self, path: list[int], word_ids: list[int], score: float) -> Hypothesis:
        blank, sep = self.tokenizer.blank_id, self.tokenizer.word_sep_id
        tokens, frames, prev = [], [], blank
        for t, tok in enumerate(path):
            if tok != prev and tok != blank and not (tok == sep and (not tokens or tokens[-1] == sep)):
                tokens.append(tok)
                frames.append(t)
            prev = tok
        if tokens and tokens[-1] == sep:
            tokens.pop()
            frames.pop()
        if self.space.words is not None:
            text = " ".join(self.space.words.get_entry(w) for w in word_ids)
        else:
            text = self.tokenizer.decode(tokens)
        return Hypothesis(text, tuple(tokens), tuple(frames), score)

    def decode_nbest(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        items = [log_probs[b, : int(lengths[b])].detach().float().cpu().numpy() for b in range(log_probs.shape[0])]
        if self.workers > 1 and len(items) > 1 and "fork" in mp.get_all_start_methods():
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("fork"),
                                                 initializer=set_worker, initargs=(self,))
            chunk = max(1, len(items) // (4 * self.workers))
            try:
                with signals_held():  # the workers fork as the work is handed out
                    results = self._pool.map(worker_search, items, chunksize=chunk)
                raw = list(results)
            except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (asr.cli raises it as one): not the whole batch first
                self.close(stop=True)
                raise
        else:
            raw = [self._search_one(e) for e in items]
        return [[self._hypothesis(*r) for r in results] for results in raw]

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        return [nbest[0] for nbest in self.decode_nbest(log_probs, lengths)]

    def close(self, stop: bool = False) -> None:
        """End the worker processes once their work is done; with ``stop``, once the search each
        is in is done (the rest of the batch is dropped)."""
        if self._pool is not None:
            if stop:  # (terminating them instead can leave the pool's queue feeder blocked at exit)
                for pid in list(getattr(self._pool, "_processes", None) or {}):
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGINT)
            self._pool.shutdown(wait=not stop, cancel_futures=stop)
            self._pool = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

