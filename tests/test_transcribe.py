"""Transcribing files people have: any length (streamed, cut at pauses, stitched back on the
file's clock), folders/globs/stdin, output files, bad input reported per file, the Python API."""

import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio import AudioError
from asr.cli import main
from asr.inputs import expand_inputs, stream_audio
from asr.model_dir import load_model_dir
from asr.segmenter import SegmenterOptions
from asr.transcribe import MAX_WORD_TAIL_SECONDS, Transcriber
from tests.conftest import REPO_ROOT, syllabic_tone, write_sine

RATE = 16000
HOP = 320  # the fake model's frame: 20 ms


class EnergySpeller(torch.nn.Module):
    """Stands in for an acoustic model: spells "hohoho..." over loud frames and ends a word at
    the first quiet frame, so every word must lie where the audio is loud."""

    frame_shift = HOP / RATE
    frame_centre = 0.0

    def __init__(self, tokenizer, threshold=0.01):
        super().__init__()
        index = {t: i for i, t in enumerate(tokenizer.tokens)}
        self.h, self.o, self.sep, self.blank = index["h"], index["o"], tokenizer.word_sep_id, tokenizer.blank_id
        self.vocab, self.threshold = len(tokenizer), threshold

    def forward(self, waves, lengths):
        frames = waves.shape[1] // HOP
        loud = waves[:, : frames * HOP].reshape(len(waves), frames, HOP).pow(2).mean(-1).sqrt() > self.threshold
        after_loud = torch.cat([torch.zeros_like(loud[:, :1]), loud[:, :-1]], dim=1)
        parity = (torch.arange(frames) % 2 == 0).expand_as(loud)
        token = torch.where(loud, torch.where(parity, self.h, self.o),
                            torch.where(after_loud, self.sep, self.blank))
        logits = torch.full((len(waves), frames, self.vocab), -10.0)
        logits.scatter_(2, token.unsqueeze(-1), 10.0)
        return logits.log_softmax(-1), lengths // HOP


def speller(model_dir, **segmenter):
    t = Transcriber(load_model_dir(model_dir), "greedy", device="cpu", segmenter=SegmenterOptions(**segmenter),
                    batch_size=4)
    t.model = EnergySpeller(t.tokenizer)
    return t


@pytest.fixture(scope="module")
def long_file(tiny_corpus, tmp_path_factory):
    """~55 s: the tiny corpus's 20 real utterances, each followed by 0.4-1.2 s of silence."""
    rows = [json.loads(line) for line in (tiny_corpus / "train.jsonl").read_text().splitlines()]
    rng = np.random.default_rng(0)
    parts = []
    for r in rows:
        data, rate = sf.read(r["audio_filepath"], dtype="float32")
        assert rate == RATE
        parts += [data, np.zeros(int(rng.uniform(0.4, 1.2) * RATE), dtype=np.float32)]
    path = tmp_path_factory.mktemp("long") / "long.flac"
    sf.write(str(path), np.concatenate(parts), RATE)
    return path


