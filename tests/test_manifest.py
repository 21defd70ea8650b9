"""Manifests as other tools and editors leave them still read as they were meant (asr.manifest)."""

import json
import re
from pathlib import Path

import pytest

from asr.manifest import ManifestError, Utterance, read_manifest, write_manifest


def row(**fields):
    return json.dumps({"audio_filepath": "/a.wav", "duration": 1.0, "text": "x", **fields}, ensure_ascii=False)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_a_manifest_whose_text_holds_a_line_separator_reads_back_as_written(tmp_path, separator):
    # write_manifest keeps non-ASCII as it is (str.splitlines would end a line at each of these)
    written = [Utterance("/a.wav", 1.0, f"one{separator}two"), Utterance("/b.wav", 2.0, "three")]
    write_manifest(tmp_path / "m.jsonl", written)
    assert read_manifest(tmp_path / "m.jsonl") == written


def test_a_manifest_saved_with_a_byte_order_mark_and_crlf_line_ends_reads_as_without_them(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(("\ufeff" + row(text="hello") + "\r\n" + row(text="world") + "\r\n").encode("utf-8"))
    assert [u.text for u in read_manifest(path)] == ["hello", "world"]


def test_a_last_line_without_a_newline_is_read(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(row(text="first") + "\n" + row(text="last"), encoding="utf-8")
    assert [u.text for u in read_manifest(path)] == ["first", "last"]


@pytest.mark.parametrize("duration", ["1" + "0" * 400, "9" * 5000])
def test_a_duration_too_large_for_a_number_is_a_manifest_error_naming_the_line(tmp_path, duration):
    path = tmp_path / "m.jsonl"
    path.write_text(row() + "\n" + '{"audio_filepath": "/a.wav", "text": "x", "duration": ' + duration + "}\n")
    with pytest.raises(ManifestError, match=f"^{re.escape(str(path))}:2: .*(duration|number)"):
        read_manifest(path)


def test_a_line_that_is_not_utf8_is_named_by_its_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes((row() + "\n").encode() + b'{"audio_filepath": "/a.wav", "duration": 1, "text": "caf\xe9"}\n')
    with pytest.raises(ManifestError, match=f"^{path}:2: not UTF-8 text"):
        read_manifest(path)


def test_relative_audio_of_a_manifest_given_through_a_symlink_is_found_beside_the_file_it_links_to(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.jsonl").write_text(row(audio_filepath="wav/a.flac") + "\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").symlink_to(corpus / "train.jsonl")
    [utt] = read_manifest(tmp_path / "data" / "train.jsonl")
    assert Path(utt.audio_filepath) == corpus / "wav" / "a.flac"


def test_a_manifest_in_a_symlinked_folder_keeps_the_folder_it_was_named_in(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "train.jsonl").write_text(row(audio_filepath="wav/a.flac") + "\n")
    (tmp_path / "data").symlink_to(tmp_path / "corpus")
    [utt] = read_manifest(tmp_path / "data" / "train.jsonl")
    assert utt.audio_filepath == str(tmp_path / "data" / "wav" / "a.flac")


@pytest.mark.parametrize("line,problem", [
    ('{"audio_filepath": "a.wav", "dura', r"not valid JSON \(Unterminated string starting at column 29\)"),
    ('{"audio_filepath": "a.wav", "duration": 1.0, "text": "a\tb"}',
     r"not valid JSON \(Invalid control character at column 56\)"),
    ("[" * 100_000 + "]" * 100_000, r"not valid JSON \(arrays or objects nested too deeply to read\)"),
    ('{"audio_filepath": "a.wav"} x', r"not valid JSON \(Extra data at column 29\)"),
])
def test_a_line_that_is_not_json_is_a_manifest_error_naming_its_line_and_where_it_breaks(tmp_path, line, problem):
    good = '{"audio_filepath": "a.wav", "duration": 1.0, "text": "a"}'
    path = tmp_path / "m.jsonl"
    path.write_text(f"{good}\n{line}\n{good}\n")
    with pytest.raises(ManifestError, match=rf"^{re.escape(str(path))}:2: {problem}$"):
        read_manifest(path)
