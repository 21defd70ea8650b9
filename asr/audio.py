"""Reading audio: any file libsndfile reads (WAV, FLAC, OGG, MP3, SPHERE...), as mono float32
at the model's sample rate.

torchaudio 2.9+ no longer loads files without FFmpeg/torchcodec, so files are read with
soundfile and resampled with ``torchaudio.functional.resample``.

One policy for a file cut short (a copy or download that stopped early), for every command and
for whole-file and streaming reads alike, as ffmpeg and Kaldi have it: what is there is used,
with a one-line warning on stderr naming the file and how much is missing; a file with no audio
that can be decoded is an AudioError naming the file and the problem (an MP3's length is its
Xing/Info tag's; libmpg123's own note on a file whose size is off the tag's is kept from the
user's stderr, and one holding more than the tag says, of which only that is read, is warned of).
A channel count no speech recording has (a damaged header?) is warned of naming the file too
(asr.audio_checks); libmpg123's notes on other damaged MPEG data reach stderr as it prints them,
without the file's name (catching them would mean taking over fd 2, the whole process's, for every
MP3 read: other threads' lines meanwhile would be lost). A batch job (prepare, evaluate,
training) gathers those warnings and names a few with a total instead (``report_cut``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.audio_checks import (channels_problem, declared_frames, flac_length_unknown, path_problem, sample_problem,
                              scale_note, unended_ogg, unsupported_wav_codec)
from asr.mp3_tags import file_head, xing_tag
from asr.text import plural
from asr.user_warnings import quiet_stderr, warn


MIN_RATE, MAX_RATE = 1000, 384_000  # plausible sample rates of an array (Hz)
NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)
# The extensions of the formats libsndfile reads (folders of audio are searched for them).
SNDFILE_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".sph", ".nist", ".aiff", ".aif",
                      ".aifc", ".au", ".snd", ".w64", ".caf", ".rf64", ".voc"}
BLOCK_SECONDS = 30.0  # decoded at a time: bounded memory for a file of any length
_NOT_A_FILE = "File does not exist or is not a regular file"  # libsndfile says so of an MP3 with no frame it decodes


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
    """From the header, and cheap: a file cut short is found (and warned about, as reading it
    would) without decoding it, except a FLAC whose end is missing: that one is decoded to count
    what is there, and one that declares no length (written to a pipe). ``frames`` is what can be
    read; none at all is an AudioError."""
    name, path = path, Path(path)  # a warning names the file as reading it will (once for both)
    if path.exists() and not path.is_file() and not path.is_dir():  # reading its header would consume it
        raise AudioError(path, "a pipe or device, not a file: its header cannot be read ahead")
    if (problem := path_problem(path)) is not None:  # missing, a folder, empty (libsndfile: "a pipe?")
        raise AudioError(path, problem)
    try:
        with open_audio(str(path)) as f:
            rate, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
            if (problem := channels_problem(channels)) is not None:
                warn(name, problem)
            declared, unended = declared_frames(f), unended_ogg(f)
            if (f.format == "FLAC" and declared is None) or \
                    (f.format in ("FLAC", "MP3") and declared is not None and not _last_frame_decodes(f)):
                # a FLAC with no total (a streaming writer's), or the end missing: count what decodes
                frames = sum(len(block) for block in _reopened_blocks(path, name))  # warns, or raises for none
            elif (declared and frames < declared) or unended:
                check_ending(name, rate, frames, declared, unended=unended)
    except AudioError:
        raise
    except Exception as e:  # libsndfile's messages are informative; keep them
        raise AudioError(path, f"not readable as audio ({_open_problem(e)})") from None
    return AudioInfo(rate, frames, channels)


def _last_frame_decodes(f: sf.SoundFile) -> bool:
    """A FLAC's or MP3's last frame decodes (a seek, not a decode of the whole file): it is not cut short."""
    try:
        # libmpg123 notes the garbage a seek past the cut lands on (a file shorter than its tag says)
        with quiet_stderr(f.format == "MP3" and (tag := xing_tag(f.name)) is not None and tag.size_off):
            f.seek(f.frames - 1)
            return len(f.read(1, dtype="float32")) == 1
    except RuntimeError:  # libsndfile cannot seek or decode past where the file ends
        return False
    except ValueError:  # a damaged MP3's seek lands past the end: pysoundfile's read of "-n frames"
        return False


def _reopened_blocks(path: Path, name) -> Iterator[np.ndarray]:
    with open_audio(str(path)) as f:  # a failed seek leaves a decoder that cannot be trusted
        yield from decode_blocks(f, name)


def decode_blocks(f: sf.SoundFile, name, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """(frames, channels) float32 blocks of an open file, front to back: the reading of every
    command. A decoding error keeps the audio before it (libsndfile stops at a FLAC cut short or
    damaged); then ``check_ending`` warns, or raises AudioError when nothing could be decoded."""
    rate = int(f.samplerate)
    if not MIN_RATE <= rate <= MAX_RATE:  # a damaged header; resampling from 1 Hz would need gigabytes
        raise AudioError(name, f"its header says {rate} Hz, not an audio rate ({MIN_RATE}..{MAX_RATE} Hz)")
    if (problem := channels_problem(int(f.channels))) is not None:
        warn(name, problem)
    block = max(1, int(block_seconds * rate))
    if 0 < f.frames < block:  # a short file in one read (a count that is off costs a read more or less)
        block = int(f.frames) + 1
    total, failure, ended = 0, None, False
    while not ended:
        out = np.full((block, f.channels), np.nan, dtype=np.float32)
        try:
            samples = f.read(out=out)
        except RuntimeError as e:
            samples, ended = out[:_rows_written(out)], True
            failure = None if _stream_end(f) else e
        if len(samples):
            total += len(samples)
            yield samples
        ended = ended or len(samples) < block
    check_ending(name, rate, total, declared_frames(f), failure, unended_ogg(f))


def _rows_written(out: np.ndarray) -> int:
    """How many rows of a NaN-filled ``out`` a failed read decoded: pysoundfile raises without
    the count (and tell() fails after a FLAC of unknown length), but decoded PCM is never NaN."""
    missing = np.isnan(out).any(axis=1)
    return int(missing.argmax()) if missing.any() else len(out)


def _stream_end(f: sf.SoundFile) -> bool:
    """The "error" after the last read of a FLAC of unknown length read to its end: pysoundfile's
    seek to where the read stopped fails there. A cut or damaged one has the decoder's error in
    libsndfile's log (its error callback writes "ERROR : FLAC__STREAM_DECODER_ERROR_STATUS_...")."""
    return flac_length_unknown(f) and "ERROR : FLAC__STREAM_DECODER_ERROR" not in f.extra_info


