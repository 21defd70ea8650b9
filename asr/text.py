"""Text normalization and the character tokenizer.

The tokenizer's vocabulary comes from training text and is saved with the model. Index 0 is
the CTC blank; ``|`` is the word separator (as in wav2vec2 and flashlight lexicons), so that a
decoded token sequence maps back to words without ambiguity.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

BLANK = "<blank>"
WORD_SEP = "|"

# typographic, modifier letter, grave, acute, prime, fullwidth
_APOSTROPHES = str.maketrans({c: "'" for c in "\u2019\u2018\u02bc`\u00b4\u2032\uff07"})
_DASHES = re.compile(r"[\u2010-\u2015\-_/]+")
_ZERO_WIDTH_SPACE = "\u200b"


def plural(n: int, word: str) -> str:
    """``1 word``, ``2 words``: counts in messages and diagram labels."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def normalize_text(text: str) -> str:
    """Lower case, unify apostrophes, drop punctuation, collapse spaces.

    Apostrophes survive only inside words ("don't", "o'clock"); quotes around words go.
    Dashes and slashes separate words ("well-known" -> "well known"). Letters of any
    alphabet are kept, so the same normalizer serves non-English corpora. Invisible format
    characters (Unicode category Cf: soft hyphen, zero-width joiner and non-joiner, byte-order
    mark) are dropped, not turned into spaces: they sit inside words (a soft hyphen in web text,
    a ZWNJ in Persian or Hindi words). The zero-width space is the exception: Thai or Khmer text
    marks word boundaries with it.
    """
    # Unified before NFKC, which splits ´, and after it, which makes some ("ŉ", fullwidth "｀")
    text = unicodedata.normalize("NFKC", text.translate(_APOSTROPHES)).translate(_APOSTROPHES).lower()
    text = _DASHES.sub(" ", text)
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch == "'" or cat[0] in "LNM":  # letters, digits, combining marks
            kept.append(ch)
        elif cat != "Cf" or ch == _ZERO_WIDTH_SPACE:
            kept.append(" ")
    words = []
    for word in "".join(kept).split():
        word = word.strip("'")
        if word:
            words.append(word)
    return " ".join(words)


def check_tokens(tokens: tuple[str, ...], error: type[ValueError] = ValueError) -> None:
    """Any tokenizer's tokens: blank and separator first, none twice (two model outputs for one
    token, of which encoding would only ever use the later)."""
    if tokens[:2] != (BLANK, WORD_SEP):
        raise error(f"tokenizer must start with {BLANK!r} and {WORD_SEP!r}")
    twice = sorted(t for t, n in Counter(tokens).items() if n > 1)
    if twice:
        raise error(f"tokenizer has duplicate tokens: {' '.join(twice[:5])}")


class UnknownCharacterError(ValueError):
    def __init__(self, text: str, unknown: set[str]):
        self.unknown = unknown
        shown = " ".join(repr(c) for c in sorted(unknown))
        super().__init__(f"characters outside the vocabulary: {shown} in {text!r}")


@dataclass(frozen=True)
class CharTokenizer:
    tokens: tuple[str, ...]

    def __post_init__(self):
        check_tokens(self.tokens)
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    kind = "char"
    blank_id = 0
    word_sep_id = 1

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> "CharTokenizer":
        """Vocabulary of the normalized training texts (characters seen >= min_count times)."""
        counts = Counter()
        for text in texts:
            counts.update(normalize_text(text).replace(" ", ""))
        chars = sorted(c for c, n in counts.items() if n >= min_count)
        return cls((BLANK, WORD_SEP, *chars))

    def __len__(self) -> int:
        return len(self.tokens)

    def unknown_chars(self, normalized: str) -> set[str]:
        return {c for c in normalized.replace(" ", "") if c not in self._index}

    def word_tokens(self, word: str) -> list[str]:
        return list(word)

    def encode(self, normalized: str) -> list[int]:
        """Token ids of already-normalized text; characters outside the vocabulary raise."""
        unknown = self.unknown_chars(normalized)
        if unknown:
            raise UnknownCharacterError(normalized, unknown)
        return [self._index[WORD_SEP if c == " " else c] for c in normalized]

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids (blanks and repeats already removed) -> text with single spaces."""
        chars = [self.tokens[i] for i in ids if i != self.blank_id]
        return " ".join("".join(chars).replace(WORD_SEP, " ").split())

    def save(self, path: str | Path) -> None:
        data = {"type": "char", "blank": BLANK, "word_separator": WORD_SEP, "tokens": list(self.tokens)}
        Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
