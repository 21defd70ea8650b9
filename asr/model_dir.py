"""A trained model is a directory that loads without pickle::

    config.yaml         the full Config it was trained with
    model.safetensors   weights
    tokenizer.json      the output units (characters, or subword pieces with their sentencepiece model)
    cmvn.json           feature mean/std from the training set

Directories are written next to their destination and renamed into place, so a crash while
saving never leaves a half-written model where a good one was.

A package (``asr export``) records where it came from (config.yaml's manifests and run folder, the
manifest its weights were tuned on, ...) by paths that hold on another machine: ``make_portable``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from asr.atomic import atomic_dir, write_text_atomic
from asr.config import Config, ConfigError
from asr.config_files import PATH_KEYS, config_from_dict, read_yaml_file, save_config
from asr.model import AcousticModel
from asr.tokenizers import TOKENIZER_FILE, Tokenizer, TokenizerError, load_tokenizer

PRETRAINED_DIR = Path(__file__).parent / "pretrained" / "default"
# The checkout asr runs from (None when installed as a package): what a package's paths are relative to.
_SOURCE = Path(__file__).resolve().parent.parent
SOURCE_ROOT = _SOURCE if (_SOURCE / "pyproject.toml").is_file() else None
REQUIRED_FILES = ("config.yaml", "model.safetensors", TOKENIZER_FILE, "cmvn.json")
PROVENANCE_FILE = "provenance.json"  # what trained the weights (asr.provenance); make_portable rewrites it


class ModelDirError(ValueError):
    pass


@dataclass
class LoadedModel:
    config: Config
    model: AcousticModel
    tokenizer: Tokenizer
    path: Path
    half: bool = False  # its weights are stored as float16 (a copy keeps them so: float32 would add nothing)


def save_model_dir(path: str | Path, config: Config, model: AcousticModel,
                   tokenizer: Tokenizer, half: bool = False, extra_files: dict | None = None) -> Path:
    """Write a model directory atomically. ``half`` stores weights as float16 (half the size);
    ``extra_files`` maps names to text, to a Path to copy (e.g. decoding.yaml and a packaged LM) or
    to a function that writes the file at the path it is given (a training run's train_state.pt):
    they appear with the model, all at once."""
    with atomic_dir(path) as tmp:  # the directory appears whole: written aside, then renamed
        state = {k: v.detach().cpu().contiguous() for k, v in model.inference_state_dict().items()}
        if half:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        save_config(config, tmp / "config.yaml")
        tokenizer.save(tmp / TOKENIZER_FILE)
        model.frontend.normalizer.save(tmp / "cmvn.json")
        for name, content in (extra_files or {}).items():  # text to write, a file to copy, or a writer
            if isinstance(content, Path):
                shutil.copyfile(content, tmp / name)
                # token_priors.json: refused here, named as the user knows it; provenance.json is a
                # record, never a reason to refuse a model (asr.provenance)
                if name.endswith(".json") and name != PROVENANCE_FILE:
                    _json_object(content)
            elif callable(content):
                content(tmp / name)
            else:
                (tmp / name).write_text(content, encoding="utf-8")
        # safetensors (and torch.save) write 0600; a model is meant to be shared and packaged: each
        # file as open() makes config.yaml, by the umask
        mode = stat.S_IMODE((tmp / "config.yaml").stat().st_mode)
        for f in tmp.iterdir():
            if f.is_file():
                f.chmod(mode)
    return Path(path)


def check_model_dir(path: str | Path | None = None) -> Path:
    """``path`` (None: the built-in package) if it holds a model directory's files, else a
    ModelDirError saying what it is instead; reads none of them."""
    path = Path(path) if path is not None else PRETRAINED_DIR
    if path.is_file():
        raise ModelDirError(f"{path}: a file, not a model directory (config.yaml, model.safetensors, ...)")
    if not path.is_dir():
        raise ModelDirError(f"{path}: model directory not found")
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        for inner, what in (("best", "best model"), ("last", "last checkpoint")):  # asr train's output_dir
            if (path / inner / "model.safetensors").is_file():
                raise ModelDirError(f"{path}: a training run's folder, not a model directory: its {what} is "
                                    f"{path / inner}")
        raise ModelDirError(f"{path}: not a model directory (missing {', '.join(missing)})")
    return path


def load_model_dir(path: str | Path | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    path = check_model_dir(path)
    config = _read_config(path / "config.yaml")
    try:
        tokenizer = load_tokenizer(path / TOKENIZER_FILE)
    except TokenizerError as e:
        raise ModelDirError(str(e)) from None
    model = AcousticModel(config.features, config.model, len(tokenizer))
    weights = path / "model.safetensors"
    try:
        state = load_file(str(weights))
    except SafetensorError as e:
        raise ModelDirError(f"{weights}: not readable weights ({e})") from None
    reference = model.state_dict()
    _check_weights(weights, state, reference, len(tokenizer))
    model.load_state_dict({k: v.to(reference[k].dtype) for k, v in state.items()})
    try:
        model.frontend.normalizer.load(path / "cmvn.json")
    except ValueError as e:  # its checks name the file
        raise ModelDirError(str(e)) from None
    model.eval().to(device)
    half = all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    return LoadedModel(config, model, tokenizer, path, half)


def _read_config(path: Path) -> Config:
    data = read_yaml_file(path, ModelDirError, as_text=True) or {}  # as a config file is read
    try:
        return config_from_dict(data)
    except ConfigError as e:
        newer = " (a model from a newer asr?)" if str(e).startswith("unknown key") else ""
        raise ModelDirError(f"{path}: {e}{newer}") from None


def _check_weights(path: Path, state: dict, reference: dict, outputs: int) -> None:
    """One line naming what does not fit; load_state_dict's message lists every tensor on lines of its own."""
    head = reference.get("head.weight")
    stored = state.get("head.weight")
    if head is not None and stored is not None and stored.shape[:1] != head.shape[:1]:
        raise ModelDirError(f"{path}: weights for {stored.shape[0]} output units, but {TOKENIZER_FILE} has "
                            f"{outputs}: the tokenizer is not the one these weights were trained with")
    missing, unexpected = sorted(reference.keys() - state.keys()), sorted(state.keys() - reference.keys())
    resized = [k for k in reference.keys() & state.keys() if state[k].shape != reference[k].shape]
    problems = [f"{len(names)} {what} (e.g. {names[0]})" for names, what in (
        (missing, "missing"), (unexpected, "not in the model"), (sorted(resized), "of another shape")) if names]
    if problems:
        raise ModelDirError(f"{path}: weights do not fit config.yaml: {'; '.join(problems)}")
    for name, tensor in state.items():
        if reference[name].is_floating_point() and not tensor.is_floating_point():
            raise ModelDirError(f"{path}: {name} is stored as {tensor.dtype}, not floating point")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):  # a run that diverged
            raise ModelDirError(f"{path}: {name} holds NaN or infinite weights")


