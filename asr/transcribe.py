"""Transcription: a loaded model plus a decoder, for files, arrays and batches of them.

Files of any length are streamed from disk (``asr.inputs``), cut at pauses into segments of at
most ``SegmenterOptions.max_seconds`` (``asr.segmenter``), run through the model in batches that
mix segments of consecutive files, and stitched back on each file's clock (``merge_results``).

    >>> import asr
    >>> model = asr.load_model()            # the packaged default model
    >>> result = model.transcribe("speech.wav")
    >>> result.text, result.words[0].start
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from asr.alignment import align_words, extend_word_ends
from asr.audio import AudioError, load_audio, prepare_array
from asr.decoding import Decoder, GreedyDecoder, Hypothesis
from asr.inputs import stream_audio
from asr.model import resolve_device
from asr.model_dir import LoadedModel, load_model_dir
from asr.segmenter import AudioSegment, Segmenter, SegmenterOptions, array_blocks, frame_energy


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds
    end: float
    confidence: float | None = None  # 0..1, from the model's posteriors (see asr/alignment.py)


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Result:
    text: str
    duration: float
    segments: list[Segment] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    confidence: float | None = None  # of the whole transcript, 0..1
    # the next best transcripts when n-best was asked for (beam, nbest > 1); none for a file cut
    # into several segments (a list per segment would not be whole-file transcripts)
    alternatives: list[str] = field(default_factory=list)


def words_from_hypothesis(hyp: Hypothesis, tokenizer, frame_shift: float) -> list[Word]:
    """Word times from the frames where the word's first and last characters were emitted."""
    words, chars, first, last = [], [], None, None
    for token, frame in zip(list(hyp.tokens) + [tokenizer.word_sep_id], list(hyp.frames) + [None]):
        if token == tokenizer.word_sep_id:
            if chars:
                words.append(Word("".join(chars), round(first * frame_shift, 3),
                                  round((last + 1) * frame_shift, 3)))
            chars, first = [], None
            continue
        chars.append(tokenizer.tokens[token])
        first = frame if first is None else first
        last = frame
    return words


# A word's sound rarely goes on this long after its last CTC spike ("elephant" in examples/: 0.3 s),
# and it has ended 30 dB below the word's loudest (speechocean762's noise floors lie ~40-50 dB below).
MAX_WORD_TAIL_SECONDS, WORD_END_QUIET_DB = 0.5, 30.0


def wants_alternatives(decoder: Decoder) -> bool:
    """Whether ``decoder`` was asked for more than its best transcript (beam search's nbest)."""
    return getattr(getattr(decoder, "options", None), "nbest", 1) > 1


# Options that say how a transcriber runs, not how it searches: given alone, they neither ask for
# beam search nor leave a package's rescoring for its first system.
RUN_OPTIONS = ("workers", "batch_size")


def make_decoder(name: str, tokenizer, **options) -> Decoder:
    """``greedy`` or ``beam`` (options: see ``BeamSearchDecoder``)."""
    if name == "greedy":
        return GreedyDecoder(tokenizer, **options)
    if name == "beam":
        from asr.beam_search import BeamSearchDecoder  # flashlight loads only when asked for

        return BeamSearchDecoder(tokenizer, **options)
    raise ValueError(f"unknown decoder {name!r}; available: greedy, beam")


