"""A file cut short (a copy or download that stopped early) is read one way by every command,
whole-file or streamed, WAV, FLAC, Ogg or MP3, as ffmpeg and Kaldi read it: the audio that is there
is used, with one warning line naming the file and how much is missing; a file with no audio
that can be decoded is an AudioError naming the file and the problem."""

import io
import json
import os
import shutil
import struct
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf

from asr.audio import AudioError, audio_info, load_audio
from asr.user_warnings import gathered_warnings, quiet_stderr, warn
from asr.cli import main
from asr.corpora import Entry, check_entries
from asr.inputs import stream_audio
from conftest import write_sine

RATE = 16000


def tone(tmp_path, suffix, subtype=None):
    """One second of a 16 kHz tone: its bytes."""
    return write_sine(tmp_path / f"whole{suffix}", seconds=1.0, subtype=subtype).read_bytes()


def cut(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def streamed(path) -> np.ndarray:
    return np.concatenate(list(stream_audio(str(path), RATE, block_seconds=0.25)))


def warnings_of(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("asr: warning: ")]


def test_a_wav_cut_in_its_data_gives_what_is_there_and_one_warning_saying_how_much_is_missing(tmp_path, capsys):
    path = cut(tmp_path, "half.wav", tone(tmp_path, ".wav")[: 44 + RATE])  # 0.5 s of 16-bit samples
    wave = load_audio(path, RATE)
    assert wave.numel() == RATE // 2
    assert warnings_of(capsys) == [f"asr: warning: {path}: truncated: 0.50 s of audio where its header declares "
                                   "1.00 s (0.50 s missing); using what is there"]
    np.testing.assert_array_equal(streamed(path), wave.numpy())  # streaming reads the same
    assert warnings_of(capsys) == []  # said once a process: a training set is read every epoch


def test_a_wav_cut_mid_sample_is_one_sample_short_and_says_so(tmp_path, capsys):
    path = cut(tmp_path, "odd.wav", tone(tmp_path, ".wav")[:-1])
    assert load_audio(path, RATE).numel() == RATE - 1
    assert warnings_of(capsys) == [f"asr: warning: {path}: truncated: 1.00 s of audio where its header declares "
                                   "1.00 s (1 sample missing); using what is there"]


def noise(tmp_path, suffix, subtype=None):
    """One second of noise (a tone's Ogg is one page, which a cut loses whole): its bytes."""
    samples = 0.3 * np.random.default_rng(0).standard_normal(RATE).astype(np.float32)
    sf.write(str(tmp_path / f"whole{suffix}"), samples, RATE, subtype=subtype)
    return (tmp_path / f"whole{suffix}").read_bytes()


@pytest.mark.parametrize("suffix, subtype", [(".flac", None), (".ogg", "VORBIS")])
def test_a_flac_or_ogg_cut_in_its_last_part_gives_the_rest_with_a_warning_where_it_was_an_error(
        tmp_path, capsys, suffix, subtype):
    data = noise(tmp_path, suffix, subtype)
    end = data.rindex(b"OggS") + (len(data) - data.rindex(b"OggS")) // 2 if suffix == ".ogg" else len(data) * 2 // 3
    path = cut(tmp_path, f"cut{suffix}", data[:end])
    wave = load_audio(path, RATE)
    assert 0.2 * RATE < wave.numel() < RATE
    whole = load_audio(tmp_path / f"whole{suffix}", RATE)
    np.testing.assert_array_equal(wave.numpy(), whole[: wave.numel()].numpy())
    [warning] = warnings_of(capsys)
    if suffix == ".flac":
        assert warning.startswith(f"asr: warning: {path}: truncated: {wave.numel() / RATE:.2f} s of audio where its "
                                  "header declares 1.00 s (")
    else:  # Ogg declares no length: its missing last page tells
        assert warning == (f"asr: warning: {path}: truncated: its Ogg stream ends without its last page; using the "
                           f"{wave.numel() / RATE:.2f} s before it")
    np.testing.assert_array_equal(streamed(path), wave.numpy())


def mp3(tmp_path, name="whole.mp3"):
    """Two seconds of noise as libsndfile's LAME writes an MP3: a Xing tag in its first frame declares the length."""
    assert "MP3" in sf.available_formats(), "libsndfile >= 1.1 writes MP3"
    samples = 0.3 * np.random.default_rng(0).standard_normal(2 * RATE).astype(np.float32)
    sf.write(str(tmp_path / name), samples, RATE, format="MP3")
    return (tmp_path / name).read_bytes()


ID3 = b"ID3\x04\x00\x00" + bytes([0, 0, 2, 0]) + bytes(256)  # an ID3v2.4 tag: 256 bytes (of padding)


@pytest.mark.parametrize("tag", [b"", ID3], ids=["bare", "after-an-id3-tag"])
def test_an_mp3_cut_short_gives_what_is_there_with_a_warning_and_none_of_libmpg123s_own_lines(tmp_path, capfd, tag):
    data = mp3(tmp_path)
    path = cut(tmp_path, "cut.mp3", tag + data[: len(data) // 2])
    wave = load_audio(path, RATE)
    assert 0.5 * RATE < wave.numel() < 1.5 * RATE
    whole = load_audio(tmp_path / "whole.mp3", RATE)
    np.testing.assert_allclose(wave.numpy(), whole[: wave.numel()].numpy(), atol=1e-6)
    assert audio_info(path).frames == wave.numel()
    assert capfd.readouterr().err.splitlines() == [  # fd 2 itself: libmpg123 writes there, not to sys.stderr
        f"asr: warning: {path}: truncated: {wave.numel() / RATE:.2f} s of audio where its header declares 2.00 s "
        f"({(2 * RATE - wave.numel()) / RATE:.2f} s missing); using what is there"]
    np.testing.assert_allclose(streamed(path), wave.numpy(), atol=1e-6)  # libmpg123 rounds by the read's size


def test_cut_mp3s_probed_by_many_threads_at_once_each_warn_and_leave_stderr_as_it_was(tmp_path, capfd):
    data = mp3(tmp_path)
    paths = [cut(tmp_path, f"cut{n}.mp3", data[: len(data) // 2]) for n in range(24)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        infos = list(pool.map(audio_info, paths))
    assert len({info.frames for info in infos}) == 1
    os.write(2, b"still here\n")  # fd 2 itself, after threads quieted it in turns
    err = capfd.readouterr().err.splitlines()
    assert sorted(err[:-1]) == sorted(f"asr: warning: {p}: truncated: {infos[0].frames / RATE:.2f} s of audio where "
                                      f"its header declares 2.00 s ({(2 * RATE - infos[0].frames) / RATE:.2f} s "
                                      "missing); using what is there" for p in paths)
    assert err[-1] == "still here"


def test_an_mp3_cut_short_on_stdin_is_read_with_the_same_warning(tmp_path, capsys):
    data = mp3(tmp_path)
    samples = np.concatenate(list(stream_audio("-", RATE, stdin=io.BytesIO(data[: len(data) * 3 // 4]))))
    assert 0.5 * RATE < samples.size < 2 * RATE
    assert warnings_of(capsys) == [f"asr: warning: <stdin>: truncated: {samples.size / RATE:.2f} s of audio where its "
                                   f"header declares 2.00 s ({(2 * RATE - samples.size) / RATE:.2f} s missing); "
                                   "using what is there"]


def test_a_whole_mp3_reads_whole_with_no_warning(tmp_path, capfd):
    mp3(tmp_path)
    assert load_audio(tmp_path / "whole.mp3", RATE).numel() == audio_info(tmp_path / "whole.mp3").frames == 2 * RATE
    assert capfd.readouterr().err == ""


def test_opening_a_whole_mp3_leaves_fd_2_alone_so_no_other_thread_s_line_is_lost(tmp_path, monkeypatch):
    # fd 2 is the whole process's: quieting it for every MP3 lost the lines other threads wrote
    # meanwhile (the training loop's, while loader threads opened MP3s). Only a file whose size
    # is off its tag's, on which libmpg123 has something to say, is quieted.
    import asr.audio

    data = mp3(tmp_path)
    cut_path = cut(tmp_path, "cut.mp3", data[: len(data) // 2])
    quieted, real = [], asr.audio.quiet_stderr
    monkeypatch.setattr(asr.audio, "quiet_stderr", lambda when=True: quieted.append(bool(when)) or real(when))
    swapped, real_dup2 = [], os.dup2  # (any other module's swap of fd 2, as a capture of libmpg123's notes was)
    monkeypatch.setattr(os, "dup2", lambda fd, fd2, **kw: swapped.append(fd2) or real_dup2(fd, fd2, **kw))
    load_audio(tmp_path / "whole.mp3", RATE), audio_info(tmp_path / "whole.mp3")
    assert quieted and not any(quieted) and 2 not in swapped
    audio_info(cut_path)
    assert any(quieted) and 2 in swapped


def test_a_warning_given_while_stderr_is_quieted_is_said_once_it_is_back(capfd):
    # fd 2 is /dev/null while a C library's notes are kept off it (a KenLM load, an MP3's header):
    # a warning from any thread meanwhile would be lost, or, under a held lock, wait minutes.
    with quiet_stderr():
        warn("held.wav", "truncated: 1.00 s of audio where its header declares 2.00 s")
        os.write(2, b"a library's note\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err.splitlines() == [
        "asr: warning: held.wav: truncated: 1.00 s of audio where its header declares 2.00 s", "after"]


def test_an_mp3_holding_more_than_its_tag_says_is_read_as_far_as_the_tag_says_with_a_warning(tmp_path, capfd):
    data = mp3(tmp_path)
    path = cut(tmp_path, "joined.mp3", data + data)  # two files joined with cat: libmpg123 stops at the first's end
    assert load_audio(path, RATE).numel() == audio_info(path).frames == 2 * RATE
    assert capfd.readouterr().err.splitlines() == [
        f"asr: warning: {path}: {len(data)} bytes past the MP3 stream length its Xing/Info tag gives (another file "
        "joined to it?): only the part before them is read"]


def test_an_mp3_without_a_length_tag_is_not_called_truncated_for_decoding_short_of_libmpg123s_guess(tmp_path, capfd):
    if shutil.which("sox") is None or "mp3" not in subprocess.run(["sox", "-h"], capture_output=True, text=True).stdout:
        pytest.skip("sox with MP3 support writes an MP3 without a Xing tag")
    path = tmp_path / "sox.mp3"
    subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", str(path), "synth", "1.37", "sine", "440"], check=True)
    assert b"Xing" not in path.read_bytes() and b"Info" not in path.read_bytes()
    with sf.SoundFile(str(path)) as f:
        guessed, decoded = f.frames, len(f.read())
    assert decoded < guessed  # libmpg123's length, from the file's size, is no declaration
    assert load_audio(path, 22050).numel() == decoded
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("suffix, subtype, keep, problem", [
    (".wav", None, 30, "not readable as audio"),  # mid-header
    (".wav", None, 44, "cut short: no audio in it, where its header declares 1.00 s"),  # the header alone
    (".flac", None, 30, "not readable as audio"),
    (".ogg", "VORBIS", 200, "not readable as audio"),
    (".mp3", None, 600, "not readable as audio"),  # the Xing tag's frame and a little
])
def test_a_file_cut_before_any_audio_is_an_error_naming_it_in_every_reader(tmp_path, suffix, subtype, keep, problem):
    data = mp3(tmp_path) if suffix == ".mp3" else tone(tmp_path, suffix, subtype)
    path = cut(tmp_path, f"early{suffix}", data[:keep])
    for read in (lambda: load_audio(path, RATE), lambda: streamed(path), lambda: audio_info(path)):
        with pytest.raises(AudioError, match=problem) as err:
            read()
        assert str(err.value).startswith(f"{path}: ")


def test_a_flac_cut_after_its_header_is_an_error_and_not_a_crash(tmp_path):
    data = tone(tmp_path, ".flac")
    first_frame = data.index(b"\xff\xf8")  # the first frame's sync code: the header ends there
    path = cut(tmp_path, "headers.flac", data[: first_frame + 40])
    with pytest.raises(AudioError, match=rf"^{path}: no audio could be decoded \(.*\); the file is cut short or "
                                         r"damaged \(its header declares 1.00 s\)$"):
        load_audio(path, RATE)


def test_audio_info_counts_what_a_cut_file_holds_and_warns_as_reading_it_does_once(tmp_path, capsys):
    data = tone(tmp_path, ".flac")
    path = cut(tmp_path, "probe.flac", data[: len(data) * 2 // 3])
    info = audio_info(path)
    assert info.frames == load_audio(path, RATE).numel() < RATE
    assert len(warnings_of(capsys)) == 1
    assert audio_info(tmp_path / "whole.flac").frames == RATE and warnings_of(capsys) == []


BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def with_data_size(data: bytes, size) -> bytes:
    """A WAV's data size, or an AIFF's SSND size, set to ``size`` (as a streaming writer leaves it)."""
    data = bytearray(data)
    if data[:4] == b"RIFF":
        at = data.index(b"data") + 4
        data[at: at + 4] = struct.pack("<I", size)
    else:
        at = data.index(b"SSND") + 4
        data[at: at + 4] = struct.pack(">I", size)
    return bytes(data)


def sox_unknown(suffix, frame: int) -> int:
    """sox's "length unknown" when it writes to a pipe: 0x7FFFF000 (WAV) or 0x7F000000 (AIFF, plus
    the SSND chunk's 8-byte header), rounded down to whole sample frames (read from sox 14.4's output)."""
    return 0x7FFFF000 // frame * frame if suffix == ".wav" else 0x7F000000 // frame * frame + 8


@pytest.mark.parametrize("suffix, subtype, channels", [
    (".wav", "PCM_U8", 1), (".wav", "PCM_16", 1), (".wav", "PCM_24", 1), (".wav", "PCM_24", 2),
    (".wav", "PCM_32", 1), (".wav", "FLOAT", 2), (".wav", "DOUBLE", 1), (".aiff", "PCM_S8", 1),
    (".aiff", "PCM_16", 2), (".aiff", "PCM_24", 1), (".aiff", "PCM_24", 2), (".aiff", "PCM_32", 1),
    (".aiff", "FLOAT", 1)])
@pytest.mark.parametrize("writer", ["sox", "ffmpeg", "0x7FFFFFFF"])
def test_a_streaming_writers_length_unknown_is_no_truncation_in_any_sample_format(
        tmp_path, capsys, suffix, subtype, channels, writer):
    frame = BYTES[subtype] * channels
    ffmpeg = 0xFFFFFFFF if suffix == ".wav" else 0  # its AIFF muxer's placeholder is 0
    size = {"sox": sox_unknown(suffix, frame), "ffmpeg": ffmpeg, "0x7FFFFFFF": 0x7FFFFFFF}[writer]
    whole = write_sine(tmp_path / f"whole{suffix}", seconds=1.0, channels=channels, subtype=subtype)
    path = cut(tmp_path, f"streamed{suffix}", with_data_size(whole.read_bytes(), size))
    assert load_audio(path, RATE).numel() == RATE and audio_info(path).frames == RATE
    assert streamed(path).size == RATE
    assert sum(b.size for b in stream_audio("-", RATE, stdin=io.BytesIO(path.read_bytes()))) == RATE  # parsed here
    assert warnings_of(capsys) == []


def test_a_real_data_size_near_but_not_at_a_placeholder_is_still_a_truncation(tmp_path, capsys):
    path = cut(tmp_path, "big.wav", with_data_size(tone(tmp_path, ".wav"), 0x7FFFF000 - 4096))
    assert load_audio(path, RATE).numel() == RATE
    [warning] = warnings_of(capsys)
    assert "truncated: 1.00 s of audio where its header declares" in warning


def without_total(flac: bytes) -> bytes:
    """A FLAC as a streaming writer leaves it: STREAMINFO's 36-bit total of samples 0 ("unknown")."""
    data = bytearray(flac)
    at = 8 + 10  # "fLaC", the block header, then 10 bytes before rate, channels, bits and the total
    fields = int.from_bytes(data[at: at + 8], "big") & ~(2 ** 36 - 1)
    data[at: at + 8] = fields.to_bytes(8, "big")
    return bytes(data)


def test_a_flac_written_to_a_pipe_declares_no_length_and_reads_whole_in_every_reader(tmp_path, capsys):
    path = cut(tmp_path, "streamed.flac", without_total(noise(tmp_path, ".flac")))
    whole = load_audio(tmp_path / "whole.flac", RATE).numpy()
    np.testing.assert_array_equal(load_audio(path, RATE).numpy(), whole)
    np.testing.assert_array_equal(streamed(path), whole)
    assert audio_info(path).frames == RATE
    assert warnings_of(capsys) == []


def test_a_flac_written_to_a_pipe_and_cut_short_gives_what_decodes_with_a_warning(tmp_path, capsys):
    data = without_total(noise(tmp_path, ".flac"))
    path = cut(tmp_path, "cut.flac", data[: len(data) * 2 // 3])
    wave = load_audio(path, RATE)
    assert 0.2 * RATE < wave.numel() < RATE and audio_info(path).frames == wave.numel()
    np.testing.assert_array_equal(wave.numpy(), load_audio(tmp_path / "whole.flac", RATE)[: wave.numel()].numpy())
    assert warnings_of(capsys) == [f"asr: warning: {path}: truncated or damaged: decoding stopped after "
                                   f"{wave.numel() / RATE:.2f} s (flac decoder lost sync); using the audio before it"]


def test_a_wav_on_stdin_that_ends_early_is_read_with_the_same_warning(tmp_path, capsys):
    data = tone(tmp_path, ".wav")[: 44 + RATE // 2]
    samples = np.concatenate(list(stream_audio("-", RATE, stdin=io.BytesIO(data))))
    assert samples.size == RATE // 4
    assert warnings_of(capsys) == ["asr: warning: <stdin>: truncated: 0.25 s of audio where its header declares "
                                   "1.00 s (0.75 s missing); using what is there"]
    with pytest.raises(AudioError, match="<stdin>: cut short: no audio in it, where its header declares 1.00 s"):
        list(stream_audio("-", RATE, stdin=io.BytesIO(data[:44])))


def test_transcribe_uses_a_cut_file_with_a_warning_and_skips_an_undecodable_one_doing_the_rest(
        tiny_model_dir, tmp_path, capsys):
    flac = tone(tmp_path, ".flac")
    good, good2 = write_sine(tmp_path / "good.wav"), write_sine(tmp_path / "good2.flac")
    partial = cut(tmp_path, "partial.flac", flac[: len(flac) // 2])
    broken = cut(tmp_path, "broken.flac", flac[:30])
    assert main(["transcribe", str(good), str(partial), str(broken), str(good2), "--model", str(tiny_model_dir),
                 "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert [line.split("\t")[0] for line in out.splitlines()] == [str(good), str(partial), str(good2)]
    assert f"asr: warning: {partial}: truncated: " in err
    assert f"asr: {broken}: not readable as audio" in err and "1 of 4 file(s) failed" in err


def test_evaluate_scores_a_cut_file_and_says_it_was_cut(tiny_model_dir, tmp_path, capsys):
    flac = tone(tmp_path, ".flac")
    partial = cut(tmp_path, "partial.flac", flac[: len(flac) // 2])
    rows = [{"audio_filepath": str(p), "duration": 1.0, "text": "hello"} for p in (tmp_path / "whole.flac", partial)]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["evaluate", str(tmp_path / "m.jsonl"), "--model", str(tiny_model_dir), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["utterances"] == 2 and json.loads(out.splitlines()[-1])["truncated"] == 1
    assert f"asr: {partial}: truncated: " in err
    assert "asr: warning: 1 audio file(s) cut short or damaged: the audio before the cut is used" in err


def test_preparing_a_corpus_keeps_a_cut_file_at_the_length_it_has_and_names_it(tmp_path, capsys):
    flac = tone(tmp_path, ".flac")
    partial = cut(tmp_path, "partial.flac", flac[: len(flac) // 2])
    broken = cut(tmp_path, "broken.flac", flac[:30])
    report = check_entries([Entry(p.stem, p, "hello") for p in (tmp_path / "whole.flac", partial, broken)])
    durations = {u.id: u.duration for u in report.utterances}
    assert durations["whole"] == 1.0 and durations["partial"] == pytest.approx(load_audio(partial, RATE).numel() / RATE)
    assert [(utt, reason.startswith(f"{broken}: not readable as audio")) for utt, reason in report.skipped] == \
        [("broken", True)]
    err = capsys.readouterr().err
    assert f"asr: {partial}: truncated: " in err
    assert "asr: warning: 1 audio file(s) cut short or damaged: the audio before the cut is used" in err


@pytest.fixture
def spoken_cut_copies(tmp_path):
    """25 copies of a spoken clip (flite, resampled to 16 kHz by sox) cut to their first half with
    head -c, each with its transcript beside it: a corpus damaged by a copy that stopped early."""
    if shutil.which("flite") is None or shutil.which("sox") is None:
        pytest.skip("flite and sox are needed to synthesize the clip")
    subprocess.run(["flite", "-t", "hello world", "-o", str(tmp_path / "spoken.wav")], check=True)
    subprocess.run(["sox", str(tmp_path / "spoken.wav"), "-r", "16000", str(tmp_path / "clip.wav")], check=True)
    half = (tmp_path / "clip.wav").stat().st_size // 2
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for n in range(25):
        with open(corpus / f"cut{n:02}.wav", "wb") as out:
            subprocess.run(["head", "-c", str(half), str(tmp_path / "clip.wav")], stdout=out, check=True)
        (corpus / f"cut{n:02}.txt").write_text("hello world\n")
    return sorted(corpus.glob("*.wav"))


def lines_naming(err: str, paths) -> list[str]:
    return [line for line in err.splitlines() if any(str(p) in line for p in paths)]


def test_prepare_names_twenty_of_twenty_five_cut_files_then_totals_them_not_a_line_each(
        spoken_cut_copies, tmp_path, capsys):
    assert main(["prepare", "folder", str(spoken_cut_copies[0].parent), str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    named = lines_naming(err, spoken_cut_copies)
    assert len(named) == 20 and all(": truncated: " in line and "using what is there" in line for line in named)
    assert named == sorted(named)  # in file order, whichever probing thread finished first
    assert "asr: warning: 25 audio file(s) cut short or damaged: the audio before the cut is used " \
           "(5 more not listed)" in err
    assert len(err.splitlines()) <= 21
    assert len((tmp_path / "out" / "train.jsonl").read_text().splitlines()) == 25  # every one kept, as it is


def test_evaluate_names_twenty_of_twenty_five_cut_files_and_its_json_counts_all_twenty_five(
        spoken_cut_copies, tiny_model_dir, tmp_path, capsys):
    rows = [{"audio_filepath": str(p), "duration": 1.0, "text": "hello world"} for p in spoken_cut_copies]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["evaluate", str(tmp_path / "m.jsonl"), "--model", str(tiny_model_dir), "--json"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.splitlines()[-1])
    assert summary["utterances"] == 25 and summary["truncated"] == 25 and summary["skipped"] == 0
    assert len(lines_naming(err, spoken_cut_copies)) == 20
    assert "asr: warning: 25 audio file(s) cut short or damaged: the audio before the cut is used " \
           "(5 more not listed)" in err
    assert len(err.splitlines()) <= 21


def many_channels(path, cut: bool = False):
    """0.1 s of noise on 65 channels (a damaged header's count, warned of), or its first half."""
    sf.write(path, np.random.default_rng(0).normal(0, 0.1, (1600, 65)).astype(np.float32), RATE, subtype="PCM_16")
    if cut:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def test_evaluate_counts_as_cut_short_only_the_files_cut_short_not_every_file_read_with_a_warning(
        tiny_model_dir, tmp_path, capsys):
    flac = tone(tmp_path, ".flac")
    partial = cut(tmp_path, "partial.flac", flac[: len(flac) // 2])
    wide = many_channels(tmp_path / "wide.wav")
    rows = [{"audio_filepath": str(p), "duration": 1.0, "text": "hello"} for p in (partial, wide)]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["evaluate", str(tmp_path / "m.jsonl"), "--model", str(tiny_model_dir), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["truncated"] == 1
    assert "asr: warning: 2 audio file(s) read with a warning, 1 of them cut short or damaged" in err


def test_a_file_cut_short_with_a_second_warning_is_counted_once_and_the_unlisted_rest_are_called_warnings(
        tiny_model_dir, tmp_path, capsys):
    files = [many_channels(tmp_path / f"wide{n:02}.wav", cut=True) for n in range(11)]  # two warnings each
    rows = [{"audio_filepath": str(p), "duration": 0.1, "text": "hello"} for p in files]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["evaluate", str(tmp_path / "m.jsonl"), "--model", str(tiny_model_dir), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["truncated"] == 11
    assert ("asr: warning: 11 audio file(s) cut short or damaged: the audio before the cut is used "
            "(2 more warnings not listed)") in err


def test_evaluating_the_same_cut_files_again_counts_them_again_but_names_them_once(
        tiny_model_dir, tmp_path, capsys):
    from asr.data import Utterance
    from asr.evaluate import evaluate
    from tests.test_transcribe import speller

    flac = tone(tmp_path, ".flac")
    partial = cut(tmp_path, "partial.flac", flac[: len(flac) // 2])
    t = speller(tiny_model_dir)
    first, second = (evaluate(t, [Utterance(str(partial), 1.0, "hello")]) for _ in range(2))  # as --combine does
    assert first.summary()["truncated"] == second.summary()["truncated"] == 1
    assert capsys.readouterr().err.count(f"{partial}: truncated: ") == 1


def test_tuning_reads_names_cut_files_with_a_total_once_all_are_read(tiny_model_dir, tmp_path, capsys):
    from asr.data import Utterance
    from asr.evaluate import readable_batches
    from tests.test_transcribe import speller

    wav = tone(tmp_path, ".wav")
    utts = [Utterance(str(cut(tmp_path, f"half{n}.wav", wav[: 44 + RATE])), 1.0, "hello") for n in range(3)]
    batches = list(readable_batches(speller(tiny_model_dir), utts, 300.0, skipped := []))
    assert len(batches) == 1 and skipped == []
    err = capsys.readouterr().err
    assert err.count(": truncated: 0.50 s of audio") == 3 and err.count("asr: warning:") == 1  # the total alone
    assert err.splitlines()[-1] == \
        "asr: warning: 3 audio file(s) cut short or damaged: the audio before the cut is used"


def test_warnings_raised_in_worker_threads_are_gathered_by_the_thread_that_opened_the_gathering(tmp_path, capsys):
    wav = tone(tmp_path, ".wav")
    paths = [cut(tmp_path, f"half{n}.wav", wav[: 44 + RATE]) for n in range(16)]
    threads = set()

    def probe(path):
        threads.add(threading.get_ident())
        return audio_info(path)

    with gathered_warnings() as lines, ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(probe, paths))
    assert threading.get_ident() not in threads
    assert sorted(line.split(":")[0] for line in lines) == sorted(str(p) for p in paths)
    assert capsys.readouterr().err == ""


def test_a_file_that_grows_while_it_is_read_is_used_as_far_as_it_went_and_says_so(tmp_path, capsys):
    # a recording still being written: its header (read when opened) says how much there is
    path = write_sine(tmp_path / "recording.wav", seconds=1.0)
    blocks = stream_audio(str(path), RATE, block_seconds=0.25)
    first = next(blocks)
    with open(path, "ab") as f:  # the recorder writes on
        f.write(b"\0" * 3200)
    audio = np.concatenate([first, *blocks])
    assert audio.size == RATE
    assert warnings_of(capsys) == [f"asr: warning: {path}: grew while it was read (still being written?): "
                                   "transcribed its first 1.00 s, as far as it went when opened"]


def test_a_file_that_does_not_change_while_it_is_read_gets_no_warning(tmp_path, capsys):
    assert streamed(write_sine(tmp_path / "done.wav", seconds=1.0)).size == RATE
    assert warnings_of(capsys) == []