def check_ending(name, rate: int, frames: int, declared: int | None = None, failure: Exception | None = None,
                 unended: bool = False) -> None:
    """Judge a read that ended after ``frames``: short of the ``declared`` count, stopped by a
    decoding ``failure``, or an Ogg stream ``unended``: a warning naming the file and what is
    missing, or an AudioError if nothing was read."""
    short = declared is not None and frames < declared
    if frames == 0:
        if failure is not None:
            cut = f"; the file is cut short or damaged (its header declares {_seconds(declared, rate)})" \
                if declared else "; the file is cut short or damaged"
            raise AudioError(name, f"no audio could be decoded ({_libsndfile(failure)}){cut}")
        if short:
            raise AudioError(name, f"cut short: no audio in it, where its header declares {_seconds(declared, rate)}")
        if unended:
            raise AudioError(name, "cut short: no complete page of audio in its Ogg stream")
        raise AudioError(name, "audio is empty (0 samples)")
    why = f"; decoding stopped: {_libsndfile(failure)}" if failure is not None else ""
    if short:
        warn(name, f"truncated: {_seconds(frames, rate)} of audio where its header declares "
                   f"{_seconds(declared, rate)} ({_amount(declared - frames, rate)} missing{why}); using what is there")
    elif failure is not None:
        warn(name, f"truncated or damaged: decoding stopped after {_seconds(frames, rate)} "
                   f"({_libsndfile(failure)}); using the audio before it")
    elif unended:
        warn(name, f"truncated: its Ogg stream ends without its last page; using the {_seconds(frames, rate)} "
                   "before it")


