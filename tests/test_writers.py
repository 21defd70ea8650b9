"""Output formats: valid SRT/VTT cues of sensible length, JSON with segments and words, TSV,
one file per input in --output-dir, and an unwritable directory refused up front."""

import io
import json
import re

import pytest

from asr.transcribe import Result, Segment, Word
from asr.writers import DirectoryOutput, OutputError, check_output_dir, get_writer, make_cues, timestamp


def long_result():
    """40 words, one every 0.5 s, in two segments separated by a 3 s pause."""
    words, t = [], 1.0
    for i in range(40):
        if i == 25:
            t += 3.0
        words.append(Word(f"word{i}", round(t, 3), round(t + 0.35, 3), 0.9))
        t += 0.5
    segs = [Segment(words[0].start, words[24].end, " ".join(w.word for w in words[:25])),
            Segment(words[25].start, words[-1].end, " ".join(w.word for w in words[25:]))]
    return Result(" ".join(w.word for w in words), t + 1.0, segs, words, 0.9)


SRT_TIME = r"(\d\d):(\d\d):(\d\d),(\d\d\d)"


def seconds(h, m, s, ms):
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def test_srt_is_numbered_cues_with_increasing_times_short_lines_and_all_words():
    out = io.StringIO()
    get_writer("srt", out).write("a.wav", long_result())
    blocks = out.getvalue().strip().split("\n\n")
    assert len(blocks) >= 4
    last_end, words = 0.0, []
    for i, block in enumerate(blocks, 1):
        lines = block.split("\n")
        assert lines[0] == str(i)
        m = re.fullmatch(SRT_TIME + " --> " + SRT_TIME, lines[1])
        assert m, lines[1]
        start, end = seconds(*m.groups()[:4]), seconds(*m.groups()[4:])
        assert last_end <= start < end and end - start <= 7.0
        assert 1 <= len(lines[2:]) <= 2 and all(len(line) <= 42 for line in lines[2:])
        words += " ".join(lines[2:]).split()
        last_end = end
    assert words == long_result().text.split()


def test_no_cue_spans_the_pause_between_segments():
    cues = make_cues(long_result())
    assert not any(c.start < 13.5 < c.end for c in cues)  # the pause is 13.5 .. 16.5 s


def test_vtt_has_a_header_and_dotted_timestamps():
    out = io.StringIO()
    get_writer("vtt", out).write("a.wav", long_result())
    text = out.getvalue()
    assert text.startswith("WEBVTT\n\n")
    stamps = re.findall(r"^(\S+) --> (\S+)$", text, flags=re.M)
    assert stamps and all(re.fullmatch(r"\d\d:\d\d:\d\d\.\d\d\d", s) for pair in stamps for s in pair)


def test_tsv_has_milliseconds_per_segment():
    out = io.StringIO()
    get_writer("tsv", out).write("a.wav", long_result())
    rows = [line.split("\t") for line in out.getvalue().strip().split("\n")]
    assert rows[0] == ["start", "end", "text"]
    assert rows[1][:2] == ["1000", str(round(long_result().segments[0].end * 1000))]
    assert len(rows) == 3


def test_timestamps_round_to_milliseconds_and_carry_hours():
    assert timestamp(3725.0004, ",") == "01:02:05,000"
    assert timestamp(0.9996) == "00:00:01.000"


def test_output_dir_gets_one_file_per_input_and_format_named_after_it(tmp_path):
    out = DirectoryOutput(tmp_path / "out", ["txt", "json", "srt", "vtt", "tsv"])
    out.write("x/talk.flac", long_result())
    out.write("y/talk.wav", Result("", 1.0))  # same name: kept apart, not overwritten
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    formats = ("txt", "json", "srt", "vtt", "tsv")
    assert names == sorted(f"{stem}.{ext}" for stem in ("talk", "talk-2") for ext in formats)
    data = json.loads((tmp_path / "out" / "talk.json").read_text())
    assert data["path"] == "x/talk.flac" and len(data["segments"]) == 2 and len(data["words"]) == 40
    assert data["words"][0] == {"word": "word0", "start": 1.0, "end": 1.35, "confidence": 0.9}
    assert (tmp_path / "out" / "talk.txt").read_text().splitlines() == [s.text for s in long_result().segments]
    assert (tmp_path / "out" / "talk-2.srt").read_text() == ""


def test_an_unwritable_output_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="file.txt/out: output directory is not writable"):
        check_output_dir(blocker / "out")
    with pytest.raises(OutputError, match="file.txt: is a file, not an output directory"):
        check_output_dir(blocker)


def test_every_json_has_the_same_keys_alternatives_included_even_when_there_are_none():
    def data(**alternatives):
        stream = io.StringIO()
        get_writer("json", stream).write("a.wav", Result("hi", 1.0, **alternatives))
        return json.loads(stream.getvalue())

    assert data(alternatives=["high"])["alternatives"] == ["high"]
    assert data()["alternatives"] == [] and data().keys() == data(alternatives=["high"]).keys()
