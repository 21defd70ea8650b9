"""Hotword lists as users write them: files with comments, Windows line ends and byte order marks,
and values that name no phrase, which are said to boost nothing rather than taken silently."""

import re

import pytest

from asr.hotwords import HotwordsError, PhraseMatcher, parse_hotwords
from test_decoding import gained


def test_a_hotwords_file_line_that_starts_with_a_hash_is_a_comment_not_a_phrase(tmp_path):
    # normalized, "# staff names" would boost the phrase "staff names"
    (tmp_path / "hot.txt").write_bytes("\ufeff# staff names\r\nTina\r\n  # the new one:\r\n\r\nO'Brien, Kowalski\r\n"
                                       .encode())
    assert parse_hotwords(tmp_path / "hot.txt") == ["tina", "o'brien", "kowalski"]


def test_a_hotwords_file_of_comments_alone_is_warned_about_and_boosts_nothing(tmp_path, capsys):
    (tmp_path / "hot.txt").write_text("# names go here, one a line\n")
    assert parse_hotwords(tmp_path / "hot.txt") == []
    assert f"{tmp_path / 'hot.txt'}: no hotwords in this file" in capsys.readouterr().err


def test_a_hotwords_value_with_no_phrase_is_warned_about_as_boosting_nothing(capsys):
    # --hotwords "$NAMES" with NAMES unset: beam search alone, the built-in package's rescoring off
    assert parse_hotwords(" ,;, ") == []  # (a value of its own: a warning is said once a process)
    assert "hotwords ' ,;, ': no phrase in it: nothing is boosted" in capsys.readouterr().err
    assert parse_hotwords([]) == [] and capsys.readouterr().err == ""  # the API's "none", said as such


def test_an_empty_hotwords_value_in_the_api_is_warned_about_even_when_the_search_space_is_shared(capsys):
    # the package's search space, loaded once, was handed back for hotwords="" (falsy, so shared)
    # before the value was ever read: nothing boosted, nothing said
    import numpy as np

    import asr

    model = asr.load_model(decoder="beam")
    model.transcribe(np.zeros(8000, dtype=np.float32), hotwords="")
    assert "hotwords '': no phrase in it: nothing is boosted" in capsys.readouterr().err


@pytest.mark.parametrize("spec", [5, ["tina", 3], {"tina": 2.0}])
def test_hotwords_of_another_type_are_refused_naming_what_they_may_be(spec):
    # an int was Path()'s "expected str, bytes or os.PathLike object, not int"
    with pytest.raises(HotwordsError, match=r"hotwords must be phrases \('a,b c', a list of them\) or a file of "
                                            rf"them, got {re.escape(repr(spec))}"):
        parse_hotwords(spec)


def test_hotwords_with_the_built_in_package_say_that_its_first_system_searches_without_the_rescoring(capsys):
    from pathlib import Path

    from asr.cli import main

    example = Path(__file__).parent.parent / "examples" / "speechocean762_000030012.flac"
    assert main(["transcribe", str(example), "--hotwords", "mark"]) == 0
    assert ("note: with --hotwords, the package's first system searches alone, without its n-best rescoring"
            in capsys.readouterr().err)


@pytest.mark.parametrize("order", [["news", "new"], ["new", "news"]])
def test_a_hotword_earns_its_whole_bonus_beside_a_longer_one_that_begins_with_it(order):
    # token units |n e w|, each word's bonus spread over its tokens (as asr/search_space.py does):
    # "new" and "news" share |n e w but give those tokens 1/3 and 1/4; the prefix kept one phrase's
    # shares, so "new" earned 0.75 or "news" 1.25 of the weight, by the order they were listed in
    sep, units = 0, {"new": (1, 2, 3), "news": (1, 2, 3, 4)}
    phrases = [(sep, *units[w], sep) for w in order]
    shares = [(0.0, *[1 / len(units[w])] * len(units[w]), 0.0) for w in order]
    matcher = PhraseMatcher(phrases, shares, boundary=sep)
    assert gained(matcher, units["new"]) == pytest.approx(1.0)
    assert gained(matcher, units["news"]) == pytest.approx(1.0)
    assert gained(matcher, (1, 2)) == 0.0  # a partial match still gives its provisional bonus back


def test_a_share_of_the_bonus_on_the_word_boundary_is_earned_by_complete_phrases_alone_wherever_they_stand():
    # token units |t i n a|: a boundary | ends one word and begins the next, and the utterance's start
    # counts as one. Its share went to whichever phrase covered it first: a phrase at the start lost
    # it, one after another hotword lost it, and an utterance of other words was charged it.
    sep, tina, john, other = 0, (1, 2), (3, 4), 9
    shares = (0.5, 1.0, 1.0, 0.5)
    matcher = PhraseMatcher([(sep, *tina, sep), (sep, *john, sep)], [shares, shares], boundary=sep)
    whole = sum(shares)
    assert gained(matcher, tina) == pytest.approx(whole)
    assert gained(matcher, (other, sep, *tina)) == pytest.approx(whole)
    assert gained(matcher, (*tina, sep, *john)) == pytest.approx(2 * whole)
    assert gained(matcher, (other,)) == 0.0 and gained(matcher, (tina[0],)) == 0.0
    assert gained(matcher, (*tina, other)) == 0.0  # |t i n a x: broke off before its closing |


def test_a_phrase_of_word_boundaries_alone_with_a_bonus_is_refused():
    with pytest.raises(HotwordsError, match="no unit but the word boundary"):
        PhraseMatcher([(0, 0)], [(0.5, 0.5)], boundary=0)
