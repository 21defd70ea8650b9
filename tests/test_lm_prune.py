"""Entropy-based LM pruning: an n-gram's cost is the exact relative entropy its removal causes;
n-grams that backing off already predicts go first, informative ones stay; the pruned model is
still normalized and well formed (every kept n-gram's context and suffix kept), and a higher
threshold gives a smaller model with a gently higher perplexity."""

import math

import pytest

from asr.cli import main
from asr.arpa import KENLM_BINARY_MAGIC, ArpaModel, write_arpa
from asr.lm import BOS, EOS, LMError, build_lm
from asr.lm_mix import perplexity, with_backoffs
from asr.lm_prune import prune, prune_file, removal_costs

TEXT = ("the cat sat on the mat\nthe cat ate the food\na dog sat on a mat\nthe dog ate the cat food\n"
        "the president sat in the car\nthe car was on the road\na man ate food in the car\nthe dog ran\n"
        "a cat sat in the road\nthe man ran to the car\n")


def hand_made(tmp_path):
    """A bigram LM where p(c|a) is exactly what backing off from a gives c, and p(b|a) is far
    from it: unigrams </s> .2, a .3, b .2, c .3; after a: b .6, c .15 (so bow(a) = .5 and
    bow(a) * p(c) = .15)."""
    log = math.log10
    unigrams = {(BOS,): 0.0, (EOS,): log(0.2), ("a",): log(0.3), ("b",): log(0.2), ("c",): log(0.3)}
    bigrams = {(BOS, "a"): log(0.5), ("a", "b"): log(0.6), ("a", "c"): log(0.15)}
    path = write_arpa(with_backoffs([unigrams, bigrams]), tmp_path / "hand.arpa")
    return ArpaModel(path)


@pytest.fixture(scope="module")
def trigram(tmp_path_factory):
    d = tmp_path_factory.mktemp("prune")
    (d / "text.txt").write_text(TEXT)
    return ArpaModel(build_lm([d / "text.txt"], d / "lm.arpa", order=3, use_lmplz=False)[0])


def context_distribution(model, history):
    return {w: 10 ** model.log10_prob(w, history) for w in model.vocabulary if w != BOS}


def test_an_ngram_that_backing_off_predicts_exactly_costs_nothing_and_goes(tmp_path):
    model = hand_made(tmp_path)
    assert 10 ** model.log10_prob("c", ("a",)) == pytest.approx(0.15, rel=1e-5)
    costs = removal_costs(model, 2)
    assert costs[("a", "c")] == pytest.approx(0.0, abs=1e-6)
    assert costs[("a", "b")] > 1e-3
    pruned = prune(model, 1e-5)
    assert ("a", "c") not in pruned.ngrams[1] and ("a", "b") in pruned.ngrams[1]
    assert len(prune(model, 1.0).ngrams) == 1  # above every cost: a unigram model (the empty order dropped)


def test_a_cost_is_the_relative_entropy_between_the_model_with_and_without_the_ngram(trigram, tmp_path):
    for gram in [("the", "cat"), ("sat", "on"), (BOS, "the"), ("the", "dog")]:
        kept = {n: {g: lp for g, (lp, _) in trigram.ngrams.items() if len(g) == n and g != gram} for n in (1, 2, 3)}
        without = ArpaModel(write_arpa(with_backoffs([kept[1], kept[2], kept[3]]), tmp_path / "without.arpa"))
        history = gram[:-1]
        p_history = 1.0 if history == (BOS,) else 10 ** trigram.log10_prob(history[0])
        before, after = context_distribution(trigram, history), context_distribution(without, history)
        kl = p_history * sum(p * math.log(p / after[w]) for w, p in before.items())
        assert removal_costs(trigram, 2)[gram] == pytest.approx(kl, rel=1e-3, abs=1e-9), gram


def test_threshold_zero_keeps_every_ngram_with_its_probability(trigram):
    pruned = prune(trigram, 0.0)
    for n, table in enumerate(pruned.ngrams, 1):
        assert set(table) == {g for g in trigram.ngrams if len(g) == n}
        for g, (lp, _) in table.items():
            assert lp == pytest.approx(trigram.ngrams[g][0])


