"""CMU Sphinx trie LMs (pocketsphinx's ``*.lm.bin``) read without pocketsphinx: every n-gram comes
back with the probability and backoff of the ARPA file it was built from, a word filter drops
words with their n-grams, and ``asr lm import-sphinx`` writes an ARPA file that loads.

The fixture tests/data/tiny_sphinx.lm.bin.gz is tests/data/tiny_sphinx.arpa (a Kneser-Ney 3-gram
of seven sentences, tokenized but not normalized: "Dr.", "The", "well-known"; its <unk> unigram
deleted, as en-us.lm.bin has none) written by
pocketsphinx 5.1.1 (``NGramModel(Config(), LogMath(1.0001), arpa).write(bin, str_to_type("bin"))``),
then gzipped: its 65,536-bin quantization tables are 768 KiB, almost all repeats."""

import gzip
import struct

import pytest

from asr.cli import main
from asr.arpa import ArpaModel, inspect_lm
from asr.lm import BOS, EOS, UNK, LMError
from asr.sphinx_lm import normalized_word, read_sphinx_lm, read_sphinx_trie, sphinx_to_arpa
from conftest import REPO_ROOT

DATA = REPO_ROOT / "tests" / "data"
BIN = DATA / "tiny_sphinx.lm.bin.gz"
SOURCE = DATA / "tiny_sphinx.arpa"
# With fewer n-grams of an order than the 65,536 bins, each value gets a bin of its own: what is
# left is float32 rounding (of values in Sphinx's log base 1.0001) and the ARPA file's 7 digits.
# (Not always: pocketsphinx sorts values to bin with a comparator that truncates to whole units of
# 4e-5, which puts some in a neighbour's bin, 1e-4 off in a 4-gram of 90k n-grams; none here. A
# large LM pays for its bins: for 280k 3-grams of LJ Speech 2e-5 on average, 0.01 in sparse bins.)
TOLERANCE = 1e-6
# The fixture's layout: header (string, order, 3 counts), quantization tables, 20 unigrams + a sentinel.
BIGRAMS_START = 19 + 1 + 4 * 3 + 4 + 4 * 3 * 65536 + 12 * 21
BIGRAM_BITS = 5 + 16 + 16 + 6  # word id (20 words), backoff bin, prob bin, index of the first of 39 trigrams


@pytest.fixture
def plain_bin(tmp_path):
    path = tmp_path / "tiny.lm.bin"
    path.write_bytes(gzip.decompress(BIN.read_bytes()))
    return path


def test_every_ngram_comes_back_with_its_probability_and_backoff():
    model = read_sphinx_lm(BIN)
    source = ArpaModel(SOURCE)
    assert model.order == 3
    got = {g: v for table in model.ngrams for g, v in table.items()}
    assert set(got) == set(source.ngrams)
    for gram, (prob, backoff) in source.ngrams.items():
        assert got[gram][0] == pytest.approx(prob, abs=TOLERANCE), gram
        if len(gram) < 3:
            assert got[gram][1] == pytest.approx(backoff, abs=TOLERANCE), gram
        else:
            assert got[gram][1] is None  # the highest order has no backoff


def test_plain_and_gzipped_files_read_the_same_whatever_their_name(plain_bin, tmp_path):
    unnamed = tmp_path / "gzipped.lm.bin"  # without .gz: known by its magic bytes
    unnamed.write_bytes(BIN.read_bytes())
    assert read_sphinx_trie(unnamed).words == read_sphinx_trie(BIN).words
    a, b = read_sphinx_trie(plain_bin), read_sphinx_trie(BIN)
    assert a.words == b.words and a.header_counts == b.header_counts == (20, 36, 39)
    assert all((x == y).all() for x, y in zip(a.ids, b.ids))


