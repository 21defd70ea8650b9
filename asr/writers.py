"""Output formats for ``asr transcribe``: one Writer class per format (txt, json, srt, vtt, tsv).

A writer gets each file's Result as soon as it is ready. On a stream (stdout) ``write`` prints one
record per file (txt: ``path<TAB>text``; json: one object per line), so long jobs print as they go.
With ``--output-dir`` ``write_file`` writes one file per input, named after it, as whisper's
writers do (``output_names``: inputs of the same name from different folders are told apart by
their folders, whatever their order). Add a format by subclassing ``Writer`` and listing it in
``WRITERS``."""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import tempfile
from collections import defaultdict
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, TextIO

from asr.atomic import atomic_open
from asr.results import Result
from asr.subtitle_cues import make_cues, timestamp


class OutputError(Exception):
    """An output directory that cannot be written to (found before any audio is read)."""


def shown(path: str) -> str:
    """``path`` as text that any UTF-8 output can hold: a file name's bytes that are not UTF-8
    (Python keeps them as lone surrogates, which no encoder takes) as ``\\xe9`` escapes."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def _bytes(name: str) -> int:
    """The bytes ``name`` takes as a file name (its undecodable bytes as they were)."""
    return len(os.fsencode(name))


class Writer:
    extension = ""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def write(self, path: str, result: Result) -> None:
        """One file's result to the stream (stdout mode)."""
        self.write_file(path, result, self.stream)
        self.stream.flush()

    def write_file(self, path: str, result: Result, stream: TextIO) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.stream is not None:
            self.stream.flush()


class TxtWriter(Writer):
    """Stream: ``path<TAB>text``, one line per file. File: one line per segment."""

    extension = "txt"

    def write(self, path: str, result: Result) -> None:
        # a tab or line break in a file name would split its record: written as \t, \n, \r (as shown()
        # writes a byte that is not UTF-8 as \xe9)
        field = shown(path).replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        print(f"{field}\t{result.text}", file=self.stream, flush=True)

    def write_file(self, path: str, result: Result, stream: TextIO) -> None:
        for seg in result.segments:
            print(seg.text, file=stream)


def _finite(value):
    """``value`` with NaN and infinities as None: json.dumps writes them as NaN, which is not JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class JsonWriter(Writer):
    """Text, duration, confidence, segments and words with times and confidence. Stream: one
    object per line and file; file: the same object, indented."""

    extension = "json"

    @staticmethod
    def data(path: str, result: Result) -> dict:
        return _finite({"path": shown(str(path)), "text": result.text, "duration": round(result.duration, 3),
                        "confidence": result.confidence, "words": [asdict(w) for w in result.words],
                        "segments": [asdict(s) for s in result.segments],
                        "alternatives": result.alternatives})  # every file has each key ([]: none asked for or given)

    def write(self, path: str, result: Result) -> None:
        print(json.dumps(self.data(path, result), ensure_ascii=False), file=self.stream, flush=True)

    def write_file(self, path: str, result: Result, stream: TextIO) -> None:
        json.dump(self.data(path, result), stream, ensure_ascii=False, indent=2)
        stream.write("\n")


class SrtWriter(Writer):
    extension = "srt"

    def write_file(self, path: str, result: Result, stream: TextIO) -> None:
        for i, cue in enumerate(make_cues(result), 1):
            # "-->" in a line would read as the next cue's timing line
            lines = [line.replace("-->", "->") for line in cue.lines]
            print(f"{i}\n{timestamp(cue.start, ',')} --> {timestamp(cue.end, ',')}\n" + "\n".join(lines) + "\n",
                  file=stream)


class VttWriter(Writer):
    extension = "vtt"

    def write_file(self, path: str, result: Result, stream: TextIO) -> None:
        print("WEBVTT\n", file=stream)
        for cue in make_cues(result):
            # WebVTT cue text is markup: & and < escaped, and no "-->" (its > escaped too)
            lines = [html.escape(line, quote=False) for line in cue.lines]
            print(f"{timestamp(cue.start)} --> {timestamp(cue.end)}\n" + "\n".join(lines) + "\n", file=stream)


class TsvWriter(Writer):
    """``start<TAB>end<TAB>text`` per segment, times in integer milliseconds (as whisper)."""

    extension = "tsv"

    def write_file(self, path: str, result: Result, stream: TextIO) -> None:
        print("start\tend\ttext", file=stream)
        for seg in result.segments:
            print(f"{round(seg.start * 1000)}\t{round(seg.end * 1000)}\t{seg.text}", file=stream)


WRITERS: dict[str, type[Writer]] = {"txt": TxtWriter, "json": JsonWriter, "srt": SrtWriter, "vtt": VttWriter,
                                    "tsv": TsvWriter}


def get_writer(name: str, stream: TextIO | None = None) -> Writer:
    if name not in WRITERS:
        raise ValueError(f"unknown output format {name!r}; available: {', '.join(WRITERS)}")
    return WRITERS[name](stream)


def check_output_dir(directory: str | Path) -> Path:
    """Create ``directory`` if needed and prove it is writable, or raise OutputError."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"{directory}: is a file, not an output directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".asr-write-test-"):
            pass
    except OSError as e:
        raise OutputError(f"{directory}: output directory is not writable ({e.strerror or e})") from None
    return directory


