"""N-gram language models for beam search: estimate, write and read ARPA files, check LM files.

``build_lm`` uses KenLM's ``lmplz`` when it is on PATH and the modified Kneser-Ney estimator
here otherwise (interpolated, Chen & Goodman 1998, the recipe lmplz follows): adjusted counts
(continuation counts below the highest order, raw counts for n-grams that start with ``<s>``),
three discounts per order from count-of-counts, interpolation down to a uniform distribution,
and backoff weights equal to the interpolation weights, so that the ARPA file gives exactly the
interpolated probabilities. Probabilities in ARPA files are log10.

A word LM has words as its units, for lexicon-constrained beam search. For lexicon-free search
the LM's units are the model's own: a character LM (``unit="char"``) has characters with ``|``
between words, and a token LM (``unit="token"``, given the model's tokenizer) has whatever the
tokenizer spells words with (characters or subword pieces, NeMo's "token-level n-gram"), so a
subword model can write words no lexicon lists.

Text and ARPA files may be gzip-compressed (recognized by their first bytes): public LMs and
corpora ship as ``.gz``. Reading, writing and checking ARPA files is asr/arpa.py.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from asr.arpa import BOS, EOS, SPECIAL, UNK, LMError, NgramModel, open_text, reading, write_arpa
from asr.atomic import atomic_open
from asr.manifest import ManifestError, manifest_row
from asr.text import WORD_SEP, UnknownCharacterError, normalize_text

if TYPE_CHECKING:
    from asr.tokenizers import Tokenizer

UNITS = ("word", "char", "token")
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz --discount_fallback's values
KENLM_MAX_ORDER = 6  # what the KenLM inside flashlight-text's wheels was compiled for


def unspellable(tokenizer: "Tokenizer") -> str:
    """What a sentence ``tokenizer`` leaves out has, for messages: a phone tokenizer spells words
    by their pronunciations, not by their letters."""
    if getattr(tokenizer, "kind", None) == "phone":
        return "words the tokenizer has no pronunciation for"
    return "characters the tokenizer cannot spell"


def read_sentences(paths: Iterable[str | Path], unit: str = "word", tokenizer: "Tokenizer | None" = None,
                   skipped: list[str] | None = None, empty: list[str] | None = None) -> Iterator[list[str]]:
    """Normalized sentences from text files (one per line) or manifests (JSON lines: ``text``),
    plain or gzipped, as words, characters or ``tokenizer``'s tokens. With tokens, a sentence the
    tokenizer cannot spell is left out and its ``file:line`` appended to ``skipped``; a file that
    gave no sentence is appended to ``empty``."""
    if unit not in UNITS:
        raise LMError(f"unknown LM unit {unit!r}; use {', '.join(UNITS)}")
    if unit == "token" and tokenizer is None:
        raise LMError("a token LM is built with the model's tokenizer: give one (asr lm build --tokenizer MODEL)")
    for path in paths:
        path = Path(path)
        if path.is_dir():
            raise LMError(f"{path}: a directory, not a text file or manifest")
        if not path.is_file():
            raise LMError(f"{path}: text file not found")
        given = 0
        with open_text(path) as f, reading(path):
            for sentence in _sentences(path, f, unit, tokenizer, skipped):
                given += 1
                yield sentence
        if not given and empty is not None:
            empty.append(str(path))


def _name_without_gz(path: Path) -> str:
    name = path.name.lower()
    return name[:-3] if name.endswith(".gz") else name


def _looks_like_manifest(line: str) -> bool:
    """A JSON object with a ``text`` field: no sentence of a plain-text corpus is one."""
    if not line.lstrip().startswith("{"):
        return False
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to read: text
        return False
    return isinstance(row, dict) and "text" in row


def manifest_text(line: str, where: str) -> str:
    """The ``text`` of a manifest line, checked as asr.manifest reads manifests (a bad one is an LMError)."""
    try:
        return manifest_row(line, where, required=("text",))["text"]
    except ManifestError as e:
        raise LMError(str(e)) from None


def _sentences(path: Path, lines: Iterable[str], unit: str, tokenizer, skipped) -> Iterator[list[str]]:
    # A *.jsonl file is a manifest; any other one is when its first line is a manifest line (NeMo
    # names manifests *.json). A *.json file that is not one is refused: its keys would become words.
    name = _name_without_gz(path)
    manifest = True if name.endswith(".jsonl") else None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        if manifest is None:
            manifest = _looks_like_manifest(line)
            if not manifest and name.endswith(".json"):
                raise LMError(f"{where}: a .json file that is not a manifest (JSON lines, each an object with a "
                              "'text' field); name a plain-text corpus .txt")
        text = normalize_text(manifest_text(line, where) if manifest else line)
        if not text:
            continue
        if unit == "token":
            try:
                ids = tokenizer.encode(text)
            except UnknownCharacterError:
                if skipped is not None:
                    skipped.append(where)
                continue
            yield [tokenizer.tokens[i] for i in ids]
        else:
            yield list(text.replace(" ", WORD_SEP)) if unit == "char" else text.split()


def digits_note(sentences: list[list[str]], unit: str) -> str | None:
    """A note on the words with digits in word or character ``sentences``: normalization keeps
    digits as written, and the acoustic models spell words in letters (a token LM's sentences
    were spelled by the tokenizer already)."""
    if unit == "token":
        return None
    words = (w for s in sentences for w in (s if unit == "word" else "".join(s).split(WORD_SEP)))
    with_digits = Counter(w for w in words if any(unicodedata.category(c) == "Nd" for c in w))
    if not with_digits:
        return None
    examples = ", ".join(w for w, _ in with_digits.most_common(5))
    return (f"note: {len(with_digits)} distinct words contain digits (e.g. {examples}): normalization keeps digits "
            "as written (and a decimal point between them) and does not spell numbers out, so a model can output "
            "them only if its tokenizer has them (the built-in model's has no digits); write numbers as words in "
            "the text to have them recognized")


def _discounts(adjusted: Iterable[int], n: int) -> tuple[tuple[float, float, float], str | None]:
    """Modified Kneser-Ney discounts D1, D2, D3+ for the ``n``-grams of these adjusted counts by
    lmplz's rule (lm/builder/adjust_counts.cc): count-of-counts n_1..n_3 must be above 0 (n_4 may
    be 0), each D_k within [0, k], the bounds included; otherwise the fallback of
    ``lmplz --discount_fallback``, and why (else None)."""
    t = Counter(c for c in adjusted if c <= 4)  # count-of-counts n_1 .. n_4
    missing = [k for k in (1, 2, 3) if not t[k]]
    if missing:
        return FALLBACK_DISCOUNTS, f"no {n}-gram has adjusted count {missing[0]}"
    # Chen & Goodman (26), in float32 in lmplz's order: at a bound (D = 0 exactly) float64's
    # rounding can fall on the other side, and the fallback with it
    f = np.float32
    y = f(t[1]) / f(t[1] + 2.0 * t[2])
    d = tuple(float(f(k) - f(k + 1) * y * f(t[k + 1]) / f(t[k])) for k in (1, 2, 3))
    bad = [k for k in (1, 2, 3) if not 0 <= d[k - 1] <= k]
    if bad:
        return FALLBACK_DISCOUNTS, f"{n}-gram discount D{bad[0]} would be {d[bad[0] - 1]:.4g}, outside [0, {bad[0]}]"
    return d, None


def _lmplz_raw_counted(counts: list[Counter], ids: dict[str, int]) -> set[tuple[str, ...]]:
    """The n-grams whose raw count, not their adjusted count, lmplz (0.3.0, adjust_counts.cc) puts
    in the count-of-counts its discounts come from: when it flushes the lower-order n-grams still
    pending after the last highest-order n-gram (in suffix order of its word ids, which it gives
    in order of first appearance after <unk> <s> </s>), it adds their ``actual_counts``. Those
    are the suffixes of that last n-gram below the highest order. Copied so that a model is the
    same with lmplz or without: on a small text this one count can decide a fallback."""
    order = len(counts)
    if order < 2:
        return set()

    def suffix_key(g: tuple[str, ...]) -> tuple[int, ...]:
        # lmplz pads a sentence with order - 1 <s>: an n-gram that starts with <s> stands for
        # the padded highest-order one (<s> has the lowest word id but <unk>'s)
        return (*(ids[w] for w in reversed(g)), *[ids[BOS]] * (order - len(g)))

    candidates = [*counts[-1], *(g for table in counts[:-1] for g in table if g[0] == BOS)]
    if not candidates:
        return set()
    last = max(candidates, key=suffix_key)
    return {last[-k:] for k in range(1, min(order - 1, len(last)) + 1)}


def fallback_note(orders: list[int], why: str | None = None) -> str:
    """What lmplz --discount_fallback warns of, in one line for all ``orders``."""
    grams = ", ".join(f"{n}-grams" for n in orders)
    return (f"warning: {grams}: the text is too small or artificial for Kneser-Ney's discount estimate"
            + (f" ({why})" if why else "") + ": used lmplz's fallback discounts D1=0.5 D2=1 D3+=1.5")


def estimate_kneser_ney(sentences: Iterable[list[str]], order: int, notes: list[str] | None = None) -> NgramModel:
    """Interpolated modified Kneser-Ney n-gram model of tokenized sentences; warnings (fallback
    discounts) go to ``notes``."""
    if order < 1:
        raise LMError(f"LM order must be >= 1, got {order}")
    counts: list[Counter] = [Counter() for _ in range(order)]
    first_seen: dict[str, int] = {UNK: 0, BOS: 1, EOS: 2}  # lmplz's word ids, for _lmplz_raw_counted
    for sentence in sentences:
        for w in sentence:
            if first_seen.setdefault(w, len(first_seen)) < 3:
                # as lmplz refuses them: a literal <unk> would get the unseen words' mass twice,
                # and <s> or </s> mid-sentence a probability the model then cannot give
                raise LMError(f"{w} in a sentence: the special words {', '.join(SPECIAL)} cannot be text")
        toks = (BOS, *sentence, EOS)
        for i in range(1, len(toks)):
            for n in range(1, min(order, i + 1) + 1):
                counts[n - 1][toks[i - n + 1: i + 1]] += 1
    if not counts[0]:
        raise LMError("no text to build a language model from")

    # Adjusted counts: how many distinct words precede an n-gram, except at the highest order
    # and for n-grams that start with <s> (nothing can precede them).
    adjusted: list[dict] = [dict() for _ in range(order)]
    adjusted[-1] = dict(counts[-1])
    for n in range(order - 1, 0, -1):
        left = Counter(g[1:] for g in counts[n])
        adjusted[n - 1] = {g: (c if g[0] == BOS else left[g]) for g, c in counts[n - 1].items()}

    vocab = {g[0] for g in counts[0]} | {UNK}
    uniform = 1.0 / len(vocab)  # <s> is never predicted, so it is not in the uniform distribution
    probs: list[dict[tuple, float]] = []
    gammas: list[dict[tuple, float]] = []
    fallbacks: dict[int, str] = {}  # order -> why its discounts are the fallback
    raw_counted = _lmplz_raw_counted(counts, first_seen)
    for n in range(1, order + 1):
        adj = adjusted[n - 1]
        stats = [counts[n - 1][g] if g in raw_counted else c for g, c in adj.items()]
        d, why = _discounts(stats, n)
        if why:
            fallbacks[n] = why
        total: dict[tuple, int] = defaultdict(int)
        discount_mass: dict[tuple, float] = defaultdict(float)
        for g, c in adj.items():
            total[g[:-1]] += c
            discount_mass[g[:-1]] += d[min(c, 3) - 1]
        gamma = {h: discount_mass[h] / total[h] for h in total}
        p = {}
        for g, c in adj.items():
            h = g[:-1]
            lower = probs[-1][g[1:]] if n > 1 else uniform
            p[g] = (c - d[min(c, 3) - 1]) / total[h] + gamma[h] * lower
        if n == 1:
            p[(UNK,)] = p.get((UNK,), 0.0) + gamma[()] * uniform
        probs.append(p)
        gammas.append(gamma)
    if fallbacks and notes is not None:  # the first reason: the lowest order's
        notes.append(fallback_note(list(fallbacks), next(iter(fallbacks.values()))))

    ngrams = []
    for n in range(1, order + 1):
        contexts = gammas[n] if n < order else {}
        table = {}
        for g, pr in probs[n - 1].items():
            bo = contexts.get(g)
            # a context whose discounts left its lower order nothing: -inf, as lmplz writes it
            # (0.0 would give its unseen words all their lower-order probability again)
            table[g] = (math.log10(pr), None if n == order else math.log10(bo) if bo else
                        -math.inf if bo is not None else 0.0)
        if n == 1:
            bo = contexts.get((BOS,))
            table[(BOS,)] = (0.0, math.log10(bo) if bo else 0.0)  # never predicted; lmplz writes 0
        ngrams.append(table)
    return NgramModel(ngrams)


def kenlm_tool(name: str) -> str | None:
    """KenLM's ``lmplz`` or ``build_binary``: on PATH, or next to this Python (``make kenlm``)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


