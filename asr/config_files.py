"""Configs as YAML: a file and ``section.key=value`` overrides read into a checked ``Config``
(each value coerced to its field's declared type, unknown keys refused), and a config written
back (a run's config.yaml, a model directory's)."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import typing
from pathlib import Path

import yaml

from asr.atomic import write_text_atomic
from asr.config import Config, ConfigError, check_new_run


def _construct_unique_mapping(loader, node):
    seen = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: its keys may be overridden here
            continue
        key = loader.construct_object(key_node)
        if not isinstance(key, typing.Hashable):
            break  # refused as such by construct_mapping
        if key in seen:
            raise yaml.constructor.ConstructorError(  # the repeated key's place says it all: no context
                None, None, f"the key {key!r} is given twice (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe YAML, but a key given twice is refused (PyYAML keeps the last one silently)."""


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:map", _construct_unique_mapping)


class _TextLoader(_UniqueKeyLoader):
    """YAML that leaves every plain scalar but null as its text, for ``coerce`` to read by the field's
    type: PyYAML's YAML 1.1 would make ``output_dir: 0755`` the number 493, ``2024-05-01`` a date,
    ``num_layers: 010`` 8 and ``lr: 1:30`` 90."""


_KEPT_TAGS = ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")  # `<<: *defaults` still merges
_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag in _KEPT_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def read_yaml_text(text: str):
    """A config's YAML: scalars as text (null as None), a repeated key refused (yaml.YAMLError)."""
    return yaml.load(text, Loader=_TextLoader)


def read_yaml_file(path: str | Path, error: type[Exception], as_text: bool = False):
    """The YAML at ``path`` (None when empty), a repeated key refused; every problem is one ``error``
    naming the file: ``FILE:LINE:COLUMN: problem``, ``FILE: unreadable (...)`` or ``FILE: not valid
    YAML: not UTF-8 text``. ``as_text`` leaves scalars as text for ``coerce`` (``read_yaml_text``)."""
    text = None
    try:
        text = Path(path).read_text(encoding="utf-8")
        return read_yaml_text(text) if as_text else yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        raise error(yaml_error_line(path, e, text)) from None
    except UnicodeDecodeError as e:  # e.g. an audio file given for the config
        raise error(f"{path}: not valid YAML: not UTF-8 text (byte {e.object[e.start]:#04x} at "
                    f"position {e.start})") from None
    except OSError as e:
        raise error(f"{path}: unreadable ({e.strerror or e})") from None


def yaml_problem(error: yaml.YAMLError, column_offset: int | None = None) -> tuple[str, str] | None:
    """(where, problem) of PyYAML's error: ``LINE:COLUMN`` (1-based) and the problem on one line, with
    where its context began (``expected ',' or ']' ... (while parsing a flow sequence at 1:8)``); None
    when it names no place. With ``column_offset``, the YAML is one line quoted after that many
    characters (an override's value after ``key=``), and the place is ``column N`` of the quoted text.
    PyYAML's own message quotes the source line with a caret under it, over several lines."""
    def place(mark) -> str:
        if column_offset is None:
            return f"{mark.line + 1}:{mark.column + 1}"
        return f"column {column_offset + mark.column + 1}"

    mark = getattr(error, "problem_mark", None)
    if mark is None:
        return None
    context, where = getattr(error, "context", None), getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or context or "not valid YAML"
    if context and where is not None and (where.line, where.column) != (mark.line, mark.column):
        problem = f"{problem} ({context} at {place(where)})"
    return place(mark), " ".join(problem.split())


def yaml_error_line(path, error: yaml.YAMLError, text: str | None = None) -> str:
    """``FILE:LINE:COLUMN: problem``, as compilers name a mistake; ``FILE: not valid YAML: ...`` without a place.
    ``text``, the YAML read, places a control character (PyYAML gives only its offset)."""
    if found := yaml_problem(error):
        return f"{path}:{found[0]}: {found[1]}"
    if isinstance(error, yaml.reader.ReaderError) and text is not None and isinstance(error.character, int):
        line, column = text.count("\n", 0, error.position) + 1, error.position - text.rfind("\n", 0, error.position)
        return f"{path}:{line}:{column}: unacceptable character #x{error.character:04x}: {error.reason}"
    return f"{path}: not valid YAML: {' '.join(str(error).split())}"


_EXPECTED = {bool: "true/false", int: "an integer", float: "a number"}
_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_INT = re.compile(r"[-+]?[0-9]+(\.0*)?")  # decimal, as written; an integral 7.0 too
_YAML_INF = re.compile(r"([-+]?)\.inf", re.IGNORECASE)


def _float_text(text: str) -> float | None:
    """YAML's spellings of a number (``1e-3``, ``.inf``, ``.nan``), else None."""
    if infinite := _YAML_INF.fullmatch(text):
        return -math.inf if infinite.group(1) == "-" else math.inf
    if text.lower() == ".nan":
        return math.nan  # refused by name by the field's range check
    try:
        number = float(text)
    except ValueError:
        return None
    # Python also reads "inf", "nan" and "1_000"; YAML does not
    return number if math.isfinite(number) and "_" not in text else None


