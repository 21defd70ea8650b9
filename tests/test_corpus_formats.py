"""Importers for LibriSpeech, AN4, Common Voice and your own data: tiny corpora in the exact
real layouts (FLAC, NIST SPHERE, MP3) -> manifests; every entry left out is reported with why."""

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.corpora import CorpusError
from asr.corpus_formats import (find_commonvoice_dir, prepare_an4, prepare_commonvoice,
                                prepare_librispeech, prepare_own_data)
from asr.data import read_manifest
from asr.text import CharTokenizer
from fake_corpora import (AN4_TEST_SPEAKERS, AN4_TRAIN_SPEAKERS, clips, make_an4, make_commonvoice,
                          make_librispeech, make_own_folder, make_own_table)


def reasons(report):
    return dict(report.skipped)


def ids(path):
    return [u.id for u in read_manifest(path)]


# --- LibriSpeech ----------------------------------------------------------------------------

@pytest.fixture
def libri(tmp_path):
    subsets = {"train-clean-100": 6, "train-clean-360": 4, "dev-clean": 3, "test-other": 2}
    made = make_librispeech(tmp_path / "corpus", subsets)
    return tmp_path / "corpus", made


def test_librispeech_train_manifest_is_the_union_of_the_train_subsets(libri, tmp_path):
    src, made = libri
    prepare_librispeech(src, tmp_path / "data", train=["train-clean-100", "train-clean-360"],
                        eval_sets=["dev-clean", "test-other"])
    assert sorted(ids(tmp_path / "data" / "train.jsonl")) == sorted(made["train-clean-100"] + made["train-clean-360"])
    assert ids(tmp_path / "data" / "dev-clean.jsonl") == made["dev-clean"]
    assert ids(tmp_path / "data" / "test-other.jsonl") == made["test-other"]


def test_librispeech_with_no_train_subset_writes_the_eval_subsets_alone_and_leaves_training_manifests(libri, tmp_path):
    # a recipe that scores another subset must not rewrite train.jsonl, whose time would retrain
    src, made = libri
    data = tmp_path / "data"
    prepare_librispeech(src, data, train=["train-clean-100"], eval_sets=["dev-clean"], valid_speakers=1)
    before = {name: ((data / name).read_text(), (data / name).stat().st_mtime_ns) for name in ("train.jsonl", "valid.jsonl")}
    reports = prepare_librispeech(src, data, train=[], eval_sets=["test-other"])
    assert set(reports) == {"test-other"} and ids(data / "test-other.jsonl") == made["test-other"]
    assert {name: ((data / name).read_text(), (data / name).stat().st_mtime_ns) for name in before} == before
    with pytest.raises(CorpusError, match="--valid-speakers holds out train speakers: give --train subsets with it"):
        prepare_librispeech(src, data, train=[], eval_sets=["test-other"], valid_speakers=1)
    with pytest.raises(CorpusError, match="nothing to prepare: no --train subset and no --eval subset"):
        prepare_librispeech(src, data, train=[], eval_sets=[])


def test_librispeech_eval_subsets_alone_refuse_a_subset_the_training_manifests_there_hold(libri, tmp_path):
    src, _ = libri
    data = tmp_path / "data"
    prepare_librispeech(src, data, train=["train-clean-100", "dev-clean"], eval_sets=[], valid_speakers=1)
    with pytest.raises(CorpusError, match=r"data/(train|valid)\.jsonl holds audio of dev-clean: a subset trained on "
                                          "is not scored as unseen"):
        prepare_librispeech(src, data, train=[], eval_sets=["test-other", "dev-clean"])
    assert not (data / "dev-clean.jsonl").exists() and not (data / "test-other.jsonl").exists()


def test_librispeech_manifest_rows_carry_the_transcript_speaker_duration_and_flac_path(libri, tmp_path):
    src, made = libri
    prepare_librispeech(src, tmp_path / "data", train=["train-clean-100"], eval_sets=[])
    utts = read_manifest(tmp_path / "data" / "train.jsonl")
    texts = [c[2] for c in clips(15)]
    for utt in utts:
        speaker, chapter, _ = utt.id.split("-")
        assert utt.speaker == speaker
        assert utt.audio_filepath.endswith(f"/{speaker}/{chapter}/{utt.id}.flac")
        assert utt.duration == pytest.approx(sf.info(utt.audio_filepath).duration, abs=1e-3)
        assert utt.text in texts


def test_librispeech_finds_the_subsets_present_when_none_are_named(libri, tmp_path):
    src, made = libri
    reports = prepare_librispeech(src / "LibriSpeech", tmp_path / "data")
    assert set(reports) == {"train", "dev-clean", "test-other"}
    assert len(reports["train"].utterances) == 10


def test_librispeech_valid_speakers_are_held_out_of_train(libri, tmp_path):
    src, _ = libri
    reports = prepare_librispeech(src, tmp_path / "data", train=["train-clean-100"], eval_sets=[],
                                  valid_speakers=1)
    train = read_manifest(tmp_path / "data" / "train.jsonl")
    valid = read_manifest(tmp_path / "data" / "valid.jsonl")
    assert len({u.speaker for u in valid}) == 1 and len(train) + len(valid) == 6
    assert (len(reports["train"].utterances), len(reports["valid"].utterances)) == (len(train), len(valid))
    assert not {u.speaker for u in train} & {u.speaker for u in valid}