@pytest.mark.parametrize("threshold", [1e-3, 1e-2])
def test_a_pruned_model_is_normalized_and_keeps_every_context_and_suffix(trigram, tmp_path, threshold):
    pruned = prune(trigram, threshold)
    model = ArpaModel(write_arpa(pruned, tmp_path / "pruned.arpa"))
    assert set(model.vocabulary) == set(trigram.vocabulary)  # unigrams are never pruned
    for g in model.ngrams:
        if len(g) > 1:
            assert g[:-1] in model.ngrams and g[1:] in model.ngrams, g
    for history in [(BOS,), ("the",), (BOS, "the"), ("the", "cat"), ("sat", "on"), ("zebra",)]:
        assert sum(context_distribution(model, history).values()) == pytest.approx(1.0, abs=1e-5), history


def test_a_higher_threshold_prunes_more_and_perplexity_rises_gently(trigram, tmp_path):
    sentences = [line.split() for line in TEXT.splitlines()]
    sizes, ppls = [], []
    for threshold in (0.0, 1e-3, 1e-2, 1e-1):
        model = ArpaModel(write_arpa(prune(trigram, threshold), tmp_path / "p.arpa"))
        sizes.append(len(model.ngrams))
        ppls.append(perplexity(model, sentences)[0])
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]
    assert ppls == sorted(ppls) and ppls[-1] > ppls[0]


def test_negative_threshold_is_refused(trigram):
    with pytest.raises(LMError, match="threshold"):
        prune(trigram, -1e-8)


def test_cli_prunes_a_file_and_reports_the_counts(trigram, tmp_path, capsys):
    src = write_arpa(prune(trigram, 0.0), tmp_path / "in.arpa")
    assert main(["lm", "prune", str(src), "-o", str(tmp_path / "out.arpa"), "--threshold", "1e-2"]) == 0
    out = capsys.readouterr().out
    result = prune_file(src, tmp_path / "again.arpa", 1e-2)
    assert result.after[1] < result.before[1]
    assert f"2-grams {result.before[1]} -> {result.after[1]}" in out
    assert (tmp_path / "out.arpa").read_text() == (tmp_path / "again.arpa").read_text()


def test_cli_names_a_missing_lm_or_a_kenlm_binary(tmp_path, capsys):
    assert main(["lm", "prune", str(tmp_path / "nope.arpa"), "-o", str(tmp_path / "o.arpa"), "--threshold", "1e-8"]) != 0
    assert "nope.arpa" in capsys.readouterr().err
    binary = tmp_path / "lm.bin"
    binary.write_bytes(KENLM_BINARY_MAGIC + bytes(16))
    assert main(["lm", "prune", str(binary), "-o", str(tmp_path / "o.arpa"), "--threshold", "1e-8"]) != 0
    err = capsys.readouterr().err
    assert "lm.bin" in err and "ARPA" in err and not (tmp_path / "o.arpa").exists()


@pytest.mark.parametrize("threshold", [math.inf, math.nan])
def test_an_infinite_or_nan_threshold_is_refused(trigram, tmp_path, capsys, threshold):
    with pytest.raises(LMError, match="finite"):
        prune(trigram, threshold)
    src = write_arpa(prune(trigram, 0.0), tmp_path / "in.arpa")
    assert main(["lm", "prune", str(src), "-o", str(tmp_path / "out.arpa"), "--threshold", str(threshold)]) == 2
    assert "pruning threshold must be a finite number" in capsys.readouterr().err
    assert not (tmp_path / "out.arpa").exists()


def test_pruning_down_to_unigrams_warns_that_beam_search_cannot_load_the_result(trigram, tmp_path, capsys):
    src = write_arpa(prune(trigram, 0.0), tmp_path / "in.arpa")
    assert main(["lm", "prune", str(src), "-o", str(tmp_path / "out.arpa"), "--threshold", "1e-2"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["lm", "prune", str(src), "-o", str(tmp_path / "out.arpa"), "--threshold", "1e9"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "only unigrams left" in err and "order 2 or more" in err


def test_pruning_a_unigram_lm_warns_that_there_is_nothing_to_prune(tmp_path, capsys):
    (tmp_path / "text.txt").write_text(TEXT)
    src = build_lm([tmp_path / "text.txt"], tmp_path / "uni.arpa", order=1, use_lmplz=False)[0]
    assert main(["lm", "prune", str(src), "-o", str(tmp_path / "out.arpa"), "--threshold", "1e-3"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {src} is a unigram LM: pruning keeps every unigram, so there was nothing to prune" in err
    assert "order 2 or more" in err and len(err.splitlines()) == 1
