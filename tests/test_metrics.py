"""Word and character error rates, checked against hand-counted edits."""

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
