"""Output formats for ``asr transcribe``: one Writer class per format.

A writer gets each file's Result as soon as it is ready and writes to a text stream, so long
jobs print as they go. Add a format by subclassing ``Writer`` and listing it in ``WRITERS``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TextIO

from asr.transcribe import Result


class Writer:
    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, path: str, result: Result) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stream.flush()


class TxtWriter(Writer):
    """``path<TAB>text``, one line per file."""

    def write(self, path: str, result: Result) -> None:
        print(f"{path}\t{result.text}", file=self.stream, flush=True)


class JsonWriter(Writer):
    """One JSON object per line and file: text, duration, confidence, words with times."""

    def write(self, path: str, result: Result) -> None:
        data = {"path": str(path), "text": result.text, "duration": round(result.duration, 3),
                "confidence": result.confidence, "words": [asdict(w) for w in result.words],
                "segments": [asdict(s) for s in result.segments]}
        if result.alternatives:
            data["alternatives"] = result.alternatives
        print(json.dumps(data, ensure_ascii=False), file=self.stream, flush=True)


WRITERS: dict[str, type[Writer]] = {"txt": TxtWriter, "json": JsonWriter}


def get_writer(name: str, stream: TextIO) -> Writer:
    if name not in WRITERS:
        raise ValueError(f"unknown output format {name!r}; available: {', '.join(WRITERS)}")
    return WRITERS[name](stream)
