"""Output formats: valid SRT/VTT cues of sensible length, JSON with segments and words, TSV,
one file per input in --output-dir, and an unwritable directory refused up front."""

import io
import json
import os
import re

import pytest

from asr.results import Result, Segment, Word
from asr.subtitle_cues import make_cues, timestamp
from asr.writers import DirectoryOutput, OutputError, check_output_dir, get_writer


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


def test_a_segment_without_word_times_is_cut_into_cues_of_at_most_two_short_lines_and_seven_seconds():
    # a 20 s segment of 60 words whose times could not be placed was one cue of ten lines
    text = " ".join(f"word{i}" for i in range(60))
    cues = make_cues(Result(text, 21.0, [Segment(1.0, 21.0, text)], []))
    assert len(cues) > 1 and cues[0].start == 1.0 and cues[-1].end == 21.0
    assert all(1 <= len(c.lines) <= 2 and all(len(line) <= 42 for line in c.lines) for c in cues)
    assert all(c.start < c.end and c.end - c.start <= 7.0 for c in cues)
    assert all(c1.end <= c2.start for c1, c2 in zip(cues, cues[1:]))
    assert " ".join(" ".join(c.lines) for c in cues) == text


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


def test_cue_text_cannot_break_its_format_vtt_escaped_as_markup_srt_free_of_timing_arrows():
    # a lexicon word is kept as written: an LM of song titles may hold "r&b<-->"
    words = [Word("see", 0.5, 0.8), Word("r&b<-->", 0.9, 1.4)]
    result = Result("see r&b<-->", 2.0, [Segment(0.5, 1.4, "see r&b<-->")], words)
    vtt, srt = io.StringIO(), io.StringIO()
    get_writer("vtt", vtt).write("a.wav", result)
    get_writer("srt", srt).write("a.wav", result)
    assert vtt.getvalue().splitlines()[3] == "see r&amp;b&lt;--&gt;"
    assert srt.getvalue().splitlines()[2] == "see r&b<->" and srt.getvalue().count("-->") == 1


def test_each_word_is_in_one_cue_and_a_segment_with_no_text_makes_none():
    # a word of no length on the boundary of two segments fitted both; an empty segment made a blank cue
    words = [Word("one", 0.0, 0.5), Word("two", 1.0, 1.0), Word("three", 1.0, 1.5)]
    result = Result("one two three", 3.0, [Segment(0.0, 1.0, "one two"), Segment(1.0, 1.5, "three"),
                                          Segment(2.0, 2.5, "")], words)
    cues = make_cues(result)
    assert [" ".join(c.lines) for c in cues] == ["one two", "three"]


def test_a_tab_or_line_break_in_a_file_name_keeps_the_stream_s_one_line_record():
    out = io.StringIO()
    get_writer("txt", out).write("in/new\nline\tname.wav", Result("hello", 1.0, [], []))
    assert out.getvalue() == "in/new\\nline\\tname.wav\thello\n"


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
    out.guard(["x/talk.flac", "y/talk.wav", "z/other.wav"])
    out.write("x/talk.flac", long_result())
    out.write("y/talk.wav", Result("", 1.0))  # same name: kept apart by its folder, not overwritten
    out.write("z/other.wav", Result("", 1.0))
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    formats = ("txt", "json", "srt", "vtt", "tsv")
    assert names == sorted(f"{stem}.{ext}" for stem in ("x_talk", "y_talk", "other") for ext in formats)
    data = json.loads((tmp_path / "out" / "x_talk.json").read_text())
    assert data["path"] == "x/talk.flac" and len(data["segments"]) == 2 and len(data["words"]) == 40
    assert data["words"][0] == {"word": "word0", "start": 1.0, "end": 1.35, "confidence": 0.9}
    assert (tmp_path / "out" / "x_talk.txt").read_text().splitlines() == [s.text for s in long_result().segments]
    assert (tmp_path / "out" / "y_talk.srt").read_text() == ""
    assert out.renamed == [("x/talk.flac", "x_talk"), ("y/talk.wav", "y_talk")]


