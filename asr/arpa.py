"""ARPA files: writing them, checking an LM file (ARPA or KenLM binary) without loading it, and
an ARPA model in memory for scoring, mixing and pruning.

Probabilities are log10. Fields are separated by tabs or spaces: SRILM and KenLM write tabs, other
tools spaces, and both are read here (KenLM's own loader wants a tab after each probability: files
that asr writes have them). Files may be gzip-compressed, as KenLM reads them too. The n-gram
model type, the special words and the text reading that asr/lm.py builds on live here, below it.
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterator

from asr.atomic import atomic_open
from asr.text import WORD_SEP

if TYPE_CHECKING:
    from asr.tokenizers import Tokenizer

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SPECIAL = (BOS, EOS, UNK)
GZIP_MAGIC = b"\x1f\x8b"
KENLM_BINARY_MAGIC = b"mmap lm "
_COUNT = re.compile(r"^ngram\s+(\d+)=\s*(\d+)$")  # as KenLM reads it: IRSTLM writes "ngram 1= 5007"
_SECTION = re.compile(r"^\\(\d+)-grams:$")


class LMError(ValueError):
    pass


def open_text(path: Path, errors: str = "strict") -> IO[str]:
    """``path`` as UTF-8 text, gunzipped if it is gzip-compressed (by its magic bytes, whatever
    its name), a byte-order mark dropped. Wrap reading it in ``reading(path)``."""
    with path.open("rb") as f:
        gzipped = f.read(2) == GZIP_MAGIC
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8-sig", errors=errors)
    return path.open(encoding="utf-8-sig", errors=errors)


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """What reading ``open_text(path)`` can raise, as one-line errors naming the file."""
    try:
        yield
    except UnicodeDecodeError as e:
        raise LMError(f"{path}: not UTF-8 text ({e.reason}); convert it first, e.g. iconv -f latin1 "
                      "-t utf-8") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise LMError(f"{path}: damaged gzip file ({e})") from None


@dataclass
class NgramModel:
    """``ngrams[n-1]``: n-gram tuple -> (log10 prob, log10 backoff or None)."""

    ngrams: list[dict[tuple[str, ...], tuple[float, float | None]]]

    @property
    def order(self) -> int:
        return len(self.ngrams)


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


def _fields(line: str) -> list[str]:
    """The fields of an ARPA line, split where KenLM splits words: at tabs and spaces (a word may
    hold other whitespace, e.g. U+00A0)."""
    return [f for f in line.replace("\t", " ").split(" ") if f]


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
    if path.is_dir():
        raise LMError(f"{path}: a directory, not a language model file")
    if not path.is_file():
        raise LMError(f"{path}: language model file not found")
    with path.open("rb") as f:
        if f.read(len(KENLM_BINARY_MAGIC)) == KENLM_BINARY_MAGIC:
            return LMInfo(path, True, None, (), ())
    counts: dict[int, int] = {}
    words: list[tuple[float, str]] = []
    section = None
    with open_text(path, errors="replace") as f, reading(path):
        for lineno, line in enumerate(f, 1):
            line = line.strip(" \t\r\n")
            if not line:
                continue
            if section is None:
                if line == "\\data\\":
                    section = "data"
                elif line.startswith(KENLM_BINARY_MAGIC.decode()):
                    raise LMError(f"{path}: a gzip-compressed KenLM binary file; KenLM maps binary files into memory "
                                  "as they are: gunzip it")
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
            fields = _fields(line)
            if len(fields) not in (2, 3):
                raise LMError(f"{path}:{lineno}: malformed unigram line {line[:40]!r}")
            try:
                words.append((float(fields[0]), fields[1]))
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
    """An ARPA file in memory, for scoring, mixing and pruning: ``log10_prob(word, history)``."""

    def __init__(self, path: str | Path):
        path = Path(path)
        self.ngrams: dict[tuple[str, ...], tuple[float, float]] = {}
        self.order = 0
        declared: dict[int, int] = {}  # the header's counts
        found: dict[int, int] = {}
        ended = False
        with open_text(path) as f, reading(path):
            for lineno, line in enumerate(f, 1):
                line = line.strip(" \t\r\n")
                if line.startswith("\\"):
                    m = _SECTION.match(line)
                    if m:
                        self.order = int(m.group(1))
                    elif line == "\\end\\":
                        ended = True
                        break
                    continue
                if not self.order:
                    if m := _COUNT.match(line):
                        declared[int(m.group(1))] = int(m.group(2))
                    continue
                if line:
                    self._add(path, lineno, line, _fields(line))
                    found[self.order] = found.get(self.order, 0) + 1
        # A file cut at a line end (an interrupted download or copy) would read as a smaller model:
        # KenLM refuses it, and so is it here.
        for n, count in declared.items():
            if found.get(n, 0) != count:
                raise LMError(f"{path}: header says {count} {n}-grams, the file has {found.get(n, 0)}: "
                              "cut short or damaged")
        if not ended:
            raise LMError(f"{path}: no \\end\\ line: the file is cut short")
        self.vocabulary = [g[0] for g in self.ngrams if len(g) == 1]

    def _add(self, path: Path, lineno: int, line: str, fields: list[str]) -> None:
        n = self.order
        try:
            if len(fields) not in (n + 1, n + 2):
                raise ValueError
            prob, backoff = float(fields[0]), float(fields[n + 1]) if len(fields) > n + 1 else 0.0
        except ValueError:
            raise LMError(f"{path}:{lineno}: malformed {n}-gram line {line[:50]!r} (expected a log10 probability, "
                          f"{n} word{'s' if n > 1 else ''} and an optional backoff)") from None
        # a NaN spreads to every score (perplexity "nan", a mix's every n-gram); a log10 probability
        # above 0 is no probability (-inf, probability 0, is one, and a backoff of -inf: nothing left)
        if not prob <= 0 or math.isnan(backoff) or backoff == math.inf:
            raise LMError(f"{path}:{lineno}: {line[:50]!r}: " + (f"log10 probability {fields[0]} is not <= 0"
                          if not prob <= 0 else f"backoff {fields[n + 1]} is not a number below infinity"))
        self.ngrams[tuple(fields[1:n + 1])] = (prob, backoff)

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