def coerce(name: str, value, annotation):
    """Convert a YAML value (typed, or text as ``read_yaml_text`` leaves it) to a field's declared type,
    or raise ConfigError naming ``name``. Also checks the search settings a model stores in decoding.yaml."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is typing.Any:
        return value
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        # `features.f_max=`, as `f_max:` in a file; Python's None, as nanoGPT-style overrides write it
        if (value is None or value == "" or value in ("None", "none", "NONE")) and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(name, value, inner[0])
    if origin is tuple:
        if isinstance(value, str) and "," in value:  # speed_factors=0.9,1.0,1.1 as well as [0.9, 1.0, 1.1]
            value = [part.strip() for part in value.split(",")]
        if not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(coerce(name, v, args[0]) for v in value)
    if value == "" and annotation in _EXPECTED:  # `key=`: only a setting that may be None takes it (above)
        raise ConfigError(f"{name}: expected {_EXPECTED[annotation]}, got an empty value")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOLS:
            return _BOOLS[value.lower()]
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT.fullmatch(value.strip()):
            return int(float(value)) if "." in value else int(value)
        if isinstance(value, str) and (number := _float_text(value.strip())) is not None and number.is_integer():
            return int(number)  # 1.0e+2, as YAML reads it
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and (number := _float_text(value.strip())) is not None:
            return number
        if isinstance(value, str) and value.strip().lstrip("+-").lower() in ("inf", "infinity"):
            raise ConfigError(f"{name}: expected a number, got {value!r} (YAML writes infinity as .inf, -.inf)")
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
    unknown = sorted(set(data) - names, key=str)
    if unknown:
        raise ConfigError(f"unknown key(s) in {prefix or 'config'}: {', '.join(map(with_suggestion(names), unknown))}")
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


def with_suggestion(names):
    """key -> "key (did you mean name?)" for the closest of ``names`` (one differing in case first), else key."""
    def named(key) -> str:
        same = [n for n in sorted(names) if n.lower() == str(key).lower()]  # `train.LR`: too short for difflib
        close = same or difflib.get_close_matches(str(key), sorted(names), n=1)
        return f"{key} (did you mean {close[0]}?)" if close else str(key)
    return named


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
        try:
            value = read_yaml_text(raw) if raw else ""
        except yaml.YAMLError as e:
            as_typed = repr(item)[1:-1] == item  # else the quote escapes a newline, tab, quote...: count in the value
            if found := yaml_problem(e, column_offset=len(key) + 1 if as_typed else None):
                problem = f" at {found[0]}{'' if as_typed else ' of its value'}: {found[1]}"
            else:
                problem = f" ({' '.join(str(e).split())})"
            raise ConfigError(f"override {item!r}: not a YAML value{problem}") from None
        nested.setdefault(parts[0], {})[parts[1]] = value  # a repeated key: the last one wins
    return nested


def _merge(base: dict, overrides: dict) -> dict:
    """The file's sections with the overrides' keys replacing its own. Merged one level deep only:
    an override's value that is itself a mapping (`train.lr={1e-3}`) replaces the file's, for
    coerce to refuse by name, rather than being merged into a number and dropped."""
    out = dict(base)
    for section, values in overrides.items():
        if out.get(section) is None or isinstance(out[section], dict):
            out[section] = {**(out.get(section) or {}), **values}
        # else the file's `model: lstm` is kept, for config_from_dict to refuse naming the file
    return out


def _new_run_config(data: dict, resume: bool = False) -> Config:
    config = config_from_dict(data)
    check_new_run(config, resume)
    return config


def load_config(path: str | Path | None = None, overrides: list[str] = (), resume: bool = False) -> Config:
    """``path`` (YAML) with ``overrides`` (``section.name=value``), checked as a new run's config, or
    (``resume``) as that of a run that goes on: asr.config.check_new_run."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"{path}: a directory, not a config file (configs/*.yaml)")
        if not path.exists():
            raise ConfigError(f"{path}: config file not found")
        if not path.is_file():  # `<(...)`: read once here, then empty to each process of --gpus N
            raise ConfigError(f"{path}: not a regular file (a pipe or device): give the config as a file")
        data = read_yaml_file(path, ConfigError, as_text=True) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of sections")
    from_file = data
    data = _merge(data, parse_overrides(list(overrides)))
    try:
        return _new_run_config(data, resume)
    except ConfigError as e:
        if path is None:
            raise
        if overrides:  # the file's own mistake, or one the overrides made?
            try:
                _new_run_config(from_file, resume)
            except ConfigError:
                pass
            else:
                raise ConfigError(f"{e} (from the overrides {' '.join(overrides)} to {path})") from None
        raise ConfigError(f"{path}: {e}") from None


def save_config(config: Config, path: str | Path) -> None:
    """Written whole or not at all: a run's config.yaml is what resume and evaluate read back."""
    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