def test_a_long_file_is_cut_into_ordered_segments_with_words_inside_them_on_the_files_clock(
        tiny_model_dir, long_file):
    signal, _ = sf.read(str(long_file), dtype="float32")
    duration = len(signal) / RATE
    assert 40 < duration < 100
    result = speller(tiny_model_dir, max_seconds=10.0, min_seconds=3.0).transcribe(str(long_file))
    assert result.duration == pytest.approx(duration)
    assert len(result.segments) >= duration / 10
    last = 0.0
    for seg in result.segments:
        assert last <= seg.start < seg.end <= duration
        inside = [w for w in result.words if seg.start <= w.start and w.end <= seg.end]
        assert len(inside) == len(seg.text.split())
        last = seg.end
    assert len(result.words) == len(result.text.split()) == sum(len(s.text.split()) for s in result.segments)
    for w in result.words:  # each word sits on loud audio in the original file (its tail may fade)
        region = signal[int(w.start * RATE): int(w.end * RATE)]
        frames = region[: region.size // 640 * 640].reshape(-1, 640)  # 40 ms
        assert frames.size and np.sqrt(np.mean(frames ** 2, axis=1)).max() > 0.005, w


def test_cutting_at_pauses_keeps_the_words_and_their_times(tiny_model_dir, long_file):
    whole = speller(tiny_model_dir, max_seconds=1000.0).transcribe(str(long_file))
    cut = speller(tiny_model_dir, max_seconds=8.0, min_seconds=2.0, noise_floor_db=0.0).transcribe(str(long_file))
    assert len(cut.words) == len(whole.words) > 20
    for a, b in zip(cut.words, whole.words):
        assert abs(a.start - b.start) <= 0.04 and abs(a.end - b.end) <= 0.04
    # pauses by the noise floor too: a clip's trailing room noise (-50 dBFS after speech at about -20)
    # begins the pause; the words and their starts stay as they were, and a word's end may come a
    # little earlier (at its segment's end, 0.2 s into the pause, or at the floor of its own segment)
    floor_cut = speller(tiny_model_dir, max_seconds=8.0, min_seconds=2.0).transcribe(str(long_file))
    assert [w.word for w in floor_cut.words] == [w.word for w in whole.words]
    for a, b in zip(floor_cut.words, whole.words):
        assert abs(a.start - b.start) <= 0.04 and b.end - MAX_WORD_TAIL_SECONDS <= a.end <= b.end + 0.04


def test_memory_stays_bounded_segments_and_batches_are_capped(tiny_model_dir, long_file):
    t = speller(tiny_model_dir, max_seconds=6.0, min_seconds=2.0)
    seen = []
    original = t.transcribe_waveforms
    t.transcribe_waveforms = lambda waves: seen.append([w.numel() for w in waves]) or original(waves)
    t.transcribe(str(long_file))
    assert len(seen) > 2
    assert all(len(batch) <= t.batch_size and max(batch) <= 6 * RATE for batch in seen)
    assert all(block.size <= 2 * RATE for block in stream_audio(str(long_file), RATE, block_seconds=2.0))


def test_arrays_and_files_give_the_same_result_and_an_other_rate_is_resampled(tiny_model_dir, long_file):
    t = speller(tiny_model_dir, max_seconds=10.0)
    data, _ = sf.read(str(long_file), dtype="float32")
    from_file = t.transcribe(str(long_file))
    assert t.transcribe(data, sample_rate=RATE).words == from_file.words
    stereo8k = np.stack([data[::2], data[::2]], axis=1)
    assert abs(len(t.transcribe(stereo8k, sample_rate=8000).words) - len(from_file.words)) <= 2


def test_integer_samples_are_scaled_to_full_scale_one_as_soundfile_reads_them(tiny_model_dir, long_file):
    t = speller(tiny_model_dir, max_seconds=10.0)
    floats, _ = sf.read(str(long_file), dtype="float32")
    pcm, _ = sf.read(str(long_file), dtype="int16")  # what scipy.io.wavfile gives
    assert t.transcribe(pcm, sample_rate=RATE).words == t.transcribe(floats, sample_rate=RATE).words
    assert t.load(pcm, RATE).abs().max() <= 1.0
    unsigned = ((pcm.astype(np.int32) + 32768) >> 8).astype(np.uint8)  # 8-bit WAV: unsigned, silence at 128
    assert abs(float(t.load(unsigned, RATE).mean())) < 0.01


def test_channels_first_arrays_are_read_whatever_the_number_of_channels(tiny_model_dir):
    t = speller(tiny_model_dir)
    ramp = np.linspace(-0.5, 0.5, RATE, dtype=np.float32)
    for channels in (2, 9):
        assert t.load(np.tile(ramp, (channels, 1)), RATE).shape == (RATE,)


@pytest.mark.parametrize("audio, rate, problem", [
    (None, None, "expected a file path, or an array or tensor of samples; got NoneType"),
    (5, None, "got int"),
    (["a.wav", "b.wav"], None, "a list of paths? one at a time"),
    (np.zeros(RATE, dtype=np.float32), 0, "sample_rate must be a positive whole number of Hz, got 0"),
    (np.zeros(RATE, dtype=np.float32), -16000, "got -16000"),
    (np.zeros(RATE, dtype=np.float32), "16000", "got '16000'"),
])
def test_what_is_not_audio_or_not_a_sample_rate_is_refused_by_name(tiny_model_dir, audio, rate, problem):
    with pytest.raises(AudioError, match=re.escape(problem)):
        speller(tiny_model_dir).transcribe(audio, sample_rate=rate)


def test_beam_settings_with_greedy_decoding_are_refused_by_name(tiny_model_dir):
    import asr

    with pytest.raises(ValueError, match="beam_size: beam search settings; greedy decoding has none"):
        asr.load_model(tiny_model_dir, decoder="greedy", beam_size=4, device="cpu")
    assert asr.load_model(tiny_model_dir, decoder="greedy", workers=2, device="cpu")  # how to run, not search


def test_evaluate_runs_an_utterance_without_its_long_silent_lead_in_and_counts_the_whole_file(tiny_model_dir,
                                                                                             tmp_path):
    from asr.data import Utterance
    from asr.evaluate import evaluate

    tone = syllabic_tone(1.0)
    sf.write(str(tmp_path / "late.wav"), np.concatenate([np.zeros(3 * RATE), tone]).astype(np.float32), RATE)
    t = speller(tiny_model_dir)
    seen = []
    run = t.transcribe_waveforms
    t.transcribe_waveforms = lambda waves: seen.extend(w.numel() for w in waves) or run(waves)
    result = evaluate(t, [Utterance(str(tmp_path / "late.wav"), 4.0, "hello")])
    # half a second of the lead-in kept (to the model's frame), as transcribe keeps it
    assert len(seen) == 1 and abs(seen[0] - 1.5 * RATE) <= 0.04 * RATE
    assert result.audio_seconds == pytest.approx(4.0)


def test_progress_counts_the_whole_file_quiet_edges_included(tiny_model_dir, tmp_path):
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)
    quiet = np.zeros(3 * RATE)
    sf.write(str(tmp_path / "q.wav"), np.concatenate([quiet, tone, quiet]).astype(np.float32), RATE)
    seconds = []
    list(speller(tiny_model_dir).transcribe_files([str(tmp_path / "q.wav")], progress=seconds.append))
    assert sum(seconds) == pytest.approx(7.0)


