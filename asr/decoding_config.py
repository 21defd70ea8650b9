"""MODEL/decoding.yaml: a model's beam search settings, and the LM packaged with it.

``asr lm tune`` stores the LM weight and word score that did best on a dev set; ``asr export
--lm`` copies the LM into the model directory (a quantized KenLM binary when build_binary is
installed, with the word list a binary lacks) and names it here, by a path relative to the
directory, so a copied model keeps its LM. Plain ``asr transcribe`` then searches with it::

    lm: lm.bin
    lexicon: lexicon.txt
    lm_weight: 0.75
    word_score: 1.0
    beam_size: 50
    tuned: {lm: lm.bin, manifest: data/valid.jsonl, wer: 0.61, ...}
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import typing
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import yaml

from asr.arpa import inspect_lm
from asr.atomic import write_text_atomic
from asr.config import ConfigError
from asr.config_files import coerce, read_yaml_file, with_suggestion
from asr.lexicon import lexicon_from_words, read_lexicon, write_lexicon
from asr.lm import LMError, kenlm_tool
from asr.tokenizers import Tokenizer

if TYPE_CHECKING:
    from asr.beam_search import BeamSearchDecoder, BeamSearchOptions

# beam_search (flashlight, torchaudio's decoder: ~1.2 s to import) is imported only where a search
# is built, so that choosing greedy decoding from decoding.yaml stays cheap.
DECODING_FILE = "decoding.yaml"
PRIORS_FILE = "token_priors.json"  # asr.priors writes it; prior_scale > 0 needs it
PACKAGE_KEYS = {"lm", "lexicon", "tuned"}  # decoding.yaml's keys besides BeamSearchOptions' fields


def read_decoding_defaults(model_dir: str | Path | None) -> dict:
    """Settings that ``asr lm tune`` stored in MODEL/decoding.yaml ({} when there are none)."""
    if model_dir is None or not (Path(model_dir) / DECODING_FILE).is_file():
        return {}
    path = Path(model_dir) / DECODING_FILE
    data = read_yaml_file(path, LMError) or {}  # one line naming the file, as configs say it
    if not isinstance(data, dict):
        raise LMError(f"{path}: expected a mapping of settings")
    if not isinstance(data.get("tuned") or {}, dict):  # its readers ask it for keys
        raise LMError(f"{path}: tuned: expected a mapping of what `asr lm tune` recorded, got {data['tuned']!r}")
    return data


def write_decoding_defaults(model_dir: str | Path, settings: dict) -> Path:
    """Write MODEL/decoding.yaml atomically (a reader never sees half a file)."""
    return write_text_atomic(Path(model_dir) / DECODING_FILE, _decoding_text(settings))


def _decoding_text(settings: dict) -> str:
    return ("# written by `asr lm tune` / `asr export --lm`; beam search starts from these settings\n"
            + yaml.safe_dump(settings, sort_keys=False))


def resolve_options(model_dir: str | Path | None, lm: str | Path | None, **explicit
                    ) -> tuple[BeamSearchOptions, list[str]]:
    """Defaults < MODEL/decoding.yaml (with an LM: the weights were tuned for one) < ``explicit``.

    ``explicit`` values that are None are not given. Returns the options and notes for the user.
    """
    from asr.beam_search import BeamSearchOptions

    names = {f.name for f in fields(BeamSearchOptions)}
    unknown = set(explicit) - names
    if unknown:
        raise TypeError(f"unknown beam search options: {', '.join(sorted(unknown))}")
    values, notes = {}, []
    stored = read_decoding_defaults(model_dir) if lm else {}
    if stored:
        values.update(_checked(Path(model_dir) / DECODING_FILE, stored))
        if _tuned_for_other_lm(model_dir, stored, lm):
            notes.append(f"{Path(model_dir) / DECODING_FILE}: settings were tuned with {stored['tuned']['lm']}, "
                         f"not {lm}")
    values.update({k: v for k, v in explicit.items() if v is not None})
    return BeamSearchOptions(**values), notes


def _checked(path: Path, stored: dict) -> dict:
    """decoding.yaml's search settings with the types and ranges BeamSearchOptions declares: a
    hand-edited ``beam_size: abc`` or ``beam_size: 0`` fails here, naming the file and key, not
    deep inside the search or without the file."""
    from asr.beam_search import BeamSearchOptions

    hints = typing.get_type_hints(BeamSearchOptions)
    # a misspelled key (lm_wieght) was ignored without a word, the search running at the default
    unknown = sorted(set(stored) - set(hints) - PACKAGE_KEYS, key=str)
    if unknown:
        meant = with_suggestion(set(hints) | PACKAGE_KEYS)
        raise LMError(f"{path}: unknown setting(s): {', '.join(map(meant, unknown))}")
    try:
        checked = {key: coerce(key, value, hints[key]) for key, value in stored.items() if key in hints}
        BeamSearchOptions(**checked)  # its range checks, on the stored values alone
    except (ConfigError, LMError) as e:
        raise LMError(f"{path}: {e}") from None
    return checked


def _tuned_for_other_lm(model_dir: str | Path, stored: dict, lm: str | Path) -> bool:
    """True when decoding.yaml's weights were tuned with an LM other than ``lm`` (a relative
    ``tuned.lm`` is the packaged one, inside the model directory)."""
    tuned_lm = (stored.get("tuned") or {}).get("lm")
    return bool(tuned_lm) and not names_file(model_dir, tuned_lm, lm)


def names_file(model_dir: str | Path, name: str | Path, path: str | Path) -> bool:
    """True when ``name``, as decoding.yaml writes it (relative to the model directory, or
    absolute), is the file at ``path``."""
    return (Path(model_dir) / str(name)).resolve() == Path(path).resolve()


def choose_decoder(name: str, model_dir: str | Path | None, beam_asked: bool) -> str:
    """``auto`` -> ``beam`` when beam options are given or the model has a packaged LM, else ``greedy``."""
    if name != "auto":
        return name
    return "beam" if beam_asked or packaged_lm(model_dir) is not None else "greedy"


def packaged_lm(model_dir: str | Path | None) -> tuple[Path, Path | str | None] | None:
    """(LM, lexicon) packaged in MODEL, or None. The lexicon is a path, "none" or None (ARPA words)."""
    stored = read_decoding_defaults(model_dir)
    if not stored.get("lm"):
        return None
    base = Path(model_dir)
    lm = base / str(stored["lm"])
    lexicon = stored.get("lexicon")
    if lexicon and str(lexicon).lower() != "none":
        lexicon = base / str(lexicon)
    for name, path in ((stored["lm"], lm), (stored.get("lexicon"), lexicon)):
        if isinstance(path, Path) and path.is_symlink() and not path.exists():  # `ls MODEL` lists it: say why
            raise LMError(f"{base / DECODING_FILE} names {name}, a link to "
                          f"{os.path.normpath(os.path.join(path.parent, os.readlink(path)))}, which does not exist")
        if isinstance(path, Path) and not path.is_file():  # where it was looked for: ../lm.bin is not in MODEL
            raise LMError(f"{base / DECODING_FILE} names {name}, which is missing from "
                          f"{os.path.normpath(path.parent)}")
    return lm, lexicon


def packaged_lexicon_for(model_dir: str | Path | None, lm: str | Path | None) -> Path | str | None:
    """The lexicon MODEL's package searches ``lm`` with when ``lm`` is its packaged LM, named by
    its path (re-tuning a package: ``--lm PKG/lm.bin``, whose binary has no word list), else None."""
    stored = read_decoding_defaults(model_dir) if model_dir is not None and lm else {}
    if not stored.get("lm") or str(lm).lower() == "none" or not names_file(model_dir, stored["lm"], lm):
        return None
    return packaged_lm(model_dir)[1]


def packaged_files(model_dir: str | Path) -> list[Path]:
    """decoding.yaml, the files it names and the token priors: what a copy of the model directory must carry."""
    base = Path(model_dir)
    priors = [base / PRIORS_FILE] if (base / PRIORS_FILE).is_file() else []
    if not (base / DECODING_FILE).is_file():
        return priors
    lm_files = packaged_lm(base)
    return [base / DECODING_FILE] + [p for p in (lm_files or ()) if isinstance(p, Path)] + priors


def carried_files(model_dir: str | Path) -> dict[str, Path | str]:
    """``packaged_files`` by the name each takes in a copy of the model directory, as
    ``save_model_dir``'s ``extra_files``: an LM or lexicon named by a path outside the directory
    (a package's systems share its LM as ../lm.bin) is copied beside the model, and decoding.yaml,
    given as text, names it there (else the copy named a file it did not have)."""
    base = Path(model_dir)
    files = {p.name: p for p in packaged_files(base)}
    if DECODING_FILE not in files:
        return files
    stored = read_decoding_defaults(base)
    named = {key: str(stored[key]) for key in ("lm", "lexicon") if stored.get(key)}
    moved = {key: Path(name).name for key, name in named.items()
             if name.lower() != "none" and Path(name).name != name}
    if not moved:
        return files
    tuned = stored.get("tuned") or {}
    if "lm" in moved and tuned.get("lm") and names_file(base, tuned["lm"], base / str(stored["lm"])):
        stored["tuned"] = {**tuned, "lm": moved["lm"]}  # tuned with the packaged LM: still so in the copy
    files[DECODING_FILE] = _decoding_text({**stored, **moved})
    return files


def load_log_priors(model_dir: str | Path | None, vocab_size: int, tokens: Sequence[str] | None = None
                    ) -> list[float] | None:
    """log p(k) from MODEL/token_priors.json (``asr priors``), or None when the model has none;
    refused when estimated for another model: of another size, or (a file that keeps them) of
    other ``tokens``."""
    path = Path(model_dir) / PRIORS_FILE if model_dir is not None else None
    if path is None or not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        priors = [float(p) for p in stored["priors"]]
        theirs = stored.get("tokens")  # files from before they were kept: none
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise LMError(f"{path}: not a token priors file ({e})") from None
    # a NaN prior (a model whose outputs were NaN) kept its token out of every prior-corrected
    # transcript without a word; all NaN emptied them (1e-6: room for rounding in the file)
    bad = next((i for i, p in enumerate(priors) if not 0.0 <= p <= 1.0 + 1e-6), None)
    if bad is not None:
        raise LMError(f"{path}: token {bad}'s prior is {priors[bad]}, not a probability (run `asr priors "
                      f"{model_dir} TRAIN_MANIFEST` again, with a model whose outputs are finite)")
    logs = [math.log(max(p, 1e-10)) for p in priors]
    if len(logs) != vocab_size:
        raise LMError(f"{path}: {len(logs)} priors for a model with {vocab_size} tokens (estimated for another "
                      f"model: run `asr priors {model_dir} TRAIN_MANIFEST` again)")
    if tokens is not None and isinstance(theirs, list) and list(theirs) != list(tokens):
        k = next((k for k, (a, b) in enumerate(zip(tokens, theirs)) if a != b), min(len(tokens), len(theirs)))
        here, there = (tokens[k] if k < len(tokens) else None), (theirs[k] if k < len(theirs) else None)
        raise LMError(f"{path}: estimated for another model's tokens (token {k} is {here!r} here, {there!r} "
                      f"there): run `asr priors {model_dir} TRAIN_MANIFEST` again")
    return logs


def log_priors_for(model_dir: str | Path | None, vocab_size: int, prior_scales: Sequence[float],
                   tokens: Sequence[str] | None = None) -> list[float] | None:
    """``load_log_priors``, refused (naming the file) when a non-zero scale needs priors the model lacks
    or has for another model; at scale 0 alone such a file is not needed, and blocks nothing."""
    scale = next((s for s in prior_scales if s), 0.0)
    try:
        logs = load_log_priors(model_dir, vocab_size, tokens)
    except LMError:
        if scale:
            raise
        return None
    if scale and logs is None:
        where = Path(model_dir) / PRIORS_FILE if model_dir is not None else PRIORS_FILE
        raise LMError(f"{where}: missing, and prior_scale is {scale:g}: run `asr priors "
                      f"{model_dir or 'MODEL'} TRAIN_MANIFEST`")
    return logs


def package_lm(model_dir: str | Path, lm: str | Path, tokenizer: Tokenizer,
               lexicon: str | Path | None = None, binary: bool = True) -> list[str]:
    """Put ``lm`` into MODEL so that plain ``asr transcribe`` searches with it; returns notes.

    An ARPA LM becomes a KenLM trie with 8-bit quantization and compressed pointers (a 19 MB
    4-gram ARPA -> 2.8 MB; speechocean762's 119 MB mix -> 21.7 MB, 28.6 MB without ``-a``, the
    same scores and speed) when build_binary is installed, else it is copied as is. A lexicon is
    packaged as the search reads it (asr/lexicon.py: normalized, respelled, without repeats). The
    notes say what the search will leave out or score as <unk>, as transcribe would.
    """
    base, info, notes = Path(model_dir), inspect_lm(lm), []
    stored = read_decoding_defaults(base)
    tuned_lm = (stored.get("tuned") or {}).get("lm")
    tuned_elsewhere = _tuned_for_other_lm(base, stored, lm)
    if "lm_weight" not in stored:
        notes.append(f"{base}: no tuned LM weight yet; run `asr lm tune` on a dev set")
    elif tuned_elsewhere:
        notes.append(f"{base / DECODING_FILE}: settings were tuned with {tuned_lm}, not {lm}")
    if info.binary and lexicon is None:
        raise LMError(f"{lm}: a binary KenLM file has no readable word list; give a lexicon (or 'none')")
    if lexicon is None and info.is_char_lm and not info.is_token_lm(tokenizer):  # refused before anything changes
        raise LMError(f"{lm}: a character LM, and this model's tokens are {tokenizer.kind} pieces: build an LM over "
                      "them (asr lm build --unit token --tokenizer MODEL) or give a word LM")
    given = None  # a lexicon file, read before anything changes and packaged as the search reads it
    if lexicon is not None and str(lexicon).lower() != "none":
        from asr.search_space import lm_knows

        report = read_lexicon(lexicon, tokenizer, lm_knows(info))
        notes += report.notes(str(lexicon))
        given = report.lexicon
    for old in ("lm.bin", "lm.arpa", "lexicon.txt"):
        (base / old).unlink(missing_ok=True)
    build_binary = kenlm_tool("build_binary") if binary and not info.binary else None
    if build_binary:
        target = base / "lm.bin"
        proc = subprocess.run([build_binary, "-a", "22", "-q", "8", "-b", "8", "trie", str(lm), str(target)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise LMError(f"{lm}: build_binary failed: {_kenlm_reason(proc.stderr)}")
        if lexicon is None:
            if info.searches_lexicon_free(tokenizer):
                lexicon = "none"
            else:  # the binary has no word list: keep the ARPA's words as the lexicon
                report = lexicon_from_words(info.words, tokenizer, source=str(lm))
                if report.skipped:  # gone from the package: said now, as transcribe says it of an ARPA file
                    notes.append(report.summary(str(lm)))
                lexicon = write_lexicon(report.lexicon, base / "lexicon.txt")
    else:
        target = base / ("lm.bin" if info.binary else "lm.arpa")
        shutil.copyfile(lm, target)
    if given is not None:
        lexicon = write_lexicon(given, base / "lexicon.txt")
    settings = {"lm": target.name}
    if lexicon is not None:
        settings["lexicon"] = "none" if str(lexicon).lower() == "none" else "lexicon.txt"
    settings.update({k: v for k, v in stored.items() if k not in ("lm", "lexicon")})
    if tuned_lm and not tuned_elsewhere:
        settings["tuned"] = {**stored["tuned"], "lm": target.name, "source_lm": str(tuned_lm)}
    write_decoding_defaults(base, settings)
    from asr.search_space import SearchSpace

    space = SearchSpace.load(tokenizer, *packaged_lm(base))  # a package that cannot load fails here, not later
    return notes + [note for note in space.notes if note not in notes]


def _kenlm_reason(stderr: str) -> str:
    """Why a KenLM tool failed, from its stderr: the line after "... threw SomeException." (its
    last line is a bare "ERROR")."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and line.strip() != "ERROR"]
    threw = next((i for i, line in enumerate(lines) if " threw " in line), None)
    return " ".join(lines[threw + 1: threw + 2] if threw is not None else lines[-1:]) or "no reason given"


def model_decoder(model_dir: str | Path | None, tokenizer: Tokenizer, lm: str | Path | None = None,
                  lexicon: str | Path | None = None, hotwords=None, workers: int = 1,
                  options: BeamSearchOptions | None = None, **explicit) -> tuple[BeamSearchDecoder, list[str]]:
    """Beam search for a model directory, and notes for the user.

    ``lm=None`` takes the LM packaged in the model, if any; ``lm="none"`` searches without one.
    Settings: ``options`` as given, else defaults < decoding.yaml < ``explicit`` (``resolve_options``).
    """
    if lm is None and model_dir is not None and (packaged := packaged_lm(model_dir)) is not None:
        lm, packaged_lexicon = packaged
        lexicon = lexicon if lexicon is not None else packaged_lexicon
    elif isinstance(lm, str) and lm.lower() == "none":
        lm = None
    elif lexicon is None:
        lexicon = packaged_lexicon_for(model_dir, lm)
    from asr.beam_search import BeamSearchDecoder

    resolved, notes = resolve_options(model_dir, lm, **explicit)
    options = options or resolved
    decoder = BeamSearchDecoder(tokenizer, lm=lm, lexicon=lexicon, hotwords=hotwords, options=options,
                                workers=workers, log_priors=log_priors_for(model_dir, len(tokenizer),
                                                                           (options.prior_scale,), tokenizer.tokens))
    return decoder, notes + decoder.notes
