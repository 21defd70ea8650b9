"""Long audio as users feed it: named pipes, streams and files of any length."""

import io
import os
import threading
import time

import numpy as np
import pytest
import soundfile as sf

import asr.inputs as inputs
from asr.inputs import stream_audio

RATE = 16000


def wav_bytes(seconds: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, (0.1 * np.sin(np.arange(int(seconds * RATE)) / 10)).astype(np.float32), RATE, format="WAV")
    return buf.getvalue()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_nobody_writes_to_says_on_stderr_what_it_waits_for(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(inputs, "PIPE_WAIT_NOTE_SECONDS", 0.1)
    fifo = tmp_path / "live.wav"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.extend(stream_audio(str(fifo), RATE)), daemon=True)
    reader.start()
    err, deadline = "", time.monotonic() + 10  # (a busy machine may run the note's timer late)
    while "waiting for a program" not in err and time.monotonic() < deadline:
        time.sleep(0.05)
        err += capfd.readouterr().err
    assert reader.is_alive()  # no writer yet: open() is still waiting
    assert f"{fifo}: waiting for a program to write to this named pipe" in err
    with open(fifo, "wb") as w:  # a writer comes: the wait ends and the audio is read
        w.write(wav_bytes(1.0))
    reader.join(10)
    assert not reader.is_alive() and sum(b.size for b in got) == RATE


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_whose_writer_is_there_is_read_without_a_note(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(inputs, "PIPE_WAIT_NOTE_SECONDS", 0.3)
    fifo = tmp_path / "live.wav"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb") as w:
            w.write(wav_bytes(2.0))

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    assert sum(b.size for b in stream_audio(str(fifo), RATE)) == 2 * RATE
    writer.join(10)
    time.sleep(3 * inputs.PIPE_WAIT_NOTE_SECONDS)  # past the note's time: it was called off when the pipe opened
    assert "waiting" not in capfd.readouterr().err
