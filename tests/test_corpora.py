"""Corpus importers: every entry is checked, and anything left out is reported with its reason."""

import json
import os
import random
from pathlib import Path

import pytest

from asr.corpora import CorpusError, import_kaldi_dir, prepare_speechocean762, split_by_speaker
from asr.data import Utterance, read_manifest
from conftest import write_sine

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEECHOCEAN = REPO_ROOT.parent / "shared" / "data" / "speechocean762"


def write_table(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def make_kaldi_dir(root, name="data", wav=(), text=(), utt2spk=None):
    data = root / name
    write_table(data / "wav.scp", wav)
    write_table(data / "text", text)
    if utt2spk is not None:
        write_table(data / "utt2spk", utt2spk)
    return data


def reasons(report):
    return dict(report.skipped)


# --- import_kaldi_dir ---------------------------------------------------------------------

@pytest.fixture
def good_dir(tmp_path):
    write_sine(tmp_path / "audio" / "u1.wav", seconds=0.5, sample_rate=16000)
    write_sine(tmp_path / "audio" / "u2.flac", seconds=0.25, sample_rate=8000)
    return make_kaldi_dir(
        tmp_path,
        wav=["u1 audio/u1.wav", f"u2\t{tmp_path / 'audio' / 'u2.flac'}"],
        text=["u1 HELLO WORLD", "u2 good  morning"],
        utt2spk=["u1 spk1", "u2 spk2"],
    )


def test_import_kaldi_dir_reads_every_good_entry(good_dir):
    report = import_kaldi_dir(good_dir)
    assert report.skipped == []
    by_id = {u.id: u for u in report.utterances}
    assert set(by_id) == {"u1", "u2"}
    assert by_id["u1"].duration == pytest.approx(0.5)
    assert by_id["u2"].duration == pytest.approx(0.25)
    assert by_id["u1"].text == "HELLO WORLD"
    assert by_id["u2"].text == "good morning"  # runs of spaces collapsed; case and words kept
    assert (by_id["u1"].speaker, by_id["u2"].speaker) == ("spk1", "spk2")


def test_import_kaldi_dir_gives_absolute_audio_paths_resolved_against_the_parent_dir(good_dir, tmp_path):
    report = import_kaldi_dir(good_dir)
    for utt in report.utterances:
        assert os.path.isabs(utt.audio_filepath)
        assert Path(utt.audio_filepath).is_file()
    assert {Path(u.audio_filepath) for u in report.utterances} == {
        (tmp_path / "audio" / "u1.wav").resolve(), (tmp_path / "audio" / "u2.flac").resolve()}


def test_import_kaldi_dir_resolves_relative_paths_against_an_explicit_root(tmp_path):
    write_sine(tmp_path / "corpus" / "WAVE" / "a.wav")
    data = make_kaldi_dir(tmp_path / "lists", wav=["a WAVE/a.wav"], text=["a hi"])
    report = import_kaldi_dir(data, root=tmp_path / "corpus")
    assert report.skipped == []
    assert Path(report.utterances[0].audio_filepath) == (tmp_path / "corpus" / "WAVE" / "a.wav").resolve()


def test_without_utt2spk_the_speaker_is_none(tmp_path):
    write_sine(tmp_path / "a.wav")
    data = make_kaldi_dir(tmp_path, wav=["a a.wav"], text=["a hi"])
    [utt] = import_kaldi_dir(data).utterances
    assert utt.speaker is None


@pytest.fixture
def bad_dir(tmp_path):
    """One good entry and one of each problem."""
    write_sine(tmp_path / "good.wav")
    write_sine(tmp_path / "empty_text.wav")
    write_sine(tmp_path / "dup.wav")
    (tmp_path / "corrupt.wav").write_bytes(random.Random(0).randbytes(2048))
    return make_kaldi_dir(
        tmp_path,
        wav=["good good.wav",
             "missing missing.wav",
             "corrupt corrupt.wav",
             "empty_text empty_text.wav",
             "dup dup.wav",
             "dup dup.wav",
             "piped sox in.sph -t wav - |",
             "no_text good.wav",
             "no_path"],
        text=["good hello",
              "missing hello",
              "corrupt hello",
              "empty_text",
              "dup hello",
              "piped hello",
              "orphan hello",
              "no_path hello"],
    )


def test_import_kaldi_dir_keeps_only_the_good_entry_of_a_bad_dir(bad_dir):
    report = import_kaldi_dir(bad_dir)
    assert [u.id for u in report.utterances] == ["good"]


def test_import_kaldi_dir_reports_every_entry_it_leaves_out(bad_dir):
    report = import_kaldi_dir(bad_dir)
    assert set(reasons(report)) == {"missing", "corrupt", "empty_text", "dup", "piped", "no_text", "orphan",
                                    "no_path"}


@pytest.mark.parametrize("utt_id, words", [
    ("missing", "not found"),
    ("corrupt", "not readable as audio"),
    ("empty_text", "empty transcript"),
    ("dup", "duplicate id"),
    ("piped", "piped"),
    ("no_text", "no transcript"),
    ("orphan", "without audio"),
    ("no_path", "wav.scp: no audio path after the id"),  # not "is a directory", of the folder it resolved to
])
def test_import_kaldi_dir_gives_the_reason_for_each_left_out_entry(bad_dir, utt_id, words):
    assert words in reasons(import_kaldi_dir(bad_dir))[utt_id]


def test_missing_and_corrupt_audio_reasons_name_the_file(bad_dir):
    found = reasons(import_kaldi_dir(bad_dir))
    assert "missing.wav" in found["missing"]
    assert "corrupt.wav" in found["corrupt"]


def test_a_duplicate_id_in_text_is_reported(tmp_path):
    write_sine(tmp_path / "a.wav")
    data = make_kaldi_dir(tmp_path, wav=["a a.wav"], text=["a one", "a two"])
    report = import_kaldi_dir(data)
    assert report.utterances == []
    assert "duplicate id in text" in reasons(report)["a"]


def test_zero_length_audio_is_reported(tmp_path):
    write_sine(tmp_path / "silent.wav", seconds=0.0)
    data = make_kaldi_dir(tmp_path, wav=["s silent.wav"], text=["s hi"])
    report = import_kaldi_dir(data)
    assert report.utterances == [] and "empty" in reasons(report)["s"]


def test_a_data_dir_without_wav_scp_raises_corpus_error(tmp_path):
    (tmp_path / "data").mkdir()
    write_table(tmp_path / "data" / "text", ["a hi"])
    with pytest.raises(CorpusError, match="wav.scp"):
        import_kaldi_dir(tmp_path / "data")


def test_a_missing_data_dir_raises_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="not a directory"):
        import_kaldi_dir(tmp_path / "nope")


