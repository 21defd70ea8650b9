"""Configs as YAML: a file and ``section.key=value`` overrides read into a checked ``Config``
(each value coerced to its field's declared type, unknown keys refused), and a config written
back (a run's config.yaml, a model directory's)."""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from pathlib import Path

import yaml

from asr.atomic import write_text_atomic
from asr.config import Config, ConfigError


def coerce(name: str, value, annotation):
    """Convert a YAML value to a field's declared type, or raise ConfigError naming ``name``.
    Also checks the search settings a model stores in decoding.yaml."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is typing.Any:
        return value
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(name, value, inner[0])
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(coerce(name, v, args[0]) for v in value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-3" (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                number = None
            if number is not None and math.isfinite(number):
                return number
        raise ConfigError(f"{name}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    return value


# Path-valued settings: a shell leaves the ~ of `key=~/x` as it is, so it is expanded here.
PATH_KEYS = frozenset({"train.train_manifest", "train.valid_manifest", "train.output_dir", "train.init_from",
                       "train.phone_lexicon", "augment.noise_dir"})


def _expand_user(value: str) -> str:
    """``~/x`` -> the home's x; each of a comma-joined list (train.phone_lexicon takes several)."""
    return ",".join(os.path.expanduser(part) for part in value.split(",")) if value else value


def _build(cls, data: dict, prefix: str):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) in {prefix or 'config'}: {', '.join(unknown)}")
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, key)
        else:
            kwargs[name] = coerce(key, value, hint)
            if key in PATH_KEYS:
                kwargs[name] = _expand_user(kwargs[name])
    return cls(**kwargs)


def config_from_dict(data: dict) -> Config:
    return _build(Config, data, "")


def parse_overrides(overrides: list[str]) -> dict:
    """``["train.lr=1e-3", "model.cell=gru"]`` -> nested dict, values parsed as YAML."""
    nested: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"override key {key!r} must be section.name, e.g. train.lr")
        nested.setdefault(parts[0], {})[parts[1]] = yaml.safe_load(raw) if raw else ""
    return nested


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    data: dict = {}
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"{path}: a directory, not a config file (configs/*.yaml)")
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        except UnicodeDecodeError as e:  # e.g. an audio file given for the config
            raise ConfigError(f"{path}: not valid YAML: not UTF-8 text (byte {e.object[e.start]:#04x} at "
                              f"position {e.start})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of sections")
    data = _merge(data, parse_overrides(list(overrides)))
    return config_from_dict(data)


def save_config(config: Config, path: str | Path) -> None:
    """Written whole or not at all: a run's config.yaml is what resume and evaluate read back."""
    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
