"""Lexicon files: ``word tokens... |`` lines read as the search needs them: words normalized as an
LM's words are, spellings in the model's own segmentation, repeated lines read once."""

import pytest

from asr.lexicon import MAX_HOMOPHONES, LexiconError, lexicon_from_words, read_lexicon, read_lexicon_lines
from asr.text import WORD_SEP, CharTokenizer
from asr.tokenizers import PhoneTokenizer, SubwordTokenizer

CHARS = CharTokenizer.build(["the cat sat on a mat two dr"])
TEXTS = ["the cat sat on the mat", "the cats sat on the mats", "that thin cat", "then the cat ran",
         "a rat and a cat"] * 5
BPE = SubwordTokenizer.build(TEXTS, vocab_size=30)


def lexicon_file(tmp_path, text, encoding="utf-8"):
    path = tmp_path / "lexicon.txt"
    path.write_text(text, encoding=encoding)
    return path


def test_a_byte_order_mark_does_not_become_part_of_the_first_word(tmp_path):
    # Windows Notepad saves one; it was read as an invisible U+FEFF at the start of "the".
    path = lexicon_file(tmp_path, "the t h e |\ncat c a t |\n", encoding="utf-8-sig")
    assert list(read_lexicon(path, CHARS).lexicon) == ["the", "cat"]


