"""Corpus importers: Kaldi data directories and speechocean762 -> JSON-lines manifests.

Every entry is checked (audio present and readable, transcript non-empty, id unique) and
anything left out is reported with its reason; nothing is dropped silently.
"""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from asr.audio import AudioError, AudioInfo, audio_info
from asr.data import Utterance, read_manifest, write_manifest
from asr.text import normalize_text
from asr.user_warnings import gathered_warnings, report_cut, warn


class CorpusError(ValueError):
    pass


@dataclass
class ImportReport:
    utterances: list[Utterance] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (utterance id, reason)

    notes: list[str] = field(default_factory=list)  # remarks on the whole set, e.g. policy exclusions

    def skip(self, utt_id: str, reason: str) -> None:
        self.skipped.append((utt_id, reason))


@dataclass(frozen=True)
class Entry:
    """One candidate utterance as a corpus lists it, before its audio and text are checked."""
    id: str
    audio: Path
    text: str
    speaker: str | None = None
    origin: str | None = None  # where it was listed ("train.tsv:17"), for messages


def _probe(path: Path) -> AudioInfo | str:
    try:
        info = audio_info(path)
    except AudioError as e:
        return f"{e.path}: {e.problem}"
    if info.frames == 0:
        return f"{path}: audio is empty (0 samples)"
    return info


def check_entries(entries: Iterable[Entry], report: ImportReport | None = None,
                  workers: int | None = None) -> ImportReport:
    """Keep the entries whose id is new, transcript non-empty and audio readable; report the rest.

    The first entry with an id wins; later ones are skipped as duplicates. Audio headers are
    read in a thread pool (libsndfile releases the GIL), which matters for 100k+ files. Files
    cut short are kept at the length they have, named a few at a time and counted once the
    probing is done (``asr.user_warnings.report_cut``), not a line each.
    """
    report = report if report is not None else ImportReport()
    seen = {u.id: "" for u in report.utterances}
    todo = []
    for e in entries:
        where = f" ({e.origin})" if e.origin else ""
        if e.id in seen:
            report.skip(e.id, f"duplicate id{where}; first listed {seen[e.id] or 'earlier'}")
            continue
        seen[e.id] = e.origin or ""
        if not normalize_text(e.text):
            report.skip(e.id, f"empty transcript{where}" + (f": {e.text.strip()!r}" if e.text.strip() else ""))
            continue
        todo.append(e)
    workers = workers or min(8, (os.cpu_count() or 1) * 2)
    # the pool's threads warn of files cut short into one list (it is global): a few named, and a total
    with gathered_warnings() as cut, ThreadPoolExecutor(max_workers=workers) as pool:
        for e, info in zip(todo, pool.map(_probe, [Path(e.audio) for e in todo])):
            if isinstance(info, str):
                report.skip(e.id, info)
                continue
            # at least 0.1 ms: a file of a few samples is not rounded to the 0 s a manifest refuses
            report.utterances.append(Utterance(str(Path(e.audio).resolve()), max(round(info.duration, 4), 1e-4),
                                               " ".join(e.text.split()), e.speaker, e.id))
    report_cut(sorted(cut))  # the threads finish in any order
    return report


def check_split(name: str, report: ImportReport) -> None:
    """A split with nothing usable is an error, not an empty file."""
    if not report.utterances:
        # a few reasons, not the first alone: a corpus broken two ways is fixed in one go
        shown = "; ".join(f"{utt_id}: {why}" for utt_id, why in report.skipped[:3])
        more = f"; {len(report.skipped) - 3} more" if len(report.skipped) > 3 else ""
        raise CorpusError(f"{name}: no usable utterances, {len(report.skipped)} skipped"
                          + (f" ({shown}{more})" if shown else ""))


def write_splits(out: str | Path, reports: dict[str, ImportReport], optional: Iterable[str] = ()) -> None:
    """``OUT/NAME.jsonl`` for every split, all checked before any is written, ``train.jsonl`` last;
    none when every one would be written as it is. An ``optional`` split (``valid``, ``test``) this
    run does not make is removed, saying so at once, when it holds audio this run's splits hold (an
    earlier run's held-out speakers, now in train, would be scored as unseen); one of other audio
    (made by hand, or by ``asr prepare kaldi``) is no prepare's to remove.

    The recipes take ``train.jsonl`` for a finished prepare: a failed or killed one must leave
    none, so an earlier one goes before the other splits are rewritten (each appears whole)."""
    for name, report in reports.items():
        check_split(name, report)
    out = Path(out)
    ours = None
    for name in sorted(set(optional) - reports.keys()):
        stale = out / f"{name}.jsonl"
        if stale.is_file():
            ours = ours or {split: real_audio(r.utterances) for split, r in reports.items()}
            theirs = manifest_audio(stale)
            if where := [split for split, audio in sorted(ours.items()) if not theirs.isdisjoint(audio)]:
                stale.unlink()
                warn(stale, f"removed: an earlier prepare's {name} split, whose audio this one puts in "
                            f"{' and '.join(where)}")
    if all(_unchanged(out / f"{name}.jsonl", report.utterances) for name, report in reports.items()):
        return  # the same manifests again keep their times: a recipe's later stages need not run again
    if "train" in reports:
        (out / "train.jsonl").unlink(missing_ok=True)
    for name in sorted(reports, key=lambda name: name == "train"):  # a stable sort: train moves last
        write_manifest(out / f"{name}.jsonl", reports[name].utterances)


