"""Word and character error rates, checked against hand-counted edits."""

import math
import warnings

import pytest

from asr.metrics import ErrorCounts, cer, char_errors, wer, word_errors


def test_one_substituted_word_is_one_substitution():
    counts = word_errors(["the cat sat"], ["the hat sat"])
    assert counts == ErrorCounts(substitutions=1, deletions=0, insertions=0, reference_length=3)
    assert wer(["the cat sat"], ["the hat sat"]) == pytest.approx(1 / 3)


def test_one_missing_word_is_one_deletion():
    counts = word_errors(["the cat sat"], ["the sat"])
    assert counts == ErrorCounts(0, 1, 0, 3)
    assert counts.rate == pytest.approx(1 / 3)


def test_one_extra_word_is_one_insertion():
    counts = word_errors(["the cat sat"], ["the cat sat down"])
    assert counts == ErrorCounts(0, 0, 1, 3)
    assert counts.errors == 1


def test_wer_of_identical_lists_is_zero():
    refs = ["hello world", "good morning to you"]
    assert wer(refs, list(refs)) == 0.0
    assert word_errors(refs, list(refs)) == ErrorCounts(0, 0, 0, 6)


def test_an_empty_hypothesis_is_all_deletions():
    assert word_errors(["a b c"], [""]) == ErrorCounts(0, 3, 0, 3)
    assert wer(["a b c"], [""]) == 1.0


def test_word_errors_are_summed_over_the_corpus():
    counts = word_errors(["a b c", "d e"], ["a x c", "d e f"])
    assert counts == ErrorCounts(1, 0, 1, 5)
    assert wer(["a b c", "d e"], ["a x c", "d e f"]) == pytest.approx(2 / 5)


def test_wer_can_exceed_one():
    assert wer(["a"], ["x y z"]) == pytest.approx(3.0)


def test_cer_counts_characters():
    counts = char_errors(["abcd"], ["abxd"])
    assert counts == ErrorCounts(1, 0, 0, 4)
    assert cer(["abcd"], ["abxd"]) == pytest.approx(0.25)


def test_cer_counts_a_deleted_and_an_inserted_character():
    assert char_errors(["abcd"], ["acd"]) == ErrorCounts(0, 1, 0, 4)
    assert char_errors(["abcd"], ["abcde"]) == ErrorCounts(0, 0, 1, 4)


def test_cer_counts_the_space_between_words_as_a_character():
    assert char_errors(["ab cd"], ["abcd"]) == ErrorCounts(0, 1, 0, 5)


def test_cer_of_an_empty_hypothesis_is_one():
    assert cer(["hello"], [""]) == 1.0


@pytest.mark.parametrize("metric", [wer, cer, word_errors, char_errors])
def test_mismatched_list_lengths_raise_value_error(metric):
    with pytest.raises(ValueError):
        metric(["a", "b"], ["a"])


def test_an_empty_reference_counts_every_hypothesis_word_as_an_insertion():
    counts = word_errors(["the cat", ""], ["the cat", "extra words here"])
    assert counts == ErrorCounts(0, 0, 3, 2)
    assert wer(["the cat", ""], ["the cat", "extra words here"]) == pytest.approx(3 / 2)


def test_an_empty_reference_counts_every_hypothesis_character_as_an_insertion():
    assert char_errors(["ab", "  "], ["ab", "xy"]) == ErrorCounts(0, 0, 2, 2)


def test_only_empty_references_give_rate_one_if_anything_was_said_else_zero():
    assert word_errors([""], ["hi there"]) == ErrorCounts(0, 0, 2, 0)
    assert wer([""], ["hi there"]) == 1.0
    assert wer([""], [""]) == 0.0
    assert cer([""], [""]) == 0.0


def test_a_rate_over_no_reference_units_is_undefined_where_asked_while_the_total_rate_keeps_its_convention():
    silent = word_errors([""], ["uh huh"])
    assert silent.rate_or_none is None and silent.rate == 1.0  # totals keep their convention
    assert word_errors(["a b"], ["a c"]).rate_or_none == pytest.approx(0.5)
    assert ErrorCounts(0, 0, 0, 0).rate_or_none is None


def test_bootstrap_interval_excludes_zero_only_when_one_system_is_consistently_better():
    from asr.metrics import paired_bootstrap

    lengths = [10] * 40
    speakers = [f"s{i // 4}" for i in range(40)]  # 10 speakers, 4 utterances each
    a = [3] * 40
    consistent = paired_bootstrap(a, [2] * 40, lengths, speakers)  # one error fewer everywhere
    assert consistent.difference == pytest.approx(-0.1)
    assert consistent.low == pytest.approx(-0.1) and consistent.high == pytest.approx(-0.1)
    assert consistent.prob_b_better == 1.0 and consistent.groups == 10
    # Better for half the speakers by as much as it is worse for the other half: no difference.
    mixed = paired_bootstrap(a, [1 if i < 20 else 5 for i in range(40)], lengths, speakers)
    assert mixed.difference == pytest.approx(0.0)
    assert mixed.low < 0 < mixed.high and 0.2 < mixed.prob_b_better < 0.8


def test_bootstrap_resamples_speakers_not_utterances():
    from asr.metrics import paired_bootstrap

    # Each speaker's 5 utterances agree with each other: resampling utterances would pretend to
    # have 20 independent samples and give a narrower interval than the 4 speakers warrant.
    speakers = [s for s in "abcd" for _ in range(5)]
    b = [{"a": 0, "b": 4, "c": 1, "d": 3}[s] for s in speakers]
    by_speaker = paired_bootstrap([2] * 20, b, [10] * 20, speakers)
    by_utterance = paired_bootstrap([2] * 20, b, [10] * 20)
    assert by_speaker.groups == 4 and by_utterance.groups == 20
    assert by_speaker.high - by_speaker.low > by_utterance.high - by_utterance.low


def test_bootstrap_leaves_out_resamples_with_no_reference_words_for_their_insertions_are_no_rate():
    from asr.metrics import paired_bootstrap

    # Utterance 0: 10 words, 2 errors each; utterance 1: empty, B says 3 words. A resample holding
    # utterance 0 twice differs by 0, once by 3/10; one holding utterance 1 twice (a quarter of them)
    # has no words to divide its 6 insertions by, and is no rate difference of 6 (600 points).
    boot = paired_bootstrap([2, 0], [2, 3], [10, 0], resamples=200)
    assert boot.low == 0.0 and boot.high == pytest.approx(0.3)
    assert boot.difference == pytest.approx(0.3) and boot.prob_b_better == 0.0


def test_bootstrap_over_references_that_are_all_empty_gives_no_difference_or_interval():
    from asr.metrics import paired_bootstrap

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no all-NaN-slice warning on the way
        boot = paired_bootstrap([0, 1], [2, 0], [0, 0])
    assert all(math.isnan(v) for v in (boot.difference, boot.low, boot.high, boot.prob_b_better))


def test_bootstrap_needs_one_entry_per_utterance():
    from asr.metrics import paired_bootstrap

    with pytest.raises(ValueError, match="one entry per utterance"):
        paired_bootstrap([1, 2], [1], [5, 5])