def test_a_lexicon_that_is_not_utf8_is_an_error_naming_it(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_bytes(b"caf\xe9 c a f |\n")
    with pytest.raises(LexiconError, match=f"{path}: lexicon file is not UTF-8 text"):
        read_lexicon(path, CHARS)


def test_words_are_normalized_as_an_lm_s_words_are(tmp_path):
    # asr lm build writes lower-case words without punctuation: "THE" would be the LM's <unk>.
    path = lexicon_file(tmp_path, "THE t h e |\nDr. d r |\n!!! t |\nwell-known c a t |\n")
    report = read_lexicon(path, CHARS)
    assert report.lexicon == {"the": [["t", "h", "e", WORD_SEP]], "dr": [["d", "r", WORD_SEP]]}
    assert report.skipped == [("!!!", "no letters or digits"),
                              ("well-known", "normalizes to several words: 'well known'")]


def test_a_word_the_lm_holds_as_written_is_kept_as_written(tmp_path):
    # An upper-case LM (LibriSpeech's) with an upper-case lexicon keeps working.
    path = lexicon_file(tmp_path, "THE t h e |\nCAT c a t |\n")
    asked = []
    report = read_lexicon(path, CHARS, lm_knows=lambda words: asked.append(words) or {"THE"})
    assert asked == [{"THE", "CAT"}]  # only the words that normalizing would change
    assert list(report.lexicon) == ["THE", "cat"]


def test_the_words_an_lm_is_loaded_for_are_each_word_as_normalized_and_as_written(tmp_path):
    # A binary LM answers only for the words it was loaded with: the search loads it once, with
    # these, to ask which it holds as written and to search the lexicon with the rest.
    path = lexicon_file(tmp_path, "THE t h e |\nthe t h e |\ncat c a t |\nDr. d r |\n!!! t |\n")
    lines = read_lexicon_lines(path, CHARS)
    assert sorted(lines.words()) == ["!!!", "Dr.", "THE", "cat", "dr", "the"]
    assert list(lines.report(lambda words: {"THE"} & words).lexicon) == ["THE", "the", "cat", "dr"]


def test_repeated_lines_are_read_once_and_are_not_homophones(tmp_path):
    # Lexicons merged from several sources repeat lines; each repeat used to count as another
    # word with that spelling, and past six the word was said to be "left out" although it was in.
    path = lexicon_file(tmp_path, "the t h e |\n" * 7 + "THE t h e\ncat c a t |\n")
    report = read_lexicon(path, CHARS)
    assert report.lexicon == {"the": [["t", "h", "e", WORD_SEP]], "cat": [["c", "a", "t", WORD_SEP]]}
    assert report.skipped == [] and report.notes("lexicon.txt") == []


def test_a_repeated_pronunciation_does_not_push_a_real_homophone_out(tmp_path):
    phones = PhoneTokenizer((("<blank>", WORD_SEP, "T", "UW")), {"to": ("T", "UW"), "two": ("T", "UW")})
    path = lexicon_file(tmp_path, "to T UW |\n" * MAX_HOMOPHONES + "two T UW |\n")
    assert list(read_lexicon(path, phones).lexicon) == ["to", "two"]


def test_a_spelling_left_out_of_a_word_kept_with_another_is_not_a_word_left_out(tmp_path):
    words = ["ta", "tb", "tc", "td", "te", "tf"]  # six words spelled t |, then "to" with t | and t o |
    path = lexicon_file(tmp_path, "".join(f"{w} t |\n" for w in words) + "to t |\nto t o |\nzz t |\n")
    report = read_lexicon(path, CharTokenizer.build(["to zz"]))
    assert report.lexicon["to"] == [["t", "o", WORD_SEP]] and "zz" not in report.lexicon
    assert report.skipped == [("zz", f"{MAX_HOMOPHONES} words before it are spelled t |")]
    assert report.dropped_spellings == [("to", f"{MAX_HOMOPHONES} words before it are spelled t |")]
    notes = report.notes("lexicon.txt")
    assert notes[0] == f"lexicon.txt: 1 word(s) left out of the lexicon: 'zz' ({MAX_HOMOPHONES} words before it " \
                       "are spelled t |)"
    assert notes[1].startswith("lexicon.txt: 1 spelling(s) left out of words the lexicon keeps with another "
                               "spelling: 'to'")


def test_subword_spellings_other_than_the_model_s_own_are_respelled_and_said_once(tmp_path):
    # A subword model emits "cat" as its pieces only: spelled letter by letter, the search could
    # find it only through the model's rare letter-by-letter outputs, and decoding fell apart.
    cat = BPE.word_tokens("cat")
    assert len(cat) < 3  # the pieces merge letters
    path = lexicon_file(tmp_path, "cat c a t |\nthe t h e |\nthat t h a t |\nrat r a t\n"
                        f"mat {' '.join(BPE.word_tokens('mat'))} |\n")
    report = read_lexicon(path, BPE)
    for word in ("cat", "the", "that", "rat", "mat"):
        assert report.lexicon[word] == [[*BPE.word_tokens(word), WORD_SEP]]
    assert [w for w, _, _ in report.respelled] == ["cat", "the", "that", "rat"]
    [note] = report.notes("lexicon.txt")
    assert note.startswith("lexicon.txt: 4 of 5 spellings are not the model's own segmentation of the word")
    assert f"cat: c a t | -> {' '.join(cat)} |" in note


def test_a_subword_lexicon_is_segmented_in_one_batch_as_its_words_are_one_by_one(tmp_path, monkeypatch):
    # a model's own lexicon (73,000 words) is read at every load: one sentencepiece call per word
    # made it 3x slower to read than one that is not checked at all
    words = ["cat", "the", "that", "rat", "mats", "then", "ran"]
    own = {w: BPE.word_tokens(w) for w in words}
    lines = [f"{w} {' '.join(own[w])} |" for w in words] + ["thecat t h e | c a t |", "at a t |"]
    path = lexicon_file(tmp_path, "\n".join(lines) + "\n")
    calls = []
    real = SubwordTokenizer.word_tokens
    monkeypatch.setattr(SubwordTokenizer, "word_tokens", lambda self, word: calls.append(word) or real(self, word))
    report = read_lexicon(path, BPE)
    assert calls == []
    assert all(report.lexicon[w] == [[*own[w], WORD_SEP]] for w in words)
    assert report.lexicon["thecat"] == [[*own["the"], WORD_SEP, *own["cat"], WORD_SEP]]  # each part on its own
    assert report.lexicon["at"] == [[*real(BPE, "at"), WORD_SEP]]


def test_a_respelling_that_matches_another_line_of_the_word_is_not_a_second_spelling(tmp_path):
    path = lexicon_file(tmp_path, f"cat {' '.join(BPE.word_tokens('cat'))} |\ncat c a t |\n")
    assert read_lexicon(path, BPE).lexicon == {"cat": [[*BPE.word_tokens("cat"), WORD_SEP]]}


def test_character_and_phone_spellings_are_kept_as_written(tmp_path):
    # A character model's segmentation is its letters; a phone model's lexicon is a pronunciation
    # dictionary, whose spellings are not the tokenizer's.
    path = lexicon_file(tmp_path, "dr d o c t o r |\n")
    report = read_lexicon(path, CharTokenizer.build(["doctor"]))
    assert report.lexicon == {"dr": [["d", "o", "c", "t", "o", "r", WORD_SEP]]}
    phones = PhoneTokenizer(("<blank>", WORD_SEP, "T", "AH", "UW"), {"to": ("T", "UW")})
    path = lexicon_file(tmp_path, "to T AH |\n")
    assert read_lexicon(path, phones).lexicon == {"to": [["T", "AH", WORD_SEP]]}


def test_a_lexicon_of_words_that_all_normalize_to_nothing_has_no_usable_entries(tmp_path):
    with pytest.raises(LexiconError, match="no usable lexicon entries"):
        read_lexicon(lexicon_file(tmp_path, "... t |\n"), CHARS)


def test_an_lm_s_words_written_otherwise_are_spelled_as_normalized_and_kept_as_the_lm_writes_them():
    # LibriSpeech's and SRILM-built LMs have upper-case words: spelled as written, every word was
    # left out and the search output nothing. The key stays the LM's word, which the LM scores.
    report = lexicon_from_words(["THE", "Cat", "mat.", "on", "WELL-KNOWN", "\u00c9t\u00e9", "<UNK>", "[noise]"], CHARS)
    assert report.lexicon == {"THE": [["t", "h", "e", WORD_SEP]], "Cat": [["c", "a", "t", WORD_SEP]],
                              "mat.": [["m", "a", "t", WORD_SEP]], "on": [["o", "n", WORD_SEP]]}
    assert report.skipped == [("WELL-KNOWN", "normalizes to several words: 'well known'"),
                              ("\u00c9t\u00e9", "characters outside the tokenizer: '\u00e9'"),
                              ("<UNK>", "characters outside the tokenizer: '<>KNU'"),  # markup, not words
                              ("[noise]", "characters outside the tokenizer: '[]i'")]


def test_a_word_list_none_of_whose_words_the_model_can_spell_is_refused_naming_its_source():
    # An empty lexicon made the search output nothing for every file, with exit status 0.
    with pytest.raises(LexiconError, match=r"ru\.arpa: none of its 2 words can be spelled in the model's "
                                           r"tokens \(e\.g\. '\u043c\u0438\u0440' \(characters outside"):
        lexicon_from_words(["\u043c\u0438\u0440", "\u0434\u0430"], CHARS, source="ru.arpa")


def test_a_phone_model_reads_the_pronunciation_file_it_was_trained_with_as_training_read_it(tmp_path):
    # train.phone_lexicon's file (speechocean762's lexicon.txt, cmudict.dict) has stress digits,
    # CMU-style variants and comments: read as written, every word was left out but the few
    # without a vowel, and the search output nonsense
    phones = PhoneTokenizer(("<blank>", WORD_SEP, "AH", "B", "EH", "EY", "IY", "R", "D"),
                            {"a": ("AH",), "bear": ("B", "EH", "R"), "read": ("R", "IY", "D")})
    path = lexicon_file(tmp_path, ";;; # CMUdict -- header\n# my lexicon\nA\tAH0\nA\tEY1\nBEAR B EH1 R # animal\n"
                                  "read R IY1 D\nread(2) R EH1 D\n#bear B EH1 R\n")
    assert read_lexicon(path, phones).lexicon == {
        "a": [["AH", WORD_SEP], ["EY", WORD_SEP]], "bear": [["B", "EH", "R", WORD_SEP]],
        "read": [["R", "IY", "D", WORD_SEP], ["R", "EH", "D", WORD_SEP]]}  # "#bear" a word that normalizes to bear


def test_a_phone_model_whose_phones_carry_digits_keeps_them_in_its_lexicon(tmp_path):
    # a tonal model's a2 is not its a (a neutral tone): only a stress-free model drops digits
    tones = PhoneTokenizer(("<blank>", WORD_SEP, "m", "a", "a1", "a3"), {"ma": ("m", "a1")})
    path = lexicon_file(tmp_path, "ma m a1\nmaa m a3\nmab m a2\n")
    report = read_lexicon(path, tones)
    assert report.lexicon == {"ma": [["m", "a1", WORD_SEP]], "maa": [["m", "a3", WORD_SEP]]}
    assert report.skipped == [("mab", "tokens outside the tokenizer: a2")]