def test_librispeech_reports_absent_and_unreadable_audio_and_audio_without_transcript(libri, tmp_path):
    src, made = libri
    subset = src / "LibriSpeech" / "train-clean-100"
    flacs = sorted(subset.glob("*/*/*.flac"))
    flacs[0].unlink()                                                   # listed, absent
    flacs[1].write_bytes(random.Random(0).randbytes(1000))              # listed, unreadable
    shutil.copy(flacs[2], flacs[2].with_name(flacs[2].stem[:-4] + "9999.flac"))  # not listed
    report = prepare_librispeech(src, tmp_path / "data", train=["train-clean-100"], eval_sets=[])["train"]
    found = reasons(report)
    assert "file not found" in found[flacs[0].stem] and str(flacs[0]) in found[flacs[0].stem]
    assert "not readable as audio" in found[flacs[1].stem]
    assert "without a line" in found[flacs[2].stem[:-4] + "9999"]
    assert len(report.utterances) == 4


def test_librispeech_calls_a_line_with_an_id_and_no_words_malformed_naming_its_file_and_line(libri, tmp_path):
    src, made = libri
    trans = sorted((src / "LibriSpeech" / "dev-clean").glob("*/*/*.trans.txt"))[0]
    lines = trans.read_text().splitlines()
    first = lines[0].split()[0]
    trans.write_text("\n".join(["", first + " "] + lines[1:]) + "\n")  # a blank line first, then the id alone
    report = prepare_librispeech(src, tmp_path / "data", train=["train-clean-100"], eval_sets=["dev-clean"])
    assert reasons(report["dev-clean"])[first] == \
        f"{trans}:2: malformed line: an utterance id with no words after it"
    assert len(report["dev-clean"].skipped) == 1  # its audio is not also "without a line"


def test_librispeech_missing_subset_is_an_error_that_says_how_to_get_it(libri, tmp_path):
    src, _ = libri
    with pytest.raises(CorpusError, match="asr download librispeech --subsets train-other-500"):
        prepare_librispeech(src, tmp_path / "data", train=["train-other-500"], eval_sets=[])


def test_mini_librispeech_has_the_same_layout(tmp_path):
    made = make_librispeech(tmp_path / "corpus", {"train-clean-5": 4, "dev-clean-2": 2})
    reports = prepare_librispeech(tmp_path / "corpus", tmp_path / "data")
    assert ids(tmp_path / "data" / "train.jsonl") == made["train-clean-5"]
    assert ids(tmp_path / "data" / "dev-clean-2.jsonl") == made["dev-clean-2"]
    assert all(not r.skipped for r in reports.values())


# --- AN4 ------------------------------------------------------------------------------------

def test_an4_reads_sphere_audio_and_strips_sentence_markers(tmp_path):
    make_an4(tmp_path, n_train=8, n_test=4)
    reports = prepare_an4(tmp_path, tmp_path / "data", valid_speakers=1)
    train = read_manifest(tmp_path / "data" / "train.jsonl") + read_manifest(tmp_path / "data" / "valid.jsonl")
    test = read_manifest(tmp_path / "data" / "test.jsonl")
    assert len(train) == 8 and len(test) == 4 and not reports["train"].skipped
    assert {u.speaker for u in train} == set(AN4_TRAIN_SPEAKERS)
    assert {u.speaker for u in test} == set(AN4_TEST_SPEAKERS)
    texts = {c[2] for c in clips(12)}
    for utt in train + test:
        assert "<s>" not in utt.text and "</s>" not in utt.text and utt.text in texts
        assert utt.audio_filepath.endswith(".sph") and sf.info(utt.audio_filepath).format == "NIST"
        assert utt.id.startswith(utt.speaker + "-")  # speaker-first ids, as Kaldi/ESPnet's an4
    assert len({u.speaker for u in read_manifest(tmp_path / "data" / "valid.jsonl")}) == 1


def test_an4_without_fileids_finds_audio_by_the_utterance_name(tmp_path):
    an4 = make_an4(tmp_path, n_train=4, n_test=2)
    for f in (an4 / "etc").glob("*.fileids"):
        f.unlink()
    reports = prepare_an4(an4, tmp_path / "data", valid_speakers=1)
    assert len(reports["train"].utterances) + len(reports["valid"].utterances) == 4 and not reports["train"].skipped


def test_an4_skips_a_non_utf8_transcription_line_once_under_its_utterance_name(tmp_path):
    an4 = make_an4(tmp_path, n_train=4, n_test=2)
    trans = an4 / "etc" / "an4_train.transcription"
    lines = trans.read_bytes().splitlines()
    trans.write_bytes(b"\n".join([lines[0].replace(b"<s> ", b"<s> CAF\xc9 "), *lines[1:]]) + b"\n")
    source = lines[0].decode().rsplit("(", 1)[1].rstrip(")")
    reports = prepare_an4(an4, tmp_path / "data", valid_speakers=1)
    assert reports["train"].skipped == [(source, f"{trans}:1: not UTF-8 text (byte 0xc9); convert it first, "
                                                 "e.g. iconv -f latin1 -t utf-8")]
    assert len(reports["train"].utterances) + len(reports["valid"].utterances) == 3


def test_an4_reports_malformed_lines_and_absent_audio(tmp_path):
    an4 = make_an4(tmp_path, n_train=6, n_test=2)
    trans = an4 / "etc" / "an4_train.transcription"
    lines = trans.read_text().splitlines()
    source = lines[0].rsplit("(", 1)[1].rstrip(")")
    next(an4.glob(f"wav/an4_clstk/*/{source}.sph")).unlink()
    trans.write_text("\n".join(lines + ["<s> NO ID AT ALL </s>"]) + "\n")
    report = prepare_an4(an4, tmp_path / "data", valid_speakers=1)["train"]
    found = reasons(report)
    speaker = source.split("-")[1]
    assert "file not found" in found[f"{speaker}-{source.split('-')[0]}-b"]
    assert "utterance-id" in found[f"an4_train.transcription:{len(lines) + 1}"]


