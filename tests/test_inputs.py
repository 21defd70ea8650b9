"""What `asr transcribe` is given, read as a user gives it: WAVs of any codec on stdin or a pipe,
a closed or terminal stdin, damaged headers, folders and globs with links."""

import io
import re
import struct

import numpy as np
import pytest
import soundfile as sf

from asr.audio import AudioError
from asr.inputs import stream_audio

RATE = 16000


@pytest.mark.parametrize("subtype", ["ULAW", "ALAW", "IMA_ADPCM", "GSM610"])
@pytest.mark.parametrize("placeholder", [None, 0x7FFFF000, 0xFFFFFFFF, 0])  # sizes a writer on a pipe leaves
def test_a_telephone_wav_on_stdin_mu_law_a_law_or_adpcm_is_read_as_the_same_file_on_disk_is(subtype, placeholder):
    x = (np.sin(np.arange(8000) * 0.05) * 0.3).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, 8000, format="WAV", subtype=subtype)
    raw = bytearray(buf.getvalue())
    expected = np.concatenate(list(stream_audio_of_bytes(bytes(raw), "x.wav")))
    if placeholder is not None:
        data_at = raw.index(b"data")
        raw[4:8] = raw[data_at + 4: data_at + 8] = struct.pack("<I", placeholder)
    got = np.concatenate(list(stream_audio("-", RATE, stdin=io.BytesIO(bytes(raw)))))
    np.testing.assert_allclose(got, expected, atol=1e-6)


