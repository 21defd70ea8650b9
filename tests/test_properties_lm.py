"""Properties every n-gram LM here must have, on seeded random small texts: each context a
distribution over the vocabulary and </s> (estimated, mixed or pruned), ARPA files that read back
as written (and score in KenLM as here), the Python estimator giving lmplz's model, mixing exact
for every n-gram a component holds, pruning that keeps what KenLM needs."""

import gzip
import math
import random

import pytest
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from asr.arpa import ArpaModel, inspect_lm, write_arpa
from asr.lm import BOS, EOS, UNK, LMError, _discounts, build_lm, estimate_kneser_ney, kenlm_tool
from asr.lm_mix import _prob, _scored, best_weights, interpolate
from asr.lm_prune import prune


def random_text(rng: random.Random, words: int | None = None) -> list[list[str]]:
    """Sentences of 0-10 words over 3-30 words, some repeated, one word seen once."""
    vocab = [f"w{i}" for i in range(words or rng.randint(3, 30))]
    sentences = [[rng.choice(vocab) for _ in range(rng.randint(0, 10))] for _ in range(rng.randint(1, 12))]
    sentences += [sentences[0]] * rng.randint(0, 3)
    sentences.append([rng.choice(vocab), "once"])
    return sentences


def random_model(rng: random.Random, path, order: int | None = None) -> ArpaModel:
    sentences = random_text(rng)
    return ArpaModel(write_arpa(estimate_kneser_ney(sentences, order or rng.randint(1, 5)), path))


def histories(model: ArpaModel) -> set[tuple[str, ...]]:
    """Every context the model holds, and some it does not."""
    held = {g for g in model.ngrams if len(g) < model.order and g[-1] != EOS}
    return held | {(), ("unseen",), (BOS, "unseen"), ("unseen", "once")}


def distribution(model: ArpaModel, history: tuple[str, ...]) -> list[float]:
    return [10 ** model.log10_prob(w, history) for w in model.vocabulary if w != BOS]


def assert_every_context_sums_to_one(model: ArpaModel, tol: float = 1e-5) -> None:
    for h in histories(model):
        probs = distribution(model, h)
        assert sum(probs) == pytest.approx(1.0, abs=tol), h
        assert all(0 < p <= 1 for p in probs), h


# --- estimation ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(40))
def test_every_context_of_an_estimated_model_is_a_distribution_over_its_words_and_end_of_sentence(tmp_path, seed):
    model = random_model(random.Random(seed), tmp_path / "lm.arpa")
    assert_every_context_sums_to_one(model)
    # <s> is given, never predicted: no n-gram ends in it but its unigram, and <unk> keeps some mass
    assert [g for g in model.ngrams if g[-1] == BOS] == [(BOS,)]
    assert 0 < 10 ** model.ngrams[(UNK,)][0] < 1


@pytest.mark.parametrize("unit", ["word", "char"])
def test_models_of_words_and_characters_built_from_text_files_sum_to_one(tmp_path, unit):
    rng = random.Random(7)
    (tmp_path / "t.txt").write_text("".join(" ".join(s) + "\n" for s in random_text(rng, words=8)))
    path, _ = build_lm([tmp_path / "t.txt"], tmp_path / "lm.arpa", order=4, unit=unit, use_lmplz=False)
    assert_every_context_sums_to_one(ArpaModel(path))


@pytest.mark.parametrize("sentence", [["a", UNK, "b"], [BOS, "a"], ["a", EOS, "b"]])
def test_special_words_in_a_sentence_are_refused_as_lmplz_refuses_them(sentence):
    # a literal <unk> had the unseen words' share added twice: its unigrams summed to 1.125
    with pytest.raises(LMError, match="special words"):
        estimate_kneser_ney([sentence, ["a", "b"]], order=2)


def test_the_discounts_count_what_lmplz_counts_for_the_last_ngram_it_flushes():
    # lmplz 0.3.0 adds the raw count 3 of "w2" (last in its suffix order) to the unigram
    # count-of-counts: n1..n3 = 1, 1, 1 give D = 1/3, 1, 3 rather than the fallback. Values lmplz wrote:
    lm = estimate_kneser_ney([["w4", "w2"], ["w4", "w4", "w2", "w2"]], order=3)
    unigrams = lm.ngrams[0]
    assert unigrams[(EOS,)][0] == pytest.approx(-0.60206, abs=1e-6)
    assert unigrams[("w4",)][0] == pytest.approx(-0.49939764, abs=1e-6)
    assert unigrams[(UNK,)][0] == pytest.approx(-0.93305326, abs=1e-6)


