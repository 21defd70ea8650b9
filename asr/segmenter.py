"""Long audio in bounded memory: stream a source in blocks, cut it into segments at pauses.

A source (``asr.inputs``) yields mono float32 blocks at the model's rate. ``Segmenter`` keeps at
most ``max_seconds`` of them. Audio shorter than that is one segment (evaluate decodes an
utterance whole too). A longer recording is cut in the first pause of ``pause_seconds`` after
``min_seconds`` (quiet: ``quiet_db`` below the loudest frame before it, or, as in a noisy
recording, near the quietest one before it), else where the short-time energy is lowest (the
middle of the longest, quietest pause) in the second half of the window. Energy-based VAD needs
no extra package and no model run, and the cut only has to avoid splitting a word: the model
itself decides what is speech. Segments of digital silence are flagged ``silent`` and not
transcribed, and so are segments of steady noise alone (hiss, hum, a fan: ``steady_db``), in which
a model trained on speech finds words: the built-in package wrote "going off if unfunded in" for
3 s of white noise at -60 dBFS, since per-utterance normalization makes any noise as loud as speech.

A pause the recording is cut at keeps only ``pause_margin_seconds`` of quiet on either side; its
middle is not transcribed. Models learn from clips cut close to the speech, and the built-in
package lost 3.6-4.5 points of WER on valid clips given 0.4 s of extra quiet at each end (README.md).

A segment's quiet edges longer than ``trim_after_seconds`` are cut to ``trim_margin_seconds``:
models are trained on clips cut close to the speech (99% of speechocean762's train clips have
under 0.62 s of quiet at either end), and with per-utterance feature normalization 3 s of
leading silence took the built-in model's WER on 18 valid clips from 41% to 56% (README.md).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Iterable, Iterator

import numpy as np
import torch


STEADY_FRAME_SECONDS = 0.1  # long enough to average noise out, short enough to follow syllables
PRE_EMPHASIS = 0.97  # the features' (asr.features)


@dataclass(frozen=True)
class SegmenterOptions:
    max_seconds: float = 20.0  # the model was trained on utterances of a few seconds to ~20 s
    min_seconds: float = 2.0  # a cut's point (a pause's middle) lies past this much audio (unless the file ends)
    frame_seconds: float = 0.025  # energy frame
    smooth_seconds: float = 0.3  # the quietest 300 ms is taken as the pause to cut in
    silence_rms: float = 1e-4  # a segment quieter than this (about -80 dBFS) is not transcribed
    # Nor is one whose loudest 100 ms is less than this above its quietest (0: never), after the
    # features' pre-emphasis: steady noise (white, pink, brown; 0.5-20 s) spans at most 1.3 dB,
    # speechocean762's clips at least 18 dB; of 60 valid clips under white noise at 10 dB SNR none
    # falls below 2 dB, at 5 dB SNR 2, whose every word the built-in model got wrong anyway
    # (bench/steady_noise.py; README.md, "Long audio")
    steady_db: float = 2.0
    trim_after_seconds: float = 1.0  # quiet edges longer than this are cut (0: never) ...
    trim_margin_seconds: float = 0.5  # ... down to this much
    quiet_db: float = 40.0  # quiet: this far below the segment's loudest energy frame, or ...
    # ... within noise_floor_db of its quietest frame so far and floor_quiet_db below the loudest: in
    # a noisy recording a pause is only 20-35 dB below the speech (0: the quiet_db rule alone)
    noise_floor_db: float = 6.0
    floor_quiet_db: float = 20.0
    # Cut at the first quiet stretch this long after min_seconds (0: never): a model trained on
    # single utterances decodes a recording better one utterance a segment (bench/segment_long_files.py:
    # 0.8-5 points of WER on recordings of valid clips; README.md).
    pause_seconds: float = 0.5
    pause_margin_seconds: float = 0.2  # the quiet kept on each side of a pause cut at (the rest is skipped)

    def __post_init__(self):
        # max_seconds <= 0 cut segments of nothing for ever; frame_seconds 0 divided by zero
        for f in fields(self):
            value, positive = getattr(self, f.name), f.name in ("max_seconds", "frame_seconds")
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value < math.inf \
                    or not (value > 0 if positive else value >= 0):
                raise ValueError(f"{f.name} must be a finite number of {'more than' if positive else 'at least'} 0, "
                                 f"got {value!r}")

    def frame_samples(self, sample_rate: int) -> int:
        """The energy frame in samples (at least one)."""
        return max(1, int(self.frame_seconds * sample_rate))


@dataclass(frozen=True)
class AudioSegment:
    start: float  # seconds from the beginning of the file
    samples: torch.Tensor  # mono float32 at the model's rate
    silent: bool = False  # digital silence or steady noise: no speech to run a model on
    covers: float = 0.0  # seconds of the file it stands for, quiet edges included (for progress)
    steady: bool = False  # silent for its steady noise (is_steady), not for digital silence


def frame_energy(samples: np.ndarray, frame: int) -> np.ndarray:
    """Mean square of each whole ``frame`` of samples (a partial last frame is left out), about
    the frame's mean: a recorder's DC offset, which no one hears (the model's pre-emphasis takes it
    out), would otherwise fill every pause."""
    n = samples.size // frame
    frames = samples[: n * frame].reshape(n, frame).astype(np.float64)
    return frames.var(axis=1)


def loud_frames(energy: np.ndarray, quiet_db: float) -> np.ndarray:
    """Indices of the frames of ``energy`` (``frame_energy``'s) within ``quiet_db`` of the loudest:
    the speech a segment's quiet edges are trimmed to (``Segmenter.speech_span``); none when no
    frame has energy."""
    if not energy.max(initial=0.0) > 0:
        return np.zeros(0, dtype=np.intp)
    return np.flatnonzero(energy >= energy.max() * 10 ** (-quiet_db / 10))


def quietest_point(samples: np.ndarray, sample_rate: int, lo: int, hi: int, opts: SegmenterOptions) -> int:
    """The sample index in [lo, hi) at the centre of the lowest-energy ``smooth_seconds`` window."""
    frame = opts.frame_samples(sample_rate)
    n = (hi - lo) // frame
    if n < 2:
        return hi
    energy = frame_energy(samples[lo: lo + n * frame], frame)
    width = max(1, int(opts.smooth_seconds / opts.frame_seconds))
    if n > width:
        energy = np.convolve(energy, np.ones(width) / width, mode="valid")
        offset = width // 2
    else:
        offset = 0
    # among equally quiet windows (digital silence), take the last: segments stay long
    best = len(energy) - 1 - int(np.argmin(energy[::-1]))
    return lo + (best + offset) * frame + frame // 2


class Segmenter:
    """Feed blocks in, take segments out; memory is bounded by ``max_seconds`` plus one block."""

    @classmethod
    def on_frames(cls, sample_rate: int, frame_shift: float, options: SegmenterOptions = SegmenterOptions()):
        """A segmenter that cuts on a model's output frames (``frame_shift`` seconds apart)."""
        return cls(sample_rate, options, align=int(round(frame_shift * sample_rate)))

    def __init__(self, sample_rate: int, options: SegmenterOptions = SegmenterOptions(), align: int = 1):
        self.sample_rate = sample_rate
        self.options = options
        # cuts on multiples of the model's output frame keep the frames where whole-file decoding has them
        self.align = max(1, align)

    def segments(self, blocks: Iterable[np.ndarray]) -> Iterator[AudioSegment]:
        rate, opts = self.sample_rate, self.options
        max_len, min_len = max(1, int(opts.max_seconds * rate)), int(opts.min_seconds * rate)  # 0 would never end
        buffer = np.zeros(0, dtype=np.float32)
        start = 0  # sample offset of buffer[0] in the file
        long = False  # a recording of max_seconds or more: cut at pauses (a shorter one is one utterance)
        for block in blocks:
            buffer = np.concatenate([buffer, block]) if buffer.size else np.asarray(block, dtype=np.float32)
            long = long or buffer.size >= max_len
            while buffer.size >= max_len or (long and opts.pause_seconds and buffer.size > min_len):
                pause = self._pause(buffer, min_len, max_len) if opts.pause_seconds else None
                if pause is not None:
                    end, resume = self._around(*pause)
                elif buffer.size < max_len:
                    break
                else:
                    cut = quietest_point(buffer, rate, max(min_len, max_len // 2), max_len, opts)
                    end = resume = min(max(cut // self.align * self.align, self.align), max_len)
                yield from self._emit(buffer[:end], start, covers=resume)
                buffer, start = buffer[resume:].copy(), start + resume
        if buffer.size:
            yield from self._emit(buffer, start)

    def _around(self, lo: int, hi: int) -> tuple[int, int]:
        """Where the segment before the quiet samples [lo, hi) ends and the next one starts: at
        most ``pause_margin_seconds`` of the pause kept on each side, on the model's frame grid
        (so times stay where whole-file decoding has them); the middle is skipped."""
        margin, a = int(self.options.pause_margin_seconds * self.sample_rate), self.align
        middle = (lo + hi) // 2 // a * a
        end = min(-(-(lo + margin) // a) * a, max(middle, a))  # rounded up: never into speech
        resume = max((hi - margin) // a * a, end)
        return end, resume

    def _pause(self, samples: np.ndarray, after: int, within: int) -> tuple[int, int] | None:
        """[lo, hi) in samples of the first quiet stretch of ``pause_seconds`` or more that ends
        (speech follows it) within the first ``within`` samples, its middle past ``after``; or None.
        A frame is quiet ``quiet_db`` below the loudest one before it, or near the quietest one
        before it (``noise_floor_db``) and ``floor_quiet_db`` below the loudest: decided by what
        came before, so that the cuts do not depend on how much audio each block brings."""
        opts, rate = self.options, self.sample_rate
        frame = opts.frame_samples(rate)
        energy = frame_energy(samples[:within], frame)
        if not energy.size:
            return None
        louder = np.concatenate([[0.0], np.maximum.accumulate(energy)[:-1]])
        quiet = energy < louder * 10 ** (-opts.quiet_db / 10)
        if opts.noise_floor_db:
            floor = np.concatenate([[np.inf], np.minimum.accumulate(self._audible(energy))[:-1]])
            quiet |= (energy < floor * 10 ** (opts.noise_floor_db / 10)) & \
                (energy < louder * 10 ** (-opts.floor_quiet_db / 10))
        quiet = np.concatenate([[False], quiet])
        edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))  # starts and ends of quiet runs, in turn
        need = opts.pause_seconds / opts.frame_seconds
        for lo, hi in zip(edges[::2], edges[1::2]):  # quiet frames [lo, hi), speech at hi
            if hi - lo >= need and (lo + hi) // 2 * frame > after:
                return int(lo) * frame, int(hi) * frame  # (numpy's ints would make the times numpy floats)
        return None

    def _audible(self, energy: np.ndarray) -> np.ndarray:
        """``energy`` with digital silence as inf: the floor of what is audible, which a dropout's
        zeros would make 0 for good."""
        return np.where(energy > self.options.silence_rms ** 2, energy, np.inf)

    def noise_floor(self, energy: np.ndarray) -> float:
        """``noise_floor_db`` over the quietest audible frame of ``energy`` (per frame): what the
        pause rule takes for near the floor, over a whole piece (a word's tail stops there:
        asr.transcribe); 0 when the rule is off or nothing is audible."""
        lowest = float(self._audible(energy).min(initial=np.inf))
        if not self.options.noise_floor_db or math.isinf(lowest):
            return 0.0
        return lowest * 10 ** (self.options.noise_floor_db / 10)

    def is_silent(self, samples: np.ndarray) -> bool:
        """Below ``silence_rms`` throughout, or steady noise (``is_steady``): a model run would only
        make text up (evaluate, tuning and validation ask this of what they would run, so they
        agree with transcribe)."""
        return self.is_quiet(samples) or self.is_steady(samples)

    def is_quiet(self, samples: np.ndarray) -> bool:
        """Below ``silence_rms`` throughout: digital silence."""
        rms = np.sqrt(np.mean(samples.astype(np.float64) ** 2)) if samples.size else np.inf
        return bool(rms < self.options.silence_rms)

    def is_steady(self, samples: np.ndarray) -> bool:
        """Whether the energy of ``samples`` stays within ``steady_db`` (``energy_span_db``): noise
        with no speech in it. Speech rises and falls by tens of dB from syllable to syllable; steady
        noise by about one."""
        span = self.energy_span_db(samples) if self.options.steady_db else None
        return span is not None and span < self.options.steady_db

    def energy_span_db(self, samples: np.ndarray) -> float | None:
        """The loudest 100 ms frame of ``samples`` over the quietest, in dB, after pre-emphasis as
        the features have it (which takes out the slow swings of brown noise and hum, which span far
        more without it); None under three frames, too few to tell."""
        frame = int(STEADY_FRAME_SECONDS * self.sample_rate)
        # exact zeros are no quieter noise: a pause margin's digital silence, a dropout, an MP3
        # encoder's delay (a frame half zeros would pass for a quiet one, and the rule for speech)
        x = samples[samples != 0].astype(np.float64)
        if frame < 1 or x.size < 3 * frame:
            return None
        x = np.concatenate([x[:1], x[1:] - PRE_EMPHASIS * x[:-1]])
        energy = frame_energy(x, frame)
        if x.size % frame:  # the last partial frame, read back from the end: a word there counts
            energy = np.append(energy, frame_energy(x[-frame:], frame))
        if not energy.min() > 0:  # a frame of DC alone: no level to measure from (taken as no steady noise)
            return math.inf
        return float(10 * np.log10(energy.max() / energy.min()))

    def _emit(self, samples: np.ndarray, start: int, covers: int | None = None) -> Iterator[AudioSegment]:
        """``samples`` from sample ``start`` on, standing for ``covers`` samples of the file (a
        pause's skipped middle included)."""
        quiet = self.is_quiet(samples)
        steady = not quiet and self.is_steady(samples)
        silent = quiet or steady
        covers = (samples.size if covers is None else covers) / self.sample_rate
        if not silent:
            lo, hi = self.speech_span(samples)
            samples, start = samples[lo:hi], start + lo
        yield AudioSegment(start / self.sample_rate, torch.from_numpy(np.ascontiguousarray(samples)), silent, covers,
                           steady)

    def speech_span(self, samples: np.ndarray) -> tuple[int, int]:
        """[lo, hi) of ``samples`` without quiet edges longer than trim_after_seconds (cut to
        trim_margin_seconds; lo on the model's frame grid, so times stay where they were)."""
        opts, rate = self.options, self.sample_rate
        frame = opts.frame_samples(rate)
        if not opts.trim_after_seconds or samples.size < frame:
            return 0, samples.size
        loud = loud_frames(frame_energy(samples, frame), opts.quiet_db)
        if not loud.size:
            return 0, samples.size
        lo, hi = 0, samples.size
        first, last = int(loud[0]) * frame, (int(loud[-1]) + 1) * frame
        if first > opts.trim_after_seconds * rate:
            lo = max(0, first - int(opts.trim_margin_seconds * rate)) // self.align * self.align
        if samples.size - last > opts.trim_after_seconds * rate:
            hi = min(samples.size, last + int(opts.trim_margin_seconds * rate))
        return lo, hi


def array_blocks(samples: np.ndarray, block: int) -> Iterator[np.ndarray]:
    for i in range(0, len(samples), block):
        yield samples[i: i + block]