@dataclass(frozen=True)
class _Input:
    key: str  # what makes two arguments one input: the absolute path, or "-"
    folders: tuple[str, ...]  # of its absolute path
    stem: str
    filename: str


def _input(path: str) -> _Input:
    if path == "-":
        return _Input("-", Path.cwd().parts, "stdin", "stdin")
    where = Path(os.path.abspath(path))  # "./a.wav" and "a.wav" are one input; a symlink is its own
    return _Input(str(where), where.parent.parts, where.stem or "audio", where.name or "audio")


def output_names(paths: Iterable[str]) -> dict[str, str]:
    """Each input's output name (no extension), from its own path and the set of inputs, never
    from their order, so a rerun in another order writes each input's files under the same names
    (each short enough for a file name, with any writer's extension: ``_joined``):

    - the input's stem: ``a/x.wav`` -> ``x`` (``-``, stdin: ``stdin``);
    - inputs that share a stem get their folders below the one they all share, joined by ``_``:
      ``a/x.wav``, ``b/x.wav`` -> ``a_x``, ``b_x``; ``in/a/x.wav``, ``out/a/x.wav`` -> ``in_a_x``, ``out_a_x``;
    - inputs that share a folder as well keep their extension: ``x.wav``, ``x.flac`` -> ``x.wav``, ``x.flac``;
    - a name still shared (``a/x.wav`` and ``a_x.wav``) gets 8 hex digits of its input's path's SHA-1.

    Names are compared case-blind: ``X.txt`` and ``x.txt`` are one file on macOS and Windows."""
    inputs = {path: _input(path) for path in paths}
    names = _names(set(inputs.values()))
    return {path: names[i] for path, i in inputs.items()}


def _names(inputs: set[_Input]) -> dict[_Input, str]:
    by_stem: dict[str, list[_Input]] = defaultdict(list)
    for i in inputs:
        by_stem[i.stem.casefold()].append(i)
    names = {}
    for group in by_stem.values():
        shared = len(os.path.commonprefix([i.folders for i in group]))  # all of them, for a stem of one input
        for i in group:
            names[i] = _below(i, shared)
        for i in _sharing({i: names[i] for i in group}, group):  # one folder: the extension tells them apart
            names[i] = _below(i, shared, by_filename=True)
    for i in _sharing(names, inputs):
        names[i] = _hashed(names[i], i)
    return names


