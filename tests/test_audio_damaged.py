"""Damaged files are named in every message about them: an MP3 with bytes in its middle that are no
MPEG frames (libmpg123's own notes on them carry no file name), and a header whose channel count
no speech recording has (a mono file read as 300 channels is 300 times too short)."""

import os
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import soundfile as sf

from asr.audio import audio_info, load_audio
from asr.audio_checks import MpegNotes
from asr.user_warnings import gathered_warnings
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


def anonymous(err: str) -> list[str]:
    """stderr's lines that are libmpg123's own ("Note: ...", "[src/libmpg123/...] error: ...")."""
    return [line for line in err.splitlines() if line.startswith(("Note:", "Warning:", "Error:", "[src/libmpg123"))]


def test_libmpg123s_notes_on_a_damaged_mp3_are_said_naming_the_file_and_never_anonymously(tmp_path, capfd):
    path = damaged_mp3(tmp_path)
    audio = load_audio(path, RATE)
    err = capfd.readouterr().err
    assert 2 * RATE < audio.numel() < 3 * RATE  # the frames around the damage are skipped, the rest used
    assert f"asr: warning: {path}: damaged MPEG data (libmpg123: Illegal Audio-MPEG-Header 0x00000000 at offset" in err
    assert anonymous(err) == []


def test_a_damaged_mp3_probed_then_read_is_named_once(tmp_path, capfd):
    path = damaged_mp3(tmp_path)
    audio_info(path), load_audio(path, RATE)
    err = capfd.readouterr().err
    assert len([line for line in err.splitlines() if "damaged MPEG data" in line]) == 1 and anonymous(err) == []


def test_a_batch_job_gathers_a_damaged_mp3s_notes_as_one_line_naming_it(tmp_path, capfd):
    path = damaged_mp3(tmp_path)
    with gathered_warnings() as lines:
        audio_info(path)
    assert any(line.startswith(f"{path}: damaged MPEG data (libmpg123: ") for line in lines)
    assert capfd.readouterr().err == ""


def test_a_whole_mp3_gets_no_note_though_libmpg123_complains_of_its_bit_reservoir_after_a_seek(tmp_path, capfd):
    # libmpg123 prints "part2_3_length (192) too large for available bit count (184)" of this undamaged
    # file when audio_info seeks to its last frame: no damage, so no warning
    t = np.arange(3 * RATE) / RATE
    sf.write(str(tmp_path / "tone.mp3"), (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), RATE, format="MP3")
    assert audio_info(tmp_path / "tone.mp3").frames == load_audio(tmp_path / "tone.mp3", RATE).numel() == 3 * RATE
    assert capfd.readouterr().err == ""


def test_what_another_thread_writes_to_fd_2_while_an_mp3_is_decoded_is_written_back_not_lost(capfd):
    notes = MpegNotes("clip.mp3")
    with notes.caught():
        os.write(2, b"Note: Illegal Audio-MPEG-Header 0x00000000 at offset 1476.\n")
        os.write(2, b"epoch 3: loss 1.25\n")  # another thread's line meanwhile
    assert capfd.readouterr().err == "epoch 3: loss 1.25\n"
    notes.say()
    os.write(2, b"after\n")
    assert capfd.readouterr().err.splitlines() == [
        "asr: warning: clip.mp3: damaged MPEG data (libmpg123: Illegal Audio-MPEG-Header 0x00000000 at offset 1476); "
        "the audio that decodes is used", "after"]


def test_damaged_and_whole_mp3s_read_by_many_threads_are_each_named_and_fd_2_is_restored(tmp_path, capfd):
    damaged = [damaged_mp3(tmp_path, f"damaged{i}.mp3") for i in range(4)]
    whole = [write_sine(tmp_path / f"whole{i}.wav", seconds=1.0) for i in range(4)] + [tmp_path / "whole.mp3"]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda p: load_audio(p, RATE), damaged + whole))
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    named = [line for line in err.splitlines() if "damaged MPEG data" in line]
    assert sorted(line.split(": damaged")[0] for line in named) == [f"asr: warning: {p}" for p in sorted(damaged)]
    assert anonymous(err) == [] and err.endswith("after\n")


def test_an_mp3_with_garbage_joined_in_its_middle_is_probed_as_it_is_read_not_refused(tmp_path, capfd):
    # its size is off its Xing tag's: audio_info's seek to the last frame landed past the end, and
    # pysoundfile's read of "-n frames" was a ValueError, reported as "not readable as audio"
    damaged_mp3(tmp_path)
    data, garbage = (tmp_path / "whole.mp3").read_bytes(), np.random.default_rng(1).bytes(500)
    joined = tmp_path / "joined.mp3"
    joined.write_bytes(data[: len(data) // 2] + garbage + data[len(data) // 2:])
    assert audio_info(joined).frames == load_audio(joined, RATE).numel() > 0
    assert "truncated" in capfd.readouterr().err


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
