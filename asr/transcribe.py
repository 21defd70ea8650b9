"""Transcription: a loaded model plus a decoder, for files, arrays and batches of them.

Files of any length are streamed from disk (``asr.inputs``), cut at pauses into segments of at
most ``SegmenterOptions.max_seconds`` (``asr.segmenter``), run through the model in batches that
mix segments of consecutive files, and stitched back on each file's clock
(``asr.results.merge_results``).

    >>> import asr
    >>> model = asr.load_model()            # the packaged default model
    >>> result = model.transcribe("speech.wav")
    >>> result.text, result.words[0].start
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import deque
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from asr.alignment import align_words, extend_word_ends
from asr.audio import AudioError, load_audio, prepare_array
from asr.decoder_factory import check_decoder_name, make_decoder
from asr.decoding import Decoder, Hypothesis, wants_alternatives
from asr.inputs import stream_audio
from asr.model import resolve_device
from asr.model_dir import LoadedModel, load_model_dir
from asr.results import Result, Segment, Word, merge_results, words_from_hypothesis
from asr.search_workers import SearchWorkerDied, passing_on
from asr.segmenter import AudioSegment, Segmenter, SegmenterOptions, array_blocks, frame_energy


# A word's sound rarely goes on this long after its last CTC spike ("elephant" in examples/: 0.3 s),
# and it has ended 30 dB below the word's loudest (speechocean762's noise floors lie ~40-50 dB below).
MAX_WORD_TAIL_SECONDS, WORD_END_QUIET_DB = 0.5, 30.0
# Audio shorter than this holds no word ("a" is ~0.1 s at its quickest): its empty text is said why.
SHORTEST_WORD_SECONDS = 0.1


# Options that say how a transcriber runs, not how it searches: they never change which decoder
# runs (given alone, they neither ask for beam search nor leave a package's rescoring).
RUN_OPTIONS = ("workers", "batch_size")


def check_run_options(options: dict) -> None:
    """``workers`` and ``batch_size`` are counts of at least 1 (as the CLI's --decode-workers and
    --batch-size are), refused by name otherwise."""
    for name in RUN_OPTIONS:
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")


# A user's model.train() between calls (fine-tuning in a notebook): each call runs in eval mode (no
# dropout) and the model goes back to the user's mode once no call runs on it. Counted per model,
# under one lock, as threads may share a model (and a package that rescores shares its first).
_EVAL_CALLS: "weakref.WeakKeyDictionary[torch.nn.Module, list]" = weakref.WeakKeyDictionary()
_EVAL_LOCK = threading.Lock()


@contextmanager
def eval_mode(model: torch.nn.Module):
    with _EVAL_LOCK:
        calls = _EVAL_CALLS.get(model)
        if calls is None:  # [calls running, the user's mode of each module: a Dropout it set apart too]
            calls = _EVAL_CALLS[model] = [0, {m: m.training for m in model.modules()}]
            model.eval()
        calls[0] += 1
    try:
        yield
    finally:
        with _EVAL_LOCK:
            calls[0] -= 1
            if calls[0] == 0:
                del _EVAL_CALLS[model]
                for module, training in calls[1].items():
                    module.training = training


class Transcriber:
    """A model ready to transcribe: weights, tokenizer, decoder and device together.

    Safe to share between threads: a call's own decoder or run options travel with the call
    (``search``, ``batch_size``), never through the transcriber's attributes."""

    def __init__(self, loaded: LoadedModel, decoder: str | Decoder = "auto",
                 device: str | None = "auto", segmenter: SegmenterOptions = SegmenterOptions(),
                 batch_size: int = 16, **decoder_options):
        check_run_options({"batch_size": batch_size, "workers": decoder_options.get("workers")})
        self.loaded = loaded
        self.device = resolve_device(device)
        self.model = loaded.model.to(self.device).eval()
        self.tokenizer = loaded.tokenizer
        self.sample_rate = loaded.config.features.sample_rate
        self._decoders: dict = {}
        self._building = threading.Lock()  # two threads asking for one decoder load its LM once
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
        weight = next(self.model.parameters(), None)  # where the weights are now, if the user moved them
        device = self.device if weight is None else weight.device
        with eval_mode(self.model):
            log_probs, out_lengths = self.model(batch.to(device), lengths.to(device))
        return log_probs.cpu(), out_lengths.cpu()

    def search_for(self, workers: int | None = None):
        """What ``nbests`` searches with: the decoder, its search spread over ``workers`` processes
        when given (asr.rescoring: each system's search)."""
        return self._with_workers(self.decoder, workers)

    def nbests(self, waves: Sequence[torch.Tensor], log_probs: torch.Tensor, out_lengths: torch.Tensor,
               search=None) -> list[list[Hypothesis]]:
        """``search``'s n best per utterance (all at once; None: ``search_for()``'s); asr.rescoring
        overrides it."""
        return (self.search_for() if search is None else search).decode_nbest(log_probs, out_lengths)

    @torch.inference_mode()
    def transcribe_waveforms(self, waves: Sequence[torch.Tensor], search=None) -> list[Result]:
        """Mono waveforms at the model's rate -> one Result each, run as one batch (``search``:
        see ``nbests``). A ``SearchWorkerDied`` carries the Results of the waves that did not fail."""
        search = self.search_for() if search is None else search
        log_probs, out_lengths = self.log_probs(waves)
        asked = wants_alternatives(search)

        def results(nbests):  # None stays None: a wave whose search killed its worker alone
            return [None if nbest is None else
                    self._result(waves[b], log_probs[b, : int(out_lengths[b])], nbest, asked)
                    for b, nbest in enumerate(nbests)]
        return passing_on(results, self.nbests, waves, log_probs, out_lengths, search)

    def _result(self, wave: torch.Tensor, log_probs: torch.Tensor, nbest: list[Hypothesis], asked: bool) -> Result:
        """One wave's Result from its frames' log-probs and its n-best (``asked``: alternatives kept)."""
        shift, centre = self.model.frame_shift, self.model.frame_centre  # frame k's centre: centre + k * shift
        hyp = nbest[0]
        duration = wave.numel() / self.sample_rate
        aligned = align_words(log_probs, hyp, self.tokenizer)
        if aligned is None:  # a spelling the frames cannot fit; keep the decoder's frames then
            words = [Word(w.word, round(min(w.start, duration), 3), round(min(w.end, duration), 3))  # as below
                     for w in words_from_hypothesis(hyp, self.tokenizer, shift, centre)]
            confidence = None
        else:
            hop = int(round(shift * self.sample_rate))
            energy = frame_energy(wave.numpy()[int(round(centre * self.sample_rate)):], hop)  # frame k's
            words = extend_word_ends(aligned[0], energy.tolist(), int(MAX_WORD_TAIL_SECONDS / shift + 1e-9),
                                     WORD_END_QUIET_DB, self.segmenter.noise_floor(energy),
                                     self.segmenter.options.floor_quiet_db)
            # The last output frame can reach past the audio's end (frames are rounded up).
            words = [Word(w.word, round(min(centre + w.start * shift, duration), 3),
                          round(min(centre + w.end * shift, duration), 3),
                          round(w.confidence, 4)) for w in words]
            confidence = round(aligned[1], 4)
        segments = [Segment(0.0, round(duration, 3), hyp.text)] if hyp.text else []
        return Result(hyp.text, duration, segments, words, confidence, [h.text for h in nbest[1:]] if asked else [])

    def silence_dbfs(self) -> float:
        """The segmenter's silence level (its RMS) in dB below full scale."""
        return 20 * math.log10(self.segmenter.options.silence_rms) if self.segmenter.options.silence_rms else -math.inf

    def no_speech(self, steady: bool) -> str:
        """Why audio with no segment to run holds no speech, for the user: steady noise alone (as
        the segmenter judges it), else no sound above its silence level."""
        if steady:
            return (f"steady noise alone, no speech (its loudness varies by under "
                    f"{self.segmenter.options.steady_db:g} dB, as hiss, hum or a fan's does)")
        return f"no sound above {self.silence_dbfs():.0f} dBFS"

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
        utterances shorter than the segmenter's ``max_seconds`` (evaluate)."""
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
        model's own rate, as whisper takes arrays at 16 kHz; nothing can check it; a file has its
        own). Any length: long audio is cut at pauses and the pieces' times are put back on the
        file's clock. ``decoder``/``lm``/search options pick another decoder for this call (``lm``
        or a search option alone implies beam); ``workers``/``batch_size`` change how this call
        runs, never which decoder runs."""
        run = {k: decoder_options.pop(k) for k in RUN_OPTIONS if k in decoder_options}
        check_run_options(run)
        if decoder is None and lm is None and not decoder_options:
            search = self.search_for(run["workers"]) if "workers" in run else None  # None: the transcriber's
        else:
            workers = {"workers": run["workers"]} if "workers" in run else {}
            search = self._decoder_for(decoder, lm, {**decoder_options, **workers})
        batch_size = run.get("batch_size", self.batch_size)
        if isinstance(audio, (str, Path)):
            if sample_rate is not None:
                raise AudioError(audio, f"sample_rate={sample_rate!r} is for arrays; a file's rate is read from it")
            outcome = next(self.transcribe_files([str(audio)], search=search, batch_size=batch_size))[1]
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        wave = prepare_array(audio, sample_rate, self.sample_rate).numpy()
        pieces = self._run_all(self.segmenter.segments(array_blocks(wave, 30 * self.sample_rate)), search, batch_size)
        return merge_results(pieces, wave.size / self.sample_rate)

    def _decoder_for(self, decoder, lm, options) -> Decoder:
        """``auto``: beam search when the model has a packaged LM or an LM/beam option is given, else
        greedy. ``beam`` without ``lm`` uses the packaged LM (``lm="none"``: no LM)."""
        if isinstance(decoder, Decoder):
            return decoder
        check_decoder_name(decoder or "auto")
        if lm is not None:
            options = {**options, "lm": str(lm)}
        from asr.decoding_config import choose_decoder

        search = [k for k in options if k not in RUN_OPTIONS]
        name = choose_decoder(decoder or "auto", self.loaded.path, bool(search))
        if name == "greedy" and search:
            raise ValueError(f"{', '.join(search)}: beam search settings; greedy decoding has none "
                             "(decoder='beam' or 'auto')")
        key = (name, repr(sorted(options.items())))
        with self._building:
            if key not in self._decoders:
                if name == "beam":  # search settings may come loose: beam_size=8, lm_weight=0.5, ...
                    from asr.decoding_config import model_decoder

                    self._decoders[key] = model_decoder(self.loaded.path, self.tokenizer, **options)[0]
                else:
                    self._decoders[key] = make_decoder(name, self.tokenizer)
            return self._decoders[key]

    def _with_workers(self, decoder: Decoder, workers: int | None) -> Decoder:
        """``decoder``'s search in ``workers`` processes: the same files, LM and settings (greedy
        decoding has no search to spread)."""
        if workers is None or getattr(decoder, "workers", workers) == workers:
            return decoder
        from asr.beam_search import BeamSearchDecoder

        if not isinstance(decoder, BeamSearchDecoder):
            return decoder
        key = ("workers", id(decoder), workers)  # the key's decoder is kept alive by self.decoder or the cache
        with self._building:
            if key not in self._decoders:
                self._decoders[key] = decoder.with_options(workers=workers)
            return self._decoders[key]

    def _batch_runner(self, search) -> Callable[[Sequence[torch.Tensor]], list[Result]]:
        """``transcribe_waveforms`` with ``search``; without one (the transcriber's), called with the
        waves alone, as a caller's wrapper of it may expect."""
        return self.transcribe_waveforms if search is None else partial(self.transcribe_waveforms, search=search)

    def _run_all(self, segments: Iterable[AudioSegment], search, batch_size: int) -> list[tuple[float, Result]]:
        pieces, batch, run = [], [], self._batch_runner(search)
        for seg in segments:
            if seg.silent:
                continue
            batch.append(seg)
            if len(batch) >= batch_size:
                pieces += zip([s.start for s in batch], run([s.samples for s in batch]))
                batch = []
        if batch:
            pieces += zip([s.start for s in batch], run([s.samples for s in batch]))
        return pieces

    def transcribe_files(self, paths: Sequence[str], progress: Callable[[float], None] | None = None,
                         stdin=None, note: Callable[[str], None] | None = None, *, search=None,
                         batch_size: int | None = None) -> Iterator[tuple[str, Result | AudioError | SearchWorkerDied]]:
        """(path, Result or AudioError) per path, in order, as soon as each is done; SearchWorkerDied
        for a file one of whose segments' beam search killed its worker process alone, after twice
        in its batch (the rest go on). Segments of consecutive files share model batches; at most ``batch_size`` segments
        (plus one file's read-ahead block) are in memory. ``progress(seconds)`` is called per
        batch. ``note(line)`` gets what a user should know of a result (a file with no sound; the
        first n-best request a file cut into segments cannot answer), each line naming its file.
        ``search`` and ``batch_size``: this run's, if not the transcriber's (see ``nbests``)."""
        run, batch_size = self._batch_runner(search), batch_size or self.batch_size
        states: deque[_FileState] = deque()
        queue: list[tuple[_FileState, AudioSegment]] = []
        asked = wants_alternatives(self.search_for() if search is None else search)
        told_of_alternatives = False

        def run_queue():
            if queue:
                try:
                    results = run([seg.samples for _, seg in queue])
                except SearchWorkerDied as e:  # None: a search that killed its worker alone; its file fails
                    results = e.results if e.results is not None else [None] * len(queue)
                for (state, seg), result in zip(queue, results):
                    if result is None:
                        state.error = state.error or SearchWorkerDied(state.path)
                    else:
                        state.pieces.append((seg.start, result))
                    state.pending -= 1
                if progress:
                    progress(sum(seg.covers for _, seg in queue))
                queue.clear()

        def ready():
            nonlocal told_of_alternatives
            while states and states[0].done and states[0].pending == 0:
                state = states.popleft()
                outcome = state.error or merge_results(state.pieces, state.samples / self.sample_rate)
                if state.error is None and note is not None:
                    if state.samples and not state.sounded:
                        note(f"{state.path}: {self.no_speech(state.steady)}; nothing transcribed")
                    elif state.samples < SHORTEST_WORD_SECONDS * self.sample_rate and not outcome.text:
                        note(f"{state.path}: only {1000 * state.samples / self.sample_rate:.3g} ms of audio, too "
                             "short to hold a word; nothing transcribed")
                    elif asked and len(state.pieces) > 1 and not told_of_alternatives:
                        note(f"{state.path}: cut into {len(state.pieces)} segments, so no alternatives (n-best "
                             f"transcripts are given only for audio of one segment, up to "
                             f"{self.segmenter.options.max_seconds:g} s)")
                        told_of_alternatives = True
                yield state.path, outcome

        for path in paths:
            state = _FileState(path)
            states.append(state)
            try:
                for seg in self.segmenter.segments(state.count(stream_audio(path, self.sample_rate, stdin=stdin))):
                    state.steady |= seg.steady
                    if seg.silent or state.error is not None:  # (failed: the rest of it is not searched)
                        if progress:
                            progress(seg.covers)
                        continue
                    queue.append((state, seg))
                    state.pending += 1
                    state.sounded = True
                    if len(queue) >= batch_size:
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
        self.steady = False  # a segment of steady noise alone was left out

    def count(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for block in blocks:
            self.samples += len(block)
            yield block


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