def test_a_discount_at_its_bound_is_computed_in_float32_as_lmplz_does_not_taken_for_the_fallback():
    # unigram counts-of-counts 4, 3, 5: D2 is 0 in float32 (lmplz keeps it), -4.4e-16 in float64
    # (which would fall back): the model's probabilities then differed by up to 0.94
    (d1, d2, d3), why = _discounts([1] * 4 + [2] * 3 + [3] * 5, 1)
    assert why is None and d2 == 0.0


def test_a_context_whose_discounts_leave_nothing_to_back_off_writes_minus_infinity_and_sums_to_one(tmp_path):
    # D = 0 leaves "w0"'s lower order nothing: a backoff of 0.0 (weight 1) gave its continuations 1.625
    model = estimate_kneser_ney([["w0", "w1", "w1"], ["w1", "w0", "w1", "w1", "w1"]], order=4)
    assert model.ngrams[0][("w0",)][1] == -math.inf
    write_arpa(model, tmp_path / "lm.arpa")
    lm = ArpaModel(tmp_path / "lm.arpa")
    for history in [("w0",), (BOS, "w0"), ()]:
        assert sum(10 ** lm.log10_prob(w, history) for w in ("w0", "w1", EOS, UNK)) == pytest.approx(1, abs=1e-5)


@pytest.mark.skipif(not kenlm_tool("lmplz"), reason="KenLM's lmplz is not installed (make kenlm)")
@pytest.mark.parametrize("text, order", [  # texts whose last n-gram in lmplz's order once changed its discounts
    ("w4 w2\nw4 w4 w2 w2\n", 3), ("a b c\na a b b c c\n", 2)])
def test_the_python_estimator_gives_lmplzs_model_on_small_texts(tmp_path, text, order):
    (tmp_path / "t.txt").write_text(text)
    ours, _ = build_lm([tmp_path / "t.txt"], tmp_path / "ours.arpa", order=order, use_lmplz=False)
    theirs, _ = build_lm([tmp_path / "t.txt"], tmp_path / "lmplz.arpa", order=order, use_lmplz=True)
    a, b = ArpaModel(ours).ngrams, ArpaModel(theirs).ngrams
    assert a.keys() == b.keys()
    for g, (prob, backoff) in a.items():  # lmplz computes in float32
        assert (prob, backoff) == (pytest.approx(b[g][0], abs=2e-5), pytest.approx(b[g][1], abs=2e-5)), g


# --- ARPA files ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(10))
def test_an_arpa_file_reads_back_as_written_with_tabs_spaces_or_gzip_and_its_counts(tmp_path, seed):
    model = estimate_kneser_ney(random_text(random.Random(seed)), order=random.Random(seed).randint(1, 5))
    path = write_arpa(model, tmp_path / "lm.arpa")
    (tmp_path / "spaced.arpa").write_text(path.read_text().replace("\t", " "))
    (tmp_path / "lm.gz").write_bytes(gzip.compress(path.read_bytes()))
    read = ArpaModel(path).ngrams
    for n, table in enumerate(model.ngrams, 1):
        for g, (prob, backoff) in table.items():  # 7 significant digits written
            assert read[g] == (pytest.approx(prob, rel=1e-6), pytest.approx(backoff or 0.0, rel=1e-6, abs=1e-12)), g
    assert ArpaModel(tmp_path / "spaced.arpa").ngrams == read == ArpaModel(tmp_path / "lm.gz").ngrams
    assert inspect_lm(path).counts == tuple(len(t) for t in model.ngrams)


