"""Lexicons for lexicon-constrained beam search: word -> spellings in the tokenizer's tokens.

A file has one spelling per line, the word and then its tokens as the model's tokenizer
segments it: ``cat c a t |`` for a character model, ``cat c at |`` for a subword model (the
pieces ``asr lm build --unit token`` would write; the lexicon ``asr export --lm`` packages is
one), ``cat K AE T |`` for a phone model (a pronunciation). Every spelling ends with the word
separator ``|``: the model emits it between words, and a lexicon without it makes the search
glue words together (the word error rate explodes), so one is added where it is missing. A phone
model's file may be the pronunciation file it was trained with (``train.phone_lexicon``): its
stress digits, ``WORD(2)`` variants and ``#`` comments are read as asr/phones.py reads them.

Words are normalized as ``asr lm build`` normalizes an LM's words (lower case, no punctuation),
unless the LM holds the word as written. A subword model hardly ever emits another
segmentation of a word than its tokenizer's (``c a t`` for ``cat c at``): the search would find
such a spelling only by chance, so it is respelled in the model's own pieces, and said once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from asr.phones import entry_fields, is_comment, is_tonal, without_stress
from asr.text import WORD_SEP, normalize_text
from asr.tokenizers import Tokenizer

Lexicon = dict[str, list[list[str]]]  # flashlight's layout: word -> list of spellings
# flashlight's lexicon trie holds at most 6 words per spelling and prints a line on stderr for
# each one more (kept nowhere). Phone spellings reach it in a large vocabulary ("OW |": o, oh,
# owe, eau, ...), so lexicons keep the first 6 in their order (LM words: likeliest first).
MAX_HOMOPHONES = 6
_PLAIN = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")  # words normalize_text leaves as they are (the common case, fast)
_TAG = re.compile(r"[<\[].*[>\]]")  # an LM's markup (<UNK>, [noise]): not a word to spell as its letters


def as_normalized(word: str) -> str:
    """``normalize_text(word)``, skipped for the common word it would leave as it is (fast over an
    LM's or lexicon's tens of thousands of words)."""
    return word if _PLAIN.fullmatch(word) else normalize_text(word)


class LexiconError(ValueError):
    pass


@dataclass
class LexiconReport:
    lexicon: Lexicon
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (word, reason): words left out
    # (word, reason): spellings left out of words the lexicon keeps with another spelling
    dropped_spellings: list[tuple[str, str]] = field(default_factory=list)
    respelled: list[tuple[str, list[str], list[str]]] = field(default_factory=list)  # (word, given, own)
    spellings: int = 0  # lines read (file lexicons)

    def summary(self, source: str, shown: int = 8) -> str:
        """One line: how many words were left out and a few examples."""
        return f"{source}: {len(self.skipped)} word(s) left out of the lexicon: {_examples(self.skipped, shown)}"

    def notes(self, source: str) -> list[str]:
        """What the user should hear about this lexicon: words and spellings left out, respellings."""
        notes = [self.summary(source)] if self.skipped else []
        if self.dropped_spellings:
            notes.append(f"{source}: {len(self.dropped_spellings)} spelling(s) left out of words the lexicon keeps "
                         f"with another spelling: {_examples(self.dropped_spellings, 8)}")
        if self.respelled:
            shown = ", ".join(f"{w}: {' '.join(given)} -> {' '.join(own)}" for w, given, own in self.respelled[:3])
            notes.append(f"{source}: {len(self.respelled)} of {self.spellings} spellings are not the model's own "
                         f"segmentation of the word, the one it emits: respelled in its tokens ({shown}"
                         + (", ...)" if len(self.respelled) > 3 else ")"))
        return notes


def _examples(items: list[tuple[str, str]], shown: int) -> str:
    listed = ", ".join(f"{w!r} ({why})" for w, why in items[:shown])
    return listed + (f" and {len(items) - shown} more" if len(items) > shown else "")


def spell(word: str, tokenizer: Tokenizer) -> list[str] | None:
    """A word's spelling in tokens, ending with ``|``; None when a character is not a token."""
    if tokenizer.unknown_chars(word) or WORD_SEP in word:
        return None
    return [*tokenizer.word_tokens(word), WORD_SEP]