def test_evaluate_scores_hypotheses_normalized_as_the_references_are(tiny_model_dir, tmp_path):
    # a user's lexicon may spell words "Something" or "It’s": the same words as "something", "it's"
    from asr.data import Utterance
    from asr.evaluate import evaluate
    from asr.results import Result

    sf.write(str(tmp_path / "a.wav"), np.zeros(RATE, dtype=np.float32) + 0.1, RATE)
    t = speller(tiny_model_dir)
    t.transcribe_waveforms = lambda waves: [Result("It\u2019s Something", 1.0) for _ in waves]
    result = evaluate(t, [Utterance(str(tmp_path / "a.wav"), 1.0, "IT'S SOMETHING")])
    assert result.words.errors == 0 and result.utterances[0].hypothesis == "it's something"


def test_a_silent_file_transcribes_to_empty_text(tiny_model_dir, tmp_path):
    sf.write(str(tmp_path / "silence.wav"), np.zeros(3 * RATE, dtype=np.float32), RATE)
    t = speller(tiny_model_dir)
    t.transcribe_waveforms = lambda waves: pytest.fail("digital silence reached the model")
    result = t.transcribe(str(tmp_path / "silence.wav"))
    assert result.text == "" and result.segments == [] and result.duration == pytest.approx(3.0)


def test_a_file_that_vanishes_before_its_turn_is_reported_and_the_rest_go_on(tiny_model_dir, tmp_path):
    paths = [str(write_sine(tmp_path / f"{n}.wav", seconds=0.5)) for n in "abc"]
    t = speller(tiny_model_dir)
    t.batch_size = 1
    outcomes = []
    for path, outcome in t.transcribe_files(paths):
        outcomes.append((path, outcome))
        if path == paths[0]:
            (tmp_path / "b.wav").unlink()
    assert [p for p, _ in outcomes] == paths
    assert isinstance(outcomes[1][1], AudioError) and str(outcomes[1][1]).endswith("b.wav: file not found")
    assert not isinstance(outcomes[2][1], AudioError)


