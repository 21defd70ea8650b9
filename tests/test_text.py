"""Text normalization and the character tokenizer."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asr.text import BLANK, WORD_SEP, CharTokenizer, UnknownCharacterError, normalize_text, time_left
from asr.tokenizers import load_tokenizer


# --- normalize_text -----------------------------------------------------------------------

def test_normalize_lowercases():
    assert normalize_text("Hello WORLD") == "hello world"


@pytest.mark.parametrize("apostrophe", ["'", "\u2019", "\u2018", "\u02bc", "`", "\u00b4", "\u2032", "\uff07"])
def test_normalize_keeps_any_apostrophe_inside_a_word_as_a_straight_one(apostrophe):
    assert normalize_text(f"Don{apostrophe}t") == "don't"


@pytest.mark.parametrize("text, expected", [
    ("don\uff40t", "don't"),  # fullwidth grave accent: NFKC makes it a grave accent, an apostrophe variant
    ("\u0149 huis", "n huis"),  # Afrikaans 'n as one letter: NFKC makes it a modifier apostrophe and n
])
def test_normalize_unifies_the_apostrophes_that_unicode_compatibility_mapping_produces(text, expected):
    assert normalize_text(text) == expected
    assert normalize_text(expected) == expected


def test_normalize_keeps_several_apostrophes_inside_a_word():
    assert normalize_text("rock'n'roll o\u2019clock") == "rock'n'roll o'clock"


@pytest.mark.parametrize("text", ["'hello'", "\u2018hello\u2019", "''hello", "hello'"])
def test_normalize_strips_apostrophes_and_quotes_around_words(text):
    assert normalize_text(text) == "hello"


def test_normalize_drops_a_lone_apostrophe():
    assert normalize_text("a ' b") == "a b"


def test_normalize_removes_punctuation():
    assert normalize_text('Hello, world! "Yes"? (no); ok: fine.') == "hello world yes no ok fine"


@pytest.mark.parametrize("text", ["well-known", "well\u2013known", "well\u2014known", "well_known",
                                  "well/known", "well -- known"])
def test_normalize_splits_words_at_dashes_underscores_and_slashes(text):
    assert normalize_text(text) == "well known"


def test_normalize_collapses_and_trims_whitespace():
    assert normalize_text("  a \t\n b   c  ") == "a b c"


def test_normalize_keeps_digits():
    assert normalize_text("Room 101") == "room 101"


@pytest.mark.parametrize("text, expected", [
    ("Привет, МИР!", "привет мир"),
    ("Ça va? Très bien.", "ça va très bien"),
    ("Straße", "straße"),
    ("你好，世界。", "你好 世界"),
    ("नमस्ते", "नमस्ते"),  # combining vowel signs (category M) survive
])
def test_normalize_keeps_letters_of_other_alphabets(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("co\u00adoperate", "cooperate"),  # soft hyphen (web and e-book text)
    ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "\u0645\u06cc\u062e\u0648\u0627\u0647\u0645"),  # ZWNJ
    ("\u0915\u094d\u200d\u0937", "\u0915\u094d\u0937"),  # ZWJ in Devanagari
    ("x\u2060y", "xy"),  # word joiner
    ("\ufeffhello world", "hello world"),  # byte-order mark
    ("\u200eHello\u200f", "hello"),  # left-to-right and right-to-left marks
])
def test_normalize_drops_invisible_format_characters_instead_of_splitting_words_at_them(text, expected):
    assert normalize_text(text) == expected


def test_normalize_splits_words_at_a_zero_width_space():
    # Thai and Khmer text marks word boundaries with it
    thai, language = "\u0e44\u0e17\u0e22", "\u0e20\u0e32\u0e29\u0e32"
    assert normalize_text(f"{language}\u200b{thai}") == f"{language} {thai}"


@pytest.mark.parametrize("text, expected", [
    ("1,000", "1000"), ("12,345,678", "12345678"), ("12,345.67", "12345.67"),
    ("10\u202f000", "10000"), ("10\u00a0000", "10000"), ("10\u2009000", "10000"),  # French and SI grouping
    ("1\uff0c000", "1000"), ("12,34,567", "1234567"), ("1,00,000", "100000"),  # fullwidth; Indian grouping
    ("\u0661\u066c\u0660\u0660\u0660", "\u0661\u0660\u0660\u0660"),  # Arabic-Indic digits, Arabic separator
    ("then...1,000", "then 1000"), ("a,1,000", "a 1000"),  # whatever comes before the number
])
def test_normalize_drops_the_thousands_separators_of_a_number_so_it_scores_as_the_number_written_without(
        text, expected):
    # split, "1,000" against a hypothesis's "1000" counted two errors, and the number as two words
    assert normalize_text(text) == expected == normalize_text(expected)


@pytest.mark.parametrize("text, expected", [("3.5", "3.5"), ("0.25", "0.25"), ("1.2.3", "1.2.3"),
                                             ("\u0663\u066b\u0665", "\u0663\u066b\u0665")])  # Arabic's decimal mark
def test_normalize_keeps_a_decimal_point_between_digits_so_the_number_stays_one_word(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize("text, expected", [("3,5", "3 5"), ("1,2,3", "1 2 3"), ("1.5,000", "1.5 000")])
def test_a_comma_between_digits_that_is_no_thousands_separator_splits_them(text, expected):
    # a list ("1,2,3"), or a decimal comma only where that is the custom: read as a list everywhere
    assert normalize_text(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("0,001", "0 001"), ("0,000,001", "0 000 001"), ("01,000", "01 000"), ("0,01,000", "0 01 000"),
    ("0\u202f001", "0 001"), ("007,500", "007 500"),
])
def test_a_first_group_with_a_leading_zero_is_no_thousands_grouping_so_the_comma_splits(text, expected):
    # dropped, "0,001" became "0001": another number
    assert normalize_text(text) == expected == normalize_text(expected)


def test_a_european_decimal_comma_is_read_as_a_list_like_any_comma_between_digits():
    # "1.000,50" is 1000.50 only where "3,50" is 3.50, which this normalizer reads as a list
    # everywhere ("3,5" -> "3 5"); and "1.000" alone is one (English) or a thousand
    assert normalize_text("1.000,50") == "1.000 50"


@pytest.mark.parametrize("text, expected", [
    ("It cost 5.", "it cost 5"), ("in 1990, 200 came", "in 1990 200 came"), ("1, 2, 3", "1 2 3"),
    ("U.S.", "u s"), ("a.m.", "a m"), ("a.5", "a 5"), ("then...5", "then 5"), ("5.", "5"),
])
def test_normalize_drops_periods_and_commas_that_are_not_between_two_digits(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize("text, expected", [
    (".5", ".5"), ("cost .50 now", "cost .50 now"), ("(.5)", ".5"), ("$.50", ".50"), ("-.5", ".5"),
    ("\u066b\u0665", "\u066b\u0665"),  # Arabic's decimal mark
    (".25,000", ".25 000"), ("(.25,000)", ".25 000"),  # the digits after it are no thousands grouping
])
def test_normalize_keeps_a_decimal_point_that_starts_a_number_as_it_keeps_the_one_of_0_5(text, expected):
    # dropped, ".5" became "5": ten times the number
    assert normalize_text(text) == expected == normalize_text(expected)


def test_normalize_leaves_digits_grouped_by_a_plain_space_as_two_words():
    # "room 1 000" or "1 000": a plain space cannot tell a grouped number from two
    assert normalize_text("1 000") == "1 000"


@pytest.mark.parametrize("text, expected", [
    ("3:30", "3 30"), ("1/2", "1 2"), ("$5", "5"), ("50%", "50"), ("#1", "1"),
    ("2nd", "2nd"), ("90s", "90s"), ("1990's", "1990's"), ("\uff11\uff12", "12"), ("3-year-old", "3 year old"),
])
def test_normalize_splits_numbers_at_other_punctuation_and_drops_symbols_as_the_readme_says(text, expected):
    # The same rule for training text, references and hypotheses: "$5" is said "five dollars", an
    # order CTC labels cannot follow
    assert normalize_text(text) == expected


def test_a_character_vocabulary_holds_the_decimal_mark_of_its_training_numbers():
    tok = CharTokenizer.build(["it weighs 3.5 kilos", "1,000 people"])
    assert "." in tok.tokens and "," not in tok.tokens
    assert tok.decode(tok.encode(normalize_text("3.5"))) == "3.5"


def test_normalize_composes_decomposed_accents():
    assert normalize_text("Cafe\u0301") == "caf\u00e9"


def test_normalize_of_punctuation_only_is_empty():
    assert normalize_text(" ... !!! -- ''") == ""


def test_normalize_is_idempotent():
    once = normalize_text("\u201cIt\u2019s well-known,\u201d she said -- 'twice'.")
    assert once == "it's well known she said twice"
    assert normalize_text(once) == once


# --- CharTokenizer.build ------------------------------------------------------------------

def test_build_puts_blank_at_0_and_word_separator_at_1():
    tok = CharTokenizer.build(["hello world"])
    assert tok.tokens[0] == BLANK and tok.blank_id == 0
    assert tok.tokens[1] == WORD_SEP == "|" and tok.word_sep_id == 1


def test_build_vocabulary_is_the_sorted_characters_of_the_normalized_text():
    tok = CharTokenizer.build(["Hello, World!", "It's"])
    assert tok.tokens[2:] == tuple(sorted(set("helloworldit's")))
    assert len(tok) == 2 + len(set("helloworldit's"))


def test_build_excludes_spaces_punctuation_and_upper_case():
    tok = CharTokenizer.build(["A B, C!"])
    assert tok.tokens == (BLANK, WORD_SEP, "a", "b", "c")


def test_build_with_min_count_drops_rare_characters():
    tok = CharTokenizer.build(["aab", "ac"], min_count=2)
    assert tok.tokens == (BLANK, WORD_SEP, "a")


def test_tokenizer_must_start_with_blank_and_separator():
    with pytest.raises(ValueError):
        CharTokenizer(("a", "b"))


def test_tokenizer_rejects_duplicate_tokens():
    with pytest.raises(ValueError):
        CharTokenizer((BLANK, WORD_SEP, "a", "a"))


# --- encode / decode ----------------------------------------------------------------------

def test_encode_maps_spaces_to_the_word_separator():
    tok = CharTokenizer.build(["ab"])
    assert tok.encode("ab ba") == [2, 3, 1, 3, 2]


@pytest.mark.parametrize("text", ["hello world", "don't stop", "a", "привет мир 42"])
def test_encode_then_decode_gives_back_the_normalized_text(text):
    tok = CharTokenizer.build(["hello world don't stop a", "привет мир 42"])
    assert tok.decode(tok.encode(text)) == text


def test_decode_skips_blanks_and_collapses_separators():
    tok = CharTokenizer.build(["ab"])
    assert tok.decode([0, 1, 2, 0, 1, 1, 3, 1, 0]) == "a b"


def test_encode_raises_unknown_character_error_naming_the_unknown_characters():
    tok = CharTokenizer.build(["abc"])
    with pytest.raises(UnknownCharacterError) as info:
        tok.encode("abz xq")
    assert info.value.unknown == {"z", "x", "q"}
    message = str(info.value)
    for ch in "zxq":
        assert repr(ch) in message


def test_unknown_character_error_is_a_value_error():
    tok = CharTokenizer.build(["abc"])
    with pytest.raises(ValueError):
        tok.encode("d")


def test_unknown_chars_ignores_spaces():
    tok = CharTokenizer.build(["abc"])
    assert tok.unknown_chars("a b c") == set()
    assert tok.unknown_chars("a d") == {"d"}


# --- save / load --------------------------------------------------------------------------

def test_save_then_load_gives_an_equal_tokenizer(tmp_path):
    tok = CharTokenizer.build(["hello world", "it's", "привет", "ça"])
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    loaded = load_tokenizer(path)
    assert loaded == tok
    assert loaded.encode("привет world") == tok.encode("привет world")


def test_saved_tokenizer_is_json_with_its_type_and_tokens(tmp_path):
    tok = CharTokenizer.build(["ab"])
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "char"
    assert data["tokens"] == [BLANK, WORD_SEP, "a", "b"]


def test_save_and_load_use_utf8_whatever_the_locale(tmp_path):
    """Non-Latin vocabularies must survive a process whose locale encoding is ASCII."""
    path = tmp_path / "tokenizer.json"
    script = (
        "import sys; from asr.text import CharTokenizer as T; from asr.tokenizers import load_tokenizer\n"
        "t = T.build(['\\u043f\\u0440\\u0438\\u0432\\u0435\\u0442 \\u00e7a'])\n"
        "t.save(sys.argv[1]); assert load_tokenizer(sys.argv[1]) == t\n"
    )
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0")
    result = subprocess.run([sys.executable, "-c", script, str(path)], env=env, capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent, timeout=60)
    assert result.returncode == 0, result.stderr
    tokens = json.loads(path.read_text(encoding="utf-8"))["tokens"]
    assert tokens == [BLANK, WORD_SEP, *sorted(set("приветça"))]


def test_time_left_reads_in_seconds_minutes_or_hours_as_its_size_needs():
    assert [time_left(s) for s in (0.2, 35, 89, 90, 1212, 149 * 60, 150 * 60, 39_000)] == [
        "~1 s left", "~35 s left", "~89 s left", "~2 min left", "~20 min left", "~149 min left", "~2.5 h left",
        "~10.8 h left"]