def test_an4_without_its_transcription_file_is_an_error(tmp_path):
    (tmp_path / "an4" / "etc").mkdir(parents=True)
    with pytest.raises(CorpusError, match="not an AN4 release"):
        prepare_an4(tmp_path, tmp_path / "data")


# --- Common Voice ---------------------------------------------------------------------------

def test_commonvoice_reads_mp3_clips_and_the_official_splits(tmp_path):
    lang_dir = make_commonvoice(tmp_path / "cv", "en")
    reports = prepare_commonvoice(tmp_path / "cv", tmp_path / "data")
    for split, n in (("train", 6), ("dev", 3), ("test", 3)):
        utts = read_manifest(tmp_path / "data" / f"{split}.jsonl")
        assert len(utts) == n and not reports[split].skipped
        for utt in utts:
            assert utt.audio_filepath.startswith(str((lang_dir / "clips").resolve()))
            assert utt.audio_filepath.endswith(".mp3") and utt.id.startswith("common_voice_en_")
            assert utt.duration > 0.5 and len(utt.speaker) > 20  # client_id
            assert utt.text.endswith(".")  # stored as written; normalized at training time


def test_commonvoice_paths_named_without_their_mp3_suffix_find_their_clips(tmp_path):
    lang_dir = make_commonvoice(tmp_path / "cv", "en")
    for tsv in lang_dir.glob("*.tsv"):  # as early releases list them
        tsv.write_text(tsv.read_text(encoding="utf-8").replace(".mp3\t", "\t"), encoding="utf-8")
    reports = prepare_commonvoice(tmp_path / "cv", tmp_path / "data")
    utts = read_manifest(tmp_path / "data" / "train.jsonl")
    assert len(utts) == 6 and not reports["train"].skipped
    assert all(u.audio_filepath.endswith(".mp3") and Path(u.audio_filepath).is_file() for u in utts)


def test_commonvoice_keeps_any_alphabet_and_the_vocabulary_comes_from_the_data(tmp_path):
    russian = ["Привет, мир!", "Как дела?", "Ёлка стоит.", "Щука плывёт.", "Это «тест».", "Да.",
               "Нет.", "Хорошо.", "Спасибо.", "Пожалуйста.", "Жёлтый цвет.", "Юг и север."]
    make_commonvoice(tmp_path / "cv", "ru", texts=russian)
    prepare_commonvoice(tmp_path / "cv", tmp_path / "data", language="ru")
    train = read_manifest(tmp_path / "data" / "train.jsonl")
    tokenizer = CharTokenizer.build(u.text for u in train)
    assert {"п", "ё", "щ", "ы"} <= set(tokenizer.tokens)
    assert not set("abcdefghijklmnopqrstuvwxyz") & set(tokenizer.tokens)


def test_commonvoice_validated_excludes_dev_and_test_clips_and_their_speakers(tmp_path):
    lang_dir = make_commonvoice(tmp_path / "cv", "en")
    dev_speaker = (lang_dir / "dev.tsv").read_text().splitlines()[1].split("\t")[0]
    for clip, speaker in (("common_voice_en_2000.mp3", "99" + "cd" * 30), ("common_voice_en_2001.mp3", dev_speaker)):
        shutil.copy(lang_dir / "clips" / "common_voice_en_1000.mp3", lang_dir / "clips" / clip)
        with open(lang_dir / "validated.tsv", "a") as f:
            f.write("\t".join([speaker, clip, "Once more.", "2", "0", "", "", "", "en", ""]) + "\n")
    reports = prepare_commonvoice(lang_dir, tmp_path / "data", train_tsv="validated")
    expected = [f"common_voice_en_{1000 + k}" for k in range(6)] + ["common_voice_en_2000"]
    assert sorted(ids(tmp_path / "data" / "train.jsonl")) == expected
    assert any("left out 7 clip(s)" in note for note in reports["train"].notes)


def test_commonvoice_reports_absent_clips_empty_sentences_and_duplicates(tmp_path):
    lang_dir = make_commonvoice(tmp_path / "cv", "en")
    lines = (lang_dir / "train.tsv").read_text().splitlines()
    cells = [line.split("\t") for line in lines]
    (lang_dir / "clips" / cells[1][1]).unlink()                   # absent clip
    cells[2][2] = "  ...  "                                       # nothing left after normalization
    cells.append(cells[3])                                        # duplicate row
    (lang_dir / "train.tsv").write_text("\n".join("\t".join(c) for c in cells) + "\n")
    report = prepare_commonvoice(lang_dir, tmp_path / "data")["train"]
    found = reasons(report)
    assert "file not found" in found[cells[1][1][:-4]]
    assert "empty transcript" in found[cells[2][1][:-4]]
    assert "duplicate id" in found[cells[3][1][:-4]] and "train.tsv:8" in found[cells[3][1][:-4]]
    assert len(report.utterances) == 4


def test_commonvoice_with_several_languages_asks_which(tmp_path):
    make_commonvoice(tmp_path / "cv", "en", splits=(("train", 1), ("dev", 1), ("test", 1)))
    make_commonvoice(tmp_path / "cv", "de", splits=(("train", 1), ("dev", 1), ("test", 1)))
    with pytest.raises(CorpusError, match="--language"):
        find_commonvoice_dir(tmp_path / "cv")
    assert find_commonvoice_dir(tmp_path / "cv", "de").name == "de"


def test_a_commonvoice_delta_release_is_never_taken_for_the_newest_whole_one(tmp_path):
    old = make_commonvoice(tmp_path / "cv", "en", splits=(("train", 1), ("dev", 1), ("test", 1)))
    old.parent.rename(tmp_path / "cv" / "cv-corpus-16.1-2023-12-06")
    shutil.copytree(tmp_path / "cv" / "cv-corpus-16.1-2023-12-06", tmp_path / "cv" / "cv-corpus-17.0-delta-2024-03-15")
    with pytest.raises(CorpusError, match="several Common Voice folders"):
        find_commonvoice_dir(tmp_path / "cv", "en")


