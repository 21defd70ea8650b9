"""A trained model is a directory that loads without pickle::

    config.yaml         the full Config it was trained with
    model.safetensors   weights
    tokenizer.json      the output units (characters, or subword pieces with their sentencepiece model)
    cmvn.json           feature mean/std from the training set

Directories are written next to their destination and renamed into place, so a crash while
saving never leaves a half-written model where a good one was.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from asr.atomic import atomic_dir
from asr.config import Config, ConfigError, config_from_dict, save_config
from asr.model import AcousticModel
from asr.tokenizers import TOKENIZER_FILE, Tokenizer, TokenizerError, load_tokenizer

PRETRAINED_DIR = Path(__file__).parent / "pretrained" / "default"
REQUIRED_FILES = ("config.yaml", "model.safetensors", TOKENIZER_FILE, "cmvn.json")


class ModelDirError(ValueError):
    pass


@dataclass
class LoadedModel:
    config: Config
    model: AcousticModel
    tokenizer: Tokenizer
    path: Path


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
            elif callable(content):
                content(tmp / name)
            else:
                (tmp / name).write_text(content, encoding="utf-8")
        for f in tmp.iterdir():
            f.chmod(0o644)  # safetensors writes 0600; a model is meant to be shared and packaged
    return Path(path)


def load_model_dir(path: str | Path | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    path = Path(path) if path is not None else PRETRAINED_DIR
    if path.is_file():
        raise ModelDirError(f"{path}: a file, not a model directory (config.yaml, model.safetensors, ...)")
    if not path.is_dir():
        raise ModelDirError(f"{path}: model directory not found")
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        raise ModelDirError(f"{path}: not a model directory (missing {', '.join(missing)})")
    try:
        config = config_from_dict(yaml.safe_load((path / "config.yaml").read_text()) or {})
    except (ConfigError, yaml.YAMLError) as e:
        raise ModelDirError(f"{path / 'config.yaml'}: {e}") from None
    try:
        tokenizer = load_tokenizer(path / TOKENIZER_FILE)
    except TokenizerError as e:
        raise ModelDirError(str(e)) from None
    model = AcousticModel(config.features, config.model, len(tokenizer))
    try:
        state = load_file(str(path / "model.safetensors"))
    except SafetensorError as e:
        raise ModelDirError(f"{path / 'model.safetensors'}: not readable weights ({e})") from None
    reference = model.state_dict()
    state = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ModelDirError(f"{path / 'model.safetensors'}: weights do not fit config.yaml ({e})") from None
    model.frontend.normalizer.load(path / "cmvn.json")
    model.eval().to(device)
    return LoadedModel(config, model, tokenizer, path)