def real_audio(utterances: Iterable[Utterance]) -> set[str]:
    """The real paths of the utterances' audio files (links resolved)."""
    return {os.path.realpath(u.audio_filepath) for u in utterances}


def manifest_audio(manifest: Path) -> set[str]:
    """``real_audio`` of a manifest's utterances; an unreadable one: none."""
    try:
        return real_audio(read_manifest(manifest))
    except (OSError, ValueError):  # ManifestError is a ValueError
        return set()


def _unchanged(path: Path, utterances: list[Utterance]) -> bool:
    try:
        return path.read_text(encoding="utf-8") == "".join(u.to_json() + "\n" for u in utterances)
    except (OSError, UnicodeDecodeError):
        return False


def read_text(path: Path, lenient: bool = False) -> str:
    """A corpus text file: UTF-8 (a BOM dropped), or UTF-16 by its BOM (Notepad's "Unicode"). A byte
    that is not text in it is a one-line error naming the file and line; ``lenient``, it reads as a
    lone surrogate (Python's surrogateescape, which no text holds), so that a table of transcripts
    loses the lines that hold one (the caller skips them: ``bad_byte``, ``not_utf8``) and not the
    whole corpus. Lines are told by their content, not their number: a quoted line break or a
    blank line counts differently in each reader."""
    data = path.read_bytes()
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].decode(encoding, errors="replace").count("\n") + 1
        if encoding == "utf-16":
            raise CorpusError(f"{path}:{line}: not UTF-16 text, though it starts with UTF-16's BOM "
                              f"({e.reason})") from None
        if not lenient:
            raise CorpusError(not_utf8(path, line, data[e.start])) from None
    return data.decode(encoding, errors="surrogateescape")


_ESCAPED = re.compile("[\udc80-\udcff]")


def bad_byte(text: str) -> int | None:
    """The first byte of ``text`` (from a lenient ``read_text``) that was not UTF-8, else None."""
    found = _ESCAPED.search(text)
    return ord(found[0]) - 0xdc00 if found else None