def test_commonvoice_with_two_releases_of_one_language_takes_the_newest_and_says_so(tmp_path, capsys):
    # a newer archive unpacked beside the old one (asr download commonvoice --archive, twice)
    old = make_commonvoice(tmp_path / "cv", "de", splits=(("train", 1), ("dev", 1), ("test", 1)))
    new = tmp_path / "cv" / "cv-corpus-18.0-2024-06-14" / "de"
    shutil.copytree(old, new)
    (old.parent).rename(tmp_path / "cv" / "cv-corpus-9.0-2022-04-27")  # 18 is newer than 9, not older
    assert find_commonvoice_dir(tmp_path / "cv", "de") == new == find_commonvoice_dir(tmp_path / "cv")
    assert ("2 Common Voice releases of 'de': using the newest, cv-corpus-18.0-2024-06-14 (not "
            "cv-corpus-9.0-2022-04-27)") in capsys.readouterr().err
    shutil.copytree(new, tmp_path / "cv" / "cv-corpus-19.0-delta-2024-09-13" / "de")  # new clips alone
    shutil.copytree(new, tmp_path / "cv" / "my copy" / "de")  # a folder that is no release: ambiguous still
    with pytest.raises(CorpusError, match="several Common Voice folders .*; give the one to use as the source"):
        find_commonvoice_dir(tmp_path / "cv", "de")


# --- Your own data --------------------------------------------------------------------------

def test_own_folder_pairs_audio_with_same_name_txt_and_takes_the_speaker_from_the_folder(tmp_path):
    make_own_folder(tmp_path / "mine", n=12, speakers=3)
    reports = prepare_own_data(tmp_path / "mine", tmp_path / "data", valid_speakers=1)
    train = read_manifest(tmp_path / "data" / "train.jsonl")
    valid = read_manifest(tmp_path / "data" / "valid.jsonl")
    assert len(train) == 8 and len(valid) == 4 and not reports["train"].skipped
    assert {u.speaker for u in train + valid} == {"spk0", "spk1", "spk2"}
    assert all(u.id == f"{u.speaker}/{u.id.split('/')[1]}" for u in train)


def test_a_clip_of_a_few_samples_gets_a_duration_its_manifest_can_be_read_with(tmp_path):
    make_own_folder(tmp_path / "mine", n=6, speakers=2)
    sf.write(str(tmp_path / "mine" / "spk0" / "blip.wav"), np.zeros(1, np.float32), 48000)  # 21 microseconds
    (tmp_path / "mine" / "spk0" / "blip.txt").write_text("blip\n")
    prepare_own_data(tmp_path / "mine", tmp_path / "data", valid_speakers=1)
    rows = read_manifest(tmp_path / "data" / "train.jsonl") + read_manifest(tmp_path / "data" / "valid.jsonl")
    assert [u.duration for u in rows if u.id.endswith("blip")] == [0.0001]


def test_own_folder_reports_audio_without_txt_and_txt_without_audio(tmp_path):
    root = make_own_folder(tmp_path / "mine", n=6, speakers=2)
    (root / "spk0" / "utt00.txt").unlink()
    (root / "spk1" / "utt01.wav").unlink()
    (root / "spk1" / "utt03.txt").write_text("  \n")
    report = prepare_own_data(root, tmp_path / "data")["train"]
    found = reasons(report)
    assert "no transcript utt00.txt" in found["spk0/utt00"]
    assert "without a same-name audio file" in found["spk1/utt01"]
    assert "empty transcript" in found["spk1/utt03"]
    assert len(report.utterances) == 3


def test_own_valid_set_from_a_list_of_ids_or_speakers(tmp_path):
    root = make_own_folder(tmp_path / "mine", n=6, speakers=2)
    (tmp_path / "valid.txt").write_text("spk1\nspk0/utt00\n")
    prepare_own_data(root, tmp_path / "data", valid_list=tmp_path / "valid.txt")
    assert sorted(ids(tmp_path / "data" / "valid.jsonl")) == ["spk0/utt00", "spk1/utt01", "spk1/utt03", "spk1/utt05"]
    assert sorted(ids(tmp_path / "data" / "train.jsonl")) == ["spk0/utt02", "spk0/utt04"]


def test_own_valid_list_that_matches_nothing_is_an_error(tmp_path):
    root = make_own_folder(tmp_path / "mine", n=4, speakers=2)
    (tmp_path / "valid.txt").write_text("nobody\n")
    with pytest.raises(CorpusError, match="none of its 1 name"):
        prepare_own_data(root, tmp_path / "data", valid_list=tmp_path / "valid.txt")


@pytest.mark.parametrize("delimiter, header", [(",", True), ("\t", False)])
def test_own_table_of_path_text_speaker(tmp_path, delimiter, header):
    table = make_own_table(tmp_path / "mine", n=6, delimiter=delimiter, header=header)
    other = make_own_table(tmp_path / "other", n=6, delimiter=delimiter, header=header)
    prepare_own_data(table, tmp_path / "data", valid_speakers=1, test=other)
    train = read_manifest(tmp_path / "data" / "train.jsonl")
    assert len(train) == 3 and {u.speaker for u in train} <= {"s0", "s1"}
    assert all(u.audio_filepath.endswith(".flac") and u.id.startswith("audio/a") for u in train)
    assert len(read_manifest(tmp_path / "data" / "test.jsonl")) == 6


