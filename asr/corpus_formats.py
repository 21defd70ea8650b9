"""Importers for the standard corpus layouts -> JSON-lines manifests.

- LibriSpeech / Mini LibriSpeech: ``SUBSET/SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt`` + FLAC.
- AN4 (CMU): ``an4/etc/an4_{train,test}.transcription`` (``<s> WORDS </s> (an251-fash-b)``),
  NIST SPHERE audio in ``an4/wav/an4{,test}_clstk/SPEAKER/``.
- Common Voice (any language): ``LANG/{train,dev,test,validated}.tsv`` + MP3 in ``LANG/clips``.
- Your own data: a folder of audio files with same-name ``.txt`` transcripts, or a CSV/TSV
  table of ``path,text[,speaker]`` (read by :mod:`asr.own_data`).

Each importer lists candidate entries; :func:`asr.corpora.check_entries` keeps the usable ones
and reports every other one with its reason. Transcripts are stored as written (markup such as
AN4's ``<s>`` removed); normalization happens at training time, so any alphabet works.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from asr.corpora import (CorpusError, Entry, ImportReport, bad_byte, check_entries, manifest_audio, not_utf8,
                         read_text, readable, real_audio, split_by_list, split_by_speaker, split_random, write_splits)
from asr.own_data import import_own_data
from asr.user_warnings import warn

# --- LibriSpeech ----------------------------------------------------------------------------

# train-clean-100 ... test-other, and Mini LibriSpeech's train-clean-5 and dev-clean-2
_SUBSET_NAME = re.compile(r"^(train|dev|test)-[a-z]+(-\d+)?$")


def _librispeech_root(src: Path) -> Path:
    """The folder holding the subsets: SRC itself or SRC/LibriSpeech (as the archives unpack)."""
    return src / "LibriSpeech" if (src / "LibriSpeech").is_dir() else src


def find_librispeech_subsets(src: str | Path) -> list[str]:
    root = _librispeech_root(Path(src))
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _SUBSET_NAME.match(p.name))


def librispeech_entries(src: str | Path, subset: str, report: ImportReport) -> list[Entry]:
    root = _librispeech_root(Path(src))
    folder = root / subset
    if not folder.is_dir():
        raise CorpusError(f"{folder}: no such LibriSpeech subset (get it with: asr download librispeech "
                          f"--subsets {subset})")
    transcripts = sorted(folder.glob("*/*/*.trans.txt"))
    if not transcripts:
        raise CorpusError(f"{folder}: no SPEAKER/CHAPTER/*.trans.txt files; not a LibriSpeech subset, "
                          "or an incomplete extraction")
    entries, listed = [], set()
    for trans in transcripts:
        speaker = trans.parent.parent.name
        for lineno, line in enumerate(read_text(trans, lenient=True).splitlines(), 1):
            if not line.strip():
                continue
            utt_id, _, text = line.strip().partition(" ")
            audio = trans.parent / f"{utt_id}.flac"
            listed.add(audio)
            if (byte := bad_byte(line)) is not None:
                report.skip(readable(utt_id), not_utf8(trans, lineno, byte))
                continue
            if not text.strip():  # not a transcript that normalizes to nothing: a line that lost its words
                report.skip(utt_id, f"{trans}:{lineno}: malformed line: an utterance id with no words after it")
                continue
            entries.append(Entry(utt_id, audio, text, speaker, f"{trans.name}:{lineno}"))
    for flac in sorted(folder.glob("*/*/*.flac")):
        if flac not in listed:
            report.skip(flac.stem, f"{flac}: audio without a line in its chapter's .trans.txt")
    return entries


def prepare_librispeech(src: str | Path, out: str | Path, train: list[str] | None = None,
                        eval_sets: list[str] | None = None, valid_speakers: int = 0,
                        seed: int = 0) -> dict[str, ImportReport]:
    """``OUT/train.jsonl`` from the union of the ``train`` subsets, ``OUT/<subset>.jsonl`` for
    each of ``eval_sets`` (default: every ``train-*`` / other subset found under SRC), and with
    ``valid_speakers`` > 0 ``OUT/valid.jsonl``: that many train speakers held out.

    ``train=[]`` (``--train`` with no subset): the ``eval_sets`` alone, train.jsonl and valid.jsonl
    left as they are, so that a recipe can prepare a set it only scores without rewriting, and so
    retraining on, the training manifests."""
    src, out = Path(src), Path(out)
    found = find_librispeech_subsets(src)
    eval_only = train == []
    if train is None:
        train = [s for s in found if s.startswith("train-")]
    if eval_sets is None:  # scored on what it trained on, a subset would say nothing
        eval_sets = [s for s in found if not s.startswith("train-") and s not in train]
    if eval_only and valid_speakers:
        raise CorpusError("--valid-speakers holds out train speakers: give --train subsets with it")
    if eval_only and not eval_sets:
        raise CorpusError(f"{src}: nothing to prepare: no --train subset and no --eval subset")
    if not train and not eval_only:
        raise CorpusError(f"{src}: no LibriSpeech train-* subset found (get one with: asr download librispeech)")
    if both := sorted(set(train) & set(eval_sets)):
        raise CorpusError(f"{', '.join(both)}: named both to train on and to evaluate on; give each subset once")
    reports: dict[str, ImportReport] = {}
    if not eval_only:
        report = ImportReport()
        entries = [e for subset in train for e in librispeech_entries(src, subset, report)]
        reports["train"] = check_entries(entries, report)
    for subset in eval_sets:
        report = ImportReport()
        reports[subset] = check_entries(librispeech_entries(src, subset, report), report)
    if eval_only:  # the training manifests there are not rewritten: none may hold what is scored now
        training = {name: manifest_audio(out / f"{name}.jsonl") for name in ("train", "valid")}
        for subset in eval_sets:
            audio = real_audio(reports[subset].utterances)
            if held := [name for name, theirs in training.items() if not theirs.isdisjoint(audio)]:
                raise CorpusError(f"{out / held[0]}.jsonl holds audio of {subset}: a subset trained on is not "
                                  "scored as unseen (prepare it into another folder)")
    else:
        reports.update(_split_train_valid(reports["train"], valid_speakers=valid_speakers, seed=seed))
    # a subset trained on now may have been scored before: its old manifest would score training data
    write_splits(out, reports, optional=() if eval_only else ("valid", *train))
    return reports


def _split_train_valid(report: ImportReport, valid_speakers: int = 0, valid_list=None,
                       valid_fraction: float = 0.0, seed: int = 0) -> dict[str, ImportReport]:
    """The train split and, if asked for, a valid split held out of it -> their reports."""
    chosen = [bool(valid_speakers), valid_list is not None, bool(valid_fraction)]
    if sum(chosen) > 1:
        raise CorpusError("choose one way to make the valid set: speakers, a list, or a fraction")
    utts = report.utterances
    if valid_speakers:
        if not any(u.speaker for u in utts):
            raise CorpusError("the data have no speaker labels: give a valid list or a fraction instead")
        utts, valid = split_by_speaker(utts, valid_speakers, seed)
    elif valid_list is not None:
        path = Path(valid_list)
        if not path.is_file():
            raise CorpusError(f"{path}: valid list not found")
        utts, valid = split_by_list(utts, read_text(path).splitlines(), str(path),
                                    skipped=[utt_id for utt_id, _ in report.skipped])
    elif valid_fraction:
        utts, valid = split_random(utts, valid_fraction, seed)
    else:
        valid = None
    splits = {"train": ImportReport(utts, report.skipped, report.notes)}
    if valid is not None:
        splits["valid"] = ImportReport(valid)
    return splits


# --- AN4 ------------------------------------------------------------------------------------

_AN4_LINE = re.compile(r"^(?P<words>.*?)\s*\((?P<source>[^()\s]+)\)\s*$")
_AN4_WAV_DIRS = {"train": "an4_clstk", "test": "an4test_clstk"}


def _an4_root(src: Path) -> Path:
    return src / "an4" if (src / "an4" / "etc").is_dir() else src


def an4_entries(src: str | Path, split: str, report: ImportReport) -> list[Entry]:
    """``etc/an4_SPLIT.transcription`` lines ``<s> WORDS </s> (an251-fash-b)``; the audio is
    ``wav/an4_clstk/fash/an251-fash-b.sph`` (the path in ``etc/an4_SPLIT.fileids`` when given)."""
    root = _an4_root(Path(src))
    trans = root / "etc" / f"an4_{split}.transcription"
    if not trans.is_file():
        raise CorpusError(f"{root}: not an AN4 release (no etc/{trans.name}); get it with: asr download an4")
    fileids = root / "etc" / f"an4_{split}.fileids"
    located = {}
    if fileids.is_file():
        for line in read_text(fileids).split():
            located[Path(line).name] = root / "wav" / f"{line}.sph"
    entries, seen_sources = [], set()
    for lineno, line in enumerate(read_text(trans, lenient=True).splitlines(), 1):
        if not line.strip():
            continue
        m = _AN4_LINE.match(line.strip())
        if (byte := bad_byte(line)) is not None:
            if m is not None:
                seen_sources.add(m["source"])  # said once, here, not again as "has no line"
            report.skip(readable(m["source"]) if m is not None else f"{trans.name}:{lineno}",
                        not_utf8(trans, lineno, byte))
            continue
        if m is None:
            report.skip(f"{trans.name}:{lineno}", f"not '<s> WORDS </s> (utterance-id)': {line.strip()!r}")
            continue
        source = m["source"]
        words = [w for w in m["words"].split() if w not in ("<s>", "</s>", "<sil>")]
        parts = source.split("-")
        speaker = parts[1] if len(parts) == 3 else None
        utt_id = f"{parts[1]}-{parts[0]}-{parts[2]}" if len(parts) == 3 else source  # speaker first
        audio = located.get(source, root / "wav" / _AN4_WAV_DIRS[split] / (speaker or "") / f"{source}.sph")
        seen_sources.add(source)
        entries.append(Entry(utt_id, audio, " ".join(words), speaker, f"{trans.name}:{lineno}"))
    for source in sorted(located.keys() - seen_sources):
        report.skip(source, f"listed in {fileids.name} but has no line in {trans.name}")
    return entries


def prepare_an4(src: str | Path, out: str | Path, valid_speakers: int = 4, seed: int = 0) -> dict[str, ImportReport]:
    """``OUT/train.jsonl``, ``OUT/valid.jsonl`` (``valid_speakers`` train speakers held out; AN4
    has no dev set) and ``OUT/test.jsonl``."""
    reports = {}
    for split in ("train", "test"):
        report = ImportReport()
        reports[split] = check_entries(an4_entries(src, split, report), report)
    reports.update(_split_train_valid(reports["train"], valid_speakers=valid_speakers, seed=seed))
    write_splits(out, reports, optional=("valid",))
    return reports


# --- Common Voice ---------------------------------------------------------------------------

def find_commonvoice_dir(src: str | Path, language: str | None = None) -> Path:
    """The language folder (holding ``clips/`` and the ``.tsv`` files) at or below SRC:
    ``SRC``, ``SRC/LANG`` or ``SRC/cv-corpus-*/LANG``."""
    src = Path(src)
    candidates = [src] + sorted(src.glob("*")) + sorted(src.glob("*/*"))
    found = [p for p in candidates if (p / "clips").is_dir() and any(p.glob("*.tsv"))]
    if language is not None:
        found = [p for p in found if p.name == language]
    if not found:
        what = f" for language {language!r}" if language else ""
        raise CorpusError(f"{src}: no Common Voice folder{what} (a folder with clips/ and .tsv files); "
                          "extract your archive with: asr download commonvoice --archive PATH")
    versions = {p: _release_version(p) for p in found}
    if len(found) > 1 and len({p.name for p in found}) == 1 and all(versions.values()) \
            and len(set(versions.values())) == len(found):
        # one language from several full releases: a newer archive unpacked beside the old one
        newest = max(found, key=versions.get)
        warn(src, f"{len(found)} Common Voice releases of {newest.name!r}: using the newest, {newest.parent.name} "
                  f"(not {', '.join(p.parent.name for p in found if p != newest)}); give its release folder "
                  "(SRC/cv-corpus-...) to use another")
        return newest
    if len(found) > 1:
        which = ("choose one with --language" if len({p.name for p in found}) > 1 else
                 "give the one to use as the source folder")
        raise CorpusError(f"{src}: several Common Voice folders ({', '.join(str(p) for p in found)}); {which}")
    return found[0]


def _release_version(lang_dir: Path) -> tuple[int, ...] | None:
    """(17, 0, 2024, 3, 15) for cv-corpus-17.0-2024-03-15/LANG, the folder a full release unpacks
    to; None for a delta release (only the clips added since the one before), a single-word
    segment or any other folder."""
    match = re.fullmatch(r"cv-corpus-(\d+)\.(\d+)-(\d{4})-(\d\d)-(\d\d)", lang_dir.parent.name)
    return tuple(map(int, match.groups())) if match else None


def commonvoice_entries(lang_dir: Path, name: str, report: ImportReport) -> list[Entry]:
    tsv = lang_dir / f"{name}.tsv"
    if not tsv.is_file():
        raise CorpusError(f"{tsv}: not found")
    entries = []
    with io.StringIO(read_text(tsv, lenient=True), newline="") as f:
        # Sentences may contain quotes; Common Voice's TSVs are not quoted.
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"path", "sentence"} - set(reader.fieldnames or ())
        if missing:
            raise CorpusError(f"{tsv}: no column(s) {', '.join(sorted(missing))} in its header")
        for row in reader:
            where = f"{tsv.name}:{reader.line_num}"  # the file's line (a blank one is no row)
            if (byte := bad_byte("".join(v for v in row.values() if isinstance(v, str)))) is not None:
                report.skip(where, not_utf8(tsv, reader.line_num, byte))
                continue
            if None in row or row.get("sentence") is None:
                report.skip(where, f"{where}: wrong number of tab-separated fields")
                continue
            if not row["path"]:
                report.skip(where, f"{where}: empty path")
                continue
            clip = lang_dir / "clips" / row["path"]
            if not clip.suffix and not clip.exists():  # early releases list clips without .mp3
                clip = clip.with_name(clip.name + ".mp3")
            entries.append(Entry(Path(row["path"]).stem, clip, row["sentence"], row.get("client_id") or None, where))
    return entries


def prepare_commonvoice(src: str | Path, out: str | Path, train_tsv: str = "train",
                        language: str | None = None) -> dict[str, ImportReport]:
    """``OUT/train.jsonl`` from ``train_tsv`` (``train``, or ``validated`` for all validated
    clips minus those of the dev/test sets and their speakers), ``OUT/dev.jsonl``, ``OUT/test.jsonl``."""
    lang_dir = find_commonvoice_dir(src, language)
    reports = {}
    for split in ("dev", "test"):
        report = ImportReport()
        reports[split] = check_entries(commonvoice_entries(lang_dir, split, report), report)
    report = ImportReport()
    entries = commonvoice_entries(lang_dir, train_tsv, report)
    if train_tsv != "train":
        # validated.tsv overlaps dev/test: keep their clips and speakers out of training.
        held = [u for name in ("dev", "test") for u in reports[name].utterances]
        clips = {u.id for u in held}
        speakers = {u.speaker for u in held if u.speaker}
        kept = [e for e in entries if e.id not in clips and e.speaker not in speakers]
        report.notes.append(f"left out {len(entries) - len(kept)} clip(s) of {train_tsv}.tsv that are in "
                            "dev/test or spoken by a dev/test speaker")
        entries = kept
    reports["train"] = check_entries(entries, report)
    write_splits(out, reports)
    return reports


# --- Your own data (read by asr.own_data) ---------------------------------------------------

def prepare_own_data(src: str | Path, out: str | Path, test: str | Path | None = None,
                     valid_speakers: int = 0, valid_list: str | Path | None = None,
                     valid_fraction: float = 0.0, seed: int = 0) -> dict[str, ImportReport]:
    """``OUT/train.jsonl``; ``OUT/valid.jsonl`` held out by speaker count, by a list of ids or
    speakers, or by a random fraction; ``OUT/test.jsonl`` from a second source ``test``."""
    reports = _split_train_valid(import_own_data(src), valid_speakers=valid_speakers, valid_list=valid_list,
                                 valid_fraction=valid_fraction, seed=seed)
    if test is not None:
        reports["test"] = import_own_data(test)
        # scoring on training audio would report a word error rate that means nothing
        trained = {u.audio_filepath for name in ("train", "valid") if name in reports
                   for u in reports[name].utterances}
        shared = [u.audio_filepath for u in reports["test"].utterances if u.audio_filepath in trained]
        if shared:
            raise CorpusError(f"{test}: the test set shares {len(shared)} audio file(s) with train/valid "
                              f"(e.g. {shared[0]}); give a test set held out of the training data")
    write_splits(out, reports, optional=("valid", "test"))
    return reports
