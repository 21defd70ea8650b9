"""Checks of what an audio file declares and holds, apart from the reading itself (asr.audio): the
length its header declares (to tell a file cut short), a WAV codec libsndfile cannot decode, a
channel count no speech recording has, and samples that are no audio.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.mp3_tags import file_head, xing_tag

# Float samples beyond this are no audio at any scale a writer uses (full scale is 1.0; a float file
# holding 32-bit PCM's integer values reaches 2**31): a damaged file, or bytes that are no samples.
MAX_SAMPLE = 2.0 ** 32
# The largest microphone arrays speech is recorded with (Eigenmike em64, 7th-order ambisonics) have
# 64 channels; a header declaring more over mono data is the likelier story (such a file reads 300
# times too short as 300 channels), so it is warned of, but read: bigger arrays exist.
MAX_CHANNELS = 64
# The "length unknown" data sizes streaming writers leave in a header they cannot go back to fill
# in: 0xFFFFFFFF (ffmpeg; AU's -1), 0x7FFFFFFF, and sox's 0x7FFFF000 (WAV) and 0x7F000000 (AIFF,
# whose SSND size adds its 8-byte offset/block header), which sox rounds down to whole sample
# frames (24-bit WAV: 0x7FFFEFFF). 0 is a writer that never filled it in.
_PLACEHOLDER_SIZES = (0x7F000000, 0x7FFFF000, 0x7FFFFFFF, 0xFFFFFFFF)
# A FLAC STREAMINFO total of 0 is "unknown" (libsndfile bumps it to SF_COUNT_MAX); 2**36 - 1, the
# field's largest value (16 days at 48 kHz), is no real length either.
FLAC_UNKNOWN_FRAMES = 2 ** 36 - 1
# libsndfile logs a PCM data chunk longer than the file holds as "data : 59040 (should be 956)":
# WAV's data, AIFF's SSND, AU's "Data Size"; its own frame count is then what is there.
_DATA_SIZE = re.compile(r"^\s*(?:data|SSND|Data Size)\s*: (\d+) \(should be (\d+)\)", re.M)
_SAMPLE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
                 "ULAW": 1, "ALAW": 1}
# WAV codecs (format tags) libsndfile decodes: PCM, MS ADPCM, float, A-law, mu-law, IMA ADPCM, NMS
# ADPCM, GSM 6.10, G.721, MPEG; and some it does not, named in its error ("Malformed 'fmt ' chunk").
_SNDFILE_WAV_CODECS = {0x0001, 0x0002, 0x0003, 0x0006, 0x0007, 0x0011, 0x0031, 0x0038, 0x0040, 0x0050, 0x0055}
_WAV_CODEC_NAMES = {0x0014: "G.723 ADPCM", 0x0022: "TrueSpeech", 0x0042: "G.723.1", 0x00FF: "AAC",
                    0x0161: "WMA", 0x1610: "HE-AAC", 0x2000: "AC-3"}


def declared_frames(f: sf.SoundFile) -> int | None:
    """The frame count ``f``'s header declares, where it can be more than libsndfile will read:
    FLAC's, an MP3's Xing/Info tag's, and a WAV/AIFF/AU data chunk longer than the file (libsndfile's
    ``frames`` is then what is there). None where no length is declared (Ogg, an MP3 without that
    tag), for a streaming writer's "length unknown" (``unknown_size``; FLAC's 0), and for a file
    that holds all its header declares."""
    if f.format == "FLAC":
        return None if flac_length_unknown(f) else int(f.frames)
    if f.format == "MP3":
        tag = xing_tag(f.name)
        return int(f.frames) if tag is not None and tag.counts_frames else None
    found, size = _DATA_SIZE.search(f.extra_info), _SAMPLE_BYTES.get(f.subtype)
    if found and size:
        declared, held = int(found[1]), int(found[2])
        if held < declared and not unknown_size(declared, size * f.channels):
            return int(f.frames) + -(-(declared - held) // (size * f.channels))  # a part sample counts as one
    return None


def unknown_size(size: int, frame_bytes: int) -> bool:
    """Whether a WAV/AIFF/AU data size is a streaming writer's placeholder rather than a length:
    0, or within a few sample frames (of ``frame_bytes``) of one of ``_PLACEHOLDER_SIZES``."""
    slack = 4 * frame_bytes + 8  # sox rounds down to whole frames; AIFF's SSND size adds 8 bytes
    return size == 0 or any(abs(size - placeholder) <= slack for placeholder in _PLACEHOLDER_SIZES)


def flac_length_unknown(f) -> bool:
    """A FLAC (an open SoundFile or sf.info's) whose STREAMINFO has no total (a streaming writer's)."""
    return f.format == "FLAC" and int(f.frames) >= FLAC_UNKNOWN_FRAMES


def unended_ogg(f: sf.SoundFile) -> bool:
    """An Ogg stream that stops mid-page or lacks its end-of-stream page: it was cut short."""
    log = f.extra_info
    return f.format == "OGG" and ("end-of-stream" in log.lower() or "Junk after the last page" in log)


def channels_problem(channels: int) -> str | None:
    """Why a header's channel count is suspect (more than ``MAX_CHANNELS``), as a warning's text."""
    if channels <= MAX_CHANNELS:
        return None
    return (f"its header says {channels} channels, more than speech is recorded with (a damaged header? mono "
            f"audio read so is {channels} times too short): they are mixed down to mono")


def wav_format_tag(fmt: bytes) -> int:
    """The codec a WAV's 'fmt ' chunk body names; an extensible one's (0xFFFE): its subformat's."""
    tag = int.from_bytes(fmt[:2], "little")
    return int.from_bytes(fmt[24:26], "little") if tag == 0xFFFE and len(fmt) >= 26 else tag  # leads the GUID


