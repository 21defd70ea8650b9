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


def test_a_word_running_to_its_pieces_end_ends_no_later_than_the_next_pieces_first_word_starts():
    # samples 936-9009 and 9009-25009 at 16 kHz, cut in speech (no pause): "a" ends with its piece at
    # 0.5045625 s, 0.505 rounded on the piece's clock, which rounded again on the file's was 0.564,
    # after "b" started at 0.563
    a = Result("a", 8073 / 16000, [], [Word("a", 0.0, 0.505)])
    b = Result("b", 1.0, [], [Word("b", 0.0, 0.5)])
    merged = merge_results([(936 / 16000, a), (9009 / 16000, b)], 25009 / 16000)
    assert [(w.start, w.end) for w in merged.words] == [(0.059, 0.563), (0.563, 1.063)]
    assert [(s.start, s.end) for s in merged.segments] == [(0.059, 0.563), (0.563, 1.063)]