@pytest.mark.parametrize("seed", range(5))
def test_kenlm_scores_a_written_model_as_it_is_read_here(tmp_path, seed):
    rng = random.Random(seed)
    model = random_model(rng, tmp_path / "lm.arpa", order=rng.randint(2, 5))  # KenLM loads no unigram LM
    words = [w for w in model.vocabulary if w != BOS]
    dictionary = Dictionary([*words, "unseen"])
    kenlm = KenLM(str(tmp_path / "lm.arpa"), dictionary)
    for _ in range(5):
        sentence = [rng.choice([*words, "unseen"]) for _ in range(rng.randint(0, 8))]
        state, theirs, history = kenlm.start(False), 0.0, (BOS,)
        ours = 0.0
        for w in sentence:
            state, score = kenlm.score(state, dictionary.get_index(w))
            theirs += score
            ours += model.log10_prob(w if w in model.vocabulary else UNK, history)
            history += (w,)
        theirs += kenlm.finish(state)[1]
        ours += model.log10_prob(EOS, history)
        assert theirs == pytest.approx(ours, abs=1e-4), sentence


# --- mixing ----------------------------------------------------------------------------------------------------------

def two_models(tmp_path, seed):
    rng = random.Random(seed)
    return rng, [random_model(rng, tmp_path / f"{i}.arpa") for i in range(2)]


@pytest.mark.parametrize("seed", range(15))
def test_a_mixture_gives_every_ngram_of_either_model_the_weighted_sum_and_sums_to_one(tmp_path, seed):
    rng, models = two_models(tmp_path, seed)
    weights = [w := rng.random(), 1 - w]
    mixed = ArpaModel(write_arpa(interpolate(models, weights), tmp_path / "mix.arpa"))
    assert_every_context_sums_to_one(mixed)
    vocabs = [set(m.vocabulary) for m in models]
    for g in {*models[0].ngrams, *models[1].ngrams} - {(BOS,)}:
        want = sum(w * _prob(m, v, g[-1], g[:-1]) for m, v, w in zip(models, vocabs, weights))
        assert 10 ** mixed.log10_prob(g[-1], g[:-1]) == pytest.approx(want, rel=1e-5), g


@pytest.mark.parametrize("seed", range(15))
def test_fitted_weights_sum_to_one_and_no_weight_on_a_grid_fits_the_dev_text_better(tmp_path, seed):
    # EM maximizes the likelihood of the components' weighted sum (as SRILM's compute-best-mix);
    # the static model written differs where no component holds the n-gram (see asr/lm_mix.py).
    rng, models = two_models(tmp_path, seed)
    dev = random_text(rng, words=12)
    weights = best_weights(models, dev)
    assert sum(weights) == pytest.approx(1.0, abs=1e-12) and all(w >= 0 for w in weights)
    vocabs = [set(m.vocabulary) for m in models]
    rows = [[_prob(m, v, w, h) for m, v in zip(models, vocabs)] for w, h in _scored(dev, 5)]
    rows = [r for r in rows if any(r)]

    def log_likelihood(ws):
        return sum(math.log(max(ws[0] * a + ws[1] * b, 1e-300)) for a, b in rows)

    best = log_likelihood(weights)
    for g in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0):  # two LMs: the exact optimum (rounding aside)
        assert best >= log_likelihood([g, 1 - g]) - 1e-9 * len(rows), g


# --- pruning ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(15))
def test_a_pruned_model_sums_to_one_keeps_every_unigram_and_every_context_of_what_it_keeps(tmp_path, seed):
    model = random_model(random.Random(seed), tmp_path / "lm.arpa", order=random.Random(seed).randint(2, 5))
    for threshold in (1e-3, 1e-1):
        pruned = ArpaModel(write_arpa(prune(model, threshold), tmp_path / "pruned.arpa"))
        assert_every_context_sums_to_one(pruned)
        assert {g for g in pruned.ngrams if len(g) == 1} == {g for g in model.ngrams if len(g) == 1}
        for g in pruned.ngrams:
            assert len(g) == 1 or (g[:-1] in pruned.ngrams and g[1:] in pruned.ngrams), g


@pytest.mark.parametrize("seed", range(10))
def test_threshold_zero_prunes_nothing_and_changes_no_value(tmp_path, seed):
    model = random_model(random.Random(seed), tmp_path / "lm.arpa")
    kept = ArpaModel(write_arpa(prune(model, 0.0), tmp_path / "pruned.arpa")).ngrams
    assert kept.keys() == model.ngrams.keys()
    for g, (prob, backoff) in model.ngrams.items():
        assert kept[g] == (pytest.approx(prob, abs=1e-5), pytest.approx(backoff, abs=1e-4)), g
