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
# A number grouped in thousands by commas (also fullwidth, small and Arabic ones) or by the no-break and
# thin spaces of French and SI typography ("1,000,000", "10\u202f000"), one separator throughout,
# or in the Indian way ("12,34,567"); not the tail of another number ("1.5,000", "3,1,000", ".25,000"), and
# not one whose first group starts with a zero ("0,001", "01,000": see _ungroup).
_GROUPED = re.compile(r"(?<!\d)(?<!\d[.,\uff0c\ufe50\u066b\u066c])(?<!^[.\u066b])(?<![^\w.\u066b][.\u066b])"
                      r"(?:\d{1,3}([,\uff0c\ufe50\u066c\u00a0\u2009\u202f])\d{3}(?:\1\d{3})*"
                      r"|\d{1,2}(?:,\d{2})+,\d{3})(?!\d)")
# A comma between digits splits them: "1,2,3" is a list, "3,5" a decimal only in some places.
# Arabic's decimal separator (U+066B) is never anything else.
_DECIMAL_MARKS = ".\u066b"


def _ungroup(match: re.Match) -> str:
    """A thousands grouping without its separators; a first group with a leading zero is none
    (dropped, "0,001" became "0001", another number), so its commas split as other commas do.
    Checked here, not in _GROUPED: its digit class takes every script's digits, each with its own
    zero."""
    number = match.group()
    if unicodedata.digit(number[0]) == 0:
        return number
    return "".join(c for c in number if c.isdecimal())


def plural(n: int, word: str) -> str:
    """``1 word``, ``2 words``: counts in messages and diagram labels."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def time_left(seconds: float) -> str:
    """``~35 s left``, ``~20 min left``, ``~2.5 h left``: an estimate, as rough as it reads."""
    if seconds < 90:
        return f"~{max(seconds, 1):.0f} s left"
    if seconds < 150 * 60:
        return f"~{seconds / 60:.0f} min left"
    return f"~{seconds / 3600:.1f} h left"


def normalize_text(text: str) -> str:
    """Lower case, unify apostrophes, drop punctuation, collapse spaces.

    Apostrophes survive only inside words ("don't", "o'clock"); quotes around words go.
    Dashes and slashes separate words ("well-known" -> "well known"). Letters of any
    alphabet are kept, so the same normalizer serves non-English corpora. Invisible format
    characters (Unicode category Cf: soft hyphen, zero-width joiner and non-joiner, byte-order
    mark) are dropped, not turned into spaces: they sit inside words (a soft hyphen in web text,
    a ZWNJ in Persian or Hindi words). The zero-width space is the exception: Thai or Khmer text
    marks word boundaries with it.

    A number stays one word, as whisper's English normalizer keeps it: thousands separators go
    ("1,000" -> "1000", as a hypothesis writes it; not "0,001", no grouping) and a decimal point
    between digits stays ("3.5"), as does one that starts a number (".5", not "5": another number);
    split, a number counted as two words and "1,000" against "1000" as two errors.
    Other punctuation in numbers splits them as it splits words ("5:30" -> "5 30", "3,5" -> "3 5",
    "1,2,3" -> "1 2 3"), and symbols
    go ("$5" -> "5", "10%" -> "10"): "$5" is said "five dollars", in an order CTC labels cannot
    follow, and ref and hypothesis lose them alike.
    """
    # Before NFKC, which makes the no-break and thin spaces plain ones, ambiguous between numbers
    text = _GROUPED.sub(_ungroup, text)
    # Unified before NFKC, which splits ´, and after it, which makes some ("ŉ", fullwidth "｀")
    text = unicodedata.normalize("NFKC", text.translate(_APOSTROPHES)).translate(_APOSTROPHES).lower()
    text = _DASHES.sub(" ", text)
    kept = []
    word_start = True  # nothing but apostrophes kept since the last space: they are stripped below
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        if ch == "'" or cat[0] in "LNM":  # letters, digits, combining marks
            kept.append(ch)
            word_start = word_start and ch == "'"
        elif ch in _DECIMAL_MARKS and text[i + 1:i + 2].isdecimal() and (
                text[i - 1:i].isdecimal()
                # ".5" starting a word, but not after a letter ("a.5") or the end of an ellipsis ("...5")
                or word_start and (i == 0 or text[i - 1] not in _DECIMAL_MARKS)):
            kept.append(ch)
            word_start = False
        elif cat != "Cf" or ch == _ZERO_WIDTH_SPACE:
            kept.append(" ")
            word_start = True
    words = []
    for word in "".join(kept).split():
        word = word.strip("'")
        if word:
            words.append(word)
    # lower() can leave marks uncomposed or out of order ("Ϊ́"), and a dropped soft hyphen a mark
    # after a letter it did not follow: composed at the end, normalizing twice changes nothing
    return unicodedata.normalize("NFC", " ".join(words))


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
