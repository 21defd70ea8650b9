"""What ``asr transcribe`` reads: input discovery (files, folders, globs, ``-``) and audio
sources that stream a file in blocks, so an hour of audio never sits in memory whole.

libsndfile (``soundfile``) reads WAV, FLAC, OGG, MP3, ...; what it cannot read (m4a, mp4, webm)
goes through an ``ffmpeg`` binary when one is installed, decoded to 16-bit PCM on a pipe. A WAV on
stdin or a named pipe (``<(sox ...)``) is parsed here and streamed too (libsndfile needs to
seek); other formats there, and WAV codecs other than PCM and float (mu-law, ADPCM), are read whole.
"""

from __future__ import annotations

import glob
import io
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from asr.audio import (BLOCK_SECONDS, MAX_RATE, MIN_RATE, SNDFILE_EXTENSIONS, AudioError, _open_problem, check_ending,
                       check_samples, decode_blocks, open_audio, resample, to_mono)
from asr.audio_checks import flac_length_unknown, path_problem, unknown_size, wav_format_tag
from asr.mp3_tags import file_size
from asr.text import plural
from asr.user_warnings import warn
from asr.walk import file_or_dangling_link, files_under

FFMPEG_EXTENSIONS = {".m4a", ".mp4", ".aac", ".webm", ".mkv", ".mov", ".wma", ".amr", ".3gp", ".avi", ".mpeg"}
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS | FFMPEG_EXTENSIONS
STDIN = "-"
# A named pipe's open() waits, silently, until some program opens it to write: after this long
# the user is told what the run is waiting for (a mkfifo with no writer would look like a hang).
PIPE_WAIT_NOTE_SECONDS = 5.0


class InputError(Exception):
    """An input argument that names no audio (an empty folder, a glob matching nothing)."""


def expand_inputs(args: list[str]) -> tuple[list[str], list[str]]:
    """Arguments -> (audio paths in order, one-line errors). A folder is searched recursively by
    extension, through the folders it links to (each real folder once); a glob is expanded when
    no file has that literal name; ``-`` is stdin. A plain path that does not exist is kept:
    reading it reports "file not found" in order."""
    paths, errors = [], []
    for arg in args:
        p = Path(arg)
        if arg == STDIN or p.is_file():
            paths.append(arg)
        elif p.is_dir():
            # through linked folders too (rglob does not enter them): corpora are often folders of links
            found = sorted(str(f) for f in files_under(p, own_paths_first=True, dangling=True)
                           if f.suffix.lower() in AUDIO_EXTENSIONS)
            if not found:
                errors.append(f"{arg}: no audio files in this folder (looked for "
                              f"{', '.join(sorted(AUDIO_EXTENSIONS))})")
            paths.extend(found)
        elif glob.has_magic(arg):
            found = sorted(f for f in glob.glob(arg, recursive=True) if file_or_dangling_link(f))
            if not found:
                errors.append(f"{arg}: no file matches this pattern")
            paths.extend(found)
        else:
            paths.append(arg)
    return paths, errors


def ffmpeg_path() -> str | None:
    return shutil.which("ffmpeg")


def needs_ffmpeg(path: str) -> bool:
    """An extension ffmpeg usually reads (libsndfile is still tried first: a FLAC named .m4a)."""
    return path != STDIN and Path(path).suffix.lower() in FFMPEG_EXTENSIONS


def is_stream(path: str) -> bool:
    """``-``, or a path that is a pipe or a character device (``<(sox ...)``, /dev/stdin): read
    once, front to back, as stdin is; a header read ahead of it would be gone."""
    if path == STDIN:
        return True
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def duration_of(path: str) -> float | None:
    """Seconds, when cheap to know (for a progress bar); None otherwise."""
    if is_stream(path):
        return None
    try:
        info = sf.info(os.fsencode(path))  # bytes: a name not in UTF-8 (see asr.audio.open_audio)
    except Exception:
        return None
    return None if flac_length_unknown(info) else info.duration  # a FLAC written to a pipe declares none


def stream_audio(path: str, sample_rate: int, block_seconds: float = BLOCK_SECONDS,
                 stdin=None) -> Iterator[np.ndarray]:
    """Mono float32 blocks at ``sample_rate`` from a file, ``-`` (a WAV on stdin) or, via ffmpeg,
    any container. Raises AudioError naming the file: unreadable, empty, NaN samples, ..."""
    if path != STDIN and is_stream(path):  # a named pipe or device: read as stdin is
        try:
            with _open_pipe(path) as stream:
                if stream.isatty():  # /dev/stdin with nothing piped in: reading would wait for typed audio
                    raise AudioError(path, "a terminal, not audio: pipe a WAV into it "
                                           "(sox in.flac -t wav - | asr transcribe -)")
                yield from _stream_blocks(stream, path, sample_rate, block_seconds)
        except OSError as e:
            raise AudioError(path, f"read error ({e.strerror or e})") from None
        return
    if path == STDIN:
        yield from _stream_blocks(_stdin(stdin), "<stdin>", sample_rate, block_seconds)
        return
    p = Path(path)
    if (problem := path_problem(p)) is not None:
        raise AudioError(path, problem)
    if p.is_file() and p.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    yield from _sndfile_blocks(str(p), path, sample_rate, block_seconds)


