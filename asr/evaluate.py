"""Run a model over a manifest and score it: WER and CER against normalized references."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import torch

from asr.audio import AudioError
from asr.batching import BucketBatchSampler, padded_batches
from asr.data import Utterance
from asr.metrics import ErrorCounts, char_errors, word_errors
from asr.search_workers import SearchWorkerDied, survivors
from asr.segmenter import Segmenter, array_blocks
from asr.text import normalize_text
from asr.transcribe import Transcriber
from asr.user_warnings import cut_short, gathered_warnings, report_cut


@dataclass
class UtteranceResult:
    id: str
    audio_filepath: str
    reference: str
    hypothesis: str
    speaker: str | None = None
    seconds: float = 0.0  # its audio's (asr.rover: the audio every system decoded)


@dataclass
class Evaluation:
    utterances: list[UtteranceResult]
    words: ErrorCounts
    chars: ErrorCounts
    audio_seconds: float
    # wall time, with the beam searches a killed worker broke off (asr.search_workers): what the run took
    decode_seconds: float
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    truncated: list[str] = field(default_factory=list)  # the warnings of the files scored cut short, one a file
    # of ``decode_seconds``, those of the searches a killed worker broke off (``BeamSearchDecoder.lost_seconds``),
    # and the batches searched again: the RTF leaves them out, so that it is the searches' that finished
    retry_seconds: float = 0.0
    retried_batches: int = 0

    @property
    def wer(self) -> float:
        return self.words.rate

    @property
    def cer(self) -> float:
        return self.chars.rate

    @property
    def searches_died(self) -> int:
        """Utterances left out because their beam search killed its worker alone: each was searched,
        and died, twice with its batch first (``retry_seconds`` hold those searches)."""
        return sum(reason == SearchWorkerDied.problem for _, reason in self.skipped)

    @property
    def rtf(self) -> float | None:
        """Seconds of decoding per second of audio scored, less the searches a killed worker broke
        off: a run whose worker died and recovered compares with one whose worker did not."""
        return (self.decode_seconds - self.retry_seconds) / self.audio_seconds if self.audio_seconds else None

    def summary(self) -> dict:
        return {
            "wer": round(self.wer, 6), "cer": round(self.cer, 6),
            "utterances": len(self.utterances), "skipped": len(self.skipped), "truncated": len(self.truncated),
            "word_errors": self.words.errors, "words": self.words.reference_length,
            "substitutions": self.words.substitutions, "deletions": self.words.deletions,
            "insertions": self.words.insertions,
            "audio_seconds": round(self.audio_seconds, 3),
            "decode_seconds": round(self.decode_seconds, 3),
            "rtf": None if self.rtf is None else round(self.rtf, 6),
            "searches_died": self.searches_died,
            "retry_seconds": round(self.retry_seconds, 3), "retried_batches": self.retried_batches,
        }


def utterance_id(utterance: Utterance) -> str:
    """Its manifest's id, else its audio file's absolute path: the manifest's folder as the command
    line named it (relative to where it ran) would tell the same file apart by the working folder,
    and reports are matched by id (``asr compare``, ``asr combine``). Links are not followed: two
    links to one file (git-annex, DVC) are two utterances."""
    return utterance.id or os.path.abspath(utterance.audio_filepath)


def batches_by_duration(utterances: list[Utterance], batch_seconds: float, max_batch: int = 64):
    """Index lists of length-sorted utterances, at most ``batch_seconds`` of padded audio each."""
    sampler = BucketBatchSampler([u.duration for u in utterances], batch_seconds, max_batch, shuffle=False)
    return [[i for i, _ in batch] for batch in sampler]


def speech_pieces(segmenter: Segmenter, wave: torch.Tensor) -> list[torch.Tensor]:
    """What ``asr transcribe`` runs of a loaded utterance, in order: nothing for silence; its
    speech span (``Transcriber.speech``) when shorter than the segmenter's ``max_seconds``; else
    the sounded segments it is cut into at pauses, each without its quiet edges. The pieces'
    hypotheses joined (``join_pieces``) are its transcript, as ``merge_results`` joins a file's."""
    # in 30 s blocks, as transcribe streams a file: the cuts depend on the samples, not on how they
    # were read, and a 10-minute wave in one block cost ~550 MB more (each cut copies the rest)
    blocks = array_blocks(wave.numpy(), 30 * segmenter.sample_rate)
    return [seg.samples for seg in segmenter.segments(blocks) if not seg.silent]


