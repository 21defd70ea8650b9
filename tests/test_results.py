"""A long file's per-segment Results merged onto the file's clock (merge_results)."""

import pytest

from asr.results import Result, Segment, Word, merge_results


def test_a_merged_files_confidence_weighs_each_piece_by_its_words_even_without_word_times():
    # five words heard at 0.2 (no word times for them) and one at 0.9: the mean over words is 1.9 / 6
    untimed = Result("one two three four five", 3.0, [], [], 0.2)
    timed = Result("six", 1.0, [Segment(0.1, 0.5, "six")], [Word("six", 0.1, 0.5, 0.9)], 0.9)
    merged = merge_results([(0.0, untimed), (3.0, timed)], 4.0)
    assert merged.text == "one two three four five six"
    assert merged.confidence == pytest.approx((5 * 0.2 + 0.9) / 6, abs=1e-4)