def written_paths(directory) -> dict[str, str]:
    """output file name -> the input its JSON says it is of."""
    return {p.name: json.loads(p.read_text())["path"] for p in directory.glob("*.json")}


@pytest.mark.parametrize("inputs", [["a/x.wav", "b/x.wav", "c/x.flac", "a/y.wav"],
                                    ["in/a/x.wav", "out/a/x.wav", "x.wav"],
                                    ["x.wav", "x.flac", "sub/x.wav"]])
def test_an_inputs_output_name_does_not_depend_on_the_order_of_the_inputs(tmp_path, inputs):
    first, second = tmp_path / "first", tmp_path / "second"
    for order, directory in ((inputs, first), (inputs[::-1], second)):
        out = DirectoryOutput(directory, ["json"])
        assert out.guard(order) == []
        for path in order:
            out.write(path, Result("", 1.0))
    assert written_paths(first) == written_paths(second)
    assert sorted(written_paths(first).values()) == sorted(inputs)  # one file each: none replaced another's


def test_a_rerun_in_another_order_replaces_each_inputs_own_files(tmp_path):
    for order in (["a/x.wav", "b/x.wav"], ["b/x.wav", "a/x.wav"]):
        out = DirectoryOutput(tmp_path / "out", ["json"])
        out.guard(order)
        for path in order:
            out.write(path, Result("", 1.0))
    assert written_paths(tmp_path / "out") == {"a_x.json": "a/x.wav", "b_x.json": "b/x.wav"}


def test_output_names_follow_the_folders_and_extensions_that_tell_inputs_apart():
    from asr.writers import output_names

    assert output_names(["a/x.wav", "b/x.wav", "c/y.wav"]) == {"a/x.wav": "a_x", "b/x.wav": "b_x", "c/y.wav": "y"}
    assert output_names(["in/a/x.wav", "out/a/x.wav"]) == {"in/a/x.wav": "in_a_x", "out/a/x.wav": "out_a_x"}
    assert output_names(["x.wav", "x.flac", "./x.wav"]) == {"x.wav": "x.wav", "x.flac": "x.flac", "./x.wav": "x.wav"}
    assert output_names(["d/X.wav", "e/x.wav"]) == {"d/X.wav": "d_X", "e/x.wav": "e_x"}  # one file on macOS
    assert output_names(["-", "stdin.wav"]) == {"-": "stdin", "stdin.wav": "stdin.wav"}


def test_a_name_two_rules_give_alike_gets_each_inputs_path_hash_and_stays_apart():
    from asr.writers import output_names

    names = output_names(["a/x.wav", "b/x.wav", "a_x.wav"])
    assert names["b/x.wav"] == "b_x"
    assert re.fullmatch(r"a_x-[0-9a-f]{8}", names["a/x.wav"]) and re.fullmatch(r"a_x-[0-9a-f]{8}", names["a_x.wav"])
    assert names["a/x.wav"] != names["a_x.wav"]
    assert output_names(["a_x.wav", "b/x.wav", "a/x.wav"]) == names