def test_own_table_reports_short_rows_and_absent_audio(tmp_path):
    table = make_own_table(tmp_path / "mine", n=4)
    table.write_text(table.read_text() + "audio/none.flac,hello,s0\njust-one-field\n")
    report = prepare_own_data(table, tmp_path / "data")["train"]
    found = reasons(report)
    assert "file not found" in found["audio/none"]
    assert "expected path,text" in found["metadata.csv:7"]
    assert len(report.utterances) == 4


def test_own_data_without_speakers_cannot_be_split_by_speaker_but_by_fraction(tmp_path):
    table = make_own_table(tmp_path / "mine", n=6)
    rows = [line.rsplit(",", 1)[0] for line in table.read_text().splitlines()]
    table.write_text("\n".join(rows) + "\n")
    with pytest.raises(CorpusError, match="no speaker labels"):
        prepare_own_data(table, tmp_path / "data", valid_speakers=1)
    prepare_own_data(table, tmp_path / "data", valid_fraction=0.34)
    assert len(ids(tmp_path / "data" / "valid.jsonl")) == 2


def test_a_split_with_nothing_usable_is_an_error_naming_the_first_problem(tmp_path):
    root = make_own_folder(tmp_path / "mine", n=2, speakers=1)
    for wav in root.rglob("*.wav"):
        wav.write_bytes(b"not audio")
    with pytest.raises(CorpusError, match="train: no usable utterances, 2 skipped.*not readable as audio"):
        prepare_own_data(root, tmp_path / "data")


# --- a failed prepare ---------------------------------------------------------------------
# The recipes take OUT/train.jsonl for a finished prepare: whatever split fails, none is written.

def _break_librispeech(tmp_path):
    make_librispeech(tmp_path / "corpus", {"train-clean-5": 4, "dev-clean-2": 2})
    for flac in (tmp_path / "corpus" / "LibriSpeech" / "dev-clean-2").rglob("*.flac"):
        flac.write_bytes(b"not audio")
    return lambda: prepare_librispeech(tmp_path / "corpus", tmp_path / "data", valid_speakers=1)


def _break_an4(tmp_path):
    an4 = make_an4(tmp_path / "corpus", n_train=4, n_test=2)
    for sph in (an4 / "wav" / "an4test_clstk").rglob("*.sph"):
        sph.unlink()
    return lambda: prepare_an4(an4, tmp_path / "data", valid_speakers=1)


def _break_commonvoice(tmp_path):
    lang_dir = make_commonvoice(tmp_path / "cv", "en")
    (lang_dir / "test.tsv").write_text("\t".join(("client_id", "path", "sentence")) + "\n")
    return lambda: prepare_commonvoice(tmp_path / "cv", tmp_path / "data")


def _break_own_data_test_path(tmp_path):
    make_own_folder(tmp_path / "mine", n=6, speakers=2)
    return lambda: prepare_own_data(tmp_path / "mine", tmp_path / "data", test=tmp_path / "tset", valid_speakers=1)


@pytest.mark.parametrize("broken, words", [
    (_break_librispeech, "dev-clean-2: no usable utterances"), (_break_an4, "test: no usable utterances"),
    (_break_commonvoice, "test: no usable utterances"), (_break_own_data_test_path, "tset: not found"),
])
def test_a_prepare_whose_last_split_fails_writes_no_manifest_at_all(tmp_path, broken, words):
    prepare = broken(tmp_path)
    with pytest.raises(CorpusError, match=words):
        prepare()
    assert list(tmp_path.glob("data/*.jsonl")) == []


def test_the_train_manifest_is_written_last_after_every_other_split(tmp_path, monkeypatch):
    import asr.corpora
    make_librispeech(tmp_path / "corpus", {"train-clean-5": 4, "dev-clean-2": 2, "test-clean": 2})
    written = []
    monkeypatch.setattr(asr.corpora, "write_manifest", lambda path, utts: written.append(path.name))
    prepare_librispeech(tmp_path / "corpus", tmp_path / "data", valid_speakers=1)
    assert sorted(written[:-1]) == ["dev-clean-2.jsonl", "test-clean.jsonl", "valid.jsonl"]
    assert written[-1] == "train.jsonl"


# --- the asr prepare commands ---------------------------------------------------------------

def test_asr_prepare_prints_counts_and_every_skip(tmp_path, capsys):
    make_librispeech(tmp_path / "corpus", {"train-clean-5": 4, "dev-clean-2": 2})
    sorted((tmp_path / "corpus" / "LibriSpeech" / "train-clean-5").rglob("*.flac"))[0].unlink()
    code = main(["prepare", "librispeech", str(tmp_path / "corpus"), str(tmp_path / "data")])
    out, err = capsys.readouterr()
    assert code == 0
    assert "train: 3 utterances" in out and "1 skipped" in out and "dev-clean-2: 2 utterances" in out
    assert "skipped train" in err and "file not found" in err


