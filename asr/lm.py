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
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from asr.atomic import atomic_open
from asr.text import WORD_SEP, UnknownCharacterError, normalize_text

if TYPE_CHECKING:
    from asr.tokenizers import Tokenizer

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SPECIAL = (BOS, EOS, UNK)
UNITS = ("word", "char", "token")
KENLM_BINARY_MAGIC = b"mmap lm "
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz --discount_fallback's values
KENLM_MAX_ORDER = 6  # what the KenLM inside flashlight-text's wheels was compiled for


class LMError(ValueError):
    pass


def unspellable(tokenizer: "Tokenizer") -> str:
    """What a sentence ``tokenizer`` leaves out has, for messages: a phone tokenizer spells words
    by their pronunciations, not by their letters."""
    if getattr(tokenizer, "kind", None) == "phone":
        return "words the tokenizer has no pronunciation for"
    return "characters the tokenizer cannot spell"


def read_sentences(paths: Iterable[str | Path], unit: str = "word", tokenizer: "Tokenizer | None" = None,
                   skipped: list[str] | None = None) -> Iterator[list[str]]:
    """Normalized sentences from text files (one per line) or manifests (``.jsonl``: ``text``), as
    words, characters or ``tokenizer``'s tokens. With tokens, a sentence the tokenizer cannot
    spell is left out and its ``file:line`` appended to ``skipped``."""
    if unit not in UNITS:
        raise LMError(f"unknown LM unit {unit!r}; use {', '.join(UNITS)}")
    if unit == "token" and tokenizer is None:
        raise LMError("a token LM is built with the model's tokenizer: give one (asr lm build --tokenizer MODEL)")
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise LMError(f"{path}: text file not found")
        with path.open(encoding="utf-8") as f:
            try:
                yield from _sentences(path, f, unit, tokenizer, skipped)
            except UnicodeDecodeError as e:
                raise LMError(f"{path}: not UTF-8 text ({e.reason}); convert it first, e.g. iconv -f latin1 "
                              "-t utf-8") from None