def _below(i: _Input, shared: int, by_filename: bool = False) -> str:
    """``i``'s name among the inputs of its stem, whose folders share the first ``shared``: the folders
    below those, then its stem (or its file name, where the stem leaves two of them one name)."""
    return _joined(i.folders[shared:] + (i.filename if by_filename else i.stem,), i)


NAME_MAX = 255  # bytes (UTF-8) of a file name, on Linux's and macOS's file systems
# What a written file adds around its output name: ".EXT", inside atomic_open's ".NAME.EXT.tmp-PID"
# (a PID has at most 7 digits); and what a hash adds (``_hashed``).
_AROUND, _HASH = len("..") + len(".tmp-") + 7, len("-01234567")


def _most_bytes() -> int:
    """The longest output name that every writer's file, and its temporary one, can have."""
    return NAME_MAX - _AROUND - max(_bytes(w.extension) for w in WRITERS.values())


def _joined(parts: tuple[str, ...], i: _Input) -> str:
    """``parts`` (folders, then the stem or file name) joined by ``_``. When that is too long for
    a file name (two copies of a deep corpus): the stem, with as many of the folders nearest to
    it as fit, and the input's path hash, as the folder that told it apart may be one left out.
    Always room for a hash more (``_hashed``)."""
    room = _most_bytes() - _HASH
    name = "_".join(parts)
    if _bytes(name) <= room:
        return name
    room -= _HASH  # for its own
    name = parts[-1]
    while _bytes(name) > room:  # a stem too long alone: its start, cut between characters
        name = name[:-1]
    for folder in reversed(parts[:-1]):
        if _bytes(f"{folder}_{name}") > room:
            break
        name = f"{folder}_{name}"
    return _hashed(name, i)


def _sharing(names: dict[_Input, str], among: Iterable[_Input]) -> list[_Input]:
    """The inputs of ``among`` whose name another input also has."""
    count: dict[str, int] = defaultdict(int)
    for name in names.values():
        count[name.casefold()] += 1
    return [i for i in among if count[names[i].casefold()] > 1]


def _hashed(name: str, i: _Input) -> str:
    return f"{name}-{hashlib.sha1(os.fsencode(i.key)).hexdigest()[:8]}"