def _stdin(stdin=None):
    """``stdin``, else the process's stdin as bytes; refused when closed (``<&-``), or when a
    terminal: nothing was piped in, and reading would wait, silently, for typed audio."""
    stream = stdin if stdin is not None else getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise AudioError("<stdin>", "stdin is closed, or reads text only (a notebook's): pipe a WAV into it "
                                    "(sox in.flac -t wav - | asr transcribe -)")
    if getattr(stream, "isatty", lambda: False)():
        raise AudioError("<stdin>", "stdin is a terminal, not audio: pipe a WAV into it "
                                    "(sox in.flac -t wav - | asr transcribe -)")
    return stream


def _open_pipe(path: str):
    """``open(path, "rb")`` for a named pipe, saying on stderr, once it has waited
    ``PIPE_WAIT_NOTE_SECONDS`` for a writer, that it is waiting for one."""
    def note():
        sys.stderr.write(f"asr: {path}: waiting for a program to write to this named pipe (Ctrl-C to stop)\n")
        sys.stderr.flush()

    timer = threading.Timer(PIPE_WAIT_NOTE_SECONDS, note)
    timer.daemon = True
    timer.start()
    try:
        return open(path, "rb")
    finally:
        timer.cancel()


def _stream_blocks(stream, name: str, sample_rate: int, block_seconds: float) -> Iterator[np.ndarray]:
    """Audio read once from a stream (stdin, a pipe): a WAV block by block, else all of it."""
    head = _read_exactly(stream, 12)
    if not head:
        raise AudioError(name, "nothing on stdin (0 bytes)" if name == "<stdin>" else "nothing to read (0 bytes)")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":  # a WAV streams: no seeking needed
        yield from _wav_pipe_blocks(stream, name, sample_rate, block_seconds, head)
        return
    yield from _sndfile_blocks(io.BytesIO(head + stream.read()), name, sample_rate, block_seconds)  # needs seeking


def _sndfile_blocks(source, name: str, sample_rate: int, block_seconds: float) -> Iterator[np.ndarray]:
    """libsndfile first, whatever the extension says (a FLAC named .m4a); ffmpeg, when installed,
    for a file it cannot read that has an extension it does not know."""
    try:
        f = open_audio(source, name)  # (libmpg123's own notes kept off stderr)
    except Exception as e:  # libsndfile's messages are informative; keep them, less the path
        problem = _open_problem(e)
        unknown = isinstance(source, str) and Path(name).suffix.lower() not in SNDFILE_EXTENSIONS
        if unknown and (ffmpeg_path() or needs_ffmpeg(name)):  # "needs ffmpeg" when it is missing
            yield from _ffmpeg_blocks(name, sample_rate, block_seconds)
            return
        hint = "; ffmpeg (not installed) might read it" if unknown else ""
        raise AudioError(name, f"not readable as audio ({problem}){hint}") from None
    size = file_size(source)  # (a stream read whole into memory does not grow)
    read = 0
    with f:  # asr.audio's reading: a file cut short gives what is there, with a warning
        rate = int(f.samplerate)
        if not isinstance(source, str):  # stdin or a pipe, read whole
            _warn_of_narrowband(name, rate, sample_rate)
        for samples in decode_blocks(f, name, block_seconds):
            read += len(samples)
            yield _prepare_block(name, to_mono(samples, name), rate, sample_rate)
    if file_size(source) > size:  # a recording still being written: say what was used
        warn(name, f"grew while it was read (still being written?): transcribed its first {read / rate:.2f} s, "
                   "as far as it went when opened")


def _warn_of_narrowband(name: str, rate: int, target: int) -> None:
    """A stream's rate below the model's, said once its header is read (asr transcribe says it of
    files from their headers before any audio is read; a pipe's cannot be read ahead)."""
    if rate < target:
        warn(name, f"recorded at {rate} Hz, below the model's {target} Hz; upsampling cannot restore the missing "
                   "band, so expect more errors")


def _prepare_block(name: str, samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    check_samples(name, samples)  # a block is never empty; a scale warning is said once a file (one line)
    if rate == target:
        return np.ascontiguousarray(samples, dtype=np.float32)
    import torch

    # blocks are resampled one by one; the seam every block_seconds is far below audible
    return resample(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)), rate, target).numpy()