def test_inputs_expand_folders_recursively_and_globs_and_keep_missing_paths(tmp_path):
    for name in ("d/a.wav", "d/sub/b.flac", "d/notes.txt", "d/sub/c.WAV"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    paths, errors = expand_inputs([str(tmp_path / "d"), str(tmp_path / "d" / "**" / "*.flac"),
                                   str(tmp_path / "missing.wav"), str(tmp_path / "empty"), str(tmp_path / "*.mp3"),
                                   "-"])
    assert paths == [str(tmp_path / p) for p in ("d/a.wav", "d/sub/b.flac", "d/sub/c.WAV", "d/sub/b.flac",
                                                 "missing.wav")] + ["-"]
    assert len(errors) == 2
    assert errors[0].startswith(f"{tmp_path / 'empty'}: no audio files in this folder")
    assert errors[1] == f"{tmp_path / '*.mp3'}: no file matches this pattern"


def test_formats_needing_ffmpeg_say_so_when_it_is_missing(tmp_path, monkeypatch):
    import asr.inputs

    (tmp_path / "talk.m4a").write_bytes(b"\x00" * 100)
    monkeypatch.setattr(asr.inputs, "ffmpeg_path", lambda: None)
    with pytest.raises(AudioError, match=r"talk.m4a: \.m4a files need ffmpeg, which is not installed"):
        list(stream_audio(str(tmp_path / "talk.m4a"), RATE))


def test_ffmpeg_decodes_other_containers_when_installed(tmp_path, long_file):
    import shutil

    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed")
    out = tmp_path / "long.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(long_file), "-t", "5", str(out)], check=True)
    samples = np.concatenate(list(stream_audio(str(out), RATE)))
    assert abs(samples.size - 5 * RATE) < RATE // 10
    with pytest.raises(AudioError, match="bad.webm: ffmpeg could not decode it"):
        (tmp_path / "bad.webm").write_bytes(b"garbage" * 100)
        list(stream_audio(str(tmp_path / "bad.webm"), RATE))


def test_cli_writes_subtitles_per_input_for_a_folder_and_reads_stdin(tiny_model_dir, tiny_corpus, tmp_path,
                                                                    capsys, monkeypatch):
    rows = [json.loads(line) for line in (tiny_corpus / "valid.jsonl").read_text().splitlines()]
    folder = tmp_path / "in"
    for i, r in enumerate(rows[:2]):
        data, rate = sf.read(r["audio_filepath"])
        (folder / f"sub{i}").mkdir(parents=True)
        sf.write(str(folder / f"sub{i}" / f"u{i}.wav"), data, rate)
    code = main(["transcribe", str(folder), "--model", str(tiny_model_dir), "--format", "all",
                 "--output-dir", str(tmp_path / "out"), "--quiet"])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"u{i}.{ext}" for i in range(2) for ext in ("txt", "json", "srt", "vtt", "tsv"))
    assert json.loads((tmp_path / "out" / "u1.json").read_text())["path"] == str(folder / "sub1" / "u1.wav")
    capsys.readouterr()
    wav = (folder / "sub0" / "u0.wav").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(wav)))
    assert main(["transcribe", "-", "--model", str(tiny_model_dir), "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["path"] == "-" and row["duration"] == pytest.approx(sf.info(str(folder / "sub0" / "u0.wav")).duration)


def test_cli_says_which_input_got_a_renamed_output_and_keeps_subtitles_one_file_per_input(tiny_model_dir, tiny_corpus,
                                                                                          tmp_path, capsys):
    data, rate = sf.read(json.loads((tiny_corpus / "valid.jsonl").read_text().splitlines()[0])["audio_filepath"])
    for sub in ("a", "b"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        sf.write(str(tmp_path / "in" / sub / "talk.wav"), data, rate)
    inputs = [str(tmp_path / "in" / sub / "talk.wav") for sub in ("a", "b")]
    assert main(["transcribe", *inputs, "--model", str(tiny_model_dir), "--output-dir", str(tmp_path / "out"),
                 "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_talk.txt", "b_talk.txt"]
    err = capsys.readouterr().err
    assert f"{inputs[0]}: written as a_talk.*" in err and f"{inputs[1]}: written as b_talk.*" in err
    assert main(["transcribe", *inputs, "--model", str(tiny_model_dir), "--format", "srt"]) == 2
    assert "--format srt is one file per input: give --output-dir for 2 inputs" in capsys.readouterr().err


def test_cli_warns_of_audio_recorded_below_the_model_rate_and_still_transcribes_it(tiny_model_dir, tmp_path, capsys):
    phone = write_sine(tmp_path / "phone.wav", seconds=1.0, sample_rate=8000)
    wideband = write_sine(tmp_path / "wide.wav", seconds=1.0, sample_rate=16000)
    assert main(["transcribe", str(phone), str(wideband), "--model", str(tiny_model_dir), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2
    assert f"{phone} (8000 Hz): recorded below the model's 16000 Hz" in err and "wide.wav" not in err


def test_cli_refuses_an_unwritable_output_dir_before_reading_audio(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code = main(["transcribe", str(tmp_path / "missing.wav"), "--model", str(tiny_model_dir),
                 "--output-dir", str(tmp_path / "f" / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "output directory is not writable" in err and "missing.wav" not in err
    assert main(["transcribe", "x.wav", "--model", str(tiny_model_dir), "--format", "all"]) == 2
    assert "--output-dir" in capsys.readouterr().err


def test_cli_reports_an_empty_folder_and_exits_non_zero(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "nothing").mkdir()
    assert main(["transcribe", str(tmp_path / "nothing"), "--model", str(tiny_model_dir)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'nothing'}: no audio files in this folder" in err and "1 of 1 file(s) failed" in err


def _wav_header(data_bytes: int, riff_bytes: int, channels=1, rate=RATE, bits=16) -> bytes:
    import struct

    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    return b"RIFF" + struct.pack("<I", riff_bytes) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + \
        b"data" + struct.pack("<I", data_bytes)


def damaged_files(folder, good_wav: bytes, good_flac: bytes, rng):
    """name -> bytes: files that must give an error (no audio can be read from them)."""
    must_fail = {"empty.wav": b"", "text.wav": b"hello, I am not audio\n" * 20,
                 "header_only.wav": _wav_header(0, 36), "zero_frames.flac": None, "nan.wav": None,
                 "inf.flac": None, "pdf.flac": b"%PDF-1.4\n" + bytes(rng.integers(0, 256, 500, dtype=np.uint8))}
    for i in range(6):
        must_fail[f"random{i}.wav"] = bytes(rng.integers(0, 256, int(rng.integers(1, 4000)), dtype=np.uint8))
    for i, cut in enumerate((4, 12, 30)):
        must_fail[f"cut_header{i}.wav"] = good_wav[:cut]
        must_fail[f"cut_header{i}.flac"] = good_flac[:cut]
    # readable or not, as libsndfile decides; never a crash or a hang, one line either way
    may_fail = {"huge_length.wav": _wav_header(0xFFFFFFF0, 0xFFFFFFF0) + good_wav[44:2044],
                "bogus_riff.wav": _wav_header(len(good_wav) - 44, 7) + good_wav[44:],
                "truncated.wav": good_wav[: len(good_wav) // 3], "truncated.flac": good_flac[: len(good_flac) // 2],
                "flipped.wav": good_wav[:44] + bytes(rng.integers(0, 256, 3000, dtype=np.uint8))}
    for name, data in {**must_fail, **may_fail}.items():
        if data is not None:
            (folder / name).write_bytes(data)
    sf.write(str(folder / "zero_frames.flac"), np.zeros(0, dtype=np.float32), RATE)
    nan = np.full(RATE, 0.1, dtype=np.float32)
    nan[100] = np.nan
    sf.write(str(folder / "nan.wav"), nan, RATE, subtype="FLOAT")
    sf.write(str(folder / "inf.flac"), np.zeros(RATE, dtype=np.float32), RATE)  # FLAC cannot hold inf:
    (folder / "inf.flac").write_bytes((folder / "inf.flac").read_bytes()[:20])  # make it a cut stream instead
    return sorted(must_fail), sorted(may_fail)


def test_fuzz_damaged_files_each_get_one_error_line_and_good_files_are_still_transcribed(
        tiny_model_dir, tiny_corpus, tmp_path):
    rng = np.random.default_rng(7)
    good = [json.loads(line)["audio_filepath"] for line in (tiny_corpus / "valid.jsonl").read_text().splitlines()]
    folder = tmp_path / "batch"
    folder.mkdir()
    data, rate = sf.read(good[0], dtype="int16")
    buf = io.BytesIO()
    sf.write(buf, data, rate, format="WAV", subtype="PCM_16")
    good_wav = buf.getvalue()
    good_flac = open(good[1], "rb").read()
    must_fail, may_fail = damaged_files(folder, good_wav, good_flac, rng)
    for i, g in enumerate(good):
        (folder / f"good{i}.flac").write_bytes(open(g, "rb").read())
    sf.write(str(folder / "silent.wav"), np.zeros(RATE, dtype=np.float32), RATE)
    proc = subprocess.run([sys.executable, "-m", "asr.cli", "transcribe", str(folder), "--model", str(tiny_model_dir),
                           "--batch-size", "3"], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1, proc.stderr
    transcribed = {line.split("\t")[0] for line in proc.stdout.splitlines()}
    errors = [line for line in proc.stderr.splitlines()
              # silent.wav's note; the cut files' warnings (they are transcribed as far as they go)
              if not re.search(r"\d+ of \d+ file\(s\) failed|nothing transcribed$|^asr: warning: ", line)]
    failed = {re.match(r"asr: (.+?): ", line).group(1) for line in errors}
    assert len(failed) == len(errors), "one line per bad file"
    assert all(line.startswith("asr: ") and "Traceback" not in line for line in proc.stderr.splitlines())
    assert {str(folder / n) for n in must_fail} <= failed
    assert {str(folder / f"good{i}.flac") for i in range(len(good))} | {str(folder / "silent.wav")} <= transcribed
    everything = {str(p) for p in folder.iterdir()}
    assert transcribed | failed == everything and not transcribed & failed
    assert f"{len(failed)} of {len(everything)} file(s) failed" in proc.stderr
    assert any(line == f"{folder / 'silent.wav'}\t" for line in proc.stdout.splitlines())


def test_the_readme_python_example_runs(tiny_model_dir, monkeypatch):
    text = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"From Python:\n\n```python\n(.*?)```", text, flags=re.S).group(1)
    if not (REPO_ROOT / "asr" / "pretrained" / "default" / "config.yaml").exists():
        assert "asr.load_model()" in block
        block = block.replace("asr.load_model()", f"asr.load_model({str(tiny_model_dir)!r})")
    monkeypatch.chdir(REPO_ROOT)
    printed = []
    exec(compile(block, "README.md", "exec"), {"print": lambda *a, **k: printed.append(a)})
    assert printed


def test_segments_of_several_short_files_share_one_model_batch(tiny_model_dir, tmp_path):
    paths = [str(write_sine(tmp_path / f"{i}.wav", seconds=0.3 + 0.1 * i)) for i in range(5)]
    t = speller(tiny_model_dir)
    t.batch_size = 8
    seen = []
    original = t.transcribe_waveforms
    t.transcribe_waveforms = lambda waves: seen.append(len(waves)) or original(waves)
    outcomes = list(t.transcribe_files(paths))
    assert seen == [5]
    assert [p for p, _ in outcomes] == paths
    assert [o.duration for _, o in outcomes] == pytest.approx([0.3 + 0.1 * i for i in range(5)])


def test_a_decoder_can_be_chosen_per_call_and_the_default_comes_back(tiny_model_dir, long_file):
    t = speller(tiny_model_dir, max_seconds=10.0)
    greedy = t.transcribe(str(long_file))
    beam = t.transcribe(str(long_file), decoder="beam", beam_size=4)
    assert type(t.decoder).__name__ == "GreedyDecoder"
    assert beam.text == greedy.text  # the fake model's outputs are certain: beam finds the same path


def test_the_progress_bar_goes_to_a_terminal_stderr_unless_quiet(tiny_model_dir, tmp_path, capsys, monkeypatch):
    path = str(write_sine(tmp_path / "a.wav", seconds=1.0))

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for quiet, expect_bar in (([], True), (["--quiet"], False)):
        fake = Terminal()
        monkeypatch.setattr(sys, "stderr", fake)
        assert main(["transcribe", path, "--model", str(tiny_model_dir), *quiet]) == 0
        assert ("s audio" in fake.getvalue()) == expect_bar
    assert capsys.readouterr().out.count("a.wav\t") == 2


def test_segments_are_phrases_split_where_the_words_pause():
    from asr.results import Result, Word, merge_results

    words = [Word("a", 0.0, 0.2), Word("b", 0.3, 0.5), Word("c", 1.5, 1.7), Word("d", 1.8, 2.0)]
    merged = merge_results([(10.0, Result("a b c d", 3.0, [], words, 0.5)), (0.0, Result("", 10.0))], 13.0)
    assert [(s.start, s.end, s.text) for s in merged.segments] == [(10.0, 10.5, "a b"), (11.5, 12.0, "c d")]
    assert merged.text == "a b c d" and merged.words[0].start == 10.0 and merged.confidence == 0.5


def test_a_transcript_of_nothing_keeps_the_blank_posterior_as_its_confidence_and_silence_has_none(tiny_model_dir,
                                                                                                  tmp_path):
    from asr.results import Result, merge_results

    heard_nothing = speller(tiny_model_dir)
    heard_nothing.model = EnergySpeller(heard_nothing.tokenizer, threshold=10.0)  # nothing is loud: all blank
    result = heard_nothing.transcribe(str(write_sine(tmp_path / "tone.wav", seconds=1.0)))
    assert result.text == "" and result.words == [] and 0.99 < result.confidence <= 1.0
    assert merge_results([(0.0, Result("", 1.0, confidence=0.9)), (1.0, Result("", 1.0, confidence=0.7))],
                         2.0).confidence == pytest.approx(0.8)
    assert merge_results([], 3.0).confidence is None  # no piece was run: no model judged it


def test_streamed_blocks_match_loading_the_whole_file_at_any_rate_and_channel_count(tmp_path):
    from asr.audio import load_audio

    path = write_sine(tmp_path / "stereo44k.flac", seconds=7.0, sample_rate=44100, channels=2, freq=300.0)
    whole = load_audio(path, RATE).numpy()
    streamed = np.concatenate(list(stream_audio(str(path), RATE, block_seconds=2.0)))
    assert abs(streamed.size - whole.size) <= 3
    n = min(streamed.size, whole.size)
    assert np.sqrt(np.mean((streamed[:n] - whole[:n]) ** 2)) < 0.01  # block seams are inaudible


def test_asking_for_cuda_without_a_gpu_is_a_one_line_error(tiny_model_dir, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    path = str(write_sine(tmp_path / "a.wav"))
    assert main(["transcribe", path, "--model", str(tiny_model_dir), "--device", "cuda"]) == 2
    assert "no CUDA device is available" in capsys.readouterr().err


def test_an_unknown_extension_libsndfile_cannot_read_goes_to_ffmpeg_when_installed(tmp_path, monkeypatch):
    import shutil

    import asr.inputs

    (tmp_path / "clip.xyz").write_bytes(b"garbage" * 100)
    monkeypatch.setattr(asr.inputs, "ffmpeg_path", lambda: None)
    with pytest.raises(AudioError, match=r"clip.xyz: not readable as audio .*; ffmpeg \(not installed\) might read it"):
        list(stream_audio(str(tmp_path / "clip.xyz"), RATE))
    monkeypatch.undo()
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed")
    with pytest.raises(AudioError, match=r"clip.xyz: ffmpeg could not decode it \("):
        list(stream_audio(str(tmp_path / "clip.xyz"), RATE))


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_a_wav_on_stdin_streams_in_blocks_like_libsndfile_reads_it_even_with_placeholder_sizes(subtype):
    import struct

    x = (np.random.default_rng(0).standard_normal((20000, 2)) * 0.1).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, RATE, format="WAV", subtype=subtype)
    raw = bytearray(buf.getvalue())
    expected = sf.read(io.BytesIO(bytes(raw)), dtype="float32")[0].mean(axis=1)
    data_at = raw.index(b"data")
    raw[4:8] = raw[data_at + 4: data_at + 8] = struct.pack("<I", 0xFFFFFFFF)  # as a streaming writer leaves them
    blocks = list(stream_audio("-", RATE, block_seconds=0.3, stdin=io.BytesIO(bytes(raw))))
    assert len(blocks) == 5 and max(b.size for b in blocks) <= 0.3 * RATE
    np.testing.assert_allclose(np.concatenate(blocks), expected, atol=1e-6)


@pytest.mark.parametrize("data, problem", [
    (b"", "nothing on stdin"),
    (b"RIFF\x00\x00\x00\x00WAVE", "no 'data' chunk"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00abc", "truncated 'fmt ' chunk"),
    (b"RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00", "no 'fmt ' chunk"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00"
     b"data\x00\x00\x00\x00", "audio is empty"),
    (b"not audio at all" * 10, "not readable as audio"),
])
def test_bad_input_on_stdin_is_a_one_line_error(data, problem):
    with pytest.raises(AudioError, match=f"<stdin>: .*{re.escape(problem)}"):
        list(stream_audio("-", RATE, stdin=io.BytesIO(data)))


def test_a_whole_file_of_silence_gets_one_note_naming_it_and_empty_text(tiny_model_dir, tmp_path):
    sf.write(str(tmp_path / "silence.wav"), np.zeros(25 * RATE, dtype=np.float32), RATE)  # two silent segments
    write_sine(tmp_path / "tone.wav", seconds=1.0)
    notes = []
    paths = [str(tmp_path / "silence.wav"), str(tmp_path / "tone.wav")]
    outcomes = dict(speller(tiny_model_dir).transcribe_files(paths, note=notes.append))
    assert outcomes[str(tmp_path / "silence.wav")].text == ""
    assert notes == [f"{tmp_path / 'silence.wav'}: no sound above -80 dBFS; nothing transcribed"]


def test_a_file_of_steady_noise_alone_gets_a_note_saying_so_and_empty_text(tiny_model_dir, tmp_path):
    # the fake model spells "hohoho" over anything loud, as the built-in package wrote words for hiss
    hiss = 0.01 * np.random.default_rng(0).standard_normal(3 * RATE)
    sf.write(str(tmp_path / "hiss.wav"), hiss.astype(np.float32), RATE)
    write_sine(tmp_path / "tone.wav", seconds=1.0)
    notes = []
    paths = [str(tmp_path / "hiss.wav"), str(tmp_path / "tone.wav")]
    outcomes = dict(speller(tiny_model_dir).transcribe_files(paths, note=notes.append))
    assert outcomes[str(tmp_path / "hiss.wav")].text == "" and outcomes[str(tmp_path / "tone.wav")].text
    assert notes == [f"{tmp_path / 'hiss.wav'}: steady noise alone, no speech (its loudness varies by under 2 dB, "
                     "as hiss, hum or a fan's does); nothing transcribed"]


def test_the_built_in_package_writes_nothing_for_hiss_it_once_heard_words_in(capsys):
    # "going off if unfunded in" for 3 s of white noise at -60 dBFS: per-utterance normalization
    # makes any noise as loud as speech
    import asr

    hiss = (0.001 * np.random.default_rng(0).standard_normal(3 * RATE)).astype(np.float32)
    assert asr.load_model(decoder="greedy").transcribe(hiss).text == ""


def test_a_file_too_short_to_hold_a_word_gets_a_note_saying_so(tiny_model_dir, tmp_path):
    sf.write(str(tmp_path / "blip.wav"), 0.3 * np.sin(np.arange(160) / 3.0).astype(np.float32), RATE)  # 10 ms
    write_sine(tmp_path / "tone.wav", seconds=1.0)
    notes = []
    paths = [str(tmp_path / "blip.wav"), str(tmp_path / "tone.wav")]
    dict(speller(tiny_model_dir).transcribe_files(paths, note=notes.append))
    assert notes == [f"{tmp_path / 'blip.wav'}: only 10 ms of audio, too short to hold a word; nothing transcribed"]


def test_alternatives_are_given_for_every_file_when_asked_and_a_cut_file_has_none_said_once(tiny_model_dir,
                                                                                             long_file, tmp_path):
    t = speller(tiny_model_dir, max_seconds=10.0)
    t.decoder = t._decoder_for("beam", None, {"beam_size": 4, "nbest": 3})
    short = str(write_sine(tmp_path / "short.wav", seconds=1.0))
    notes = []
    outcomes = dict(t.transcribe_files([str(long_file), short, str(long_file)], note=notes.append))
    assert outcomes[str(long_file)].alternatives == [] and isinstance(outcomes[short].alternatives, list)
    assert len(notes) == 1 and notes[0].startswith(f"{long_file}: cut into ") and "no alternatives" in notes[0]
    assert speller(tiny_model_dir).transcribe(short).alternatives == []  # not asked for


@pytest.mark.parametrize("suffix", [".wav", ".flac"])  # a WAV streams; other formats are read whole
def test_audio_on_a_named_pipe_is_read_as_stdin_is(tmp_path, suffix):
    import os
    import threading

    path = write_sine(tmp_path / f"a{suffix}", seconds=1.0)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(path.read_bytes()))
    writer.start()
    blocks = list(stream_audio(str(fifo), RATE))
    writer.join()
    expected, _ = sf.read(str(path), dtype="float32")
    np.testing.assert_allclose(np.concatenate(blocks), expected, atol=1e-4)


def test_a_file_libsndfile_reads_is_read_without_ffmpeg_whatever_its_extension(tmp_path, monkeypatch):
    import asr.inputs

    monkeypatch.setattr(asr.inputs, "ffmpeg_path", lambda: None)
    flac = write_sine(tmp_path / "real.flac", seconds=1.0)
    (tmp_path / "fake.m4a").write_bytes(flac.read_bytes())
    assert sum(len(b) for b in stream_audio(str(tmp_path / "fake.m4a"), RATE)) == RATE


def test_transcribe_reads_a_process_substitution_once_front_to_back(tiny_model_dir, tmp_path):
    # before any audio is read, asr transcribe looks at each input's header for its rate: not a pipe's
    wav = write_sine(tmp_path / "a.wav", seconds=1.0)
    command = f'"{sys.executable}" -m asr.cli transcribe <(cat "{wav}") --model "{tiny_model_dir}" --quiet'
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"/dev/fd/\d+\t.*\n", proc.stdout)


def _beam_transcribe(files, model_dir, *extra):
    """asr transcribe searching in 2 worker processes, 2 segments a batch (so a batch is 2 files here)."""
    return main(["transcribe", *files, "--model", str(model_dir), "--decoder", "beam", "--beam-size", "4",
                 "--decode-workers", "2", "--batch-size", "2", "--format", "json", *extra])


def _frames(model_dir, seconds: float) -> int:
    return int(seconds / load_model_dir(model_dir, device="cpu").model.frame_shift)


SEARCH_DIED = ("a beam search worker process died searching it alone, after twice on its batch (out of memory?); "
               "run again with fewer --decode-workers, or 1")


def test_only_the_file_whose_search_kills_its_worker_alone_fails_and_every_other_file_is_written(
        tiny_model_dir, tmp_path, monkeypatch, capsys):
    from tests.test_search_workers import searches_that_kill_their_worker

    files = [str(write_sine(tmp_path / f"{n}.wav", seconds=s)) for n, s in zip("abcde", (1, 1, 3, 1, 1))]
    in_parent = searches_that_kill_their_worker(monkeypatch, longer_than=_frames(tiny_model_dir, 2.0))  # c's
    assert _beam_transcribe(files, tiny_model_dir) == 1  # batches [a b] [c d] [e]: d is c's batch
    out, err = capsys.readouterr()
    assert [json.loads(line)["path"] for line in out.splitlines()] == files[:2] + files[3:]
    assert err.splitlines() == [f"asr: {files[2]}: {SEARCH_DIED}", "asr: 1 of 5 file(s) failed"]
    assert in_parent == []  # never searched again in the run's own process: it would have died


def test_a_beam_search_process_killed_once_costs_nothing_every_file_is_transcribed_as_without(
        tiny_model_dir, tmp_path, monkeypatch, capsys):
    from tests.test_search_workers import searches_that_kill_their_worker

    files = [str(write_sine(tmp_path / f"{n}.wav", seconds=s)) for n, s in zip("abcd", (1, 1, 3, 1))]
    assert _beam_transcribe(files, tiny_model_dir) == 0
    expected = capsys.readouterr().out
    in_parent = searches_that_kill_their_worker(monkeypatch, longer_than=_frames(tiny_model_dir, 2.0),
                                                once=tmp_path / "killed")
    assert _beam_transcribe(files, tiny_model_dir) == 0
    out, err = capsys.readouterr()
    assert (tmp_path / "killed").exists() and out == expected and err == "" and in_parent == []


def test_the_python_api_raises_one_clear_error_when_a_call_s_batch_kills_the_beam_search_process_twice(
        tiny_model_dir, tmp_path, monkeypatch):
    from asr.search_workers import SearchWorkerDied
    from tests.test_search_workers import searches_that_kill_their_worker

    t = Transcriber(load_model_dir(tiny_model_dir), "beam", device="cpu", workers=2, beam_size=4,
                    segmenter=SegmenterOptions(max_seconds=2.0, min_seconds=1.0))  # 3 s: two segments, one batch
    path = write_sine(tmp_path / "a.wav", seconds=3.0)
    searches_that_kill_their_worker(monkeypatch, longer_than=_frames(tiny_model_dir, 1.5))
    with pytest.raises(SearchWorkerDied, match=f"^{re.escape(f'{path}: {SEARCH_DIED}')}$"):
        t.transcribe(str(path))
    with pytest.raises(SearchWorkerDied, match=r"^a beam search worker process died searching 1 utterance of one "
                                               r"batch alone, after twice on the whole batch \(out of memory\?\)"):
        t.transcribe(sf.read(str(path), dtype="float32")[0], RATE)
