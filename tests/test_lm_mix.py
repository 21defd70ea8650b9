"""Mixing LMs: the interpolated ARPA model gives exactly l*pA + (1-l)*pB for every n-gram either
LM holds, backs off so that every context still sums to 1, and its weights can be fitted on dev
text by perplexity."""

import math

import pytest

from asr.cli import main
from asr.arpa import KENLM_BINARY_MAGIC, ArpaModel
from asr.lm import BOS, EOS, UNK, LMError, build_lm
from asr.lm_mix import best_weights, interpolate, mix_files, mixture_weights, perplexity

IN_DOMAIN = "the cat sat on the mat\nthe cat ate\na dog sat on a mat\nthe dog ate the cat food\n"
GENERAL = "the president sat in the car\nthe car was on the road\na man ate food in the car\nthe dog ran\n"


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    d = tmp_path_factory.mktemp("mix")
    (d / "a.txt").write_text(IN_DOMAIN)
    (d / "b.txt").write_text(GENERAL)
    a = build_lm([d / "a.txt"], d / "a.arpa", order=3, use_lmplz=False)[0]
    b = build_lm([d / "b.txt"], d / "b.arpa", order=2, use_lmplz=False)[0]  # orders may differ
    return d, a, b


def component_prob(model, word, history):
    return 10 ** model.log10_prob(word, history) if word in model.vocabulary else 0.0


HISTORIES = [(BOS,), (BOS, "the"), ("the", "cat"), ("sat", "on"), ("the", "car"), ("zebra",), ("a", "man"), ()]


def test_every_ngram_of_either_lm_gets_the_weighted_sum_of_their_probabilities(lms, tmp_path):
    d, a, b = lms
    out, weights = mix_files([a, b], tmp_path / "mix.arpa", weights=[0.7, 0.3])
    A, B, M = ArpaModel(a), ArpaModel(b), ArpaModel(out)
    assert M.order == 3 and set(M.vocabulary) == set(A.vocabulary) | set(B.vocabulary)
    assert set(M.ngrams) == set(A.ngrams) | set(B.ngrams)
    for *history, word in M.ngrams:
        if word == BOS:
            continue
        expected = 0.7 * component_prob(A, word, history) + 0.3 * component_prob(B, word, history)
        assert 10 ** M.log10_prob(word, history) == pytest.approx(expected, rel=1e-5), (history, word)


def test_every_context_of_the_mixture_sums_to_one(lms, tmp_path):
    d, a, b = lms
    out, _ = mix_files([a, b], tmp_path / "mix.arpa", weights=[0.4, 0.6])
    M = ArpaModel(out)
    for history in HISTORIES:
        total = sum(10 ** M.log10_prob(w, history) for w in M.vocabulary if w != BOS)
        assert total == pytest.approx(1.0, abs=1e-5), history


def test_fitted_weights_favour_the_lm_of_the_dev_text_and_lower_its_perplexity(lms, tmp_path):
    d, a, b = lms
    (d / "dev.txt").write_text("the cat sat on a mat\nthe dog ate\n")
    A, B = ArpaModel(a), ArpaModel(b)
    sentences = [s.split() for s in (d / "dev.txt").read_text().splitlines()]
    weights = best_weights([A, B], sentences)
    assert weights[0] > 0.5 and sum(weights) == pytest.approx(1.0)
    fitted = perplexity(ArpaModel(mix_files([a, b], tmp_path / "f.arpa", dev=[d / "dev.txt"])[0]), sentences)[0]
    for other in ([0.5, 0.5], [0.2, 0.8], [0.95, 0.05]):
        assert fitted <= perplexity(ArpaModel(mix_files([a, b], tmp_path / "o.arpa", weights=other)[0]),
                                    sentences)[0] + 1e-6


def test_perplexity_counts_end_of_sentence_and_skips_unknown_words(lms):
    d, a, b = lms
    A = ArpaModel(a)
    ppl, scored, oov = perplexity(A, [["the", "cat", "zebra"]])
    assert (scored, oov) == (3, 1)  # the, cat, </s>; zebra is out of vocabulary
    logp = A.log10_prob("the", (BOS,)) + A.log10_prob("cat", (BOS, "the")) + A.log10_prob(EOS, ("the", "cat", "zebra"))
    assert ppl == pytest.approx(10 ** (-logp / 3))
    assert UNK in A.vocabulary


