"""What a trained model came from, kept beside its weights as provenance.json.

A config names its manifests by path; the path stays the same when what it holds changes (a
recipe's synthetic sentences, selected by code that changed, gave the built-in model's recipe other
training text under the same file names). So ``asr train`` records, as icefall's logs do:

    asr        the version, and the git commit (and whether files had uncommitted changes) when
               asr runs from a checkout
    torch      the version
    started    when training started (UTC), and ``resumed``: each later start, with its code
    data       each manifest's path, size and SHA-1 (train, valid), and for fine-tuning the
               weights it started from, with that model's own provenance

best/ and last/ carry it, as do ``asr export``'s copies and a package's systems. Only a record:
nothing reads it to load or run a model.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from asr.atomic import write_text_atomic
from asr.model_dir import PROVENANCE_FILE, SOURCE_ROOT, portable_path


def code_version(root: Path | None = SOURCE_ROOT) -> dict:
    """asr's version; with a git checkout at ``root``, its commit and whether tracked files differ from it."""
    from asr import __version__

    found: dict = {"version": __version__}
    if root is None or not (root / ".git").exists():
        return found
    try:
        commit = _git(root, "rev-parse", "HEAD").strip()
        changed = _git(root, "status", "--porcelain", "--untracked-files=no").strip()
    except (OSError, subprocess.SubprocessError):  # no git on the machine, or not a repository after all
        return found
    return {**found, "commit": commit, "dirty": bool(changed)}


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_provenance(data: dict, init_from: str | None, resumed: bool = False, previous: dict | None = None) -> dict:
    """The record of a run starting now. ``data``: the run's manifests' and initial weights' identities
    (``asr.train_setup.data_identity``: path, size, sha1 each, or None). A resumed run keeps the
    record it left (``previous``) and adds this start to it."""
    import torch

    code, started = code_version(), now()
    this_start = {"at": started, "asr": code, "torch": torch.__version__}
    if resumed and previous is not None:  # its start, data and code as recorded then; this start added
        return {**previous, "resumed": [*previous.get("resumed", []), this_start]}
    portable = {key: None if ident is None else {**ident, "path": portable_path(ident["path"])}
                for key, ident in data.items()}
    if init_from and portable.get("init_from") is not None:
        portable["init_from"]["provenance"] = read_provenance(init_from)
    record = {"asr": code, "torch": torch.__version__, "started": started, "data": portable}
    if resumed:  # a run from before records were kept: its start unknown, this one the first recorded
        record.update(started=None, resumed=[this_start])
    return record


def read_provenance(model_dir: str | Path) -> dict | None:
    """MODEL/provenance.json, or None for a model without one (trained before it was kept) or one
    that cannot be read: a record, never a reason to refuse a model."""
    try:
        data = json.loads((Path(model_dir) / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def file_identity(path: str) -> dict | None:
    """What tells a file's content apart (resolved path, size, SHA-1 of its bytes), as a run records
    its data; None for none or a file that cannot be read (load_split names the problem)."""
    try:
        raw = Path(path).read_bytes() if path else None
    except OSError:
        return None
    if raw is None:
        return None
    return {"path": str(Path(path).resolve()), "size": len(raw), "sha1": hashlib.sha1(raw).hexdigest()}


def trained_on(manifest: str | Path, models) -> list:
    """Those of ``models`` (model directories; None for the packaged default) that ``manifest``, by
    its bytes, trained: its run's train manifest, or that of a run whose weights it started from.
    A model without provenance is not known to have been."""
    if (ident := file_identity(str(manifest))) is None:
        return []

    def trained(record) -> bool:
        while isinstance(record, dict):
            data = record.get("data") if isinstance(record.get("data"), dict) else {}
            if (data.get("train_manifest") or {}).get("sha1") == ident["sha1"]:
                return True
            record = (data.get("init_from") or {}).get("provenance")
        return False

    return [m for m in models if m and trained(read_provenance(m))]


def record_start(run_dir: Path, data: dict, init_from: str | None, resumed: bool) -> None:
    """RUN/provenance.json at a run's start: a new record, or a resumed run's own with this start added."""
    previous = read_provenance(run_dir) if resumed else None  # a new run's record starts anew
    write_text_atomic(Path(run_dir) / PROVENANCE_FILE,
                      json.dumps(run_provenance(data, init_from, resumed, previous), indent=1) + "\n")


def provenance_files(folder: str | Path) -> dict[str, Path]:
    """A run's or a model's record, as ``save_model_dir``'s ``extra_files`` (none without one): a
    run's best/, last/ and avg/ carry it, and a model's copies (asr export, a package's systems)."""
    path = Path(folder) / PROVENANCE_FILE
    return {PROVENANCE_FILE: path} if path.is_file() else {}


def provenance_line(record: dict | None) -> str:
    """One line for ``asr summary``: the code that trained a model and the digests of its data."""
    if not record:
        return "trained: not recorded (no provenance.json: a model from before asr kept one)"
    code = record.get("asr") or {}
    by = f"asr {code.get('version', '?')}"
    if code.get("commit"):
        by += f" at {code['commit'][:10]}" + (" with uncommitted changes" if code.get("dirty") else "")
    resumed = len(record.get("resumed") or [])
    when = f"from {record.get('started') or 'an unrecorded start'}" + (f", resumed {resumed}x" if resumed else "")
    data = record.get("data") or {}
    named = {"train_manifest": "train", "valid_manifest": "valid", "init_from": "fine-tuned from weights"}
    digests = [f"{named.get(key, key)} {ident['path']} (sha1 {str(ident.get('sha1'))[:10]})"
               for key, ident in data.items() if isinstance(ident, dict) and "path" in ident]
    return f"trained: by {by} {when}" + ("; " + "; ".join(digests) if digests else "")
