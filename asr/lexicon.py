"""Lexicons for lexicon-constrained beam search: word -> spellings in the tokenizer's tokens.

A file has one spelling per line, ``word w o r d |``. Every spelling ends with the word
separator ``|``: the model emits it between words, and a lexicon without it makes the search
glue words together (the word error rate explodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from asr.text import WORD_SEP
from asr.tokenizers import Tokenizer

Lexicon = dict[str, list[list[str]]]  # flashlight's layout: word -> list of spellings
# flashlight's lexicon trie holds at most 6 words per spelling and prints a line on stderr for
# each one more (kept nowhere). Phone spellings reach it in a large vocabulary ("OW |": o, oh,
# owe, eau, ...), so lexicons keep the first 6 in their order (LM words: likeliest first).
MAX_HOMOPHONES = 6


class LexiconError(ValueError):
    pass


@dataclass
class LexiconReport:
    lexicon: Lexicon
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (word, reason)

    def summary(self, source: str, shown: int = 8) -> str:
        """One line: how many words were left out and a few examples."""
        words = ", ".join(f"{w!r} ({why})" for w, why in self.skipped[:shown])
        more = f" and {len(self.skipped) - shown} more" if len(self.skipped) > shown else ""
        return f"{source}: {len(self.skipped)} word(s) left out of the lexicon: {words}{more}"


def spell(word: str, tokenizer: Tokenizer) -> list[str] | None:
    """A word's spelling in tokens, ending with ``|``; None when a character is not a token."""
    if tokenizer.unknown_chars(word) or WORD_SEP in word:
        return None
    return [*tokenizer.word_tokens(word), WORD_SEP]


def _homophone_limit(spelled: dict[str, int], spelling: list[str]) -> str | None:
    """Count one more word spelled ``spelling``; the reason to leave it out past the limit."""
    key = " ".join(spelling)
    count = spelled.get(key, 0)
    if count >= MAX_HOMOPHONES:
        return f"{MAX_HOMOPHONES} words before it are spelled {key}"
    spelled[key] = count + 1
    return None


def lexicon_from_words(words: Iterable[str], tokenizer: Tokenizer) -> LexiconReport:
    """Spell each word with the tokenizer; words with characters outside it, or past
    ``MAX_HOMOPHONES`` words with the same spelling, are reported."""
    report = LexiconReport({})
    spelled: dict[str, int] = {}
    for word in words:
        if word in report.lexicon:
            continue
        spelling = spell(word, tokenizer)
        if spelling is None:
            if tokenizer.kind == "phone":
                report.skipped.append((word, "no pronunciation"))
                continue
            bad = "".join(sorted(tokenizer.unknown_chars(word))) or WORD_SEP
            report.skipped.append((word, f"characters outside the tokenizer: {bad!r}"))
        elif (why := _homophone_limit(spelled, spelling)) is not None:
            report.skipped.append((word, why))
        else:
            report.lexicon[word] = [spelling]
    return report


def read_lexicon(path: str | Path, tokenizer: Tokenizer) -> LexiconReport:
    """Read ``word t o k e n s |`` lines. Malformed lines raise; unknown tokens are reported."""
    path = Path(path)
    if not path.is_file():
        raise LexiconError(f"{path}: lexicon file not found")
    tokens = set(tokenizer.tokens)
    report = LexiconReport({})
    spelled: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        word, *spelling = line.split()
        if not spelling:
            raise LexiconError(f"{path}:{lineno}: no spelling after the word {word!r}")
        if not tokens.issuperset(spelling):
            unknown = sorted({t for t in spelling if t not in tokens})
            report.skipped.append((word, f"tokens outside the tokenizer: {' '.join(unknown)}"))
            continue
        if spelling[-1] != WORD_SEP:
            spelling.append(WORD_SEP)  # see the module docstring
        why = _homophone_limit(spelled, spelling)
        if why is not None:
            report.skipped.append((word, why))
            continue
        report.lexicon.setdefault(word, []).append(spelling)
    if not report.lexicon:
        raise LexiconError(f"{path}: no usable lexicon entries")
    return report


def write_lexicon(lexicon: Lexicon, path: str | Path) -> Path:
    path = Path(path)
    path.write_text("".join(f"{w} {' '.join(s)}\n" for w, spellings in lexicon.items() for s in spellings),
                    encoding="utf-8")
    return path