def build_lm(texts: Iterable[str | Path], output: str | Path, order: int = 3, unit: str = "word",
             use_lmplz: bool | None = None, tokenizer: "Tokenizer | None" = None,
             skipped: list[str] | None = None, notes: list[str] | None = None) -> tuple[Path, str]:
    """Normalize ``texts`` and write an ARPA LM; returns (path, the tool that estimated it).
    ``unit="token"`` needs ``tokenizer``; sentences it cannot spell go to ``skipped``, remarks on
    the text and the estimate (words with digits, fallback discounts) to ``notes``."""

    skipped = [] if skipped is None else skipped
    notes = [] if notes is None else notes
    empty: list[str] = []
    sentences = list(read_sentences(texts, unit, tokenizer, skipped, empty))
    if not sentences:
        why = (f"each of the {len(skipped)} sentences has {unspellable(tokenizer)}, e.g. {skipped[0]}"
               if skipped else f"{', '.join(empty)}: empty after normalization")
        raise LMError(f"no text to build a language model from ({why})")
    notes += [f"warning: {path}: no sentence in it (empty after normalization): it added nothing" for path in empty]
    note = digits_note(sentences, unit)
    if note:
        notes.append(note)
    lmplz = kenlm_tool("lmplz")
    if use_lmplz or (use_lmplz is None and lmplz):
        if not lmplz:
            raise LMError("lmplz was asked for but is not on PATH")
        output = Path(output)
        text = "".join(" ".join(s) + "\n" for s in sentences)
        # The ARPA goes to a sibling renamed into place (a move from TMPDIR on another file system
        # would be a copy, which a kill leaves half done at the final name); TMPDIR gets lmplz's sort files.
        with tempfile.TemporaryDirectory() as tmp, atomic_open(output) as out:
            run = subprocess.run([lmplz, "-o", str(order), "--discount_fallback", "-T", tmp, "-S", "20%"],
                                 input=text, stdout=out, stderr=subprocess.PIPE, text=True)
            if run.returncode:
                raise LMError(f"lmplz failed: {' '.join(run.stderr.strip().splitlines()[-1:])}")
        fallbacks = [int(i) + 1 for i in _LMPLZ_FALLBACK.findall(run.stderr)]  # lmplz's "order 0": unigrams
        if fallbacks:
            notes.append(fallback_note(fallbacks))
        return output, "lmplz"
    return write_arpa(estimate_kneser_ney(sentences, order, notes), output), "python modified Kneser-Ney"


_LMPLZ_FALLBACK = re.compile(r"^Substituting fallback discounts for order (\d+)", re.MULTILINE)