def test_the_arpa_file_is_standard_and_loads_as_the_source(tmp_path):
    out = tmp_path / "lm.arpa"
    counts = sphinx_to_arpa(BIN, out)
    assert counts == {1: 20 + 1, 2: 36, 3: 39}  # <unk> added: the source has none
    info = inspect_lm(out)
    assert info.order == 3 and info.counts == (21, 36, 39)
    lines = out.read_text().splitlines()
    assert "-0.7952142\t<s> Dr.\t-0.30103" in lines  # words separated by spaces
    trigrams = lines[lines.index("\\3-grams:") + 1: lines.index("\\end\\") - 1]
    assert all(len(line.split("\t")) == 2 for line in trigrams)  # no backoff at the highest order
    model, source = ArpaModel(out), ArpaModel(SOURCE)
    assert model.ngrams[(UNK,)] == (-99.0, 0.0) and model.log10_prob("zebra") == -99.0
    for history in [(), (BOS,), ("the",), ("the", "cat"), ("Dr.", "Smith"), ("a", "zebra")]:
        for word in ("cat", "dog", "Smith", EOS):
            assert model.log10_prob(word, history) == pytest.approx(source.log10_prob(word, history), abs=2 * TOLERANCE)


def contexts_sum(model: ArpaModel) -> dict[tuple[str, ...], float]:
    """Each context's (and the empty history's) total probability over the words it can predict."""
    vocabulary = [w for w in model.vocabulary if w != BOS]
    histories = [()] + [g for g in model.ngrams if len(g) < model.order and g != (EOS,)]
    return {h: sum(10 ** model.log10_prob(w, h) for w in vocabulary) for h in histories}


def test_the_word_filter_drops_words_and_every_ngram_holding_them_and_renormalizes(tmp_path):
    out = tmp_path / "lm.arpa"
    dropped: list[str] = []
    sphinx_to_arpa(BIN, out, word_filter=lambda w: None if w in ("Dr.", "fish") else w, dropped=dropped)
    assert sorted(dropped) == ["Dr.", "fish"]
    model, source = ArpaModel(out), ArpaModel(SOURCE)
    assert set(model.ngrams) == {g for g in source.ngrams if "Dr." not in g and "fish" not in g} | {(UNK,)}
    # Higher orders keep their probabilities; unigrams share out the dropped words' mass in proportion
    # (and that of the <unk> the source lost); backoff weights are recomputed.
    assert all(model.ngrams[g][0] == pytest.approx(source.ngrams[g][0], abs=TOLERANCE)
               for g in model.ngrams if len(g) > 1)
    unigrams = [g for g in model.ngrams if len(g) == 1 and g not in ((UNK,), (BOS,))]
    scale = {model.ngrams[g][0] - source.ngrams[g][0] for g in unigrams}
    assert max(scale) - min(scale) < 2 * TOLERANCE and min(scale) > 0
    assert all(total == pytest.approx(1.0, abs=1e-5) for total in contexts_sum(model).values())


def test_words_the_filter_merges_add_up_and_every_context_still_sums_to_one(tmp_path):
    out = tmp_path / "lm.arpa"
    notes: list[str] = []
    sphinx_to_arpa(BIN, out, word_filter=str.lower, notes=notes)
    model, source = ArpaModel(out), ArpaModel(SOURCE)
    assert ("The",) not in model.ngrams and sum(inspect_lm(out).counts) == len(model.ngrams)  # no n-gram twice
    # "<s> The" and "<s> the" are one n-gram now, with both probabilities: "The" starts 1 sentence, "the" 3
    both = 10 ** source.ngrams[(BOS, "the")][0] + 10 ** source.ngrams[(BOS, "The")][0]
    assert 10 ** model.ngrams[(BOS, "the")][0] == pytest.approx(both, rel=1e-5)
    # after the merged context "the", a mixture of what follows "the" and what follows "The"
    after = sorted(source.ngrams[(h, "cat")][0] for h in ("the", "The"))
    assert after[0] < model.ngrams[("the", "cat")][0] < after[1]
    assert all(g[:-1] in model.ngrams and g[1:] in model.ngrams for g in model.ngrams if len(g) > 1)  # well formed
    assert all(total == pytest.approx(1.0, abs=1e-5) for total in contexts_sum(model).values())
    assert any("merged" in note and "added up" in note for note in notes)