def portable_path(path: str, root: Path | None = SOURCE_ROOT, cwd: str | Path | None = None) -> str:
    """``path`` as a package records it: an absolute path in the checkout's folder, or beside it
    (``../shared/...``, where the recipes' corpus lies), relative to the checkout; else one under the
    current directory relative to it; any other (and a relative one, whose base is not known) as it is.
    A comma-joined list (train.phone_lexicon) is taken apart."""
    if "," in path:
        return ",".join(portable_path(part, root, cwd) for part in path.split(","))
    if not os.path.isabs(path):
        return path
    cwd = Path(os.getcwd() if cwd is None else cwd)
    # (base, the folder a path must lie in to be named from base); never all of the file system
    bases = [(root, root.parent), (root, root)] if root is not None else []
    bases = [(base, reach) for base, reach in bases + [(cwd, cwd)] if reach != Path(reach.anchor)]
    for candidate in dict.fromkeys((os.path.normpath(path), os.path.realpath(path))):  # as given, or its links followed
        for base, reach in bases:
            if Path(candidate).is_relative_to(reach):
                return os.path.relpath(candidate, base)
    return path


def make_portable(model_dir: str | Path) -> None:
    """Rewrite the provenance a package records (its systems' too, ``systemN/``) by ``portable_path``:
    config.yaml's path settings, the ``manifest``/``source_lm``/``packaged_from`` that
    decoding.yaml, rescoring.yaml and token_priors.json name, and the data provenance.json names
    (that of the weights it was fine-tuned from too). Only where things came from: nothing
    reads these to find a file. The paths that do (decoding.yaml's ``lm`` and ``tuned.lm``,
    rescoring.yaml's ``models``) are relative to the package already, or name files outside it."""
    base = Path(model_dir)
    for folder in [base, *sorted(p for p in base.glob("system[0-9]*") if p.is_dir())]:
        _rewrite_yaml(folder / "config.yaml", _portable_config)
        _rewrite_yaml(folder / "decoding.yaml", _portable_tuned)
        _rewrite_yaml(folder / "rescoring.yaml", _portable_tuned)
        _rewrite_json(folder / "token_priors.json", _portable_manifest)
        try:
            _rewrite_json(folder / PROVENANCE_FILE, _portable_provenance)
        except ModelDirError:  # carried as it is: a record, never a reason to refuse a model (asr.provenance)
            pass


def _portable_manifest(data: dict) -> None:
    if isinstance(data.get("manifest"), str):
        data["manifest"] = portable_path(data["manifest"])


def _portable_provenance(record: dict) -> None:
    """A training record's data paths (made portable when it was written, from that run's folder),
    now from this one; the record of the weights it started from in turn."""
    data = record.get("data")
    for ident in data.values() if isinstance(data, dict) else ():
        if isinstance(ident, dict) and isinstance(ident.get("path"), str):
            ident["path"] = portable_path(ident["path"])
            if isinstance(ident.get("provenance"), dict):
                _portable_provenance(ident["provenance"])


def _json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ModelDirError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise ModelDirError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _portable_config(data: dict) -> None:
    for name in PATH_KEYS:
        section, key = name.split(".")
        values = data.get(section)
        if isinstance(values, dict) and isinstance(values.get(key), str):
            values[key] = portable_path(values[key])


def _portable_tuned(data: dict) -> None:
    tuned = data.get("tuned")
    for key in ("manifest", "source_lm", "packaged_from") if isinstance(tuned, dict) else ():
        if isinstance(tuned.get(key), str):
            tuned[key] = portable_path(tuned[key])


def _rewrite_json(path: Path, change) -> None:
    """Apply ``change`` to the JSON object at ``path`` (when there is one), written as asr.priors and
    asr.provenance write theirs."""
    if path.is_file():
        data = _json_object(path)
        change(data)
        write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def _rewrite_yaml(path: Path, change) -> None:
    """Apply ``change`` to the YAML mapping at ``path`` (when there is one), keeping its opening comments."""
    if not path.is_file():
        return
    data = read_yaml_file(path, ModelDirError)  # a broken file: one error naming it, as when it loads
    if not isinstance(data, dict):
        return
    change(data)
    text = path.read_text(encoding="utf-8")
    header = "".join(takewhile(lambda line: line.startswith("#"), text.splitlines(keepends=True)))
    write_text_atomic(path, header + yaml.safe_dump(data, sort_keys=False))