@pytest.mark.parametrize("argv, words", [
    (["prepare", "an4", "{tmp}", "{tmp}/data"], "not an AN4 release"),
    (["prepare", "an4", "{tmp}/none", "{tmp}/data"], "none: not found; get it with: asr download an4"),
    (["prepare", "commonvoice", "{tmp}", "{tmp}/data"], "no Common Voice folder"),
    (["prepare", "librispeech", "{tmp}", "{tmp}/data"], "no LibriSpeech train-* subset"),
    (["prepare", "folder", "{tmp}/none", "{tmp}/data"], "not found"),
])
def test_asr_prepare_on_a_wrong_folder_exits_2_with_one_clear_line(tmp_path, capsys, argv, words):
    code = main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, words", [
    (["librispeech", "--train", "--eval", "dev-clean", "--seed", "3"], "--seed: nothing to split with --train alone"),
    (["librispeech", "--seed", "3"], "--seed: nothing is held out at random without --valid-speakers N"),
    (["an4", "--valid-speakers", "0", "--seed", "3"], "--seed: nothing is held out at random without --valid-speakers N"),
    (["folder", "--valid-list", "ids.txt", "--seed", "3"],
     "--seed: --valid-list names the held-out set, nothing is drawn at random"),
])
def test_asr_prepare_refuses_a_seed_that_draws_nothing_before_it_reads_the_corpus(tmp_path, capsys, argv, words):
    # a seed that changes nothing would let a user believe two runs differ; the corpus is not there:
    # the refusal comes first
    code = main(["prepare", argv[0], str(tmp_path / "none"), str(tmp_path / "data"), *argv[1:]])
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_asr_prepare_takes_a_seed_where_it_draws_the_held_out_set_and_eval_subsets_alone_without_one(tmp_path):
    make_librispeech(tmp_path / "corpus", {"train-clean-5": 4, "dev-clean-2": 2})
    corpus, data = str(tmp_path / "corpus"), str(tmp_path / "data")
    assert main(["prepare", "librispeech", corpus, data, "--valid-speakers", "1", "--seed", "3"]) == 0
    assert main(["prepare", "librispeech", corpus, data + "2", "--train", "--eval", "dev-clean-2"]) == 0
    make_own_folder(tmp_path / "mine", n=6, speakers=2)
    assert main(["prepare", "folder", str(tmp_path / "mine"), data + "3", "--valid-fraction", "0.5", "--seed", "3"]) == 0


