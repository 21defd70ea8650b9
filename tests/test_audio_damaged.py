"""Damaged files are read, and named in every warning of ours about them: an MP3 with bytes in its
middle that are no MPEG frames (libmpg123's own notes on them, on stderr as it prints them, carry no
file name: catching them would take fd 2 from every other thread), and a header whose channel count
no speech recording has (a mono file read as 300 channels is 300 times too short)."""

import os
import re
import struct
import threading

import numpy as np
import soundfile as sf

from asr.audio import audio_info, load_audio
from asr.user_warnings import gathered_warnings, report_cut
from conftest import write_sine

RATE = 16000


def damaged_mp3(tmp_path, name="damaged.mp3"):
    """Three seconds of a tone as an MP3, 300 of its bytes a third of the way in zeroed."""
    whole = tmp_path / "whole.mp3"
    t = np.arange(3 * RATE) / RATE
    sf.write(str(whole), (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), RATE, format="MP3")
    data = bytearray(whole.read_bytes())
    data[len(data) // 3: len(data) // 3 + 300] = bytes(300)
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


def test_a_damaged_mp3_is_read_around_its_damage_and_probed_as_it_is_read(tmp_path, capfd):
    path = damaged_mp3(tmp_path)
    assert 2 * RATE < audio_info(path).frames == load_audio(path, RATE).numel() < 3 * RATE
    ours = [line for line in capfd.readouterr().err.splitlines() if line.startswith("asr: ")]
    assert ours and all(line.startswith(f"asr: warning: {path}: ") for line in ours)


def test_no_line_another_thread_writes_to_fd_2_while_a_damaged_mp3_is_read_is_lost(tmp_path, capfd):
    # fd 2 is the whole process's: training's loader threads read MP3s while its main loop prints.
    # Pointing fd 2 elsewhere around each libsndfile call on an MP3 (to catch libmpg123's notes)
    # lost a tenth of such lines.
    path = damaged_mp3(tmp_path)
    reading, written = threading.Event(), threading.Event()

    def write_lines():
        reading.wait()
        for n in range(2000):
            os.write(2, f"epoch line {n}\n".encode())
        written.set()

    writer = threading.Thread(target=write_lines)
    writer.start()
    reads = 0
    reading.set()
    while not written.is_set():  # reading all the while the other thread writes
        audio_info(path), load_audio(path, RATE)
        reads += 1
    writer.join()
    arrived = [int(n) for n in re.findall(r"epoch line (\d+)\n", capfd.readouterr().err)]  # (libmpg123's between)
    assert reads and arrived == list(range(2000))


def joined_mp3(tmp_path):
    """An MP3 with 500 random bytes joined in its middle: read as far as them, and warned of twice
    (its size is off its Xing tag's; the audio after them is missing)."""
    damaged_mp3(tmp_path)
    data, garbage = (tmp_path / "whole.mp3").read_bytes(), np.random.default_rng(1).bytes(500)
    (tmp_path / "joined.mp3").write_bytes(data[: len(data) // 2] + garbage + data[len(data) // 2:])
    return tmp_path / "joined.mp3"


def test_an_mp3_with_garbage_joined_in_its_middle_is_probed_as_it_is_read_not_refused(tmp_path, capfd):
    # its size is off its Xing tag's: audio_info's seek to the last frame landed past the end, and
    # pysoundfile's read of "-n frames" was a ValueError, reported as "not readable as audio"
    joined = joined_mp3(tmp_path)
    assert audio_info(joined).frames == load_audio(joined, RATE).numel() > 0
    ours = [line for line in capfd.readouterr().err.splitlines() if line.startswith("asr: ")]
    said = [line.removeprefix(f"asr: warning: {joined}: ") for line in ours]  # each naming it
    assert len(said) == 2 and said[0].startswith("500 bytes past the MP3 stream length") and \
        said[1].startswith("truncated: ")


def wav_claiming_channels(path, channels: int, consistent: bool):
    """A 1 s mono 16-bit WAV whose 'fmt ' chunk says ``channels``; ``consistent``: its block align and
    byte rate say so too (else they still say mono)."""
    write_sine(path, seconds=1.0, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    fmt = data.find(b"fmt ") + 8
    struct.pack_into("<H", data, fmt + 2, channels)
    if consistent:
        struct.pack_into("<IH", data, fmt + 8, RATE * 2 * channels, 2 * channels)
    path.write_bytes(data)
    return path


def test_a_header_claiming_300_channels_over_mono_audio_is_read_with_a_warning_naming_the_file(tmp_path, capfd):
    for consistent in (False, True):
        path = wav_claiming_channels(tmp_path / f"ch300_{consistent}.wav", 300, consistent)
        assert audio_info(path).channels == 300 and load_audio(path, RATE).numel() == RATE * 2 // 600
        assert capfd.readouterr().err.splitlines() == [
            f"asr: warning: {path}: its header says 300 channels, more than speech is recorded with (a damaged header? "
            "mono audio read so is 300 times too short): they are mixed down to mono"]


def test_a_64_channel_array_recording_is_read_without_a_warning(tmp_path, capfd):
    t = np.arange(RATE // 4) / RATE
    sf.write(str(tmp_path / "array.wav"), np.tile(0.1 * np.sin(2 * np.pi * 300 * t)[:, None], (1, 64)), RATE)
    assert load_audio(tmp_path / "array.wav", RATE).numel() == audio_info(tmp_path / "array.wav").frames == RATE // 4
    assert capfd.readouterr().err == ""


def test_a_batch_total_counts_a_file_warned_of_twice_as_one_file(tmp_path):
    path, said = joined_mp3(tmp_path), []
    with gathered_warnings() as lines:
        audio_info(path), load_audio(path, RATE)
    report_cut(lines, say=said.append)
    assert len(lines) == 2 and said == lines + [
        "warning: 1 audio file(s) cut short or damaged: the audio before the cut is used"]


def test_a_batch_total_calls_a_file_with_too_many_channels_read_with_a_warning_not_cut_short(tmp_path):
    whole = write_sine(tmp_path / "whole.wav", seconds=1.0).read_bytes()
    cut = tmp_path / "take 1: cut.wav"  # (a name with ": " in it: a line's file is not the text before one)
    cut.write_bytes(whole[: 44 + RATE])
    # each batch its own files: a file already named in the process is not named (or counted) again
    for paths, total in (([wav_claiming_channels(tmp_path / "a.wav", 300, True)], "1 train audio file(s) read with "
                                                                                    "a warning"),
                         ([wav_claiming_channels(tmp_path / "b.wav", 300, True), cut],
                          "2 train audio file(s) read with a warning, 1 of them cut short or damaged: the audio "
                          "before the cut is used")):
        said = []
        with gathered_warnings() as lines:
            for path in paths:
                load_audio(path, RATE)
        report_cut(lines, "train.jsonl", "train", say=said.append)
        assert said == lines + [f"warning: train.jsonl: {total}"]