class Transcriber:
    """A model ready to transcribe: weights, tokenizer, decoder and device together."""

    def __init__(self, loaded: LoadedModel, decoder: str | Decoder = "auto",
                 device: str | None = "auto", segmenter: SegmenterOptions = SegmenterOptions(),
                 batch_size: int = 16, **decoder_options):
        self.loaded = loaded
        self.device = resolve_device(device)
        self.model = loaded.model.to(self.device).eval()
        self.tokenizer = loaded.tokenizer
        self.sample_rate = loaded.config.features.sample_rate
        self._decoders: dict = {}
        self.decoder = self._decoder_for(decoder, None, decoder_options)
        self.segmenter = Segmenter.on_frames(self.sample_rate, self.model.frame_shift, segmenter)
        self.batch_size = batch_size

    @torch.inference_mode()
    def log_probs(self, waves: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mono waveforms at the model's rate, run as one batch -> (B, T, V) log-probs and the
        frames of each, on the CPU."""
        lengths = torch.tensor([w.numel() for w in waves], dtype=torch.long)
        batch = torch.zeros(len(waves), int(lengths.max()))
        for i, w in enumerate(waves):
            batch[i, : w.numel()] = w
        log_probs, out_lengths = self.model(batch.to(self.device), lengths.to(self.device))
        return log_probs.cpu(), out_lengths.cpu()

    def nbests(self, waves: Sequence[torch.Tensor], log_probs: torch.Tensor, out_lengths: torch.Tensor
               ) -> list[list[Hypothesis]]:
        """The decoder's n best per utterance (all at once); asr.rescoring overrides it."""
        return self.decoder.decode_nbest(log_probs, out_lengths)

    @torch.inference_mode()
    def transcribe_waveforms(self, waves: Sequence[torch.Tensor]) -> list[Result]:
        """Mono waveforms at the model's rate -> one Result each, run as one batch."""
        lengths = [w.numel() for w in waves]
        log_probs, out_lengths = self.log_probs(waves)
        nbests = self.nbests(waves, log_probs, out_lengths)
        shift = self.model.frame_shift
        asked = wants_alternatives(self.decoder)
        results = []
        for b, (nbest, n) in enumerate(zip(nbests, lengths)):
            hyp = nbest[0]
            duration = n / self.sample_rate
            aligned = align_words(log_probs[b, : int(out_lengths[b])], hyp, self.tokenizer)
            if aligned is None:  # not expected for a CTC path; keep the decoder's frames then
                words, confidence = words_from_hypothesis(hyp, self.tokenizer, shift), None
            else:
                hop = int(round(shift * self.sample_rate))
                words = extend_word_ends(aligned[0], frame_energy(waves[b].numpy(), hop).tolist(),
                                         int(MAX_WORD_TAIL_SECONDS / shift + 1e-9), WORD_END_QUIET_DB)
                # The last output frame can reach past the audio's end (frames are rounded up).
                words = [Word(w.word, round(min(w.start * shift, duration), 3), round(min(w.end * shift, duration), 3),
                              round(w.confidence, 4)) for w in words]
                confidence = round(aligned[1], 4)
            segments = [Segment(0.0, round(duration, 3), hyp.text)] if hyp.text else []
            results.append(Result(hyp.text, duration, segments, words, confidence,
                                  [h.text for h in nbest[1:]] if asked else []))
        return results

    def silence_dbfs(self) -> float:
        """The segmenter's silence level (its RMS) in dB below full scale."""
        return 20 * math.log10(self.segmenter.options.silence_rms) if self.segmenter.options.silence_rms else -math.inf

    def describe(self) -> str:
        """One line for logs and reports: how this transcriber decodes."""
        return self.decoder.describe()

    def speech_span(self, wave: torch.Tensor) -> tuple[int, int] | None:
        """[lo, hi) of ``wave`` that ``transcribe`` would run as a segment: None for silence (never
        run; its text is empty), else all but quiet edges longer than trim_after_seconds."""
        samples = wave.numpy()
        if self.segmenter.is_silent(samples):
            return None
        return self.segmenter.speech_span(samples)

    def speech(self, wave: torch.Tensor) -> torch.Tensor | None:
        """``wave`` cut to its ``speech_span`` (None for silence), for callers that run whole
        utterances (evaluate, tuning, priors)."""
        span = self.speech_span(wave)
        return None if span is None else wave[span[0]:span[1]]

    def load(self, audio, sample_rate: int | None = None) -> torch.Tensor:
        """The whole signal in memory (short files); ``transcribe`` streams long ones instead."""
        if isinstance(audio, (str, Path)):
            return load_audio(audio, self.sample_rate)
        return prepare_array(audio, sample_rate, self.sample_rate)

    def transcribe(self, audio, sample_rate: int | None = None, decoder: str | Decoder | None = None,
                   lm: str | Path | None = None, **decoder_options) -> Result:
        """``audio``: a file path, or an array/tensor with its ``sample_rate`` (left out: the
        model's own rate, as whisper takes arrays at 16 kHz; nothing can check it). Any length: long
        audio is cut at pauses and the pieces' times are put back on the file's clock.
        ``decoder``/``lm``/options pick another decoder for this call (``lm`` implies beam)."""
        previous = self.decoder
        if decoder is not None or lm is not None or decoder_options:
            self.decoder = self._decoder_for(decoder, lm, decoder_options)
        try:
            if isinstance(audio, (str, Path)):
                outcome = next(self.transcribe_files([str(audio)]))[1]
                if isinstance(outcome, AudioError):
                    raise outcome
                return outcome
            wave = prepare_array(audio, sample_rate, self.sample_rate).numpy()
            pieces = self._run_all(self.segmenter.segments(array_blocks(wave, 30 * self.sample_rate)))
            return merge_results(pieces, wave.size / self.sample_rate)
        finally:
            self.decoder = previous

    def _decoder_for(self, decoder, lm, options) -> Decoder:
        """``auto``: beam search when the model has a packaged LM or an LM/beam option is given, else
        greedy. ``beam`` without ``lm`` uses the packaged LM (``lm="none"``: no LM)."""
        if isinstance(decoder, Decoder):
            return decoder
        if lm is not None:
            options = {**options, "lm": str(lm)}
        from asr.decoding_config import choose_decoder

        search = [k for k in options if k not in RUN_OPTIONS]
        name = choose_decoder(decoder or "auto", self.loaded.path, bool(search))
        if name == "greedy" and search:
            raise ValueError(f"{', '.join(search)}: beam search settings; greedy decoding has none "
                             "(decoder='beam' or 'auto')")
        key = (name, repr(sorted(options.items())))
        if key not in self._decoders:
            if name == "beam":  # search settings may come loose: beam_size=8, lm_weight=0.5, ...
                from asr.decoding_config import model_decoder

                self._decoders[key] = model_decoder(self.loaded.path, self.tokenizer, **options)[0]
            else:
                self._decoders[key] = make_decoder(name, self.tokenizer)
        return self._decoders[key]

    def _run_all(self, segments: Iterable[AudioSegment]) -> list[tuple[float, Result]]:
        pieces, batch = [], []
        for seg in segments:
            if seg.silent:
                continue
            batch.append(seg)
            if len(batch) >= self.batch_size:
                pieces += zip([s.start for s in batch], self.transcribe_waveforms([s.samples for s in batch]))
                batch = []
        if batch:
            pieces += zip([s.start for s in batch], self.transcribe_waveforms([s.samples for s in batch]))
        return pieces

    def transcribe_files(self, paths: Sequence[str], progress: Callable[[float], None] | None = None,
                         stdin=None, note: Callable[[str], None] | None = None
                         ) -> Iterator[tuple[str, Result | AudioError]]:
        """(path, Result or AudioError) per path, in order, as soon as each is done. Segments of
        consecutive files share model batches; at most ``batch_size`` segments (plus one file's
        read-ahead block) are in memory. ``progress(seconds)`` is called per batch. ``note(line)``
        gets what a user should know of a result (a file with no sound; the first n-best request
        a file cut into segments cannot answer), each line naming its file."""
        states: deque[_FileState] = deque()
        queue: list[tuple[_FileState, AudioSegment]] = []
        asked = wants_alternatives(self.decoder)
        told_of_alternatives = False

        def run_queue():
            if queue:
                results = self.transcribe_waveforms([seg.samples for _, seg in queue])
                for (state, seg), result in zip(queue, results):
                    state.pieces.append((seg.start, result))
                    state.pending -= 1
                if progress:
                    progress(sum(seg.covers for _, seg in queue))
                queue.clear()

        def ready():
            nonlocal told_of_alternatives
            while states and states[0].done and states[0].pending == 0:
                state = states.popleft()
                if state.error is None and note is not None:
                    if state.samples and not state.sounded:
                        note(f"{state.path}: no sound above {self.silence_dbfs():.0f} dBFS; nothing transcribed")
                    elif asked and len(state.pieces) > 1 and not told_of_alternatives:
                        note(f"{state.path}: cut into {len(state.pieces)} segments, so no alternatives (n-best "
                             f"transcripts are given only for audio of one segment, up to "
                             f"{self.segmenter.options.max_seconds:g} s)")
                        told_of_alternatives = True
                yield state.path, (state.error or merge_results(state.pieces, state.samples / self.sample_rate))

        for path in paths:
            state = _FileState(path)
            states.append(state)
            try:
                for seg in self.segmenter.segments(state.count(stream_audio(path, self.sample_rate, stdin=stdin))):
                    if seg.silent:
                        if progress:
                            progress(seg.covers)
                        continue
                    queue.append((state, seg))
                    state.pending += 1
                    state.sounded = True
                    if len(queue) >= self.batch_size:
                        run_queue()
                        yield from ready()
            except AudioError as e:
                state.error = e
            except OSError as e:  # e.g. the file vanished or a disk error mid-read
                state.error = AudioError(path, f"read error ({e.strerror or e})")
            state.done = True
            yield from ready()
        run_queue()
        yield from ready()


class _FileState:
    """A file whose segments are (partly) still in the model queue."""

    def __init__(self, path: str):
        self.path, self.pieces, self.pending, self.done, self.error, self.samples = path, [], 0, False, None, 0
        self.sounded = False  # a segment above the segmenter's silence level was queued

    def count(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for block in blocks:
            self.samples += len(block)
            yield block


def split_at_pauses(words: list[Word], text: str, pause: float) -> list[Segment]:
    """Phrases: a new segment wherever the words pause for more than ``pause`` seconds. Each
    segment spans its first to last word, so subtitles do not show text over silence."""
    tokens = text.split()
    if not words or len(tokens) != len(words):  # no usable word times: one segment
        return [Segment(words[0].start, words[-1].end, text)] if words else []
    segments, first = [], 0
    for i in range(1, len(words) + 1):
        if i == len(words) or words[i].start - words[i - 1].end > pause:
            segments.append(Segment(words[first].start, words[i - 1].end, " ".join(tokens[first:i])))
            first = i
    return segments


def merge_results(pieces: list[tuple[float, Result]], duration: float, pause: float = 0.6) -> Result:
    """Per-segment Results (each timed from its own start) -> one Result on the file's clock,
    with segments re-cut at the pauses between words (see ``split_at_pauses``). A single piece
    keeps its n-best alternatives; a file of several pieces gets none."""
    segments, words, texts, weighted, count = [], [], [], 0.0, 0
    pieces = sorted(pieces, key=lambda p: p[0])
    for offset, r in pieces:
        if not r.text:
            continue
        texts.append(r.text)
        moved = [Word(w.word, round(w.start + offset, 3), round(w.end + offset, 3), w.confidence) for w in r.words]
        words += moved
        if moved:
            segments += split_at_pauses(moved, r.text, pause)
        else:
            segments.append(Segment(round(offset, 3), round(offset + r.duration, 3), r.text))
        if r.confidence is not None:
            weighted, count = weighted + r.confidence * max(1, len(moved)), count + max(1, len(moved))
    alternatives = pieces[0][1].alternatives if len(pieces) == 1 else []
    return Result(" ".join(texts), duration, segments, words,
                  round(weighted / count, 4) if count else None, alternatives)


def load_model(path: str | Path | None = None, decoder: str | Decoder = "auto",
               device: str | None = "auto", batch_size: int = 16, **decoder_options) -> Transcriber:
    """Load a model directory (the packaged default when ``path`` is None).

    ``decoder``: ``auto`` (beam search with the model's packaged LM if it has one, else greedy),
    ``greedy`` or ``beam``, which takes ``lm=`` (``"none"``: no LM), ``lexicon=``, ``hotwords=``,
    ``workers=`` and search settings, loose (``beam_size=8``) or as ``options=BeamSearchOptions(...)``
    (see ``asr/beam_search.py``; unset settings come from the model's ``decoding.yaml``).
    """
    return Transcriber(load_model_dir(path), decoder=decoder, device=device, batch_size=batch_size,
                       **decoder_options)