def _sentences(path: Path, lines: Iterable[str], unit: str, tokenizer, skipped) -> Iterator[list[str]]:
    for lineno, line in enumerate(lines, 1):
        if path.suffix == ".jsonl":
            if not line.strip():
                continue
            try:
                line = json.loads(line)["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise LMError(f"{path}:{lineno}: not a manifest line with a 'text' field") from None
        text = normalize_text(line)
        if not text:
            continue
        if unit == "token":
            try:
                ids = tokenizer.encode(text)
            except UnknownCharacterError:
                if skipped is not None:
                    skipped.append(f"{path}:{lineno}")
                continue
            yield [tokenizer.tokens[i] for i in ids]
        else:
            yield list(text.replace(" ", WORD_SEP)) if unit == "char" else text.split()


@dataclass
class NgramModel:
    """``ngrams[n-1]``: n-gram tuple -> (log10 prob, log10 backoff or None)."""

    ngrams: list[dict[tuple[str, ...], tuple[float, float | None]]]

    @property
    def order(self) -> int:
        return len(self.ngrams)


def _discounts(adjusted: Iterable[int]) -> tuple[float, float, float]:
    t = Counter(c for c in adjusted if c <= 4)  # count-of-counts n_1 .. n_4
    try:
        y = t[1] / (t[1] + 2 * t[2])
        d = (1 - 2 * y * t[2] / t[1], 2 - 3 * y * t[3] / t[2], 3 - 4 * y * t[4] / t[3])
    except ZeroDivisionError:
        return FALLBACK_DISCOUNTS
    # Tiny corpora give count-of-counts that put a discount outside (0, k): fall back as lmplz does.
    if not all(0 < dk < k for dk, k in zip(d, (1, 2, 3))):
        return FALLBACK_DISCOUNTS
    return d


def estimate_kneser_ney(sentences: Iterable[list[str]], order: int) -> NgramModel:
    """Interpolated modified Kneser-Ney n-gram model of tokenized sentences."""
    if order < 1:
        raise LMError(f"LM order must be >= 1, got {order}")
    counts: list[Counter] = [Counter() for _ in range(order)]
    for sentence in sentences:
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
    for n in range(1, order + 1):
        adj = adjusted[n - 1]
        d = _discounts(adj.values())
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

    ngrams = []
    for n in range(1, order + 1):
        contexts = gammas[n] if n < order else {}
        table = {}
        for g, pr in probs[n - 1].items():
            bo = contexts.get(g)
            table[g] = (math.log10(pr), math.log10(bo) if bo else (0.0 if n < order else None))
        if n == 1:
            bo = contexts.get((BOS,))
            table[(BOS,)] = (0.0, math.log10(bo) if bo else 0.0)  # never predicted; lmplz writes 0
        ngrams.append(table)
    return NgramModel(ngrams)


def write_arpa(model: NgramModel, path: str | Path) -> Path:
    path = Path(path)
    with atomic_open(path) as f:
        f.write("\\data\\\n")
        for n, table in enumerate(model.ngrams, 1):
            f.write(f"ngram {n}={len(table)}\n")
        for n, table in enumerate(model.ngrams, 1):
            f.write(f"\n\\{n}-grams:\n")
            for g, (lp, bo) in sorted(table.items()):
                words = " ".join(g)
                f.write(f"{lp:.7g}\t{words}\t{bo:.7g}\n" if bo is not None else f"{lp:.7g}\t{words}\n")
        f.write("\n\\end\\\n")
    return path


def kenlm_tool(name: str) -> str | None:
    """KenLM's ``lmplz`` or ``build_binary``: on PATH, or next to this Python (``make kenlm``)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


def build_lm(texts: Iterable[str | Path], output: str | Path, order: int = 3, unit: str = "word",
             use_lmplz: bool | None = None, tokenizer: "Tokenizer | None" = None,
             skipped: list[str] | None = None) -> tuple[Path, str]:
    """Normalize ``texts`` and write an ARPA LM; returns (path, the tool that estimated it).
    ``unit="token"`` needs ``tokenizer``; sentences it cannot spell go to ``skipped``."""
    skipped = [] if skipped is None else skipped
    sentences = list(read_sentences(texts, unit, tokenizer, skipped))
    if not sentences:
        why = (f"each of the {len(skipped)} sentences has {unspellable(tokenizer)}, e.g. {skipped[0]}"
               if skipped else "all inputs empty after normalization")
        raise LMError(f"no text to build a language model from ({why})")
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
        return output, "lmplz"
    return write_arpa(estimate_kneser_ney(sentences, order), output), "python modified Kneser-Ney"


# ---------------------------------------------------------------------------------------------
# Reading and checking LM files

_COUNT = re.compile(r"^ngram (\d+)=(\d+)$")


@dataclass(frozen=True)
class LMInfo:
    path: Path
    binary: bool
    order: int | None  # None for binary files (KenLM reads them)
    counts: tuple[int, ...]
    words: tuple[str, ...]  # unigrams without <s>, </s>, <unk>, likeliest first (empty for binary files)

    @property
    def is_char_lm(self) -> bool:
        """Units are single characters with ``|`` between words (for lexicon-free search)."""
        return WORD_SEP in self.words and all(len(w) == 1 for w in self.words)

    @property
    def unit(self) -> str | None:
        """"word", "char" or "token" (subword pieces or phones), from the unigrams: only character
        and token LMs have ``|`` between words. None for a binary file (its unigrams are not read)."""
        if self.binary:
            return None
        if WORD_SEP not in self.words:
            return "word"
        return "char" if self.is_char_lm else "token"

    def is_token_lm(self, tokenizer: "Tokenizer") -> bool:
        """Units are ``tokenizer``'s tokens, ``|`` between words: lexicon-free search can use it.
        A character LM is one for a character model, not for a subword model: that model's
        multi-letter pieces would all be unknown to it."""
        units = set(self.words)
        if WORD_SEP not in units or not units <= set(tokenizer.tokens):
            return False
        has_pieces = any(len(t) > 1 for t in tokenizer.tokens[2:])
        return not has_pieces or any(len(u) > 1 for u in units)

    def searches_lexicon_free(self, tokenizer: "Tokenizer") -> bool:
        """Its units are letters or the model's tokens, not words: the search needs no lexicon
        (a character LM with a subword model is sent here too, to be refused by name there)."""
        return self.is_char_lm or self.is_token_lm(tokenizer)


def inspect_lm(path: str | Path) -> LMInfo:
    """Check an LM file's header (and read an ARPA file's unigrams) without loading it all."""
    path = Path(path)
    if not path.is_file():
        raise LMError(f"{path}: language model file not found")
    with path.open("rb") as f:
        if f.read(len(KENLM_BINARY_MAGIC)) == KENLM_BINARY_MAGIC:
            return LMInfo(path, True, None, (), ())
    counts: dict[int, int] = {}
    words: list[tuple[float, str]] = []
    section = None
    with path.open(encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            if section is None:
                if line == "\\data\\":
                    section = "data"
                elif lineno > 50:
                    break
                continue
            if section == "data":
                m = _COUNT.match(line)
                if m:
                    counts[int(m.group(1))] = int(m.group(2))
                    continue
                if line != "\\1-grams:":
                    raise LMError(f"{path}:{lineno}: expected 'ngram N=COUNT' or '\\1-grams:', got {line[:40]!r}")
                section = "1-grams"
                continue
            if line.startswith("\\"):
                break
            fields = line.split("\t") if "\t" in line else line.split()
            if len(fields) < 2:
                raise LMError(f"{path}:{lineno}: malformed unigram line {line[:40]!r}")
            try:
                words.append((float(fields[0]), fields[1].strip()))
            except ValueError:
                raise LMError(f"{path}:{lineno}: malformed unigram line {line[:40]!r}") from None
    if section is None:
        raise LMError(f"{path}: not an ARPA file (no \\data\\ header) nor a KenLM binary file")
    if not counts or sorted(counts) != list(range(1, len(counts) + 1)):
        raise LMError(f"{path}: ARPA header has no consecutive 'ngram N=COUNT' lines")
    if len(words) != counts[1]:
        raise LMError(f"{path}: header says {counts[1]} unigrams, file has {len(words)}")
    # Likeliest first: a lexicon built from these words keeps the likeliest of many homophones
    # (asr/lexicon.py, MAX_HOMOPHONES).
    words.sort(key=lambda pw: -pw[0])
    return LMInfo(path, False, len(counts), tuple(counts[n] for n in sorted(counts)),
                  tuple(w for _, w in words if w not in SPECIAL))


class ArpaModel:
    """An ARPA file in memory, for tests and inspection: ``log10_prob(word, history)``."""

    def __init__(self, path: str | Path):
        self.ngrams: dict[tuple[str, ...], tuple[float, float]] = {}
        self.order = 0
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            m = re.match(r"^\\(\d+)-grams:$", line)
            if m:
                self.order = int(m.group(1))
                continue
            if not self.order or not line.strip() or line.startswith("\\"):
                continue
            fields = line.split("\t")
            self.ngrams[tuple(fields[1].split())] = (float(fields[0]), float(fields[2]) if len(fields) > 2 else 0.0)
        self.vocabulary = [g[0] for g in self.ngrams if len(g) == 1]

    def log10_prob(self, word: str, history: tuple[str, ...] = ()) -> float:
        """Backoff probability of ``word`` after ``history`` (most recent word last)."""
        history = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        backoff = 0.0
        while True:
            g = (*history, word)
            if g in self.ngrams:
                return backoff + self.ngrams[g][0]
            if not history:
                return backoff + self.ngrams[(UNK,)][0]
            backoff += self.ngrams.get(history, (0.0, 0.0))[1]
            history = history[1:]
