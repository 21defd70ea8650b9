"""A tuning grid's searched points, kept as they are searched: an ``asr lm tune`` cut short (a job
killed at its time limit, a closed laptop) goes on from where it stopped, not from its first point.
Its 840 points take half an hour on one core (recipes/vars.mk); a cut one used to start again.

Each point's transcripts go, a line as it is searched, to ``tune-progress-KEY.jsonl`` in the model
directory. KEY hashes what a point's transcripts depend on besides the point: the model's outputs
on the manifest (its weights, the audio, how it was cut), the references, the tokens, the LM and
lexicon files, the token priors and the search settings that are not tuned. A run with the same
KEY searches only the points not in the file, so a grid given more values searches only the new
ones; a run that changed any of those starts a file of its own. The file is removed when its grid
is done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

from asr.atomic import write_text_atomic
from asr.search_space import file_stamp

PREFIX = "tune-progress-"
TUNED = ("lm_weight", "word_score", "blank_penalty", "prior_scale")  # the grid's axes: not in the key
Point = tuple  # (lm_weight, word_score, blank_penalty, prior_scale)


def grid_key(batches, refs: Sequence[str | None], decoder, files: Sequence[str | Path | None]) -> str:
    """What the transcripts of every point depend on, hashed. ``batches``: ``tuning.model_outputs``'
    (each row's frames up to its length: padding is not the model's output); ``files``: those the
    search reads (LM, lexicon; None or a setting such as "none" are taken as text)."""
    digest = hashlib.sha1()
    for log_probs, lengths, _ in batches:
        for row, length in zip(log_probs, lengths.tolist()):
            digest.update(row[:length].float().contiguous().cpu().numpy().tobytes())
    options = {k: v for k, v in dataclasses.asdict(decoder.options).items() if k not in TUNED}
    priors = None if decoder.log_priors is None else [float(p) for p in decoder.log_priors]
    digest.update(json.dumps({"refs": list(refs), "tokens": list(decoder.tokenizer.tokens), "options": options,
                              "priors": priors, "files": [_identity(f) for f in files]}).encode())
    return digest.hexdigest()[:16]


def _identity(path) -> list | str | None:
    """A file by its stamp (``search_space.file_stamp``); None, or a setting such as "none", as it is."""
    if path is None or not Path(path).is_file():
        return None if path is None else str(path)
    return list(file_stamp(path))


class GridProgress:
    """The points a grid searched before, read from ``folder``'s file for ``key``, and each point
    added as it is searched. ``rows``: transcripts per point (pieces of cut utterances included)."""

    def __init__(self, folder: str | Path, key: str, rows: int):
        self.path = Path(folder) / f"{PREFIX}{key}.jsonl"
        self.rows = rows
        self.points: dict[Point, list[str | None]] = {}
        self.dropped: dict[int, str] = {}  # first row of an utterance -> why its search was given up
        self._file = None
        self._read()

    def _read(self) -> None:
        if not self.path.is_file():
            return
        lines, good = self.path.read_text(encoding="utf-8", errors="replace").splitlines(), []  # (bytes: not JSON)
        for line in lines:
            try:
                record = json.loads(line)
                point = tuple(float(x) for x in record["point"])
                hyps, dropped = record["hyps"], {int(k): str(v) for k, v in record["dropped"].items()}
                valid = len(point) == len(TUNED) and isinstance(hyps, list) and len(hyps) == self.rows \
                    and all(h is None or isinstance(h, str) for h in hyps)
            except (ValueError, KeyError, TypeError, AttributeError):
                valid = False
            if not valid:  # the line a kill cut short (appended last): the lines before it stand
                break
            self.points[point] = hyps
            for k, why in dropped.items():
                self.dropped.setdefault(k, why)
            good.append(line)
        if len(good) < len(lines):  # appending after a cut line would bury the points added next
            write_text_atomic(self.path, "".join(f"{line}\n" for line in good))

    def others(self) -> list[Path]:
        """The files of grids cut short in the same folder on other inputs."""
        return sorted(p for p in self.path.parent.glob(f"{PREFIX}*.jsonl") if p != self.path)

    def add(self, point: Point, hyps: Sequence[str | None], dropped: dict[int, str]) -> None:
        """``point``'s transcripts, and the utterances its search gave up (``dropped``), kept at once."""
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        record = {"point": [float(x) for x in point], "hyps": list(hyps),
                  "dropped": {str(k): v for k, v in dropped.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())  # a machine that goes down keeps it too
        self.points[tuple(float(x) for x in point)] = list(hyps)

    def close(self, done: bool = False) -> None:
        """Stop adding; ``done``: the grid is searched, and the file goes."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if done:
            self.path.unlink(missing_ok=True)