def unsupported_wav_codec(source) -> str | None:
    """Why libsndfile cannot open a WAV: a codec it does not decode (``wav_format_tag`` of the
    'fmt ' chunk in the file's head); None for any other file."""
    head = file_head(source, 4096)
    if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return None
    at = 12
    while at + 10 <= len(head):
        chunk, size = head[at:at + 4], int.from_bytes(head[at + 4:at + 8], "little")
        if chunk == b"fmt ":
            codec = wav_format_tag(head[at + 8:at + 8 + size])
            if codec in _SNDFILE_WAV_CODECS:
                return None
            name = f", {_WAV_CODEC_NAMES[codec]}" if codec in _WAV_CODEC_NAMES else ""
            return f"its WAV codec (0x{codec:04X}{name}) is not supported: convert it to PCM WAV or FLAC"
        at += 8 + size + (size & 1)
    return None


# Float samples past this are audio at the wrong scale (integer values stored as floats, a gain
# applied twice): read as they are, but the model heard nothing like them (the built-in model's
# "elephant" became "a friend" at 50 times full scale).
OVER_SCALE = 2.0


def scale_note(samples: np.ndarray) -> str | None:
    """The warning for samples well beyond full scale that are still audio; None otherwise."""
    # the peak from min and max: abs() would copy the whole signal (an hour at 44.1 kHz: 635 MB)
    if not samples.size or max(-float(samples.min()), float(samples.max())) <= OVER_SCALE:
        return None
    return (f"samples beyond {OVER_SCALE:g} times full scale (1.0): float audio at the wrong scale? It is read "
            "as it is, and may transcribe worse than the same audio scaled to -1..1")


def sample_problem(samples: np.ndarray) -> str | None:
    """Why decoded samples are no audio: NaN or infinite ones, or a peak beyond
    ``MAX_SAMPLE`` (features would overflow to inf, and one such file would turn a corpus's feature
    statistics, or a model's token priors, into NaN); None if they are audio."""
    if not samples.size:
        return None
    low, high = float(samples.min()), float(samples.max())  # (no copy; a NaN makes both NaN)
    if -MAX_SAMPLE <= low and high <= MAX_SAMPLE:
        return None
    if not np.isfinite(samples).all():
        return "audio contains NaN or infinite samples"
    return (f"audio has samples of magnitude {max(-low, high):.3g}, far beyond full scale (1.0): a damaged float "
            "file, or not audio")


def path_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be an audio file before it is opened (missing, a folder, empty); None if it can."""
    path = Path(path)
    if not path.exists():
        return "file not found"
    if path.is_dir():
        return "is a directory, not an audio file"
    # libsndfile calls an empty file "not a regular file (possibly a pipe?)" or "Format not recognised";
    # a truncated download or copy is the usual cause, so say what it is.
    return "empty file (0 bytes)" if path.is_file() and path.stat().st_size == 0 else None