def test_bad_weights_and_binary_lms_are_refused(lms, tmp_path):
    d, a, b = lms
    with pytest.raises(LMError, match=r"sum to 1, got \[0.5, 0.6\] \(sum 1.1\)"):
        mix_files([a, b], tmp_path / "m.arpa", weights=[0.5, 0.6])
    # thirds written to three places are thirds: scaled to sum to 1, not refused
    mix_files([a, b], tmp_path / "rounded.arpa", weights=[0.333, 0.666])
    mix_files([a, b], tmp_path / "exact.arpa", weights=[1 / 3, 2 / 3])
    assert (tmp_path / "rounded.arpa").read_text() == (tmp_path / "exact.arpa").read_text()
    with pytest.raises(LMError, match="one weight per LM"):
        interpolate([ArpaModel(a)], [1.0])
    binary = tmp_path / "lm.bin"
    binary.write_bytes(KENLM_BINARY_MAGIC + bytes(16))
    with pytest.raises(LMError, match="read ARPA files"):
        mix_files([a, binary], tmp_path / "m.arpa")


def test_cli_mixes_with_fitted_weights_and_reports_perplexity(lms, tmp_path, capsys):
    d, a, b = lms
    (d / "dev.txt").write_text("the cat sat on a mat\n")
    assert main(["lm", "mix", str(a), str(b), "--dev", str(d / "dev.txt"), "-o", str(tmp_path / "m.arpa")]) == 0
    out = capsys.readouterr().out
    assert "weights" in out and "fitted on" in out
    assert main(["lm", "perplexity", str(a), str(tmp_path / "m.arpa"), "--texts", str(d / "dev.txt")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("perplexity" in line and "OOV" in line for line in lines)
    assert not math.isnan(float(lines[0].split("perplexity ")[1].split()[0]))


def test_cli_perplexity_of_a_missing_or_malformed_lm_is_a_clear_error(lms, tmp_path, capsys):
    d, a, b = lms
    (tmp_path / "junk.arpa").write_text("junk\n")
    for bad, problem in ((tmp_path / "absent.arpa", "language model file not found"),
                         (tmp_path / "junk.arpa", "not an ARPA file")):
        assert main(["lm", "perplexity", str(bad), "--texts", str(d / "a.txt")]) == 2
        assert f"{bad}: {problem}" in capsys.readouterr().err


def test_cli_builds_mixes_and_scores_token_lms_in_a_models_pieces(lms, tmp_path, capsys):
    from asr.tokenizers import SubwordTokenizer

    d, _, _ = lms
    tokenizer = tmp_path / "tokenizer.json"
    SubwordTokenizer.build((IN_DOMAIN + GENERAL).splitlines(), vocab_size=40).save(tokenizer)
    (tmp_path / "b.txt").write_text(GENERAL + "the quiz\n")  # no q or z in the tokenizer's text
    arpas = [tmp_path / "ta.arpa", tmp_path / "tb.arpa"]
    for text, arpa in zip((d / "a.txt", tmp_path / "b.txt"), arpas):
        assert main(["lm", "build", str(text), "-o", str(arpa), "--order", "4", "--unit", "token",
                     "--tokenizer", str(tokenizer)]) == 0
    out, err = capsys.readouterr()
    assert "4-gram token LM" in out
    assert f"skipped 1 sentences with characters the tokenizer cannot spell (first: {tmp_path / 'b.txt'}:5)" in err
    (d / "dev.txt").write_text("the cat sat on a mat\n")
    assert main(["lm", "mix", *map(str, arpas), "--dev", str(d / "dev.txt"), "--tokenizer", str(tokenizer),
                 "-o", str(tmp_path / "tm.arpa")]) == 0
    weights = [float(w) for w in capsys.readouterr().out.split("weights ")[1].split(" (")[0].split(", ")]
    assert weights[0] > weights[1]  # the dev sentence is in-domain
    assert main(["lm", "perplexity", str(tmp_path / "tm.arpa"), "--texts", str(d / "dev.txt"),
                 "--tokenizer", str(tokenizer)]) == 0
    assert "0 OOV" in capsys.readouterr().out
    assert main(["lm", "build", str(d / "a.txt"), "-o", str(tmp_path / "x.arpa"), "--unit", "token",
                 "--tokenizer", str(tmp_path / "absent")]) == 2
    assert f"{tmp_path / 'absent'}: no tokenizer there" in capsys.readouterr().err


@pytest.fixture(scope="module")
def unit_lms(lms, tmp_path_factory):
    """A subword tokenizer and, for the texts of `lms`, token and character LMs of them."""
    from asr.tokenizers import SubwordTokenizer, load_tokenizer

    d, _, _ = lms
    out = tmp_path_factory.mktemp("units")
    tokenizer = out / "tokenizer.json"
    SubwordTokenizer.build((IN_DOMAIN + GENERAL).splitlines(), vocab_size=40).save(tokenizer)
    paths = {}
    for name in ("a", "b"):
        for unit in ("token", "char"):
            paths[unit, name] = build_lm([d / f"{name}.txt"], out / f"{unit}-{name}.arpa", order=3, unit=unit,
                                         use_lmplz=False, tokenizer=load_tokenizer(tokenizer))[0]
    (out / "dev.txt").write_text("the cat sat on a mat\nthe dog ate\n")
    return out, tokenizer, paths


def test_lms_of_different_units_are_refused_naming_both_files(lms, unit_lms, tmp_path, capsys):
    _, a, _ = lms
    out, _, paths = unit_lms
    for first, second, kinds in ((a, paths["char", "b"], "a word LM and .* a character LM"),
                                 (paths["token", "a"], paths["char", "b"], "a token LM and .* a character LM")):
        with pytest.raises(LMError, match=kinds) as e:
            mix_files([first, second], tmp_path / "m.arpa", weights=[0.5, 0.5])
        assert str(first) in str(e.value) and str(second) in str(e.value)
    assert main(["lm", "mix", str(a), str(paths["char", "b"]), "--weights", "0.5,0.5", "-o",
                 str(tmp_path / "m.arpa")]) == 2
    assert "mix LMs of the same units" in capsys.readouterr().err and not (tmp_path / "m.arpa").exists()


def test_a_token_lm_is_not_scored_or_fitted_on_text_read_as_words(unit_lms, tmp_path, capsys):
    out, _, paths = unit_lms
    ta, tb = str(paths["token", "a"]), str(paths["token", "b"])
    assert main(["lm", "perplexity", ta, "--texts", str(out / "dev.txt")]) == 2
    assert f"{ta}: a token LM" in capsys.readouterr().err
    assert main(["lm", "mix", ta, tb, "--dev", str(out / "dev.txt"), "-o", str(tmp_path / "m.arpa")]) == 2
    err = capsys.readouterr().err
    assert f"{ta}: a token LM" in err and "--tokenizer MODEL" in err


def test_a_word_lm_is_not_scored_or_fitted_on_a_tokenizers_tokens(lms, unit_lms, tmp_path, capsys):
    d, a, b = lms
    out, tokenizer, _ = unit_lms
    assert main(["lm", "perplexity", str(a), "--texts", str(out / "dev.txt"), "--tokenizer", str(tokenizer)]) == 2
    assert f"{a}: a word LM" in capsys.readouterr().err
    assert main(["lm", "mix", str(a), str(b), "--dev", str(out / "dev.txt"), "--tokenizer", str(tokenizer),
                 "-o", str(tmp_path / "m.arpa")]) == 2
    assert "leave out the tokenizer" in capsys.readouterr().err


def test_a_character_lm_is_scored_and_fitted_on_characters(unit_lms, tmp_path, capsys):
    out, tokenizer, paths = unit_lms
    ca, cb = str(paths["char", "a"]), str(paths["char", "b"])
    assert main(["lm", "perplexity", ca, "--texts", str(out / "dev.txt")]) == 0
    assert "0 OOV" in capsys.readouterr().out
    assert main(["lm", "mix", ca, cb, "--dev", str(out / "dev.txt"), "-o", str(tmp_path / "m.arpa")]) == 0
    weights = [float(w) for w in capsys.readouterr().out.split("weights ")[1].split(" (")[0].split(", ")]
    assert 0.5 < weights[0] < 1  # the dev text is in-domain, and both LMs know its letters
    # A subword model's pieces are not a character LM's units.
    assert main(["lm", "perplexity", ca, "--texts", str(out / "dev.txt"), "--tokenizer", str(tokenizer)]) == 2
    assert "leave out --tokenizer to score it on characters" in capsys.readouterr().err


def test_perplexity_says_how_many_sentences_the_tokenizer_could_not_spell(unit_lms, tmp_path, capsys):
    out, tokenizer, paths = unit_lms
    (tmp_path / "t.txt").write_text("the cat sat\nthe quiz\nthe dog ate\n")  # no q or z in the tokenizer's text
    assert main(["lm", "perplexity", str(paths["token", "a"]), "--texts", str(tmp_path / "t.txt"),
                 "--tokenizer", str(tokenizer)]) == 0
    captured = capsys.readouterr()
    assert f"skipped 1 sentences with characters the tokenizer cannot spell (first: {tmp_path / 't.txt'}:2)" \
        in captured.err
    assert "(2 sentences)" in captured.out


@pytest.mark.parametrize("command", [["perplexity", "{a}", "--texts", "{empty}"],
                                     ["mix", "{a}", "{b}", "--dev", "{empty}", "-o", "{out}"]])
def test_an_empty_text_is_refused_as_having_no_sentences(lms, tmp_path, capsys, command):
    d, a, b = lms
    empty = tmp_path / "empty.txt"
    empty.write_text("\n ... \n")
    args = [c.format(a=a, b=b, empty=empty, out=tmp_path / "m.arpa") for c in command]
    assert main(["lm", *args]) == 2
    assert f"{empty}: the {'dev ' if command[0] == 'mix' else ''}text has no sentences" in capsys.readouterr().err


def test_text_with_no_known_word_gets_no_perplexity_and_fits_no_weights(lms, tmp_path, capsys):
    # </s> is known to every LM: on its own it would give a perplexity and fit weights
    d, a, b = lms
    zoo = [["zebra", "yak", "quokka"], ["wombat"]]
    with pytest.raises(LMError, match="no word of the text is in the LM's vocabulary"):
        perplexity(ArpaModel(a), zoo)
    with pytest.raises(LMError, match="no word of the dev text is in any LM's vocabulary"):
        best_weights([ArpaModel(a), ArpaModel(b)], zoo)
    assert perplexity(ArpaModel(a), zoo + [["cat"]])[1:] == (4, 4)  # one known word is enough: cat and three </s>
    (tmp_path / "zoo.txt").write_text("zebra yak quokka\nwombat\n")
    (tmp_path / "zoo_lm.txt").write_text("the zebra and the yak\n")
    zoo_lm = build_lm([tmp_path / "zoo_lm.txt"], tmp_path / "zoo.arpa", order=2, use_lmplz=False)[0]
    assert main(["lm", "mix", str(a), str(b), "--dev", str(tmp_path / "zoo.txt"), "-o", str(tmp_path / "m.arpa")]) == 2
    assert "no word of the dev text is in any LM's vocabulary" in capsys.readouterr().err
    assert not (tmp_path / "m.arpa").exists()
    assert main(["lm", "perplexity", str(a), str(zoo_lm), "--texts", str(tmp_path / "zoo.txt")]) == 1
    captured = capsys.readouterr()
    assert f"{a}: no word of the text is in the LM's vocabulary (all 4 are out of vocabulary)" in captured.err
    assert captured.out.startswith(f"{zoo_lm}: perplexity")  # the other LM is still scored


def test_scoring_gives_the_lm_only_the_words_its_order_looks_at(lms, monkeypatch):
    # A history that grows with the sentence makes scoring quadratic in its length (a book on one line: hours).
    d, a, b = lms
    A, B = ArpaModel(a), ArpaModel(b)
    sentence = ["the", "cat", "sat", "on", "the", "mat"] * 200
    full = (BOS, *sentence, EOS)
    expected = 10 ** (-sum(A.log10_prob(w, full[:i]) for i, w in enumerate(full) if i) / (len(full) - 1))
    longest = []
    for model in (A, B):
        score = model.log10_prob
        monkeypatch.setattr(model, "log10_prob", lambda w, h, score=score: longest.append(len(h)) or score(w, h))
    assert perplexity(A, [sentence]) == (pytest.approx(expected), len(full) - 1, 0)
    assert max(longest) == A.order - 1
    longest.clear()
    best_weights([A, B], [sentence])
    assert max(longest) == max(A.order, B.order) - 1


def per_word_log_likelihood(rows, weights):
    return sum(math.log(sum(w * p for w, p in zip(weights, ps))) for ps in rows) / len(rows)


def em_weights(rows, steps):
    """The fixed-count EM that fitted mixture weights before (SRILM's compute-best-mix), from equal weights."""
    weights = [1.0 / len(rows[0])] * len(rows[0])
    for _ in range(steps):
        totals = [sum(w * p for w, p in zip(weights, ps)) for ps in rows]
        weights = [sum(weights[i] * ps[i] / t for ps, t in zip(rows, totals)) / len(rows) for i in range(len(weights))]
    return weights


def word_probabilities(seed, words=300):
    import random

    rng = random.Random(seed)
    return [rng.uniform(1e-4, 0.3) for _ in range(words)]


@pytest.mark.parametrize("better", [0, 1])
def test_an_lm_better_on_every_word_gets_all_the_weight_not_almost_all(better):
    # 50 EM steps from 0.5 stopped ~4% short of the bound here, ~1e-3 nats a word below the best mixture
    probs = word_probabilities(0)
    rows = [(p, 0.95 * p) if better == 0 else (0.95 * p, p) for p in probs]
    weights = mixture_weights(rows)
    best = [1.0, 0.0] if better == 0 else [0.0, 1.0]
    assert abs(weights[better] - 1.0) < 1e-4 and sum(weights) == pytest.approx(1.0, abs=1e-12)
    assert per_word_log_likelihood(rows, weights) >= per_word_log_likelihood(rows, best) - 1e-6
    assert per_word_log_likelihood(rows, em_weights(rows, 50)) < per_word_log_likelihood(rows, best) - 1e-4


def test_of_three_lms_one_better_on_every_word_gets_all_the_weight():
    probs = word_probabilities(1)
    rows = [(0.9 * p, p, 0.8 * p) for p in probs]
    weights = mixture_weights(rows)
    assert weights[1] > 1 - 1e-4 and sum(weights) == pytest.approx(1.0, abs=1e-12)
    assert per_word_log_likelihood(rows, weights) >= per_word_log_likelihood(rows, [0.0, 1.0, 0.0]) - 1e-6


@pytest.mark.parametrize("lms", [2, 3])
def test_weights_inside_the_bounds_are_those_em_converges_to(lms):
    # each LM far better on some words: the best mixture gives each a share
    import random

    rng = random.Random(lms)
    rows = [tuple(p * (5.0 if rng.random() < 0.5 else 0.2) for _ in range(lms)) for p in word_probabilities(2)]
    weights = mixture_weights(rows)
    assert all(0.05 < w < 0.95 for w in weights)
    assert weights == pytest.approx(em_weights(rows, 50), abs=1e-3)
    assert per_word_log_likelihood(rows, weights) >= per_word_log_likelihood(rows, em_weights(rows, 500)) - 1e-9


def test_a_word_only_one_lm_knows_keeps_some_weight_on_it():
    # the other's probability 0: a mixture without that LM would give the word none (log 0)
    rows = [(0.1, 0.2)] * 50 + [(0.01, 0.0)]
    weights = mixture_weights(rows)
    assert weights[0] == pytest.approx(0.2 / 5.1, rel=1e-6)  # where 50 * 0.1 / (0.2 - 0.1 w) = 1 / w


def test_lms_that_agree_on_every_word_get_equal_weights():
    assert mixture_weights([(0.1, 0.1), (0.02, 0.02)]) == [0.5, 0.5]