# --- split_by_speaker ---------------------------------------------------------------------

def test_split_by_speaker_holds_out_all_utterances_of_the_chosen_speakers():
    utts = [Utterance(f"/{s}{i}.wav", 1.0, "x", s, f"{s}{i}") for s in "abcd" for i in range(3)]
    train, held = split_by_speaker(utts, 2, seed=0)
    assert len({u.speaker for u in held}) == 2 and len(held) == 6
    assert not {u.speaker for u in train} & {u.speaker for u in held}
    assert sorted(u.id for u in train + held) == sorted(u.id for u in utts)


def test_split_by_speaker_refuses_to_hold_out_every_speaker():
    utts = [Utterance("/a.wav", 1.0, "x", "a"), Utterance("/b.wav", 1.0, "x", "b")]
    with pytest.raises(CorpusError):
        split_by_speaker(utts, 2)


# --- prepare_speechocean762 ---------------------------------------------------------------

def make_release(src, train_speakers=("0001", "0002", "0003"), test_speakers=("0004",), per_speaker=2):
    """The official layout: SRC/{train,test}/{wav.scp,text,utt2spk}, audio in SRC/WAVE/SPEAKERxxxx/."""
    for split, speakers in (("train", train_speakers), ("test", test_speakers)):
        wav, text, spk = [], [], []
        for s in speakers:
            for i in range(per_speaker):
                utt = f"{s}{i:05d}"
                write_sine(src / "WAVE" / f"SPEAKER{s}" / f"{utt}.WAV", seconds=0.2)
                wav.append(f"{utt}\tWAVE/SPEAKER{s}/{utt}.WAV")
                text.append(f"{utt} WORD NUMBER {i}")
                spk.append(f"{utt} {s}")
        write_table(src / split / "wav.scp", wav)
        write_table(src / split / "text", text)
        write_table(src / split / "utt2spk", spk)
    return src


def test_prepare_speechocean762_writes_train_and_test_manifests(tmp_path):
    src = make_release(tmp_path / "src")
    reports = prepare_speechocean762(src, tmp_path / "out")
    train = read_manifest(tmp_path / "out" / "train.jsonl")
    test = read_manifest(tmp_path / "out" / "test.jsonl")
    assert len(train) == 6 and len(test) == 2
    assert {u.speaker for u in test} == {"0004"}
    assert all(Path(u.audio_filepath).is_file() for u in train + test)
    assert not (tmp_path / "out" / "valid.jsonl").exists()
    assert reports["train"].skipped == [] and reports["test"].skipped == []


