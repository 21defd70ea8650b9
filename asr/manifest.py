"""Manifests: JSON lines, one utterance per line::

    {"audio_filepath": "wav/a.flac", "duration": 3.2, "text": "hello", "speaker": "s1", "id": "a"}

A relative ``audio_filepath`` is resolved against the manifest's folder (for a manifest given by a
symlink, the folder of the file it points to). Reading a line and its
checks are here, torch-free, for the dataset (asr.data, which re-exports these names) and for
asr.lm, which reads manifests' text without loading torch.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

from asr.atomic import atomic_open

REQUIRED = ("audio_filepath", "duration", "text")


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class Utterance:
    audio_filepath: str
    duration: float
    text: str
    speaker: str | None = None
    id: str | None = None

    def to_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        return json.dumps(data, ensure_ascii=False)


def manifest_row(line: str, where: str, required: Iterable[str] = REQUIRED) -> dict:
    """A manifest line's JSON object, with its ``required`` fields and a string ``text`` (when
    required); anything else is a ManifestError naming ``where`` (``FILE:LINE``)."""
    try:
        row = json.loads(line.rstrip("\r\n"))  # a line cut inside a string: "Unterminated string", not its newline
    except json.JSONDecodeError as e:
        at = "" if e.msg.endswith(" at") else " at"  # json's "Unterminated string starting at", "Extra data"
        raise ManifestError(f"{where}: not valid JSON ({e.msg}{at} column {e.colno})") from None
    except ValueError:  # Python reads no integer of more than 4300 digits
        raise ManifestError(f"{where}: not valid JSON (a number too long to read)") from None
    except RecursionError:  # brackets nested thousands deep
        raise ManifestError(f"{where}: not valid JSON (arrays or objects nested too deeply to read)") from None
    if not isinstance(row, dict):
        raise ManifestError(f"{where}: expected a JSON object")
    missing = [k for k in required if k not in row]
    if missing:
        raise ManifestError(f"{where}: missing field(s) {', '.join(missing)}")
    if "text" in required and not isinstance(row["text"], str):  # str(None) would score as the word "none"
        raise ManifestError(f"{where}: text {row['text']!r} is not a string (an empty one: nothing is said)")
    return row


def own_folder(path: Path) -> Path:
    """The folder a file's relative names are read from: where the file itself lies, not a link to it."""
    return Path(os.path.realpath(path)).parent if path.is_symlink() else path.parent


def read_manifest(path: str | Path) -> list[Utterance]:
    path = Path(path)
    if path.is_dir():
        raise ManifestError(f"{path}: a directory, not a manifest (JSON lines: asr prepare writes them)")
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    base = own_folder(path)  # relative audio lies beside the manifest file itself
    utterances = []
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        row = manifest_row(line, where)
        audio = row["audio_filepath"]
        if not isinstance(audio, str) or not audio:  # "" would resolve to the manifest's folder
            raise ManifestError(f"{where}: audio_filepath {audio!r} is not a file path (a non-empty string)")
        audio = Path(audio)
        if not audio.is_absolute():
            audio = base / audio
        utterances.append(Utterance(
            audio_filepath=str(audio), duration=_duration(row["duration"], where), text=row["text"],
            speaker=_opt_str(row.get("speaker")), id=_opt_str(row.get("id")),
        ))
    return utterances


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(number, text) of each line: split at "\n" alone (str.splitlines would also split a text at
    U+2028, U+0085, ..., which write_manifest keeps as they are), without a leading byte order mark."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                if lineno == 1:  # e.g. an audio file given for the manifest
                    raise ManifestError(f"{path}: not a manifest (not UTF-8 text: {e.reason})") from None
                raise ManifestError(f"{path}:{lineno}: not UTF-8 text ({e.reason})") from None
            yield lineno, line


def write_manifest(path: str | Path, utterances: Iterable[Utterance]) -> int:
    n = 0
    with atomic_open(path) as f:
        for utt in utterances:
            f.write(utt.to_json() + "\n")
            n += 1
    return n


def _duration(value, where: str) -> float:
    """Seconds, finite and above 0: batching trusts them (importers write each file's length)."""
    try:
        duration = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):  # an integer of 400 digits overflows a float
        raise ManifestError(f"{where}: duration {value!r} is not a number") from None
    if not math.isfinite(duration) or duration <= 0:
        raise ManifestError(f"{where}: duration {value!r} is not a length in seconds (a finite number above 0)")
    return duration


def _opt_str(value):
    return None if value is None else str(value)