def join_pieces(references: Sequence[str | None], hypotheses: Sequence[str]) -> tuple[list[str], list[str]]:
    """Per-piece (references, hypotheses) in ``readable_batches``' order -> per utterance: a piece
    whose reference is None continues the utterance before it, and its text is joined on."""
    refs: list[str] = []
    hyps: list[str] = []
    for ref, hyp in zip(references, hypotheses, strict=True):
        if ref is None:
            hyps[-1] = " ".join(t for t in (hyps[-1], hyp) if t)
        else:
            refs.append(ref)
            hyps.append(hyp)
    return refs, hyps


def first_pieces(references: Sequence[str | None]) -> list[int]:
    """Per piece in ``readable_batches``' order, its utterance as the index of its first piece (a
    piece whose reference is None continues the utterance before it)."""
    firsts: list[int] = []
    for k, ref in enumerate(references):
        firsts.append(firsts[-1] if ref is None else k)
    return firsts


def readable_batches(transcriber: Transcriber, utterances: list[Utterance], batch_seconds: float, skipped: list,
                     silent: list | None = None, paths: list | None = None):
    """(waves at the transcriber's rate, normalized references) per length-sorted batch, for
    tuning and priors, cut as evaluate and transcribe cut them (``speech_pieces``): an utterance
    of ``max_seconds`` or more comes as several waves, the first with its reference and the rest
    with None (``join_pieces`` puts their hypotheses together); its pieces are never split
    across batches. An unreadable file is appended to ``skipped`` as (path, problem) and left
    out. A silent utterance never reaches the model (its hypothesis is empty, as transcribe and
    evaluate make it): its reference goes to ``silent`` when a list is given. ``paths``, when
    given, gets each yielded wave's audio file as its batch is yielded (a cut one's once a piece),
    for naming what a search fails on. Files cut short are used as they are, and named a few at a
    time with a total once all are read."""
    budget = batch_seconds * transcriber.sample_rate
    cut: list[str] = []

    def pieces_of(batch):  # (reference, pieces) of each utterance of ``batch`` that the model runs
        for i in batch:
            try:
                with gathered_warnings() as warned:  # around the read alone: the caller runs between yields
                    wave = transcriber.load(utterances[i].audio_filepath)
                cut.extend(warned)
            except AudioError as e:
                skipped.append((utterances[i].audio_filepath, e.problem))
                continue
            pieces = speech_pieces(transcriber.segmenter, wave)
            if not pieces:  # silence: its hypothesis is empty, no run
                if silent is not None:
                    silent.append(normalize_text(utterances[i].text))
                continue
            yield normalize_text(utterances[i].text), pieces, utterances[i].audio_filepath

    for batch in batches_by_duration(utterances, batch_seconds):
        # a cut one's pieces pad more: packed by their own lengths, never split
        for group in padded_batches(pieces_of(batch), lambda utt: [p.numel() for p in utt[1]], budget):
            if paths is not None:
                paths += [path for _, pieces, path in group for _ in pieces]
            yield ([p for _, pieces, _ in group for p in pieces],
                   [r for ref, pieces, _ in group for r in [ref] + [None] * (len(pieces) - 1)])
    report_cut(cut)


def unwritable_note(manifest, tokenizer, references: Sequence[str]) -> str | None:
    """A warning when references hold characters the model has no token for (a phone model: words
    it has no pronunciation for), e.g. digits for a model trained on spelled-out numbers: those
    count as errors whatever it hears, which the WER alone does not tell. None when there are none."""
    counts, holding = Counter(), 0
    for reference in references:
        if unknown := tokenizer.unknown_chars(reference):
            holding += 1
            counts.update(unknown)
    if not holding:
        return None
    what = ("words the model has no pronunciation for" if hasattr(tokenizer, "pronunciations")
            else "characters the model has no token for")
    shown = " ".join(repr(c) for c, _ in counts.most_common(10)) + (" ..." if len(counts) > 10 else "")
    return (f"warning: {manifest}: {holding} reference(s) hold {what} ({shown}): they count as errors "
            "whatever the model hears")


def merged_skips(evaluations: Sequence[Evaluation]) -> list[tuple[str, str]]:
    """The skipped (path, problem) pairs of several systems' evaluations of one manifest, each as
    often as the system that skipped it most: an utterance every system skipped is listed once,
    and two utterances of one file (ids differ, their audio the same) twice, as one system counts."""
    most: Counter = Counter()
    for e in evaluations:
        most |= Counter(e.skipped)
    return list(most.elements())


def none_readable(count: int, skipped: list[tuple[str, str]], purpose: str) -> str:
    """The message when no utterance of a manifest could be read: how many, and the first problem."""
    first = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
    return f"no readable utterances {purpose}: {len(skipped)} of {count} unreadable{first}"