def open_audio(source, name=None) -> sf.SoundFile:
    """``sf.SoundFile(source)``. An MP3 that holds more or less than its Xing/Info tag says: libmpg123's
    note on it ("Warning: Xing stream size off by more than 1%...") kept off stderr, and said here in
    words: a cut one when reading finds the cut, one that holds more now (``name``: the file's, by
    default its path), as only the part the tag gives is read. (stderr is quieted for such files
    alone: it is the whole process's, and other threads' lines meanwhile are lost.)"""
    head = file_head(source, 3)
    mpeg = head == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)
    tag = xing_tag(source) if mpeg else None
    with quiet_stderr(tag is not None and tag.size_off):
        try:
            # bytes: soundfile encodes a str path strictly, so a name not in UTF-8 (os.fsdecode's surrogates) fails
            f = sf.SoundFile(os.fsencode(source) if isinstance(source, (str, os.PathLike)) else source)
        except Exception as e:
            if (codec := unsupported_wav_codec(source)) is not None:
                raise RuntimeError(codec) from None
            if _NOT_A_FILE in str(e) and isinstance(source, (str, os.PathLike)) and os.path.isfile(source) \
                    and str(source).lower().endswith(".mp3"):
                # libsndfile's word for an MP3 (by its name) in which libmpg123 finds no frame to decode
                raise RuntimeError("no MPEG audio frame could be decoded in it: cut short, damaged, or not "
                                   "an MP3") from None
            raise
    if tag is not None and tag.size_off and tag.held_bytes > tag.stream_bytes:
        warn(name or source, f"{tag.held_bytes - tag.stream_bytes} bytes past the MP3 stream length its Xing/Info "
                             "tag gives (another file joined to it?): only the part before them is read")
    return f


def _seconds(frames: int, rate: int) -> str:
    return f"{frames / rate:.2f} s"


def _amount(frames: int, rate: int) -> str:
    """Seconds, or samples below a hundredth of one (a WAV cut mid-sample lacks one)."""
    return _seconds(frames, rate) if frames >= rate / 100 else plural(frames, "sample")