class DirectoryOutput:
    """One file per input and format in ``directory``, named after the input by ``output_names``
    (``a.wav`` -> ``a.srt``; ``a/x.wav`` and ``b/x.wav`` -> ``a_x.srt``, ``b_x.srt``). The names
    are chosen for all inputs at once in ``guard`` (or ``plan``), so they do not depend on the
    inputs' order; an input first seen by ``write`` is named beside those, never taking a name
    already given. No input's files ever replace another's in one run."""

    def __init__(self, directory: str | Path, formats: list[str]):
        self.directory = check_output_dir(directory)
        self.writers = [get_writer(f) for f in formats]
        self.names: dict[_Input, str] = {}
        self.by_stem: dict[str, set[_Input]] = defaultdict(set)  # casefolded stem -> its inputs named so far
        self.shared: dict[str, tuple[str, ...]] = {}  # casefolded stem -> the folders its inputs all share
        self.taken: set[str] = set()  # the names given, casefolded
        self.written: dict[str, _Input] = {}  # casefolded name -> the input whose files have it
        self.renamed: list[tuple[str, str]] = []  # (input, the name its files got instead of its stem)
        self.inputs: set[Path] = set()
        self.beside_inputs = False

    def plan(self, inputs: Iterable[str]) -> None:
        """Name ``inputs`` together (names already given stay as they are)."""
        new = {i for i in map(_input, inputs) if i not in self.names}
        if not new:  # each write asks: no work (a batch of 10,000 is named once)
            return
        if len(new) == 1:  # one first seen by write: named in constant time, not by re-planning its stem's
            (i,) = new
            self._give(i, self._beside(i))
            return
        # only the inputs named already that share a stem with a new one bear on its name
        related = {i for stem in {i.stem.casefold() for i in new} for i in self.by_stem[stem]}
        for i, name in _names(new | related).items():
            if i in new:  # new ones never share a name (_names): only one given before can be taken
                self._give(i, _hashed(name, i) if name.casefold() in self.taken else name)

    def _beside(self, i: _Input) -> str:
        """The name ``_names`` would give ``i`` among the inputs named so far that share its stem
        (their shared folders kept as they are named), hashed if it is taken."""
        stem = i.stem.casefold()
        shared = len(os.path.commonprefix([self.shared.get(stem, i.folders), i.folders]))
        name = _below(i, shared)
        if self.by_stem[stem] and name.casefold() in self.taken:  # one folder: the extension tells them apart
            name = _below(i, shared, by_filename=True)
        return _hashed(name, i) if name.casefold() in self.taken else name

    def _give(self, i: _Input, name: str) -> None:
        stem = i.stem.casefold()
        self.names[i] = name
        self.taken.add(name.casefold())
        self.shared[stem] = (tuple(os.path.commonprefix([self.shared[stem], i.folders])) if stem in self.shared
                             else i.folders)
        self.by_stem[stem].add(i)

    def guard(self, inputs: list[str], force: bool = False) -> list[str]:
        """Name the inputs (``plan``). Never write onto an input; and when the directory holds inputs, replace
        none of its files unless ``force``: beside audio, ``a.txt`` is likelier a reference transcript than an
        old output. Returns the problems that writing ``inputs`` would meet, for a refusal before any work."""
        self.plan(inputs)
        given = [Path(p) for p in inputs if p != "-"]
        self.inputs = {p.resolve() for p in given}
        here = self.directory.resolve()
        # the folder an input is named in (a symlink's), and the one its audio is in
        folders = {p.absolute().parent.resolve() for p in given} | {p.parent for p in self.inputs}
        self.beside_inputs = not force and here in folders
        names = dict.fromkeys(self.name_for(path) for path in inputs)  # an input given twice: said once
        return [problem for name in names for problem in self._problems(name)]

    def _problems(self, name: str) -> list[str]:
        problems = []
        for out in (self.directory / f"{name}.{writer.extension}" for writer in self.writers):
            if out.resolve() in self.inputs:
                problems.append(f"{out}: is an input; not overwritten (give another --output-dir)")
            elif out.is_dir():
                problems.append(f"{out}: is a directory, so this input's {out.suffix[1:]} cannot be written there")
            elif self.beside_inputs and out.exists():
                problems.append(f"{out}: exists beside the audio (a reference transcript?); not replaced: "
                                "give another --output-dir, or --force to replace it")
        return problems

    def name_for(self, path: str) -> str:
        self.plan([path])
        return self.names[_input(path)]

    def write(self, path: str, result: Result) -> list[Path]:
        name, written, source = self.name_for(path), [], _input(path)
        if self.written.get(name.casefold(), source) != source:  # a guard against a bug, not a user's error
            raise OutputError(f"{self.directory / name}.*: already written for another input in this run")
        again = name.casefold() in self.written  # the same input given twice: its own files, not a reference's
        if not again and (problems := self._problems(name)):  # all or none of its files (one that appeared meanwhile)
            raise OutputError(problems[0])
        outs = [self.directory / f"{name}.{writer.extension}" for writer in self.writers]
        for writer, out in zip(self.writers, outs):
            try:
                with atomic_open(out) as f:
                    writer.write_file(path, result, f)
            except OSError as e:  # this input's failure (a full disk, a lost permission): the batch goes on
                for done in [] if again else written:  # none of its files: beside the audio, a rerun would refuse them
                    with suppress(OSError):  # (as references); the error to report is the one above
                        done.unlink(missing_ok=True)
                raise OutputError(f"{out}: not written ({e.strerror or e})") from None
            written.append(out)
        self.written[name.casefold()] = source
        if name != source.stem and not again:
            self.renamed.append((path, name))
        return written

    def close(self) -> None:
        pass