def evaluate(transcriber: Transcriber, utterances: list[Utterance], batch_seconds: float = 300.0,
             progress=None) -> Evaluation:
    """Transcribe every utterance (in length-sorted batches) and score against its text.

    As ``asr transcribe`` would: a silent utterance gets the empty hypothesis without a model
    run, and one of the segmenter's ``max_seconds`` or more is streamed and cut at pauses
    (``Transcriber.transcribe_files``) rather than run whole. Unreadable audio is skipped,
    reported in ``Evaluation.skipped``, and left out of the score; so is an utterance whose beam
    search killed its worker process alone, after twice in its batch (``SearchWorkerDied``; the
    rest of its batch is scored). ``decode_seconds`` is wall time; ``retry_seconds``, the part of it
    that searches a killed worker broke off took (the retried batches' first tries too), is left
    out of the RTF. Audio cut short is scored as far as it goes: ``Evaluation.truncated`` has each
    file's warning, and a few are named with a total on stderr once all are read (not a line each:
    a damaged corpus would flood it).
    """
    searches = _searches(transcriber)
    lost, retried = _retries(searches)
    with gathered_warnings() as cut:
        evaluation = _evaluate(transcriber, utterances, batch_seconds, progress)
    evaluation.truncated = cut_short(cut)
    after = _retries(searches)  # every retry happens inside the decode seconds' timing
    evaluation.retry_seconds, evaluation.retried_batches = after[0] - lost, after[1] - retried
    report_cut(cut)
    return evaluation


def _searches(transcriber: Transcriber) -> list:
    """The decoders a run of ``transcriber`` searches with, each once: its decoder, or a rescoring
    run's every system's search (``search_for`` gives those as a tuple)."""
    found = transcriber.search_for()
    return list({id(s): s for s in (found if isinstance(found, tuple) else (found,))}.values())


def _retries(searches) -> tuple[float, int]:
    """(seconds lost to killed workers, batches searched again) over ``searches`` so far; 0 for
    a decoder without workers (greedy)."""
    return (sum(getattr(s, "lost_seconds", 0.0) for s in searches),
            sum(getattr(s, "retried_batches", 0) for s in searches))


def _evaluate(transcriber: Transcriber, utterances: list[Utterance], batch_seconds: float, progress) -> Evaluation:
    hyps: dict[int, str] = {}
    seconds: dict[int, float] = {}  # of each utterance scored
    skipped, decode_seconds = [], 0.0
    limit = transcriber.segmenter.options.max_seconds
    max_len = int(limit * transcriber.sample_rate)  # the segmenter cuts a buffer of this many samples
    short = [i for i, u in enumerate(utterances) if u.duration < limit]
    long = [i for i, u in enumerate(utterances) if u.duration >= limit]
    for batch in batches_by_duration([utterances[i] for i in short], batch_seconds):
        waves, kept = [], []
        for i in (short[j] for j in batch):
            try:
                wave = transcriber.load(utterances[i].audio_filepath)
            except AudioError as e:
                skipped.append((utterances[i].audio_filepath, e.problem))
                continue
            if wave.numel() >= max_len:  # longer than its manifest says: cut as transcribe cuts it
                long.append(i)
                continue
            seconds[i] = wave.numel() / transcriber.sample_rate  # the file's, before its edges are trimmed
            if (speech := transcriber.speech(wave)) is None:
                hyps[i] = ""
                continue
            waves.append(speech)
            kept.append(i)
        if waves:
            start = time.perf_counter()
            results, died = survivors(transcriber.transcribe_waveforms, waves)
            decode_seconds += time.perf_counter() - start  # (with the failed searches: what the run took)
            for i, res in zip(kept, results):
                if res is None:  # its search killed its worker alone: not scored, as unreadable files
                    skipped.append((utterances[i].audio_filepath, died.problem))
                else:
                    hyps[i] = normalize_text(res.text)  # as the reference: a user's lexicon may spell "Don’t"
        if progress is not None:
            progress(len(batch))
    if long:
        start = time.perf_counter()
        for i, (_, outcome) in zip(long, transcriber.transcribe_files([utterances[i].audio_filepath for i in long])):
            if isinstance(outcome, (AudioError, SearchWorkerDied)):
                skipped.append((utterances[i].audio_filepath, outcome.problem))
            else:
                seconds[i] = outcome.duration
                hyps[i] = normalize_text(outcome.text)
            if progress is not None and utterances[i].duration >= limit:  # the others were counted in their batch
                progress(1)
        decode_seconds += time.perf_counter() - start
    rows = [UtteranceResult(utterance_id(u), u.audio_filepath, normalize_text(u.text), hyps[i], u.speaker, seconds[i])
            for i, u in enumerate(utterances) if i in hyps]
    refs, hyp_texts = [r.reference for r in rows], [r.hypothesis for r in rows]
    return Evaluation(rows, word_errors(refs, hyp_texts), char_errors(refs, hyp_texts),
                      sum(r.seconds for r in rows), decode_seconds, skipped)