def test_inputs_of_one_name_deep_in_two_copies_of_a_corpus_get_names_a_file_system_takes(tmp_path):
    from asr.writers import NAME_MAX, WRITERS

    deep = "/".join(f"séance_recording_folder_number_{n:02d}_of_the_corpus" for n in range(6))  # 2-byte é
    inputs = [f"{tmp_path}/{deep}/utt.wav", f"{tmp_path}/other/{deep}/utt.wav", f"{tmp_path}/{'u' * 250}.wav"]
    for path in inputs:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    out = DirectoryOutput(tmp_path / "out", list(WRITERS))
    assert out.guard(inputs) == []
    for path in inputs:
        out.write(path, Result("", 1.0))  # ENAMETOOLONG, from a name of every folder below the shared one
    names = [out.name_for(path) for path in inputs]
    longest = max(len(f".{name}.{ext}.tmp-4194304".encode()) for name in names for ext in WRITERS)
    assert longest <= NAME_MAX and len(set(names)) == 3
    # the stem, with the folders nearest to it that fit, and the path's hash for the one that told them apart
    assert all(re.fullmatch(r"séance_recording_folder_number_0[2-5].*_05_of_the_corpus_utt-[0-9a-f]{8}", name)
               for name in names[:2])
    assert re.fullmatch(r"u+-[0-9a-f]{8}", names[2])
    assert sorted(written_paths(tmp_path / "out").values()) == sorted(inputs)


def test_naming_inputs_one_by_one_costs_each_its_own_name_not_a_replanning_of_all_so_far(tmp_path, monkeypatch):
    import asr.writers as writers

    planned = []  # the inputs named together (4,000 one by one took 24 s when each re-planned all before it)
    real = writers._names
    monkeypatch.setattr(writers, "_names", lambda inputs: planned.extend(inputs) or real(inputs))
    out = DirectoryOutput(tmp_path, ["txt"])
    names = [out.name_for(f"/d{n % 50}/s{n}/utt.wav") for n in range(2000)]  # one stem in 2,000 folders
    assert len(set(names)) == 2000 and len(planned) <= 2000


def test_an_input_first_seen_by_write_is_named_by_the_rule_that_names_inputs_planned_together(tmp_path):
    from asr.writers import output_names

    out = DirectoryOutput(tmp_path / "out", ["txt"])
    out.guard(["d/a/x.wav"])
    seen = ["d/a/x.wav"]
    for path, name in (("d/b/x.wav", "b_x"), ("d/b/x.flac", "b_x.flac"), ("d/c/y.wav", "y")):
        seen.append(path)
        assert out.name_for(path) == output_names(seen)[path] == name


def test_an_input_first_named_by_write_never_takes_a_name_already_given(tmp_path):
    out = DirectoryOutput(tmp_path / "out", ["json"])
    out.guard(["a/x.wav"])
    out.write("a/x.wav", Result("", 1.0))
    out.write("x.wav", Result("", 1.0))  # alone it would be x, as a/x.wav already is
    assert sorted(written_paths(tmp_path / "out").values()) == ["a/x.wav", "x.wav"]