def _read_exactly(stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = stream.read(n - len(data))
        if not more:
            break
        data += more
    return data


_WAV_TYPES = {(1, 8): np.uint8, (1, 16): np.dtype("<i2"), (1, 24): np.dtype("V3"), (1, 32): np.dtype("<i4"),
              (3, 32): np.dtype("<f4"), (3, 64): np.dtype("<f8")}


def _wav_pipe_blocks(stream, name: str, sample_rate: int, block_seconds: float,
                     head: bytes = b"") -> Iterator[np.ndarray]:
    """PCM or float WAV from a pipe (after ``head``, its "RIFF....WAVE"), in blocks. The data size may be a
    placeholder (asr.audio_checks.unknown_size: 0, or sox's or ffmpeg's "length unknown"): then it is read to the
    end. A stream that ends before its data size is judged as a file cut short is. Other codecs
    (telephone audio's mu-law, A-law, ADPCM, GSM) are read whole by libsndfile, as a file would be."""
    import struct

    wav = "WAV on stdin" if name == "<stdin>" else "WAV on a pipe"
    fmt, read = None, [head]  # the bytes read so far, for libsndfile to read the whole WAV from
    while True:
        header = _read_exactly(stream, 8)
        read.append(header)
        if len(header) < 8:
            raise AudioError(name, f"{wav} has no 'data' chunk")
        chunk, size = header[:4], struct.unpack("<I", header[4:])[0]
        if chunk == b"fmt ":
            body = _read_exactly(stream, size + (size & 1))
            read.append(body)
            if len(body) < 16:
                raise AudioError(name, f"{wav} has a truncated 'fmt ' chunk")
            _, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            fmt = (wav_format_tag(body), channels, rate, bits)
        elif chunk == b"data":
            break
        else:
            read.append(_read_exactly(stream, size + (size & 1)))
    if fmt is None:
        raise AudioError(name, f"{wav} has no 'fmt ' chunk before its data")
    tag, channels, rate, bits = fmt
    if channels < 1 or not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(name, f"{wav}: its 'fmt ' chunk says {plural(channels, 'channel')} at {rate} Hz (audio is "
                               f"{MIN_RATE}..{MAX_RATE} Hz)")
    if (tag, bits) not in _WAV_TYPES:
        rest = stream.read()
        if size == 0:  # a writer that never filled it in (read to the end, as PCM is): libsndfile would read none
            read[-1] = b"data" + struct.pack("<I", min(len(rest), 0xFFFFFFFF))
        yield from _sndfile_blocks(io.BytesIO(b"".join(read) + rest), name, sample_rate, block_seconds)
        return
    _warn_of_narrowband(name, rate, sample_rate)
    dtype = np.dtype(_WAV_TYPES[(tag, bits)])
    frame = dtype.itemsize * channels
    left = None if unknown_size(size, frame) else size
    total = 0
    while left is None or left > 0:
        want = max(1, int(block_seconds * rate)) * frame
        data = _read_exactly(stream, want if left is None else min(want, left))
        data = data[: len(data) // frame * frame]
        if not data:
            break
        left = None if left is None else left - len(data)
        if bits == 24 and tag == 1:  # little-endian 3-byte ints, sign-extended through the top byte
            b = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            samples = (((b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)) >> 8).astype(np.float32) / 2 ** 23
            samples = samples.reshape(-1, channels)
        else:
            samples = np.frombuffer(data, dtype=dtype).reshape(-1, channels)
        if samples.dtype == np.uint8:
            samples = (samples.astype(np.float32) - 128.0) / 128.0
        elif samples.dtype.kind == "i":
            samples = samples.astype(np.float32) / float(2 ** (8 * dtype.itemsize - 1))
        total += samples.shape[0]
        yield _prepare_block(name, to_mono(samples.astype(np.float32, copy=False), name), rate, sample_rate)
    missing = -(-left // frame) if left else 0  # the bytes of a part sample count as one
    check_ending(name, rate, total, total + missing if missing else None)


def _ffmpeg_blocks(path: str, sample_rate: int, block_seconds: float) -> Iterator[np.ndarray]:
    if not Path(path).exists():
        raise AudioError(path, "file not found")
    exe = ffmpeg_path()
    if exe is None:
        raise AudioError(path, f"{Path(path).suffix} files need ffmpeg, which is not installed "
                               "(install it, e.g. apt-get install ffmpeg, or convert to WAV/FLAC)")
    cmd = [exe, "-nostdin", "-v", "error", "-i", path, "-f", "s16le", "-acodec", "pcm_s16le",
           "-ac", "1", "-ar", str(sample_rate), "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    total = 0
    try:
        nbytes = 2 * max(1, int(block_seconds * sample_rate))
        while True:
            data = proc.stdout.read(nbytes)
            if not data:
                break
            samples = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
            total += samples.size
            yield samples
        code = proc.wait()
        if code != 0:
            message = proc.stderr.read().decode(errors="replace").strip().splitlines()
            last = message[-1].removeprefix(f"{path}: ")[:200] if message else f"exit code {code}"
            raise AudioError(path, f"ffmpeg could not decode it ({last})")
        if total == 0:
            raise AudioError(path, "audio is empty (0 samples)")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