def test_prepare_speechocean762_holds_out_valid_speakers_from_train(tmp_path):
    src = make_release(tmp_path / "src")
    reports = prepare_speechocean762(src, tmp_path / "out", valid_speakers=1)
    train = read_manifest(tmp_path / "out" / "train.jsonl")
    valid = read_manifest(tmp_path / "out" / "valid.jsonl")
    valid_speakers = {u.speaker for u in valid}
    assert len(valid_speakers) == 1 and len(valid) == 2
    assert not valid_speakers & {u.speaker for u in train}
    assert len(train) + len(valid) == 6
    assert {split: len(r.utterances) for split, r in reports.items()} == {"train": 4, "valid": 2, "test": 2}


@pytest.mark.parametrize("missing", ["train", "test"])
def test_prepare_speechocean762_without_a_split_dir_raises_corpus_error(tmp_path, missing):
    src = make_release(tmp_path / "src")
    for f in (src / missing).iterdir():
        f.unlink()
    (src / missing).rmdir()
    with pytest.raises(CorpusError, match=f"{missing}/"):
        prepare_speechocean762(src, tmp_path / "out")


def test_prepare_speechocean762_with_an_unusable_test_split_writes_no_manifest(tmp_path):
    src = make_release(tmp_path / "src")
    for wav in (src / "WAVE" / "SPEAKER0004").iterdir():
        wav.unlink()
    with pytest.raises(CorpusError, match="test: no usable utterances") as error:
        prepare_speechocean762(src, tmp_path / "out", valid_speakers=1)
    assert list(tmp_path.glob("out/*.jsonl")) == []
    assert str(error.value).count("file not found") == 2  # each reason shown (up to 3), not the first alone