def test_asr_prepare_folder_writes_manifests_readable_as_json(tmp_path, capsys):
    make_own_folder(tmp_path / "mine", n=6, speakers=2)
    assert main(["prepare", "folder", str(tmp_path / "mine"), str(tmp_path / "data"), "--valid-fraction", "0.5"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "data" / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and {"audio_filepath", "duration", "text", "speaker", "id"} <= set(rows[0])


# --- messy input to your own data ----------------------------------------------------------

def test_own_tsv_is_read_unquoted_so_a_text_starting_with_a_quote_keeps_the_rows_after_it(tmp_path):
    table = make_own_table(tmp_path / "mine", n=4, delimiter="\t", header=False)
    lines = table.read_text().splitlines()
    path, _, speaker = lines[0].split("\t")
    lines[0] = "\t".join([path, '"Stop, he said', speaker])
    table.write_text("\n".join(lines) + "\n")
    report = prepare_own_data(table, tmp_path / "data")["train"]
    assert len(report.utterances) == 4
    assert report.utterances[0].text == '"Stop, he said'


def test_own_csv_with_a_utf8_bom_keeps_its_header(tmp_path):
    table = make_own_table(tmp_path / "mine", n=4)
    rows = [line.split(",") for line in table.read_text().splitlines()[1:]]
    # Excel's "CSV UTF-8": a BOM, CRLF, and here the speaker column first
    table.write_text("\ufeffspeaker,text,path\r\n" + "".join(f"{r[2]},{r[1]},{r[0]}\r\n" for r in rows),
                     encoding="utf-8", newline="")
    report = prepare_own_data(table, tmp_path / "data")["train"]
    assert len(report.utterances) == 4 and {u.speaker for u in report.utterances} == {"s0", "s1"}


def test_own_folder_follows_symlinked_speaker_folders_and_survives_a_link_loop(tmp_path):
    root = make_own_folder(tmp_path / "mine", n=4, speakers=2)
    make_own_folder(tmp_path / "elsewhere", n=2, speakers=1)
    (root / "spk9").symlink_to(tmp_path / "elsewhere" / "spk0", target_is_directory=True)
    (root / "spk0" / "loop").symlink_to(root, target_is_directory=True)
    report = prepare_own_data(root, tmp_path / "data")["train"]
    assert sorted(u.id for u in report.utterances) == ["spk0/utt00", "spk0/utt02", "spk1/utt01", "spk1/utt03",
                                                       "spk9/utt00", "spk9/utt01"]
    assert any("symlink loop" in note for note in report.notes)


def test_own_folder_transcripts_lose_a_utf8_bom_and_utf16_is_read_by_its_bom(tmp_path):
    root = make_own_folder(tmp_path / "mine", n=2, speakers=1)
    (root / "spk0" / "utt00.txt").write_bytes(b"\xef\xbb\xbfhello bom")
    (root / "spk0" / "utt01.txt").write_text("caf\u00e9 unicode", encoding="utf-16")
    texts = {u.id: u.text for u in prepare_own_data(root, tmp_path / "data")["train"].utterances}
    assert texts == {"spk0/utt00": "hello bom", "spk0/utt01": "caf\u00e9 unicode"}


def test_own_folder_skips_a_transcript_that_is_not_text_naming_its_file_and_line_and_keeps_the_rest(tmp_path):
    root = make_own_folder(tmp_path / "mine", n=3, speakers=1)
    (root / "spk0" / "utt00.txt").write_bytes(b"hello\ncaf\xe9\n")
    (root / "spk0" / "utt01.txt").write_bytes("hello".encode("utf-16") + b"\x00")  # UTF-16 cut mid-character
    report = prepare_own_data(root, tmp_path / "data")["train"]
    found = reasons(report)
    assert found["spk0/utt00"].startswith(f"{root / 'spk0' / 'utt00.txt'}:2: not UTF-8 text (byte 0xe9)")
    assert found["spk0/utt01"].startswith(f"{root / 'spk0' / 'utt01.txt'}:1: not UTF-16 text")
    assert [u.id for u in report.utterances] == ["spk0/utt02"]


def test_own_folder_duplicate_names_the_audio_kept_and_refuses_a_name_with_a_line_break(tmp_path):
    root = make_own_folder(tmp_path / "mine", n=2, speakers=1)
    data, rate = sf.read(str(root / "spk0" / "utt00.wav"))
    sf.write(str(root / "spk0" / "utt00.flac"), data, rate)
    shutil.copy(root / "spk0" / "utt01.wav", root / "spk0" / "bad\nname.wav")
    (root / "spk0" / "bad\nname.txt").write_text("words here")
    report = prepare_own_data(root, tmp_path / "data")["train"]
    found = reasons(report)
    assert "utt00.wav" in found["spk0/utt00"] and "utt00.flac" in found["spk0/utt00"]
    assert "line break" in found[repr("spk0/bad\nname")]
    assert all("\n" not in u.id for u in report.utterances)


def test_own_valid_list_saved_by_notepad_holds_out_every_name(tmp_path):
    root = make_own_folder(tmp_path / "mine", n=6, speakers=3)
    (tmp_path / "valid.txt").write_bytes(b"\xef\xbb\xbfspk1\r\nspk2\r\n")
    prepare_own_data(root, tmp_path / "data", valid_list=tmp_path / "valid.txt")
    assert {u.speaker for u in read_manifest(tmp_path / "data" / "valid.jsonl")} == {"spk1", "spk2"}


def test_own_valid_list_with_a_name_matching_nothing_is_refused_naming_it(tmp_path):
    root = make_own_folder(tmp_path / "mine", n=4, speakers=2)
    (tmp_path / "valid.txt").write_text("spk1\nspk0/utt99\n")
    with pytest.raises(CorpusError, match="1 name.*match no utterance id or speaker.*spk0/utt99"):
        prepare_own_data(root, tmp_path / "data", valid_list=tmp_path / "valid.txt")
    assert not (tmp_path / "data" / "train.jsonl").exists()


def test_own_test_set_sharing_audio_with_train_is_refused(tmp_path):
    root = make_own_folder(tmp_path / "mine", n=4, speakers=2)
    with pytest.raises(CorpusError, match="shares 4 audio file"):
        prepare_own_data(root, tmp_path / "data", test=root)
    assert not (tmp_path / "data" / "train.jsonl").exists()


def test_negative_valid_speakers_is_refused_by_the_command_line(tmp_path, capsys):
    root = make_own_folder(tmp_path / "mine", n=4, speakers=2)
    with pytest.raises(SystemExit) as exit_:
        main(["prepare", "folder", str(root), str(tmp_path / "data"), "--valid-speakers", "-1"])
    assert exit_.value.code == 2 and "at least 0" in capsys.readouterr().err


def test_a_non_utf8_line_in_a_transcript_file_skips_that_utterance_naming_the_file_and_line(libri, tmp_path):
    src, _ = libri
    trans = sorted(src.glob("LibriSpeech/train-clean-100/*/*/*.trans.txt"))[0]
    lines = trans.read_bytes().splitlines()
    bad_id = lines[0].split()[0].decode()
    trans.write_bytes(b"\n".join([lines[0] + b" CAF\xc9", *lines[1:]]) + b"\n")
    reports = prepare_librispeech(src, tmp_path / "data")
    assert reasons(reports["train"])[bad_id] == (f"{trans}:1: not UTF-8 text (byte 0xc9); convert it first, "
                                                  "e.g. iconv -f latin1 -t utf-8")
    kept = {u.id for u in reports["train"].utterances}
    assert bad_id not in kept and {line.split()[0].decode() for line in lines[1:]} <= kept


@pytest.mark.parametrize("gap", [b"", b"\n"], ids=["next", "after_a_blank_line"])
def test_a_non_utf8_line_in_a_commonvoice_tsv_skips_that_row_alone(tmp_path, gap):
    lang = make_commonvoice(tmp_path / "cv")
    tsv = lang / "train.tsv"
    rows = tsv.read_bytes().count(b"\n")
    tsv.write_bytes(tsv.read_bytes() + gap + b"x\tcaf\xe9.mp3\tcaf\xe9 noir\n")
    report = prepare_commonvoice(tmp_path / "cv", tmp_path / "data")["train"]
    line = rows + 1 + len(gap)  # a blank line counts: the row is told by its content, not its number
    assert list(reasons(report)) == [f"train.tsv:{line}"]
    assert reasons(report)[f"train.tsv:{line}"].startswith(f"{tsv}:{line}: not UTF-8 text (byte 0xe9)")
    assert all("\ufffd" not in u.text for u in report.utterances) and len(report.utterances) == rows - 1


def test_own_table_row_with_an_empty_path_is_skipped_naming_its_line(tmp_path):
    table = make_own_table(tmp_path / "mine", n=4)
    table.write_text(table.read_text() + ",a transcript without its file,s0\n")
    report = prepare_own_data(table, tmp_path / "data")["train"]
    assert "empty audio path" in reasons(report)["metadata.csv:6"]
    assert len(report.utterances) == 4


def test_own_table_saved_as_utf16_is_read_by_its_bom(tmp_path):
    table = make_own_table(tmp_path / "mine", n=4, delimiter="\t")
    # as Excel saves "Unicode Text": UTF-16 with a BOM, CRLF
    table.write_bytes(table.read_text(encoding="utf-8").replace("\n", "\r\n").encode("utf-16"))
    report = prepare_own_data(table, tmp_path / "data")["train"]
    assert len(report.utterances) == 4 and report.skipped == []


def test_a_non_utf8_row_in_an_own_table_is_skipped_naming_its_file_and_line(tmp_path):
    table = make_own_table(tmp_path / "mine", n=4)
    table.write_bytes(table.read_bytes() + b"audio/a00.flac,caf\xe9,s0\n")
    report = prepare_own_data(table, tmp_path / "data")["train"]
    assert reasons(report)["metadata.csv:6"].startswith(f"{table}:6: not UTF-8 text (byte 0xe9)")
    assert len(report.utterances) == 4


def test_a_non_utf8_row_after_a_quoted_line_break_is_the_row_skipped_never_imported_damaged(tmp_path):
    table = make_own_table(tmp_path / "mine", n=5)
    kept = table.read_bytes().splitlines(keepends=True)[:4]  # the header and a00-a02: lines 1-4
    table.write_bytes(b"".join(kept) + b'audio/a03.flac,"hello\nthere",s0\naudio/a04.flac,caf\xe9 noir,s1\n')
    report = prepare_own_data(table, tmp_path / "data")["train"]
    assert list(reasons(report)) == ["metadata.csv:7"]  # its own line, after the two of the quoted row
    assert all("\ufffd" not in u.text and "caf" not in u.text for u in report.utterances)
    assert len(report.utterances) == 4


def test_a_stray_quote_in_an_own_csv_refuses_the_table_naming_the_line_it_opens_on(tmp_path):
    table = make_own_table(tmp_path / "mine", n=5)
    lines = table.read_text().splitlines()  # the header, then a00-a04 on lines 2-6
    lines[2] = lines[2].replace(",", ',"', 1)  # a01's transcript opens a quote that a later row's text closes
    lines[4] = lines[4].replace(",", ',say "hi', 1)
    table.write_text("\n".join(lines) + "\n")
    # imported, a01's transcript would hold the rows of a02 and a03, and they would be lost
    with pytest.raises(CorpusError, match=r'metadata\.csv:3: a quoted field runs on to line 5, taking in the '
                                          r'rows between \(an unmatched "\?\)'):
        prepare_own_data(table, tmp_path / "data")


def test_own_folder_pairs_upper_case_wav_and_txt_names(tmp_path):
    # Windows recorders and speechocean762 itself write A.WAV; their transcripts are A.TXT
    root = make_own_folder(tmp_path / "mine", n=4, speakers=1)
    for path in sorted(root.rglob("*.*")):
        path.rename(path.with_name(path.stem.upper() + path.suffix.upper()))
    report = prepare_own_data(root, tmp_path / "data")["train"]
    assert len(report.utterances) == 4 and report.skipped == []


def test_own_folder_with_a_txt_and_a_TXT_beside_one_audio_uses_the_txt_and_names_the_other_a_second_transcript(
        tmp_path):
    root = make_own_folder(tmp_path / "mine", n=4, speakers=1)
    (root / "spk0" / "utt00.TXT").write_text("another transcript\n")
    report = prepare_own_data(root, tmp_path / "data")["train"]
    assert reasons(report) == {"spk0/utt00": f"{root / 'spk0' / 'utt00.TXT'}: a second transcript for utt00.wav "
                                             "(utt00.txt is used)"}
    assert len(report.utterances) == 4
    assert "another" not in (tmp_path / "data" / "train.jsonl").read_text()


def test_own_data_prepared_again_without_held_out_speakers_removes_the_valid_manifest_that_held_them(tmp_path):
    table = make_own_table(tmp_path / "mine", n=6)
    other = make_own_table(tmp_path / "other", n=4)
    prepare_own_data(table, tmp_path / "data", valid_speakers=1, test=other)
    prepare_own_data(table, tmp_path / "data", test=other)  # the valid speakers are in train now
    assert not (tmp_path / "data" / "valid.jsonl").exists()
    prepare_own_data(table, tmp_path / "data")  # the test set's audio is in no split: not this prepare's
    assert (tmp_path / "data" / "test.jsonl").exists()


def test_a_deepspeech_csv_header_is_read_as_a_header_not_the_file_size_as_the_transcript(tmp_path):
    table = make_own_table(tmp_path / "mine", n=3, header=False)
    rows = [line.split(",") for line in table.read_text().splitlines()]
    table.write_text("wav_filename,wav_filesize,transcript\n"
                     + "".join(f"{path},12345,{text}\n" for path, text, _ in rows))
    report = prepare_own_data(table, tmp_path / "data")["train"]
    assert [u.text for u in report.utterances] == [text for _, text, _ in rows]
    assert report.skipped == []


def test_a_table_header_naming_a_text_column_but_no_audio_column_is_refused_naming_the_accepted_names(tmp_path):
    table = make_own_table(tmp_path / "mine", n=3)
    table.write_text(table.read_text().replace("path,text,speaker", "clip,text,speaker", 1))
    with pytest.raises(CorpusError, match=r"metadata\.csv: .*no audio path column.*audio_filepath"):
        prepare_own_data(table, tmp_path / "data")


def test_librispeech_never_writes_an_eval_manifest_of_a_subset_it_trains_on(libri, tmp_path):
    src, made = libri
    reports = prepare_librispeech(src, tmp_path / "data", train=["train-clean-100", "dev-clean"])
    assert set(reports) == {"train", "test-other"}
    assert not (tmp_path / "data" / "dev-clean.jsonl").exists()
    with pytest.raises(CorpusError, match="dev-clean.*both"):
        prepare_librispeech(src, tmp_path / "data2", train=["train-clean-100", "dev-clean"], eval_sets=["dev-clean"])


def test_a_headerless_table_whose_first_transcript_is_a_column_name_imports_it_as_a_transcript(tmp_path):
    table = make_own_table(tmp_path / "mine", n=3, header=False)
    rows = table.read_text().splitlines()
    table.write_text("\n".join([rows[0].split(",")[0] + ",text"] + rows[1:]) + "\n")
    report = prepare_own_data(table, tmp_path / "data")["train"]
    assert report.utterances[0].text == "text" and len(report.utterances) == 3