def test_beside_the_inputs_existing_files_are_kept_unless_forced_and_an_input_is_never_written_onto(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.wav").write_bytes(b"")
    (tmp_path / "a" / "a_x.txt").write_text("reference")
    inputs = ["a/x.wav", "b/x.wav"]
    assert DirectoryOutput("a", ["txt"]).guard(inputs) == [
        "a/a_x.txt: exists beside the audio (a reference transcript?); not replaced: give another --output-dir, "
        "or --force to replace it"]
    assert DirectoryOutput("a", ["txt"]).guard(inputs, force=True) == []
    (tmp_path / "a" / "y.txt").write_bytes(b"")  # audio, whatever its name says
    assert DirectoryOutput("a", ["txt"]).guard(["a/y.txt"], force=True) == [
        "a/y.txt: is an input; not overwritten (give another --output-dir)"]


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


def test_json_output_writes_a_confidence_that_is_not_a_number_as_null_so_it_stays_json():
    stream = io.StringIO()
    get_writer("json", stream).write("a.wav", Result("hi", 1.0, confidence=float("nan"),
                                                     words=[Word("hi", 0.0, 0.5, float("inf"))]))
    data = json.loads(stream.getvalue(), parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert data["confidence"] is None and data["words"][0]["confidence"] is None


def test_a_directory_where_an_output_file_would_go_is_named_up_front_not_met_mid_batch(tmp_path):
    (tmp_path / "out" / "a.txt").mkdir(parents=True)
    out = DirectoryOutput(tmp_path / "out", ["txt", "json"])
    assert out.guard(["in/a.wav", "in/b.wav"]) == [
        f"{tmp_path / 'out' / 'a.txt'}: is a directory, so this input's txt cannot be written there"]


def test_a_file_that_cannot_be_written_fails_its_input_alone_with_an_error_naming_it(tmp_path, monkeypatch):
    import errno

    out = DirectoryOutput(tmp_path / "out", ["txt"])
    out.guard(["a.wav", "b.wav"])
    (tmp_path / "out" / "a.txt").mkdir()  # appeared after the guard: met by the write itself
    with pytest.raises(OutputError, match=r"a.txt: is a directory"):
        out.write("a.wav", Result("hi", 1.0))
    writer = out.writers[0]

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(writer, "write_file", full)
    with pytest.raises(OutputError, match=r"b.txt: not written \(No space left on device\)"):
        out.write("b.wav", Result("hi", 1.0))  # an OutputError: asr transcribe says so and goes on
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt"]  # no partial b.txt left behind


def test_an_input_whose_second_format_cannot_be_written_keeps_none_of_its_files_and_a_rerun_writes_them(
        tmp_path, monkeypatch):
    import errno

    (tmp_path / "a.wav").write_bytes(b"")
    out = DirectoryOutput(tmp_path, ["txt", "json"])  # beside the audio: a.txt left there is "a reference"
    assert out.guard([str(tmp_path / "a.wav")]) == []

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(out.writers[1], "write_file", full)
    with pytest.raises(OutputError, match=r"a.json: not written \(No space left on device\)"):
        out.write(str(tmp_path / "a.wav"), Result("hi", 1.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]  # a.txt, written first, removed too

    rerun = DirectoryOutput(tmp_path, ["txt", "json"])
    assert rerun.guard([str(tmp_path / "a.wav")]) == []
    assert [p.name for p in rerun.write(str(tmp_path / "a.wav"), Result("hi", 1.0))] == ["a.txt", "a.json"]


UNDECODABLE = os.fsdecode(b"caf\xe9.wav")  # a Latin-1 file name, as Python reads it from a UTF-8 file system


def test_an_input_whose_file_name_is_not_utf8_gets_files_of_its_own_name_and_an_escaped_path_in_the_text(tmp_path):
    audio = tmp_path / UNDECODABLE
    audio.write_bytes(b"")
    out = DirectoryOutput(tmp_path / "out", ["json", "txt"])
    assert out.guard([str(audio)]) == []
    out.write(str(audio), Result("hi", 1.0))
    assert sorted(os.listdir(os.fsencode(tmp_path / "out"))) == [b"caf\xe9.json", b"caf\xe9.txt"]
    assert json.loads((tmp_path / "out" / os.fsdecode(b"caf\xe9.json")).read_text())["path"] == \
        str(tmp_path / "caf\\xe9.wav")
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # stdout, strict as it is in a UTF-8 locale
    get_writer("txt", stream).write(UNDECODABLE, Result("hi", 1.0))
    stream.seek(0)
    assert stream.read() == "caf\\xe9.wav\thi\n"


def test_names_of_undecodable_inputs_are_measured_and_hashed_by_their_bytes():
    from asr.writers import NAME_MAX, output_names

    stem = UNDECODABLE[:-len(".wav")]
    assert output_names([f"a/{UNDECODABLE}", f"b/{UNDECODABLE}"]) == {
        f"a/{UNDECODABLE}": f"a_{stem}", f"b/{UNDECODABLE}": f"b_{stem}"}
    (name,) = output_names([os.fsdecode(b"\xe9" * 250 + b".wav")]).values()  # too long: cut, and hashed
    assert re.fullmatch("\udce9+-[0-9a-f]{8}", name) and len(os.fsencode(f".{name}.json.tmp-4194304")) <= NAME_MAX