def resample(waveform: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    if orig_rate == new_rate:
        return waveform
    return AF.resample(waveform, orig_rate, new_rate)


def to_mono(samples: np.ndarray, name=None) -> np.ndarray:
    """(frames, channels) or (frames,) -> (frames,): channels are averaged. Two channels that cancel
    in the average (one wired out of phase) are warned of, naming ``name``: the mix is near silence
    where each channel is loud, and would be transcribed as "no sound". (Many channels of a damaged
    header's noise also average towards silence: not this.)"""
    if samples.ndim != 2:
        return samples
    mono = samples.mean(axis=1)
    if name is not None and samples.shape[1] == 2 and (loud := float(np.mean(np.square(samples)))) > 1e-6 \
            and float(np.mean(np.square(mono))) < 1e-3 * loud:  # 30 dB or more below its channels
        warn(name, "its channels cancel when mixed to mono (one out of phase?): the mix is 30 dB or more below "
                   "them; transcribe one channel (e.g. sox IN OUT remix 1)")
    return mono


def check_samples(path, samples: np.ndarray) -> None:
    if samples.size == 0:
        raise AudioError(path, "audio is empty (0 samples)")
    if (problem := sample_problem(samples)) is not None:
        raise AudioError(path, problem)
    if (note := scale_note(samples)) is not None:
        warn(path, note)


def load_audio(path: str | Path, sample_rate: int) -> torch.Tensor:
    """Read a file as a mono float32 tensor of shape (samples,) at ``sample_rate``."""
    path = Path(path)
    if (problem := path_problem(path)) is not None:
        raise AudioError(path, problem)
    try:
        f = open_audio(str(path))
    except Exception as e:
        raise AudioError(path, f"not readable as audio ({_open_problem(e)})") from None
    with f:
        rate = int(f.samplerate)
        samples = np.concatenate(list(decode_blocks(f, path)))  # AudioError for none; a warning for a part
    samples = to_mono(samples, path)
    check_samples(path, samples)
    waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    return resample(waveform, rate, sample_rate)


def prepare_array(array, sample_rate: int | None, target_rate: int, name="<array>") -> torch.Tensor:
    """An in-memory signal (numpy or torch; (samples,) or (samples, channels)) -> mono tensor.
    ``sample_rate`` None means ``target_rate``.

    Floats are taken as they are (full scale 1.0). Integers are PCM of their type's width, scaled
    to that range: int16 (scipy's wavfile, soundfile's dtype="int16") by 2**15, int32 by 2**31
    (32-bit PCM, and 24-bit as soundfile reads it: however quiet, as a near-silent passage is),
    uint8 (8-bit WAV) around 128. Refused, by a one-line error, rather than heard as silence:
    int64/uint64 (no PCM format has them; Python ints, ``x.astype(int)`` and torch.long are
    int64). One clip per call: a list of arrays or tensors is refused, not mixed."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu()
        # numpy has no bfloat16 (nor float8); float32 holds every value of those exactly
        samples = (array.float() if array.is_floating_point() and array.dtype not in NUMPY_FLOATS else array).numpy()
    elif isinstance(array, (np.ndarray, list, tuple)):
        if not isinstance(array, np.ndarray) and any(isinstance(a, (np.ndarray, torch.Tensor)) for a in array):
            raise AudioError(name, f"expected one clip, got a {type(array).__name__} of {len(array)} arrays or "
                             "tensors: one at a time (or transcribe_files for paths); channels go in one 2-D array")
        try:
            samples = np.asarray(array)
        except ValueError:  # nested lists of different lengths
            raise AudioError(name, "expected one clip, got lists of different lengths: one at a time (or "
                             "transcribe_files for paths); channels go in one 2-D array") from None
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
    if samples.dtype.kind in "iu" and samples.dtype.itemsize == 8:
        raise AudioError(name, f"{samples.dtype} samples: no PCM format has them (Python ints and torch.long are "
                         "int64); give 16-bit PCM as int16 (x.astype(np.int16)), 32-bit PCM as int32, or floats "
                         "in [-1, 1]")
    if samples.dtype.kind in "iu":  # PCM: full scale is the type's range
        info = np.iinfo(samples.dtype)
        middle = (int(info.max) + int(info.min) + 1) / 2  # 0, or 128 for uint8
        samples = (samples.astype(np.float64) - middle) / (int(info.max) + 1 - middle)
    if samples.size == 0:  # before the mixdown: (0, 2) or (2, 0) would average to NaN
        raise AudioError(name, "audio is empty (0 samples)")
    if samples.ndim == 2 and samples.shape[0] < samples.shape[1]:
        samples = samples.T  # torchaudio's (channels, samples) layout: never fewer samples than channels
    if samples.ndim not in (1, 2):
        raise AudioError(name, f"expected a 1-D or 2-D array, got shape {samples.shape}")
    samples = to_mono(samples.astype(np.float32, copy=False), name)
    check_samples(name, samples)
    waveform = torch.from_numpy(np.require(samples, np.float32, ["C", "W"]))  # a memory map is read-only
    return resample(waveform, sample_rate or target_rate, target_rate)


def _open_problem(error: Exception) -> str:
    """libsndfile's reason a file would not open, less its "Error opening 'PATH': " (the path leads the message)."""
    return re.sub(r"^Error opening .*?: ", "", _short(error))


def _libsndfile(error: Exception) -> str:
    """A decoding error as a clause: "Error : flac decoder lost sync." -> "flac decoder lost sync"."""
    return re.sub(r"^Error\s*:\s*", "", _short(error)).rstrip(".")


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    return text[:200]