def own_spellings(spellings: list[list[str]], tokenizer: Tokenizer) -> list[list[str]]:
    """Each spelling (ending with ``|``) as the tokenizer segments its letters, each ``|``-delimited
    part on its own; a phone model's spellings are pronunciations, kept as they are (and a
    character model's are its letters). A subword model segments all the words in one call."""
    if tokenizer.kind in ("phone", "char"):
        return spellings
    parts = []  # (entry, start, end): tokens [start:end) of an entry are one word's, of several pieces
    for n, spelling in enumerate(spellings):
        if len(spelling) <= 2:  # one piece (or none) and |: nothing to segment
            continue
        end = spelling.index(WORD_SEP)
        if end == len(spelling) - 1:  # one word: the common case, kept fast (a lexicon has 70,000)
            parts.append((n, 0, end))
            continue
        start = 0
        for k, token in enumerate(spelling):  # several words in one entry
            if token == WORD_SEP:
                if k - start > 1:
                    parts.append((n, start, k))
                start = k + 1
    own = list(spellings)
    segmented = _segmented(["".join(spellings[n][start:end]) for n, start, end in parts], tokenizer)
    for (n, start, end), pieces in reversed(list(zip(parts, segmented))):  # an entry's last word first:
        if spellings[n][start:end] != pieces:  # its earlier ones keep their places
            own[n] = own[n][:start] + pieces + own[n][end:]
    return own


def _segmented(words: list[str], tokenizer: Tokenizer) -> list[list[str]]:
    """``tokenizer.word_tokens`` of each word, at once where the tokenizer can (sentencepiece)."""
    if hasattr(tokenizer, "words_tokens"):
        return tokenizer.words_tokens(words)
    return [tokenizer.word_tokens(w) for w in words]


def _homophone_limit(spelled: dict[str, int], spelling: list[str]) -> str | None:
    """Count one more word spelled ``spelling``; the reason to leave it out past the limit."""
    key = " ".join(spelling)
    count = spelled.get(key, 0)
    if count >= MAX_HOMOPHONES:
        return f"{MAX_HOMOPHONES} words before it are spelled {key}"
    spelled[key] = count + 1
    return None


def lexicon_from_words(words: Iterable[str], tokenizer: Tokenizer, source: str | None = None) -> LexiconReport:
    """Spell each word with the tokenizer; words with characters outside it, or past
    ``MAX_HOMOPHONES`` words with the same spelling, are reported. A word normalization would
    change (an upper-case LM's ``THE``) is spelled as normalized and kept as written: the LM
    scores it by that name. A list none of whose words can be spelled is refused, naming
    ``source``: the search would output nothing."""
    report = LexiconReport({})
    spelled: dict[str, int] = {}
    for word in words:
        if word in report.lexicon:
            continue
        written, spelling = word, spell(word, tokenizer)
        if spelling is None and not _PLAIN.fullmatch(word) and not _TAG.fullmatch(word):
            word = normalize_text(written)
            if not word or " " in word:
                report.skipped.append((written, f"normalizes to several words: {word!r}" if word
                                       else "no letters or digits"))
                continue
            spelling = spell(word, tokenizer)
        if spelling is None:
            if tokenizer.kind == "phone":
                report.skipped.append((written, "no pronunciation"))
                continue
            bad = "".join(sorted(tokenizer.unknown_chars(word))) or WORD_SEP
            report.skipped.append((written, f"characters outside the tokenizer: {bad!r}"))
        elif (why := _homophone_limit(spelled, spelling)) is not None:
            report.skipped.append((written, why))
        else:
            report.lexicon[written] = [spelling]
    if report.skipped and not report.lexicon:
        raise LexiconError(f"{source or 'the LM'}: none of its {len(report.skipped)} words can be spelled in the "
                           f"model's tokens (e.g. {_examples(report.skipped, 3)}): the search would output nothing")
    return report


def _lines(path: Path) -> list[str]:
    try:  # -sig: an editor's byte-order mark would be part of the first word (U+FEFF, invisible)
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise LexiconError(f"{path}: lexicon file is not UTF-8 text ({e.reason} at byte {e.start})") from None


