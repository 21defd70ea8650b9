"""Output formats for ``asr transcribe``: one Writer class per format (txt, json, srt, vtt, tsv).

A writer gets each file's Result as soon as it is ready. On a stream (stdout) ``write`` prints
one record per file (txt: ``path<TAB>text``; json: one object per line), so long jobs print as
they go. With ``--output-dir`` ``write_file`` writes one file per input, named after it, as
whisper's writers do. Add a format by subclassing ``Writer`` and listing it in ``WRITERS``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from asr.atomic import atomic_open
from asr.transcribe import Result, Word


class OutputError(Exception):
    """An output directory that cannot be written to (found before any audio is read)."""


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]


def make_cues(result: Result, max_seconds: float = 7.0, line_chars: int = 42, max_lines: int = 2) -> list[Cue]:
    """Subtitle cues from the words' times: a cue closes before it would last more than
    ``max_seconds``, need more than ``max_lines`` lines of ``line_chars``, or span a pause > 1 s."""
    cues = []
    for seg in result.segments:
        words = [w for w in result.words if seg.start - 1e-3 <= w.start and w.end <= seg.end + 1e-3]
        if not words:  # no word times: the segment as one cue
            cues.append(Cue(seg.start, seg.end, tuple(_wrap(seg.text.split(), line_chars)) or ("",)))
            continue
        group: list[Word] = []
        for w in words:
            if group and (w.end - group[0].start > max_seconds or w.start - group[-1].end > 1.0
                          or len(_wrap([x.word for x in group + [w]], line_chars)) > max_lines):
                cues.append(_cue(group, line_chars))
                group = []
            group.append(w)
        if group:
            cues.append(_cue(group, line_chars))
    return cues


def _cue(words: list[Word], line_chars: int) -> Cue:
    return Cue(words[0].start, max(words[-1].end, words[0].start + 0.001),
               tuple(_wrap([w.word for w in words], line_chars)))


def _wrap(words: list[str], width: int) -> list[str]:
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def timestamp(seconds: float, decimal: str = ".", hours: bool = True) -> str:
    ms = int(round(max(seconds, 0.0) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return (f"{h:02d}:" if hours or h else "") + f"{m:02d}:{s:02d}{decimal}{ms:03d}"


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
        print(f"{path}\t{result.text}", file=self.stream, flush=True)

    def write_file(self, path: str, result: Result, stream: TextIO) -> None:
        for seg in result.segments:
            print(seg.text, file=stream)


class JsonWriter(Writer):
    """Text, duration, confidence, segments and words with times and confidence. Stream: one
    object per line and file; file: the same object, indented."""

    extension = "json"

    @staticmethod
    def data(path: str, result: Result) -> dict:
        data = {"path": str(path), "text": result.text, "duration": round(result.duration, 3),
                "confidence": result.confidence, "words": [asdict(w) for w in result.words],
                "segments": [asdict(s) for s in result.segments],
                "alternatives": result.alternatives}  # every file has each key ([]: none asked for or given)
        return data

    def write(self, path: str, result: Result) -> None:
        print(json.dumps(self.data(path, result), ensure_ascii=False), file=self.stream, flush=True)

    def write_file(self, path: str, result: Result, stream: TextIO) -> None:
        json.dump(self.data(path, result), stream, ensure_ascii=False, indent=2)
        stream.write("\n")


class SrtWriter(Writer):
    extension = "srt"

    def write_file(self, path: str, result: Result, stream: TextIO) -> None:
        for i, cue in enumerate(make_cues(result), 1):
            print(f"{i}\n{timestamp(cue.start, ',')} --> {timestamp(cue.end, ',')}\n" + "\n".join(cue.lines) + "\n",
                  file=stream)


class VttWriter(Writer):
    extension = "vtt"

    def write_file(self, path: str, result: Result, stream: TextIO) -> None:
        print("WEBVTT\n", file=stream)
        for cue in make_cues(result):
            print(f"{timestamp(cue.start)} --> {timestamp(cue.end)}\n" + "\n".join(cue.lines) + "\n", file=stream)


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


class DirectoryOutput:
    """One file per input and format in ``directory``, named after the input (``a.wav`` ->
    ``a.srt``); a second input with the same name gets ``a-2.srt`` rather than overwriting."""

    def __init__(self, directory: str | Path, formats: list[str]):
        self.directory = check_output_dir(directory)
        self.writers = [get_writer(f) for f in formats]
        self.used: set[str] = set()
        self.renamed: list[tuple[str, str]] = []  # (input, the name its files got instead of its own)
        self.inputs: set[Path] = set()
        self.beside_inputs = False

    def guard(self, inputs: list[str], force: bool = False) -> list[str]:
        """Never write onto an input; and when the directory holds inputs, replace none of its files
        unless ``force``: beside audio, ``a.txt`` is likelier a reference transcript than an old output.
        Returns the problems that writing ``inputs`` would meet, for a refusal before any work."""
        given = [Path(p) for p in inputs if p != "-"]
        self.inputs = {p.resolve() for p in given}
        here = self.directory.resolve()
        # the folder an input is named in (a symlink's), and the one its audio is in
        folders = {p.absolute().parent.resolve() for p in given} | {p.parent for p in self.inputs}
        self.beside_inputs = not force and here in folders
        used, self.used = self.used, set(self.used)  # names as write() will give them, without taking them
        try:
            return [problem for path in inputs for problem in self._problems(self.name_for(path))]
        finally:
            self.used, self.renamed = used, []

    def _problems(self, name: str) -> list[str]:
        problems = []
        for out in (self.directory / f"{name}.{writer.extension}" for writer in self.writers):
            if out.resolve() in self.inputs:
                problems.append(f"{out}: is an input; not overwritten (give another --output-dir)")
            elif self.beside_inputs and out.exists():
                problems.append(f"{out}: exists beside the audio (a reference transcript?); not replaced: "
                                "give another --output-dir, or --force to replace it")
        return problems

    def name_for(self, path: str) -> str:
        stem = "stdin" if path == "-" else Path(path).stem or "audio"
        name, n = stem, 1
        while name in self.used:
            n += 1
            name = f"{stem}-{n}"
        self.used.add(name)
        if name != stem:
            self.renamed.append((path, name))
        return name

    def write(self, path: str, result: Result) -> list[Path]:
        name, written = self.name_for(path), []
        if problems := self._problems(name):  # all or none of an input's files (one that appeared meanwhile)
            raise OutputError(problems[0])
        outs = [self.directory / f"{name}.{writer.extension}" for writer in self.writers]
        for writer, out in zip(self.writers, outs):
            with atomic_open(out) as f:
                writer.write_file(path, result, f)
            written.append(out)
        return written

    def close(self) -> None:
        pass
