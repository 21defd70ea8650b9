"""Reading audio: any file libsndfile reads (WAV, FLAC, OGG, MP3, SPHERE...), as mono float32
at the model's sample rate.

torchaudio 2.9+ no longer loads files without FFmpeg/torchcodec, so files are read with
soundfile and resampled with ``torchaudio.functional.resample``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF


MIN_RATE, MAX_RATE = 1000, 384_000  # plausible sample rates of an array (Hz)
NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)


class AudioError(Exception):
    """A file that cannot be used as audio. The message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    frames: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def audio_info(path: str | Path) -> AudioInfo:
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    if not path.is_file() and not path.is_dir():  # a pipe or device: reading its header would consume it
        raise AudioError(path, "a pipe or device, not a file: its header cannot be read ahead")
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile's messages are informative; keep them
        raise AudioError(path, f"not readable as audio ({_short(e)})") from None
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels))


def resample(waveform: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    if orig_rate == new_rate:
        return waveform
    return AF.resample(waveform, orig_rate, new_rate)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) or (frames,) -> (frames,): channels are averaged."""
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def check_samples(path, samples: np.ndarray) -> None:
    if samples.size == 0:
        raise AudioError(path, "audio is empty (0 samples)")
    if not np.isfinite(samples).all():
        raise AudioError(path, "audio contains NaN or infinite samples")


def path_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be an audio file before it is opened (missing, a folder); None if it can."""
    path = Path(path)
    if not path.exists():
        return "file not found"
    return "is a directory, not an audio file" if path.is_dir() else None


def load_audio(path: str | Path, sample_rate: int) -> torch.Tensor:
    """Read a file as a mono float32 tensor of shape (samples,) at ``sample_rate``."""
    path = Path(path)
    if (problem := path_problem(path)) is not None:
        raise AudioError(path, problem)
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as e:
        raise AudioError(path, f"not readable as audio ({_short(e)})") from None
    samples = to_mono(samples)
    check_samples(path, samples)
    waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    return resample(waveform, int(rate), sample_rate)


def prepare_array(array, sample_rate: int | None, target_rate: int, name="<array>") -> torch.Tensor:
    """An in-memory signal (numpy or torch; (samples,) or (samples, channels)) -> mono tensor.
    Floats are taken as they are (full scale 1.0); integer samples (scipy's wavfile, int16 PCM)
    are scaled to that range. ``sample_rate`` None means ``target_rate``."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu()
        # numpy has no bfloat16 (nor float8); float32 holds every value of those exactly
        samples = (array.float() if array.is_floating_point() and array.dtype not in NUMPY_FLOATS else array).numpy()
    elif isinstance(array, (np.ndarray, list, tuple)):
        samples = np.asarray(array)
    else:
        raise AudioError(name, f"expected a file path, or an array or tensor of samples; got {type(array).__name__}")
    if sample_rate is not None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer, np.floating)) \
                or not sample_rate > 0 or not float(sample_rate).is_integer():
            raise AudioError(name, f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
        sample_rate = int(sample_rate)
        if not MIN_RATE <= sample_rate <= MAX_RATE:  # resampling from 1 Hz would need gigabytes
            raise AudioError(name, f"sample_rate {sample_rate} Hz is not an audio rate "
                                   f"({MIN_RATE}..{MAX_RATE} Hz; the samples' rate, not their count?)")
    if samples.dtype.kind not in "iuf":
        raise AudioError(name, f"expected numeric samples, got {samples.dtype} (a list of paths? one at a time, "
                         "or transcribe_files)")
    if samples.dtype.kind in "iu":  # PCM: full scale is the type's range
        info = np.iinfo(samples.dtype)
        middle = (int(info.max) + int(info.min) + 1) / 2  # 0, or 128 for uint8
        samples = (samples.astype(np.float64) - middle) / (int(info.max) + 1 - middle)
    if samples.ndim == 2 and samples.shape[0] < samples.shape[1]:
        samples = samples.T  # torchaudio's (channels, samples) layout: never fewer samples than channels
    if samples.ndim not in (1, 2):
        raise AudioError(name, f"expected a 1-D or 2-D array, got shape {samples.shape}")
    samples = to_mono(samples.astype(np.float32, copy=False))
    check_samples(name, samples)
    waveform = torch.from_numpy(np.ascontiguousarray(samples))
    return resample(waveform, sample_rate or target_rate, target_rate)


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    return text[:200]