@dataclass
class LexiconLines:
    """A lexicon file's lines as read, before anything is asked of an LM: (as written, normalized,
    spelling) each, with the model's own segmentation of each spelling. ``words`` is what the LM
    may be asked about, so that one loaded LM can answer (asr/search_space.py)."""

    path: Path
    tokenizer: Tokenizer
    entries: list[tuple[str, str, list[str]]]
    owns: list[list[str]]

    def words(self) -> list[str]:
        """Every word as normalized and, where that differs, as written; each once."""
        words = dict.fromkeys([normal for _, normal, _ in self.entries if normal])
        words.update(dict.fromkeys([written for written, normal, _ in self.entries if written != normal]))
        return list(words)

    def report(self, lm_knows: Callable[[set[str]], set[str]] | None = None) -> LexiconReport:
        """The lexicon the search reads (see ``read_lexicon``)."""
        changed = {w for w, normal, _ in self.entries if normal != w}
        as_written = lm_knows(changed) if changed and lm_knows is not None else set()
        tokens = set(self.tokenizer.tokens)
        report = LexiconReport({}, spellings=len(self.entries))
        spelled: dict[str, int] = {}
        for (written, normal, spelling), own in zip(self.entries, self.owns):
            word = written if written in as_written else normal
            if not word or " " in word:
                what = "no letters or digits" if not word else f"normalizes to several words: {word!r}"
                report.skipped.append((written, what))
                continue
            if not tokens.issuperset(spelling):
                unknown = sorted({t for t in spelling if t not in tokens})
                report.skipped.append((word, f"tokens outside the tokenizer: {' '.join(unknown)}"))
                continue
            if own != spelling and tokens.issuperset(own):
                report.respelled.append((word, spelling, own))
            else:
                own = spelling
            if own in report.lexicon.get(word, ()):
                continue  # the same line again (lexicons merged from several sources repeat them)
            why = _homophone_limit(spelled, own)
            if why is not None:
                report.skipped.append((word, why))
                continue
            report.lexicon.setdefault(word, []).append(own)
        if not report.lexicon:
            raise LexiconError(f"{self.path}: no usable lexicon entries")
        # A word kept with another spelling is in the lexicon: only that spelling was left out.
        report.dropped_spellings = [(w, why) for w, why in report.skipped if w in report.lexicon]
        left_out = {}  # a word, once, with its first reason
        for w, why in report.skipped:
            if w not in report.lexicon:
                left_out.setdefault(w, why)
        report.skipped = list(left_out.items())
        return report


def read_lexicon_lines(path: str | Path, tokenizer: Tokenizer) -> LexiconLines:
    """Parse ``word t o k e n s |`` lines; malformed lines raise (``read_lexicon`` reads them whole)."""
    path = Path(path)
    if not path.is_file():
        raise LexiconError(f"{path}: lexicon file not found")
    entries = []
    phones = tokenizer.kind == "phone"  # a pronunciation file, read as training reads one (asr/phones.py)
    tonal = phones and is_tonal(tokenizer.tokens[2:])
    for lineno, line in enumerate(_lines(path), 1):
        if line.strip() and not (phones and is_comment(line)):
            written, *spelling = line.split()
            if phones:
                written, *spelling = entry_fields([written, *spelling])
                spelling = list(without_stress(spelling, keep_digits=tonal))
            if not spelling:
                raise LexiconError(f"{path}:{lineno}: no spelling after the word {written!r}")
            if spelling[-1] != WORD_SEP:
                spelling.append(WORD_SEP)  # see the module docstring
            entries.append((written, as_normalized(written), spelling))
    return LexiconLines(path, tokenizer, entries, own_spellings([spelling for _, _, spelling in entries], tokenizer))


def read_lexicon(path: str | Path, tokenizer: Tokenizer,
                 lm_knows: Callable[[set[str]], set[str]] | None = None) -> LexiconReport:
    """Read ``word t o k e n s |`` lines. Malformed lines raise; unknown tokens are reported.

    Words are normalized (``normalize_text``) except those that ``lm_knows`` (given the words
    that normalizing would change, it returns those the LM holds as written); spellings are
    respelled in the model's own segmentation (see the module docstring); a line repeating a
    word and spelling already read is dropped (not a homophone)."""
    return read_lexicon_lines(path, tokenizer).report(lm_knows)


def write_lexicon(lexicon: Lexicon, path: str | Path) -> Path:
    path = Path(path)
    path.write_text("".join(f"{w} {' '.join(s)}\n" for w, spellings in lexicon.items() for s in spellings),
                    encoding="utf-8")
    return path
