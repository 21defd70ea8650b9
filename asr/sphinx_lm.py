"""CMU Sphinx's binary trie LMs (``*.lm.bin``, "Trie Language Model") read in pure Python, and
written out as ARPA files.

pocketsphinx ships a generic US-English 3-gram LM (``en-us.lm.bin``, 72,547 words, BSD licence)
only in this format, and its own ARPA writer aborts on that file: the header declares 6 more
bigrams than the trie holds (pocketsphinx PR #501). Here the counts come from the trie itself.

The format (pocketsphinx ``src/lm/ngram_model_trie.c``, ``lm_trie.c``, ``lm_trie_quant.c``), all
little-endian: the header string, a byte for the order, a uint32 count per order; for order > 1
an int32 and the float32 quantization tables (65,536 bins each: probability and backoff per
middle order, probability for the highest); the unigrams (float32 prob, float32 backoff,
uint32 index of their first child) plus one sentinel; the bit-packed middle and highest-order
arrays; a uint32 byte count and the NUL-terminated words. The trie is KenLM's: rooted at the
*predicted* word, each level one word further back into the history, so a path ``w3 -> w2 -> w1``
is the n-gram ``w1 w2 w3``. A middle entry holds the word, a 16-bit backoff bin, a 16-bit
probability bin and the index of its first child; a highest-order entry the word and a
probability bin. Values are Sphinx logs in base 1.0001 (the default ``-logbase``; the file does
not record it), converted to log10 as pocketsphinx's writer does. Unigrams are float32; higher
orders carry the quantizer's error (bins are means of the values they hold; measured: up to 1e-4
with fewer n-grams than bins, 2e-5 on average and up to 0.01 in sparse bins for 280k 3-grams).
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from asr.atomic import atomic_open
from asr.arpa import GZIP_MAGIC, SPECIAL, NgramModel, write_arpa
from asr.lm import BOS, EOS, UNK, LMError
from asr.lm_mix import with_backoffs
from asr.text import normalize_text

HEADER = b"Trie Language Model"
LOG10_OF_BASE = math.log10(1.0001)  # pocketsphinx's logmath_log_float_to_log10 with its default base
QUANT_BITS = 16  # per probability or backoff bin index
MAX_ORDER = 5  # NGRAM_MAX_ORDER
UNK_LOG10 = -99  # for an <unk> the file lacks: KenLM expects one
_UNIGRAM = np.dtype([("prob", "<f4"), ("bo", "<f4"), ("next", "<u4")])


@dataclass
class SphinxTrie:
    """The n-grams of a trie LM as arrays: ``ids[n-1]`` (count, n) word ids in text order, sorted;
    ``probs``/``backoffs`` log10 (``backoffs[-1]`` is None: the highest order has none)."""

    words: list[str]
    ids: list[np.ndarray]
    probs: list[np.ndarray]
    backoffs: list[np.ndarray | None]
    header_counts: tuple[int, ...]

    @property
    def order(self) -> int:
        return len(self.ids)


class _Reader:
    def __init__(self, path: Path, data: bytes):
        self.path, self.data, self.pos = path, data, 0

    def take(self, size: int, what: str) -> bytes:
        if self.pos + size > len(self.data):
            raise LMError(f"{self.path}: truncated Sphinx trie LM: file ends inside the {what}")
        self.pos += size
        return self.data[self.pos - size: self.pos]


def _bits(max_value: int) -> int:
    return int(max_value).bit_length()  # bitarr_required_bits


def _field(packed: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """``width`` bits at each bit offset (bitarr_read_int25/57): 8 bytes from the offset's byte."""
    return (packed[offsets >> np.uint64(3)] >> (offsets & np.uint64(7))) & np.uint64((1 << width) - 1)


def _children(path: Path, nexts: np.ndarray, limit: int, level: int) -> np.ndarray:
    """Each child's parent, from the parents' first-child indices (sentinel last)."""
    nexts = nexts.astype(np.int64)
    if nexts[0] != 0 or np.any(np.diff(nexts) < 0) or nexts[-1] > limit:
        raise LMError(f"{path}: corrupt Sphinx trie LM: bad child pointers into the {level}-grams")
    return np.repeat(np.arange(len(nexts) - 1), np.diff(nexts))