def stream_audio_of_bytes(data: bytes, name: str):
    """What ``stream_audio`` reads from a file holding ``data``."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        yield from stream_audio(str(path), RATE)


class Terminal(io.BytesIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stdin, problem", [
    (None, "stdin is closed"),  # `asr transcribe - <&-`: was a traceback
    (Terminal(b"typed"), "stdin is a terminal"),  # `asr transcribe -` with nothing piped: was a silent wait
])
def test_stdin_that_is_closed_or_a_terminal_is_a_one_line_error(monkeypatch, stdin, problem):
    from asr.audio import AudioError

    if stdin is None:
        monkeypatch.setattr("sys.stdin", None)
    with pytest.raises(AudioError, match=f"^<stdin>: {problem}"):
        list(stream_audio("-", RATE, stdin=stdin))


@pytest.mark.parametrize("rate, fmt", [(8000, "WAV"), (11025, "FLAC")])  # a WAV streams; a FLAC is read whole
def test_audio_on_stdin_recorded_below_the_model_rate_is_transcribed_with_the_warning_a_file_gets(rate, fmt):
    # the command's warning comes from the files' headers, read ahead: a pipe's cannot be
    from asr.user_warnings import gathered_warnings

    with gathered_warnings() as lines:
        blocks = list(stream_audio("-", RATE, stdin=io.BytesIO(sf_bytes(rate, fmt))))
        list(stream_audio("-", RATE, stdin=io.BytesIO(sf_bytes(RATE, "WAV"))))
    assert sum(b.size for b in blocks) == RATE // 2
    assert lines == [f"<stdin>: recorded at {rate} Hz, below the model's {RATE} Hz; upsampling cannot restore the "
                     "missing band, so expect more errors"]


def sf_bytes(rate: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(rate // 2, dtype=np.float32) + 0.1, rate, format=fmt)
    return buf.getvalue()


def test_a_wav_on_stdin_whose_header_says_no_channels_is_a_one_line_error():
    from asr.audio import AudioError

    raw = bytearray(sf_bytes(RATE, "WAV"))
    raw[22:24] = struct.pack("<H", 0)  # the 'fmt ' chunk's channel count
    with pytest.raises(AudioError, match=r"^<stdin>: WAV on stdin: its 'fmt ' chunk says 0 channels at 16000 Hz "
                                         r"\(audio is 1000\.\.384000 Hz\)$"):
        list(stream_audio("-", RATE, stdin=io.BytesIO(bytes(raw))))


def test_a_wav_whose_header_says_1_hz_is_a_one_line_error_on_disk_and_on_stdin_not_a_resampling_to_gigabytes(
        tmp_path):
    from asr.audio import AudioError, load_audio

    raw = bytearray(sf_bytes(RATE, "WAV"))
    raw[24:28] = struct.pack("<I", 1)  # the 'fmt ' chunk's sample rate: a damaged header
    (tmp_path / "one.wav").write_bytes(bytes(raw))
    with pytest.raises(AudioError, match=r"one.wav: its header says 1 Hz, not an audio rate \(1000\.\.384000 Hz\)$"):
        load_audio(tmp_path / "one.wav", RATE)
    with pytest.raises(AudioError, match=r"one.wav: its header says 1 Hz"):
        list(stream_audio(str(tmp_path / "one.wav"), RATE))
    with pytest.raises(AudioError, match=r"^<stdin>: WAV on stdin: its 'fmt ' chunk says 1 channel at 1 Hz"):
        list(stream_audio("-", RATE, stdin=io.BytesIO(bytes(raw))))


def test_a_broken_link_to_audio_in_a_folder_or_a_glob_is_an_input_that_fails_by_name_not_one_left_out(tmp_path):
    # corpora are often folders of links to the audio: one whose target is gone was skipped silently
    from asr.inputs import expand_inputs

    (tmp_path / "good.wav").write_bytes(sf_bytes(RATE, "WAV"))
    (tmp_path / "gone.wav").symlink_to(tmp_path / "moved" / "gone.wav")
    (tmp_path / "notes.txt").symlink_to(tmp_path / "moved" / "notes.txt")  # not audio: still left out
    expected = [str(tmp_path / "gone.wav"), str(tmp_path / "good.wav")]
    assert expand_inputs([str(tmp_path)]) == (expected, [])
    assert expand_inputs([str(tmp_path / "*.wav")]) == (expected, [])
    with pytest.raises(AudioError, match=r"gone.wav: .*not found"):
        list(stream_audio(expected[0], RATE))


def test_a_folder_s_audio_is_found_through_the_folders_it_links_to_each_real_folder_once(tmp_path):
    # a corpus assembled from links to other disks: rglob does not enter a linked folder (Python < 3.13)
    from asr.inputs import expand_inputs

    (tmp_path / "disk" / "spk1").mkdir(parents=True)
    (tmp_path / "disk" / "spk1" / "a.wav").write_bytes(sf_bytes(RATE, "WAV"))
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "own.flac").write_bytes(sf_bytes(RATE, "FLAC"))
    (tmp_path / "corpus" / "spk1").symlink_to(tmp_path / "disk" / "spk1")
    (tmp_path / "corpus" / "again").symlink_to(tmp_path / "disk" / "spk1")  # a second way in: read once
    (tmp_path / "corpus" / "loop").symlink_to(tmp_path / "corpus")  # a link back up ends there
    assert expand_inputs([str(tmp_path / "corpus")]) == (
        [str(tmp_path / "corpus" / "again" / "a.wav"), str(tmp_path / "corpus" / "own.flac")], [])


def test_a_terminal_named_as_a_path_like_dev_stdin_is_a_one_line_error_not_a_silent_wait(tmp_path):
    import os
    import pty
    import threading

    leader, follower = pty.openpty()  # what /dev/stdin is when nothing is piped in
    try:
        for path in (os.ttyname(follower), f"/dev/fd/{follower}"):
            outcome = []

            def read(path=path):
                try:
                    list(stream_audio(path, RATE))
                except AudioError as e:
                    outcome.append(str(e))

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            reader.join(timeout=10)
            assert outcome == [f"{path}: a terminal, not audio: pipe a WAV into it "
                               "(sox in.flac -t wav - | asr transcribe -)"]
    finally:
        os.close(leader)
        os.close(follower)


def wav_with_codec(tag: int, extra: bytes = struct.pack("<H", 0)) -> bytes:
    """A well-formed mono 16 kHz WAV whose 'fmt ' chunk names codec ``tag``."""
    data = bytes(3200)
    fmt = struct.pack("<HHIIHH", tag, 1, RATE, 2 * RATE, 2, 16) + extra
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("tag, codec", [(0x0014, "0x0014, G.723 ADPCM"), (0x1234, "0x1234")])
def test_a_wav_codec_libsndfile_cannot_decode_is_named_as_unsupported_on_disk_on_stdin_and_on_a_pipe(
        tmp_path, tag, codec):
    import os

    raw = wav_with_codec(tag)
    problem = (f"not readable as audio (its WAV codec ({codec}) is not supported: convert it to PCM WAV or "
               "FLAC)")
    (tmp_path / "x.wav").write_bytes(raw)
    with pytest.raises(AudioError, match=re.escape(f"{tmp_path / 'x.wav'}: {problem}") + "$"):
        list(stream_audio(str(tmp_path / "x.wav"), RATE))
    with pytest.raises(AudioError, match=re.escape(f"<stdin>: {problem}") + "$"):
        list(stream_audio("-", RATE, stdin=io.BytesIO(raw)))
    read, write = os.pipe()
    with os.fdopen(write, "wb") as w:
        w.write(raw)
    try:
        with pytest.raises(AudioError, match=re.escape(f"/dev/fd/{read}: {problem}") + "$"):
            list(stream_audio(f"/dev/fd/{read}", RATE))
    finally:
        os.close(read)
