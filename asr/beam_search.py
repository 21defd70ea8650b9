"""CTC beam search with flashlight-text (torchaudio's decoder's engine): n-gram LMs, lexicons, hotwords.

Which search runs follows from the files given:

- a lexicon (``--lexicon FILE``): lexicon-constrained search, every word from the lexicon,
  scored by a word LM (an LM over the model's tokens is refused with a lexicon);
- a word LM in ARPA format and no lexicon: lexicon-constrained search over the LM's words
  (a word LM in lexicon-free search scores characters as if they were words, and fails badly);
- an LM over the model's own tokens (``asr lm build --unit token --tokenizer MODEL``; for a
  character model a character LM is one), or ``lexicon="none"``: lexicon-free, so words
  outside any word list can be written;
- neither: lexicon-free prefix beam search without an LM.

KenLM binary files carry no readable word list, so a binary word LM needs ``--lexicon``.
asr/search_space.py loads the files and checks that they go together.
The search holds the GIL, so batches are spread over worker processes (forked: the loaded LM
is shared copy-on-write, not loaded again).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import numbers
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from flashlight.lib.text.decoder import (CriterionType, LexiconDecoder, LexiconDecoderOptions, LexiconFreeDecoder,
                                         LexiconFreeDecoderOptions, Trie)

from asr.decoding import Decoder, Hypothesis
from asr.hotwords import HotwordLM, PhraseMatcher
from asr.lm import UNK, LMError
from asr.search_space import SearchSpace
from asr.search_workers import SearchWorkerDied, passing_on, set_worker, signals_held, worker_search
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
        # Python callers' values are not coerced as decoding.yaml's and the CLI's are: "8" failed on
        # "'<' not supported", 8.0 on a page of pybind11 signatures inside flashlight.
        def refuse(name, what):
            value = getattr(self, name)
            raise LMError(f"{name} must be {what}, got {value if _is_number(value) else repr(value)}")

        # flashlight takes a beam of 0 or less without complaint and returns nothing (100% WER),
        # or kills the decoding worker: refuse it here, where every caller passes through.
        for name in ("beam_size", "beam_size_token", "nbest"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and isinstance(value, numbers.Integral)):
                refuse(name, "a whole number")
            if value is not None and value < 1:
                refuse(name, "at least 1")
        # A NaN weight empties every transcript, an infinite one lets one term decide them all.
        for name in ("lm_weight", "word_score", "blank_penalty", "prior_scale", "hotword_weight"):
            if not _is_number(getattr(self, name)) or not math.isfinite(getattr(self, name)):
                refuse(name, "a finite number")
        # Below zero every hypothesis falls under the best and is pruned: an empty transcript.
        # NaN compares false with everything, so it would slip past that test; inf is no pruning.
        if not _is_number(self.beam_threshold):
            refuse("beam_threshold", "a number")
        if math.isnan(self.beam_threshold) or self.beam_threshold < 0:
            refuse("beam_threshold", "0 or more")
        if not isinstance(self.log_add, (bool, np.bool_)):
            refuse("log_add", "true or false")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)  # (True is an int to Python)


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
        self._pool_size = 0
        # one batch at a time in the pool: threads sharing this decoder would otherwise close the
        # fresh pool one of them forked to retry a batch, as they each saw the old one break
        self._pool_lock = threading.Lock()
        # what worker deaths cost this decoder so far: the wall time of every try a killed worker
        # broke off (one utterance's too), and the batches searched again (asr.evaluate keeps
        # them out of the RTF, which would otherwise rise with each death)
        self.lost_seconds = 0.0
        self.retried_batches = 0
        self._search = self._build()

    def with_options(self, workers: int | None = None, **changes) -> "BeamSearchDecoder":
        """Same files and loaded LM, other settings (for tuning) or another number of ``workers``
        (left out: this decoder's)."""
        return BeamSearchDecoder(self.tokenizer, options=replace(self.options, **changes),
                                 workers=self.workers if workers is None else workers,
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
                s.phrases, bonuses, None if s.words is not None else self.tokenizer.word_sep_id), s.lifts), 1.0
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
        # flashlight keeps apart paths that differ only in a | at the end or twice between words, in
        # how subwords split a word, or in a last word left unfinished: one transcript, listed once
        # (best first) in n-best.
        found, seen = [], set()
        for r in results:
            path, words = list(r.tokens)[1: frames + 1], [w for w in r.words if w >= 0]  # (start, end states)
            key = tuple(words) if self.space.words is not None else self.tokenizer.decode(self._collapse(path)[0])
            if key not in seen:
                seen.add(key)
                found.append((path, words, float(r.score)))
            if len(found) == self.options.nbest:
                break
        return found or [([], [], -math.inf)]

    def _collapse(self, path: list[int]) -> tuple[list[int], list[int]]:
        """A frame path -> (tokens, their frames): repeats merged, blanks dropped, no | before the
        first word, after the last or twice in a row."""
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
        return tokens, frames

    def _hypothesis(self, path: list[int], word_ids: list[int], score: float) -> Hypothesis:
        tokens, frames = self._collapse(path)
        if self.space.words is not None:
            text = " ".join(self.space.words.get_entry(w) for w in word_ids)
        else:
            text = self.tokenizer.decode(tokens)
        return Hypothesis(text, tuple(tokens), tuple(frames), score)

    def decode_nbest(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        items = [log_probs[b, : int(lengths[b])].detach().float().cpu().numpy() for b in range(log_probs.shape[0])]
        if self.workers > 1 and items and "fork" in mp.get_all_start_methods():  # one utterance too: not here
            with self._pool_lock:
                raw = self._search_in_workers(items)
        else:
            raw = [self._search_one(e) for e in items]
        nbests = [None if r is None else [self._hypothesis(*h) for h in r] for r in raw]
        if None in nbests:
            raise SearchWorkerDied(failed=[b for b, n in enumerate(nbests) if n is None], results=nbests)
        return nbests

    def _search_in_workers(self, items: list[np.ndarray]) -> list:
        """``items`` searched in the worker processes, never here: what killed a worker (out of
        memory?) would kill this process, and the whole run with it. A batch whose worker is killed
        is searched again in half as many fresh ones; killed again, one item at a time in a single
        process, forked anew after each death (at most one fork per item), and an item that kills
        it alone gets None. The next batch forks anew."""
        size = min(self.workers, len(items))
        tries = list(dict.fromkeys((size, max(1, size // 2))))  # (one worker: the pass below is its retry)
        for workers in tries:
            with suppress(BrokenProcessPool):
                return self._mapped(items, workers)
            if workers == tries[0]:  # counted once a batch, however often it dies
                self.retried_batches += 1
        results = []
        for e in items:
            try:
                results += self._mapped([e], 1)
            except BrokenProcessPool:
                results.append(None)
        return results

    def _mapped(self, items: list[np.ndarray], workers: int) -> list:
        """``items`` searched in a pool of ``workers`` processes (the one there, if it has as many).
        A try that a killed worker breaks off adds its wall time, forks included, to ``lost_seconds``."""
        start = time.perf_counter()
        pool = self._worker_pool(workers)
        try:
            with signals_held():  # the workers fork as the work is handed out
                results = pool.map(worker_search, items, chunksize=max(1, len(items) // (4 * self._pool_size)))
            return list(results)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (asr.cli raises it as one): not the whole batch first
            self.close(stop=True)
            raise
        except BrokenProcessPool:  # a worker killed: the next try, or batch, forks anew
            self.close(stop=True, kill=True)
            self.lost_seconds += time.perf_counter() - start
            raise

    def _worker_pool(self, size: int) -> ProcessPoolExecutor:
        # a forking pool starts all its processes at once: the caller asks no more than the batch has
        # utterances (3 files with --decode-workers 8 forked 8, and a package's 4 systems 32)
        if self._pool is not None and getattr(self._pool, "_broken", False):  # a worker killed while it waited
            self.close(stop=True, kill=True)
        if self._pool is not None and self._pool_size < size:
            self.close()
        if self._pool is None:
            self._pool = ProcessPoolExecutor(size, mp_context=mp.get_context("fork"),
                                             initializer=set_worker, initargs=(self, os.getpid()))
            self._pool_size = size
        return self._pool

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        return passing_on(lambda nbests: [None if nbest is None else nbest[0] for nbest in nbests],
                          self.decode_nbest, log_probs, lengths)

    def close(self, stop: bool = False, kill: bool = False) -> None:
        """End the worker processes once their work is done; with ``stop``, once the search each
        is in is done (the rest of the batch is dropped); with ``kill`` (a broken pool), at once:
        the pool ends them with SIGTERM, which a worker takes as "stop after this search"
        (asr.search_workers) and so never exits, and exit would wait for them."""
        if self._pool is not None:
            if stop:  # (terminating them instead can leave the pool's queue feeder blocked at exit)
                # through the Process objects, not PIDs: a reaped one's PID may be another process's
                for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                    if kill:
                        process.kill()
                    elif process.is_alive():
                        with suppress(ProcessLookupError):
                            os.kill(process.pid, signal.SIGINT)
            self._pool.shutdown(wait=not stop, cancel_futures=stop)
            self._pool = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