def read_sphinx_trie(path: str | Path) -> SphinxTrie:
    """Every n-gram of a Sphinx trie LM (``.lm.bin`` or ``.lm.bin.gz``), with its log10 probability
    and backoff."""
    path = Path(path)
    if not path.is_file():
        raise LMError(f"{path}: language model file not found")
    try:  # gzipped too, as pocketsphinx reads them (known by the magic bytes, whatever the name)
        data = path.read_bytes()
        r = _Reader(path, gzip.decompress(data) if data[:2] == GZIP_MAGIC else data)
    except (OSError, EOFError, zlib.error) as e:
        raise LMError(f"{path}: cannot read: {e}") from None
    if r.data[:len(HEADER)] != HEADER:
        raise LMError(f"{path}: not a Sphinx trie LM (no {HEADER.decode()!r} header)")
    order = r.take(len(HEADER) + 1, "header")[-1]
    if not 1 <= order <= MAX_ORDER:
        raise LMError(f"{path}: Sphinx trie LM of order {order}; expected 1 to {MAX_ORDER}")
    counts = [int(c) for c in np.frombuffer(r.take(4 * order, "header"), "<u4")]
    vocab = counts[0]
    tables = None
    if order > 1:
        r.take(4, "quantization tables")  # once the quantization type; always 1
        n_bins = 1 << QUANT_BITS
        tables = np.frombuffer(r.take(4 * n_bins * (2 * order - 3), "quantization tables"), "<f4")
        tables = tables.astype(np.float64).reshape(2 * order - 3, n_bins) * LOG10_OF_BASE
    unigrams = np.frombuffer(r.take(_UNIGRAM.itemsize * (vocab + 1), "unigrams"), _UNIGRAM)

    ids = [np.arange(vocab, dtype=np.int64)[:, None]]
    probs = [unigrams["prob"][:vocab].astype(np.float64) * LOG10_OF_BASE]
    backoffs: list[np.ndarray | None] = [unigrams["bo"][:vocab].astype(np.float64) * LOG10_OF_BASE]
    parents = _children(path, unigrams["next"], counts[1], 2) if order > 1 else None
    word_bits = _bits(vocab)
    for n in range(2, order + 1):
        # Array sizes follow the header counts (as the writer's did), entries the parents' pointers.
        next_bits = _bits(counts[n]) if n < order else 0
        total = word_bits + (2 * QUANT_BITS + next_bits if n < order else QUANT_BITS)
        mem = r.take(((counts[n - 1] + 1) * total + 7) // 8 + 8, f"{n}-gram array")  # + a sentinel, + 8 spare
        packed = np.ndarray((len(mem) - 7,), "<u8", mem, strides=(1,))  # unaligned 8-byte loads
        offsets = np.arange(len(parents) + (n < order), dtype=np.uint64) * np.uint64(total)
        words = _field(packed, offsets[:len(parents)], word_bits).astype(np.int64)
        if len(words) and words.max() >= vocab:
            raise LMError(f"{path}: corrupt Sphinx trie LM: {n}-gram word index out of range")
        ids.append(np.column_stack([words, ids[-1][parents]]))  # one word further back in the history
        if n < order:
            at = offsets + np.uint64(word_bits)
            backoffs.append(tables[2 * n - 3][_field(packed, at[:-1], QUANT_BITS)])
            probs.append(tables[2 * n - 4][_field(packed, at[:-1] + np.uint64(QUANT_BITS), QUANT_BITS)])
            parents = _children(path, _field(packed, at + np.uint64(2 * QUANT_BITS), next_bits), counts[n], n + 1)
        else:
            probs.append(tables[-1][_field(packed, offsets + np.uint64(word_bits), QUANT_BITS)])
            backoffs.append(None)
    if order == 1:
        backoffs = [None]  # as in ARPA files: the highest order has no backoff

    size = int(np.frombuffer(r.take(4, "word list"), "<u4")[0])
    block = r.take(size, "word list")
    words = block.split(b"\0")
    if len(words) != vocab + 1 or words[-1]:
        raise LMError(f"{path}: corrupt Sphinx trie LM: word list has {len(words) - 1} words, header says {vocab}")
    try:
        names = [w.decode("utf-8") for w in words[:-1]]
    except UnicodeDecodeError:
        raise LMError(f"{path}: Sphinx trie LM words are not UTF-8") from None
    for n in range(1, order):  # sorted by n-gram (word ids, first word first), as ARPA files usually are
        rank = np.lexsort(ids[n].T[::-1])
        ids[n], probs[n] = ids[n][rank], probs[n][rank]
        if backoffs[n] is not None:
            backoffs[n] = backoffs[n][rank]
    return SphinxTrie(names, ids, probs, backoffs, tuple(counts))


def read_sphinx_lm(path: str | Path) -> NgramModel:
    """A Sphinx trie LM as ``asr.lm.NgramModel`` (dicts: fine for small LMs, slow for large ones)."""
    trie = read_sphinx_trie(path)
    tables = []
    for ids, probs, bows in zip(trie.ids, trie.probs, trie.backoffs):
        grams = [tuple(trie.words[i] for i in row) for row in ids.tolist()]
        tables.append(dict(zip(grams, zip(probs.tolist(), bows.tolist() if bows is not None else [None] * len(grams)))))
    return NgramModel(tables)


def normalized_word(word: str) -> str | None:
    """The word filter for transcripts' vocabulary: lower-cased, kept if ``normalize_text`` leaves
    it one word unchanged (drops "a.", "al-qaeda", "1/2"; keeps "don't", "o'clock")."""
    word = word.lower()
    return word if normalize_text(word) == word else None


def sphinx_to_arpa(src: str | Path, dst: str | Path, word_filter: Callable[[str], str | None] | None = None,
                   dropped: list[str] | None = None, notes: list[str] | None = None) -> dict[int, int]:
    """Write a Sphinx trie LM as an ARPA file; returns the n-gram counts written.

    ``word_filter`` maps each word (not ``<s>``, ``</s>``, ``<unk>``) to the word to write or None;
    n-grams with a dropped word are left out, and those dropped words appended to ``dropped``.
    Words it maps to the same word are merged (see ``_merged``). When it drops or merges any, the
    model is renormalized: unigrams scaled to sum to 1, every backoff weight recomputed so that
    each context sums to 1 (as ``asr lm mix`` and ``prune`` do). Otherwise the trie's values are
    written as they are. ``<unk>`` is added (log10 prob -99) when missing, as KenLM expects one.
    Remarks go to ``notes``."""
    trie = read_sphinx_trie(src)
    notes = [] if notes is None else notes
    for n, (declared, found) in enumerate(zip(trie.header_counts, trie.ids), 1):
        if declared != len(found):
            notes.append(f"{src}: header declares {declared} {n}-grams, the trie holds {len(found)}; "
                         f"wrote what the trie holds")
    names = [w if w in SPECIAL or word_filter is None else word_filter(w) for w in trie.words]
    if dropped is not None:
        dropped.extend(w for w, name in zip(trie.words, names) if name is None)
    if names == trie.words:
        counts = _write_as_is(trie, dst)
    else:
        model = _renormalized(trie, names, notes)
        write_arpa(model, dst)
        counts = {n: len(table) for n, table in enumerate(model.ngrams, 1)}
    if BOS not in names or EOS not in names:
        notes.append(f"{src}: no {BOS} or {EOS} unigram; KenLM will refuse the ARPA file")
    return counts


def _write_as_is(trie: SphinxTrie, dst: str | Path) -> dict[int, int]:
    """The trie's n-grams with their values, written from its arrays (no dicts of all n-grams: for
    pocketsphinx's en-us.lm.bin, 3.8 M of them, those take 1.6 GB)."""
    add_unk = UNK not in trie.words
    counts = {n: len(ids) + (n == 1 and add_unk) for n, ids in enumerate(trie.ids, 1)}
    with atomic_open(dst) as f:
        f.write("\\data\\\n" + "".join(f"ngram {n}={c}\n" for n, c in counts.items()))
        for n, (ids, probs, bows) in enumerate(zip(trie.ids, trie.probs, trie.backoffs), 1):
            f.write(f"\n\\{n}-grams:\n")
            if n == 1 and add_unk:
                f.write(f"{UNK_LOG10}\t{UNK}\t0\n" if bows is not None else f"{UNK_LOG10}\t{UNK}\n")
            for at in range(0, len(ids), 100_000):  # in chunks: the strings of all n-grams take GBs
                grams = [" ".join(trie.words[i] for i in row) for row in ids[at: at + 100_000].tolist()]
                p = probs[at: at + 100_000].tolist()
                if bows is None:
                    f.writelines(f"{lp:.7g}\t{g}\n" for lp, g in zip(p, grams))
                else:
                    f.writelines(f"{lp:.7g}\t{g}\t{b:.7g}\n"
                                 for lp, g, b in zip(p, grams, bows[at: at + 100_000].tolist()))
        f.write("\n\\end\\\n")
    return counts


def _renormalized(trie: SphinxTrie, names: list[str | None], notes: list[str]) -> NgramModel:
    """The trie's n-grams over ``names`` (None: dropped with its n-grams), as a normalized model."""
    first: dict[str, int] = {}
    canon = [-1 if name is None else first.setdefault(name, i) for i, name in enumerate(names)]
    merged = sum(1 for i, c in enumerate(canon) if c not in (-1, i))
    canon_ids = np.asarray(canon)
    kept = [np.flatnonzero((canon_ids[ids] >= 0).all(axis=1)) for ids in trie.ids]
    probs: list[dict[tuple[str, ...], float]] = []
    unigram = trie.probs[0].tolist() if merged else []
    contexts: list[list[int]] = [[]]  # an order's contexts are the kept n-grams of the order below
    for ids, logps, keep in zip(trie.ids, trie.probs, kept):
        rows, lps = ids[keep].tolist(), logps[keep].tolist()
        if merged:
            probs.append(_merged(rows, lps, contexts, canon, names, unigram))
            contexts = rows
        else:
            probs.append({tuple(names[i] for i in row): lp for row, lp in zip(rows, lps)})
    # The dropped words' unigram mass goes to the others (<s> is never predicted: not counted).
    shift = math.log10(sum(10 ** lp for g, lp in probs[0].items() if g != (BOS,)))
    probs[0] = {g: lp if g == (BOS,) else lp - shift for g, lp in probs[0].items()}
    probs[0].setdefault((UNK,), UNK_LOG10)
    if merged:
        notes.append(f"{merged} words merged into others by the word filter: their probabilities added up")
    return with_backoffs(probs)


def _merged(rows: list[list[int]], logps: list[float], contexts: list[list[int]], canon: list[int],
            names: list[str | None], unigram: list[float]) -> dict[tuple[str, ...], float]:
    """One order's n-grams (``rows``, word ids) once merged words are one word. In one context the
    merged word's probability is the sum of its variants'. Contexts that merge ("The cat", "the
    cat") have distributions of their own: the merged one is their mixture, each weighted by its
    probability, here the product of its words' unigram probabilities (the trie holds no better).
    ``contexts``: all kept (n-1)-grams (the variants of each merged context)."""
    def weight(context: tuple[int, ...]) -> float:
        return 10 ** sum(unigram[i] for i in context)

    total: dict[tuple[int, ...], float] = defaultdict(float)  # merged context -> its variants' weight
    for context in map(tuple, contexts):
        total[tuple(canon[i] for i in context)] += weight(context)
    mixed: dict[tuple[str, ...], float] = defaultdict(float)
    for row, lp in zip(rows, logps):
        context = tuple(row[:-1])
        mixed[tuple(names[i] for i in row)] += weight(context) / total[tuple(canon[i] for i in context)] * 10 ** lp
    return {g: math.log10(p) for g, p in mixed.items()}
