"""Your own data as import entries: a folder of audio files with same-name ``.txt`` transcripts,
or a CSV/TSV table of ``path,text[,speaker]`` (with or without a header naming the columns).

asr.corpus_formats.prepare_own_data splits what this reads into train/valid/test manifests.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from asr.corpora import CorpusError, Entry, ImportReport, bad_byte, check_entries, not_utf8, read_text
from asr.walk import files_under


AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".sph", ".aiff", ".aif")
_PATH_COLUMNS = ("path", "audio", "audio_filepath", "file", "filename", "file_name", "wav_filename")
_TEXT_COLUMNS = ("text", "transcript", "sentence", "transcription")
_SPEAKER_COLUMNS = ("speaker", "speaker_id", "client_id", "spk")
_ID_COLUMNS = ("id", "utt_id", "utterance_id")


def folder_entries(root: Path, report: ImportReport) -> list[Entry]:
    """Every audio file below ROOT with a same-name ``.txt`` beside it. The speaker is the first
    folder below ROOT (``ROOT/SPEAKER/.../a.wav``); files directly in ROOT have none."""
    # a folder reached twice (a link loop, two links to one place) is read once, by the first path in sorted order
    files = files_under(root, repeated=lambda folder, real: report.notes.append(
        f"{folder}: already read as {real} (a symlink loop or a second link); not read twice"))
    audio = sorted(p for p in files if p.suffix.lower() in AUDIO_SUFFIXES)
    texts = sorted(p for p in files if p.suffix.lower() == ".txt")
    by_name = {p.with_suffix(""): p for p in texts}  # A.WAV's is A.TXT (sorted: a.txt wins over a.TXT)
    entries, used = [], {}  # transcript -> the (first) audio it is used for
    for path in audio:
        rel = path.relative_to(root).with_suffix("")
        utt_id = rel.as_posix()
        txt = by_name.get(path.with_suffix(""))
        if "\n" in str(rel) or "\r" in str(rel):  # ids are one line in manifests and Kaldi-style outputs
            report.skip(repr(utt_id), f"{str(path)!r}: a file name with a line break; rename it")
            continue
        if txt is None:
            report.skip(utt_id, f"{path}: no transcript {path.with_suffix('.txt').name} beside it")
            continue
        used.setdefault(txt, path)
        try:
            text = read_text(txt)
        except CorpusError as e:  # one bad file among many: skipped, named with its line
            report.skip(utt_id, str(e))
            continue
        # the audio as origin: dup.wav and dup.flac share dup.txt, and the message must say which is kept
        entries.append(Entry(utt_id, path, text, rel.parts[0] if len(rel.parts) > 1 else None, str(path)))
    for txt in sorted(set(texts) - used.keys()):
        kept = by_name[txt.with_suffix("")]  # a.txt, when this is a.TXT beside it
        why = (f"a second transcript for {used[kept].name} ({kept.name} is used)" if kept in used
               else "transcript without a same-name audio file")
        report.skip(txt.relative_to(root).with_suffix("").as_posix(), f"{txt}: {why}")
    return entries


def table_entries(table: Path, report: ImportReport) -> list[Entry]:
    """A CSV (``,``) or TSV (``.tsv``: tab) of ``path,text[,speaker]``, with or without a header
    row naming the columns; relative paths start from the table's folder."""
    delimiter = "\t" if table.suffix.lower() in (".tsv", ".tab") else ","
    # TSV is never quoted (Kaldi, Common Voice): a text starting with " must not swallow the rows after it.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    # read_text: Excel's BOM (it would hide the header) dropped, its UTF-16 "Unicode Text" read, a bad line named
    with io.StringIO(read_text(table, lenient=True), newline="") as f:
        try:
            reader, rows = csv.reader(f, delimiter=delimiter, quoting=quoting), []
            for row in reader:  # each with the line it starts on
                first = rows[-1][2] + 1 if rows else 1
                rows.append((first, row, reader.line_num))
        except csv.Error as e:
            raise CorpusError(f"{table}: not a readable {'CSV' if delimiter == ',' else 'TSV'} ({e})") from None
    # A quoted field may hold line breaks, but one that holds rows (a line starting with an audio
    # path) is a stray quote: importing it would glue them into one transcript and lose them.
    for first, row, last in rows:
        if any(line.split(delimiter)[0].strip().lower().endswith(AUDIO_SUFFIXES)
               for cell in row for line in cell.splitlines()[1:]):
            raise CorpusError(f"{table}:{first}: a quoted field runs on to line {last}, taking in the rows "
                              f"between (an unmatched \"?); write a quote inside a field as \"\"")
    rows = [(first, row) for first, row, _ in rows]
    columns: dict[str, int | None] = {"path": 0, "text": 1, "speaker": 2, "id": None}
    start = 0
    header = [c.strip().lower() for c in rows[0][1]] if rows else []
    if any(c.endswith(AUDIO_SUFFIXES) for c in header):  # a first row of data, its transcript maybe "text"
        header = []
    # a header naming one column we know but not the other: read as data, its rows would import
    # another column (DeepSpeech's wav_filesize) as the transcript
    for what, names in (("audio path", _PATH_COLUMNS), ("transcript", _TEXT_COLUMNS)):
        if set(header) & set(_PATH_COLUMNS + _TEXT_COLUMNS) and not set(header) & set(names):
            raise CorpusError(f"{table}: its header ({', '.join(header)}) has no {what} column; "
                              f"call it one of: {', '.join(names)}")
    if set(header) & set(_PATH_COLUMNS) and set(header) & set(_TEXT_COLUMNS):
        def pick(names):
            return next((header.index(n) for n in names if n in header), None)
        columns = {"path": pick(_PATH_COLUMNS), "text": pick(_TEXT_COLUMNS),
                   "speaker": pick(_SPEAKER_COLUMNS), "id": pick(_ID_COLUMNS)}
        start = 1
    entries = []
    for lineno, row in rows[start:]:
        where = f"{table.name}:{lineno}"
        if not any(cell.strip() for cell in row):
            continue
        if (byte := bad_byte("".join(row))) is not None:
            report.skip(where, not_utf8(table, lineno, byte))
            continue
        if len(row) <= max(columns["path"], columns["text"]):
            report.skip(where, f"{where}: expected path,text[,speaker] ({'tab' if delimiter != ',' else 'comma'}"
                               f"-separated), got {len(row)} field(s)")
            continue

        def cell(key):
            i = columns[key]
            return row[i].strip() or None if i is not None and i < len(row) else None

        if not row[columns["path"]].strip():
            report.skip(where, "empty audio path")
            continue
        rel = Path(row[columns["path"]].strip())
        audio = rel if rel.is_absolute() else table.parent / rel
        entries.append(Entry(cell("id") or rel.with_suffix("").as_posix(), audio, row[columns["text"]],
                             cell("speaker"), where))
    return entries


def import_own_data(src: str | Path) -> ImportReport:
    src = Path(src)
    report = ImportReport()
    if src.is_dir():
        entries = folder_entries(src, report)
    elif src.is_file():
        entries = table_entries(src, report)
    else:
        raise CorpusError(f"{src}: not found (give a folder of audio + .txt files, or a CSV/TSV of path,text)")
    if not entries and not report.skipped:
        raise CorpusError(f"{src}: no audio files ({', '.join(AUDIO_SUFFIXES)}) with transcripts found")
    return check_entries(entries, report)