def test_without_a_filter_the_trie_is_written_as_it_is(tmp_path):
    # no word dropped or merged: nothing to renormalize (the source's own deficit, its deleted <unk>, stays)
    out = tmp_path / "lm.arpa"
    sphinx_to_arpa(BIN, out, word_filter=lambda w: w)
    model, source = ArpaModel(out), ArpaModel(SOURCE)
    assert all(model.ngrams[g] == pytest.approx(source.ngrams[g], abs=TOLERANCE) for g in model.ngrams if g != (UNK,))


def test_the_normalizing_filter_lower_cases_and_drops_what_normalization_would_change():
    assert [normalized_word(w) for w in ("The", "don't", "o'clock", "Dr.", "well-known", "students'", "1/2", "ok")] \
        == ["the", "don't", "o'clock", None, None, None, None, "ok"]


@pytest.mark.parametrize("content, problem", [
    (None, "not found"),
    (b"\\data\\\nngram 1=1\n", "not a Sphinx trie LM"),
    (b"Trie Language Model\x09", "order 9"),
    (b"Trie Language Model\x03\x01\x00\x00\x00", "truncated Sphinx trie LM: file ends inside the header"),
])
def test_bad_files_get_a_one_line_error_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.lm.bin"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LMError, match=problem) as e:
        read_sphinx_trie(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_counts_come_from_the_trie_when_the_header_declares_more(plain_bin, tmp_path):
    """en-us.lm.bin's header declares 6 bigrams its trie lacks (pocketsphinx PR #501); its writer
    sized the bigram array by that count. Forge the same: 40 bigrams declared, 36 in the trie."""
    data = plain_bin.read_bytes()
    size = lambda count: ((count + 1) * BIGRAM_BITS + 7) // 8 + 8  # + a sentinel, + 8 spare bytes
    end = BIGRAMS_START + size(36)
    forged = data[:20] + struct.pack("<3I", 20, 40, 39) + data[32:end] + bytes(size(40) - size(36)) + data[end:]
    plain_bin.write_bytes(forged)
    notes: list[str] = []
    assert sphinx_to_arpa(plain_bin, tmp_path / "lm.arpa", notes=notes) == {1: 21, 2: 36, 3: 39}
    assert notes == [f"{plain_bin}: header declares 40 2-grams, the trie holds 36; wrote what the trie holds"]
    assert set(ArpaModel(tmp_path / "lm.arpa").ngrams) == set(ArpaModel(SOURCE).ngrams) | {(UNK,)}


@pytest.mark.parametrize("cut, part", [(200_000, "quantization tables"), (BIGRAMS_START + 50, "2-gram array"),
                                       (-3, "word list")])
def test_a_truncated_file_says_where_it_ends(plain_bin, cut, part):
    plain_bin.write_bytes(plain_bin.read_bytes()[:cut])
    with pytest.raises(LMError, match=f"{plain_bin}: truncated .* inside the {part}"):
        read_sphinx_trie(plain_bin)


def test_cli_writes_a_normalized_arpa_file(tmp_path, capsys):
    out = tmp_path / "en.arpa"
    assert main(["lm", "import-sphinx", str(BIN), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3-gram word LM" in printed and "2 words not in normalized form dropped" in printed
    assert "probabilities renormalized" in printed
    model = ArpaModel(out)
    words = set(model.vocabulary)
    assert {"the", "smith", "jones", BOS, EOS, UNK} <= words and not {"The", "Dr.", "dr.", "well-known"} & words
    assert all(w == normalized_word(w) for w in words - {BOS, EOS, UNK})
    assert main(["lm", "import-sphinx", str(BIN), "-o", str(out), "--keep-all-words"]) == 0
    assert "all words kept" in capsys.readouterr().out and "Dr." in ArpaModel(out).vocabulary


def test_cli_reports_a_bad_file_in_one_line(tmp_path, capsys):
    assert main(["lm", "import-sphinx", str(SOURCE), "-o", str(tmp_path / "x.arpa")]) == 2
    assert f"{SOURCE}: not a Sphinx trie LM" in capsys.readouterr().err
    assert not (tmp_path / "x.arpa").exists()