def test_prepare_speechocean762_killed_while_writing_leaves_no_train_manifest_not_even_an_old_one(
        tmp_path, monkeypatch):
    import asr.corpora
    src = make_release(tmp_path / "src")
    prepare_speechocean762(src, tmp_path / "out", valid_speakers=1)  # an earlier run's manifests
    real_write, written = asr.corpora.write_manifest, []

    def killed_after_the_first(path, utts):
        if written:
            raise KeyboardInterrupt  # the kill arrives while the second manifest is written
        written.append(path)
        return real_write(path, utts)
    monkeypatch.setattr(asr.corpora, "write_manifest", killed_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        prepare_speechocean762(src, tmp_path / "out", valid_speakers=2)
    assert not (tmp_path / "out" / "train.jsonl").exists()  # so make runs prepare again


@pytest.mark.skipif(not (SPEECHOCEAN / "test").is_dir(), reason=f"{SPEECHOCEAN} not present")
def test_the_real_speechocean762_test_split_imports_completely():
    report = import_kaldi_dir(SPEECHOCEAN / "test")
    assert len(report.utterances) == 840
    assert report.skipped == []


def test_import_kaldi_dir_skips_a_transcript_that_normalizes_to_nothing(tmp_path):
    write_sine(tmp_path / "a.wav")
    write_sine(tmp_path / "b.wav")
    d = tmp_path / "data"
    d.mkdir()
    (d / "wav.scp").write_text(f"a {tmp_path / 'a.wav'}\nb {tmp_path / 'b.wav'}\n")
    (d / "text").write_text("a ... !!\nb HELLO\n")
    report = import_kaldi_dir(d)
    assert [u.id for u in report.utterances] == ["b"]
    assert report.skipped[0][0] == "a" and "empty transcript" in report.skipped[0][1]


def test_a_kaldi_dir_with_a_segments_file_is_refused_naming_it(good_dir):
    (good_dir / "segments").write_text("u1-0 u1 0.0 0.2\n")
    with pytest.raises(CorpusError, match="segments files are not supported"):
        import_kaldi_dir(good_dir)


def test_a_non_utf8_line_in_kaldi_text_skips_that_utterance_alone_naming_the_file_and_line(good_dir):
    (good_dir / "text").write_bytes(b"u1 HELLO\nu2 caf\xe9 one\n")
    report = import_kaldi_dir(good_dir)
    assert [u.id for u in report.utterances] == ["u1"]
    assert report.skipped == [("u2", f"{good_dir / 'text'}:2: not UTF-8 text (byte 0xe9); convert it first, "
                                     "e.g. iconv -f latin1 -t utf-8")]


def test_a_kaldi_line_that_is_utf8_holding_a_replacement_character_is_imported_as_text(good_dir):
    (good_dir / "text").write_text("u1 HELLO\nu2 caf\ufffd one\n", encoding="utf-8")  # damaged once, long ago
    assert sorted(u.id for u in import_kaldi_dir(good_dir).utterances) == ["u1", "u2"]


def test_a_bad_byte_in_a_kaldi_id_is_shown_printably_in_the_skip(good_dir):
    (good_dir / "text").write_bytes(b"u1 HELLO\nu\xe92 one\n")
    report = import_kaldi_dir(good_dir)
    assert report.skipped[0][0] == "u\ufffd2" and report.skipped[0][0].encode("utf-8")


def test_a_non_utf8_line_in_utt2spk_skips_its_utterance_rather_than_losing_its_speaker(good_dir):
    (good_dir / "utt2spk").write_bytes(b"u1 spk1\nu2 sp\xe9k2\n")
    report = import_kaldi_dir(good_dir)
    assert [u.id for u in report.utterances] == ["u1"] and report.skipped[0][0] == "u2"


def test_prepare_kaldi_with_nothing_usable_fails_and_writes_no_manifest(tmp_path, capsys):
    from asr.cli import main
    data = make_kaldi_dir(tmp_path, wav=["recX wav/nothere.wav"], text=["recX hello"])
    assert main(["prepare", "kaldi", str(data), str(tmp_path / "o.jsonl")]) != 0
    assert "no usable utterances" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_split_by_speaker_refuses_a_negative_count():
    utts = [Utterance("a.wav", 1.0, "x", speaker=s, id=s) for s in ("s1", "s2")]
    with pytest.raises(CorpusError, match="cannot hold out -1"):
        split_by_speaker(utts, -1)


def test_a_prepare_that_would_write_the_same_manifests_leaves_them_and_their_times_as_they_were(good_dir, tmp_path):
    from asr.corpora import write_splits

    report = import_kaldi_dir(good_dir)
    out = tmp_path / "manifests"
    out.mkdir()
    write_splits(out, {"train": report})
    os.utime(out / "train.jsonl", (1_000_000_000, 1_000_000_000))
    write_splits(out, {"train": import_kaldi_dir(good_dir)})
    assert (out / "train.jsonl").stat().st_mtime == 1_000_000_000
    write_splits(out, {"train": type(report)(report.utterances[:1])})  # other contents: written anew
    assert (out / "train.jsonl").stat().st_mtime > 1_000_000_000 and len(read_manifest(out / "train.jsonl")) == 1


def test_kaldi_non_speech_tags_are_left_out_of_the_transcripts_and_said_once(good_dir):
    (good_dir / "text").write_text("u1 [noise] HELLO <unk> WORLD [laughter]\nu2 [noise]\n")
    report = import_kaldi_dir(good_dir)
    assert [(u.id, u.text) for u in report.utterances] == [("u1", "HELLO WORLD")]
    assert report.skipped[0][0] == "u2" and "empty transcript" in report.skipped[0][1]  # nothing said in it
    assert report.notes == [f"{good_dir / 'text'}: left out 4 non-speech tag(s) of Kaldi's transcripts "
                            "([noise], <unk>, [laughter]): no one says them"]


def test_brackets_inside_a_word_or_around_several_words_are_kept_as_text(good_dir):
    (good_dir / "text").write_text("u1 HELLO [THE WORLD]\nu2 a<b c[d]\n")
    report = import_kaldi_dir(good_dir)
    assert sorted(u.text for u in report.utterances) == ["HELLO [THE WORLD]", "a<b c[d]"] and report.notes == []


def test_a_prepare_without_a_valid_set_removes_the_valid_manifest_an_earlier_one_held_out_of_train(tmp_path,
                                                                                                    capsys):
    src = make_release(tmp_path / "src")
    prepare_speechocean762(src, tmp_path / "out", valid_speakers=1)
    capsys.readouterr()
    prepare_speechocean762(src, tmp_path / "out")  # its speakers are now in train
    assert not (tmp_path / "out" / "valid.jsonl").exists()
    assert (f"{tmp_path / 'out' / 'valid.jsonl'}: removed: an earlier prepare's valid split, whose audio this one "
            "puts in train\n") in capsys.readouterr().err  # in train alone, not in test


def test_a_valid_manifest_of_other_audio_made_beside_a_prepare_is_kept_when_it_runs_again(tmp_path):
    # `asr prepare kaldi DEV OUT/valid.jsonl` beside `asr prepare ... OUT` with no valid split of its own
    src = make_release(tmp_path / "src")
    prepare_speechocean762(src, tmp_path / "out")
    mine = tmp_path / "out" / "valid.jsonl"
    mine.write_text(json.dumps({"audio_filepath": str(tmp_path / "elsewhere.wav"), "duration": 1.0,
                                "text": "hello"}) + "\n")
    prepare_speechocean762(src, tmp_path / "out")
    assert mine.is_file()