def readable(text: str) -> str:
    """``text`` of a lenient ``read_text`` with its bad bytes as U+FFFD: printable (an id in a message)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def not_utf8(path: Path, line: int, byte: int) -> str:
    return f"{path}:{line}: not UTF-8 text (byte {byte:#04x}); convert it first, e.g. iconv -f latin1 -t utf-8"


def read_kaldi_table(path: Path, required: bool = True) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """``id value...`` lines -> {id: value}; duplicates and malformed lines are returned apart."""
    if not path.is_file():
        if required:
            raise CorpusError(f"{path}: missing (a Kaldi data dir needs wav.scp and text)")
        return {}, []
    table, problems = {}, []
    for lineno, line in enumerate(read_text(path, lenient=True).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        key = parts[0]
        if (byte := bad_byte(line)) is not None:  # its id still told apart: skipped, not paired with the rest
            problems.append((readable(key), not_utf8(path, lineno, byte)))
            continue
        if key in table:
            problems.append((key, f"duplicate id in {path.name} (line {lineno})"))
            continue
        table[key] = parts[1].strip() if len(parts) > 1 else ""
    return table, problems


# Kaldi transcripts mark noises and unknown words as words of their own ([noise], <unk>,
# [laughter]); scoring filters them out, as ESPnet's non_linguistic_symbols do. Left in, the
# normalizer would make them the words "noise" and "unk", for the model to learn to say.
_TAG = re.compile(r"\[[^\[\]\s]*\]|<[^<>\s]*>")


def import_kaldi_dir(data_dir: str | Path, root: str | Path | None = None) -> ImportReport:
    """Read ``wav.scp``, ``text`` and (if present) ``utt2spk``. Relative audio paths in
    wav.scp are resolved against ``root`` (default: the data dir's parent)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise CorpusError(f"{data_dir}: not a directory")
    if (data_dir / "segments").exists():
        # the manifest has no start/end offsets: importing whole recordings would pair them with wrong text
        raise CorpusError(f"{data_dir / 'segments'}: segments files are not supported: cut the recordings into "
                          "one file per utterance first (e.g. Kaldi's extract-segments) and list those in wav.scp")
    root = Path(root) if root is not None else data_dir.parent
    wavs, wav_problems = read_kaldi_table(data_dir / "wav.scp")
    texts, text_problems = read_kaldi_table(data_dir / "text")
    speakers, speaker_problems = read_kaldi_table(data_dir / "utt2spk", required=False)
    report = ImportReport()
    problems = wav_problems + text_problems + speaker_problems
    for utt_id, reason in problems:
        report.skip(utt_id, reason)
    # an id given twice in one table names two recordings (or transcripts) and which is right is
    # unknown: both copies are left out, unlike check_entries' first-wins across a corpus's parts
    duplicates = {utt_id for utt_id, _ in problems}
    entries, tags = [], Counter()
    for utt_id, spec in wavs.items():
        if utt_id in duplicates:
            continue
        if not spec:  # Path("") would be the folder itself: "is a directory"
            report.skip(utt_id, f"{data_dir / 'wav.scp'}: no audio path after the id")
            continue
        if spec.endswith("|"):
            report.skip(utt_id, "piped wav.scp commands are not supported; convert the audio to files first")
            continue
        if utt_id not in texts:
            report.skip(utt_id, "no transcript in text")
            continue
        path = Path(spec)
        words = texts[utt_id].split()
        tags.update(w for w in words if _TAG.fullmatch(w))
        entries.append(Entry(utt_id, path if path.is_absolute() else root / path,
                             " ".join(w for w in words if not _TAG.fullmatch(w)), speakers.get(utt_id)))
    if tags:
        report.notes.append(f"{data_dir / 'text'}: left out {sum(tags.values())} non-speech tag(s) of Kaldi's "
                            f"transcripts ({', '.join(t for t, _ in tags.most_common(5))}"
                            f"{', ...' if len(tags) > 5 else ''}): no one says them")
    check_entries(entries, report)
    for utt_id in sorted(texts.keys() - wavs.keys()):  # in a stable order, run to run
        report.skip(utt_id, "transcript without audio in wav.scp")
    return report


def split_by_speaker(utterances: list[Utterance], n_speakers: int, seed: int = 0):
    """Hold out all utterances of ``n_speakers`` randomly chosen speakers."""
    speakers = sorted({u.speaker for u in utterances if u.speaker is not None})
    if n_speakers < 0:
        raise CorpusError(f"cannot hold out {n_speakers} speakers (give 0 or more)")
    if n_speakers >= len(speakers):
        raise CorpusError(f"cannot hold out {n_speakers} of {len(speakers)} speakers")
    held = set(random.Random(seed).sample(speakers, n_speakers))
    return [u for u in utterances if u.speaker not in held], [u for u in utterances if u.speaker in held]


def split_by_list(utterances: list[Utterance], names: Iterable[str], source: str = "the list",
                  skipped: Iterable[str] = ()):
    """Hold out the utterances whose id or speaker is in ``names`` (one per line in a file).

    A name that matches nothing (a typo, a BOM) would leave its speaker in train unseen: refused,
    unless it is the id of an utterance ``skipped`` on import."""
    names = {n.strip().lstrip("\ufeff") for n in names if n.strip()}
    held = [u for u in utterances if u.id in names or u.speaker in names]
    if not held:
        raise CorpusError(f"{source}: none of its {len(names)} name(s) is an utterance id or speaker of the data")
    known = {u.id for u in utterances} | {u.speaker for u in utterances} | set(skipped)
    unknown = sorted(names - known)
    if unknown:
        raise CorpusError(f"{source}: {len(unknown)} name(s) match no utterance id or speaker of the data: "
                          + ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else ""))
    if len(held) == len(utterances):
        raise CorpusError(f"{source}: it names every utterance; nothing would be left to train on")
    held_ids = {id(u) for u in held}
    return [u for u in utterances if id(u) not in held_ids], held


def split_random(utterances: list[Utterance], fraction: float, seed: int = 0):
    """Hold out a random ``fraction`` of the utterances (for data without speaker labels)."""
    if not 0.0 < fraction < 1.0:
        raise CorpusError(f"valid fraction must be between 0 and 1, got {fraction}")
    n = max(1, round(len(utterances) * fraction))
    if n >= len(utterances):
        raise CorpusError(f"cannot hold out {n} of {len(utterances)} utterances")
    held = set(random.Random(seed).sample(range(len(utterances)), n))
    return ([u for i, u in enumerate(utterances) if i not in held],
            [u for i, u in enumerate(utterances) if i in held])


def prepare_speechocean762(src: str | Path, out: str | Path, valid_speakers: int = 0) -> dict[str, ImportReport]:
    """The official release layout: ``SRC/{train,test}/{wav.scp,text,utt2spk}``, audio paths
    in wav.scp relative to SRC (``WAVE/SPEAKERxxxx/*.WAV``, or ``.flac``).

    Writes ``OUT/train.jsonl`` and ``OUT/test.jsonl``; with ``valid_speakers`` > 0 also
    ``OUT/valid.jsonl``, those speakers' utterances taken out of train (the test split is
    never used for model selection).
    """
    src, out = Path(src), Path(out)
    for split in ("train", "test"):
        if not (src / split).is_dir():
            raise CorpusError(f"{src}: not a speechocean762 release (no {split}/ directory)")
    train, test = (import_kaldi_dir(src / split, root=src) for split in ("train", "test"))
    reports = {"train": train}
    if valid_speakers:
        utts, valid = split_by_speaker(train.utterances, valid_speakers)
        reports = {"train": ImportReport(utts, train.skipped, train.notes), "valid": ImportReport(valid)}
    reports["test"] = test
    write_splits(out, reports, optional=("valid",))
    return reports
