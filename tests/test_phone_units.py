"""Phone units (``train.units=phone``): each word spelled by its pronunciation, ``|`` between
words. Words come back through the lexicon: the beam search spells a word LM's words in phones,
and greedy decoding looks each phone string up."""

import json

import pytest

from asr.beam_search import BeamSearchDecoder
from asr.decoding import GreedyDecoder
from asr.lexicon import lexicon_from_words, read_lexicon, spell
from asr.lm import build_lm
from asr.metrics import word_errors
from asr.phones import PhoneLexicon
from asr.text import BLANK, WORD_SEP, UnknownCharacterError, normalize_text
from asr.tokenizers import PhoneTokenizer, TokenizerError, UnknownWordError, build_tokenizer, load_tokenizer
from conftest import ctc_log_probs

LEXICON = """THE DH AH0
THE(2) DH IY0
CAT K AE1 T
SAT S AE1 T
MAT M AE1 T
RAT R AE1 T
ON AA1 N
A AH0
READ R EH1 D
READ(2) R IY1 D
RED R EH1 D
"""
TEXTS = ["the cat sat on the mat", "a red rat", "the red cat", "a cat on a mat"]


@pytest.fixture
def lexicon(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text(LEXICON)
    return path


@pytest.fixture
def phones(lexicon):
    return PhoneTokenizer.build(TEXTS, lexicon)


def frames_of(tokenizer, text):
    """Clean CTC frames for ``text``: each token then a blank."""
    frames = []
    for i in tokenizer.encode(text):
        frames += [tokenizer.tokens[i], BLANK]
    return frames


def test_words_are_spelled_by_their_first_pronunciation_without_stress_with_the_separator_between(phones, lexicon):
    assert phones.tokens[:2] == (BLANK, WORD_SEP)
    # IY is only in second pronunciations (THE(2), READ(2)), which are not used
    assert set(phones.tokens[2:]) == {"DH", "AH", "K", "AE", "T", "S", "M", "R", "AA", "N", "EH", "D"}
    assert [phones.tokens[i] for i in phones.encode("the cat")] == ["DH", "AH", WORD_SEP, "K", "AE", "T"]
    assert spell("read", phones) == ["R", "EH", "D", WORD_SEP]
    assert build_tokenizer("phone", TEXTS, phone_lexicon=str(lexicon)) == phones  # as train.units=phone builds it


def test_a_respelled_tokenizer_keeps_its_phones_takes_the_new_spellings_and_keeps_words_the_lexicon_lacks(
        phones, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("THE DH EH0\nCAT K AE1 T\nDAM D AE1 M\n")  # the: another form; dam: new; the rest: absent
    respelled = phones.respelled(PhoneLexicon.load(other))
    assert respelled.tokens == phones.tokens  # the model's outputs, whatever phones the lexicon uses
    assert respelled.pronunciations["the"] == ("DH", "EH") and respelled.pronunciations["dam"] == ("D", "AE", "M")
    assert respelled.pronunciations["mat"] == phones.pronunciations["mat"]  # not in the lexicon: kept
    assert list(respelled.pronunciations)[-1] == "dam"  # homophones: the model's own words first
    other.write_text("THE DH AH0\nSHIP SH IH1 P\nZOO Z UW1\n")
    with pytest.raises(TokenizerError, match=r"other.txt: phones IH P SH UW Z are none of the model's outputs"):
        phones.respelled(PhoneLexicon.load(other))


def test_greedy_decoding_looks_each_phone_string_up_in_the_lexicon(phones):
    lp = ctc_log_probs(phones, frames_of(phones, "the cat sat on the mat"))
    assert GreedyDecoder(phones).decode(*lp)[0].text == "the cat sat on the mat"


def test_a_homophone_comes_back_as_the_training_texts_commoner_word(lexicon):
    reds = PhoneTokenizer.build(TEXTS, lexicon)
    assert reds.decode(reds.encode("read")) == "red"
    readers = PhoneTokenizer.build(["read read", "red"], lexicon)
    assert readers.decode(readers.encode("red")) == "read"


def test_a_phone_string_that_no_word_has_is_written_as_its_phones_and_scores_as_one_word(phones):
    ids = [phones.tokens.index(p) for p in ("K", "AE", "D")]
    hypothesis = phones.decode([*ids, phones.word_sep_id, *phones.encode("cat")])
    assert hypothesis == "K'AE'D cat"
    assert normalize_text(hypothesis) == "k'ae'd cat"  # as evaluate scores it: one substitution, no insertions
    assert word_errors(["cad cat"], [normalize_text(hypothesis)]).errors == 1


def test_a_word_without_a_pronunciation_is_refused_by_name_and_left_out_of_lexicons(phones):
    with pytest.raises(UnknownWordError, match="words without a pronunciation: dog in 'the dog'") as e:
        phones.encode("the dog")
    assert isinstance(e.value, UnknownCharacterError)  # so datasets report and skip the utterance
    report = lexicon_from_words(["cat", "dog"], phones)
    assert report.lexicon == {"cat": [["K", "AE", "T", WORD_SEP]]}
    assert report.skipped == [("dog", "no pronunciation")]


def test_save_then_load_keeps_the_phones_and_which_homophone_wins(tmp_path, lexicon):
    readers = PhoneTokenizer.build(["read read", "red"], lexicon)
    readers.save(tmp_path / "tokenizer.json")
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert isinstance(loaded, PhoneTokenizer) and loaded.tokens == readers.tokens
    assert loaded.encode("the red cat") == readers.encode("the red cat")
    assert loaded.decode(loaded.encode("red")) == "read"


def test_a_tokenizer_file_whose_pronunciations_use_unknown_phones_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"type": "phone", "tokens": [BLANK, WORD_SEP, "K"], "pronunciations": {"cat": "K AE T"}}))
    with pytest.raises(TokenizerError, match="phones outside the tokens: AE T") as e:
        load_tokenizer(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("pronunciation, problem", [
    (f"K {BLANK} T", "phones outside the tokens: <blank>"),  # CTC targets must never hold the blank
    ("", "words without phones: cat"),  # its word would train as nothing between two separators
])
def test_a_tokenizer_file_with_a_pronunciation_no_model_can_emit_is_an_error_naming_the_file(
        tmp_path, pronunciation, problem):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"type": "phone", "tokens": [BLANK, WORD_SEP, "K", "AE", "T"],
                                "pronunciations": {"cat": pronunciation, "at": "AE T"}}))
    with pytest.raises(TokenizerError, match=problem) as e:
        load_tokenizer(path)
    assert str(path) in str(e.value)


def test_a_word_lm_search_over_phones_repairs_a_misheard_word(tmp_path, phones):
    (tmp_path / "t.txt").write_text("\n".join(TEXTS) + "\n")
    lm, _ = build_lm([tmp_path / "t.txt"], tmp_path / "w.arpa", order=2, use_lmplz=False)
    frames = frames_of(phones, "the cat sat on the mat")
    i = len(frames) - 6  # the M of "mat"
    frames[i] = {"M": 0.45, "R": 0.55}  # the acoustics lean to "rat"
    lp = ctc_log_probs(phones, frames)
    assert GreedyDecoder(phones).decode(*lp)[0].text == "the cat sat on the rat"
    assert BeamSearchDecoder(phones, lm=lm).decode(*lp)[0].text == "the cat sat on the mat"


def test_lexicon_words_and_hotwords_without_a_pronunciation_are_left_out_and_said(tmp_path, phones):
    (tmp_path / "t.txt").write_text("the cat sat on the dog\n")
    lm, _ = build_lm([tmp_path / "t.txt"], tmp_path / "w.arpa", order=2, use_lmplz=False)
    decoder = BeamSearchDecoder(phones, lm=lm, hotwords="dog,mat")
    assert any("1 word(s) left out of the lexicon: 'dog' (no pronunciation)" in n for n in decoder.notes)
    assert "hotword 'dog' left out: words without a pronunciation: dog" in decoder.notes
    assert not any("'mat'" in n for n in decoder.notes)


def test_past_six_homophones_the_lm_s_likeliest_stay_in_the_search_and_the_rest_are_said(tmp_path, capfd):
    # flashlight's lexicon trie holds 6 words per spelling and prints a line for each one more
    names = ["lu", "lou", "loo", "lieu", "lew", "leu", "lue", "louw"]  # all L UW
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("".join(f"{w.upper()} L UW1\n" for w in names))
    phones = PhoneTokenizer.build(["lou"], lexicon)
    # a unigram LM whose two unlikeliest words come first in the file
    probs = {"louw": -4.0, "lue": -3.5, "leu": -2.0, "lew": -1.9, "lieu": -1.8, "loo": -1.7, "lou": -1.6, "lu": -1.5}
    lm = tmp_path / "w.arpa"
    lm.write_text("\\data\\\nngram 1=11\nngram 2=1\n\n\\1-grams:\n-1\t<s>\t0\n-1\t</s>\n-9\t<unk>\n"
                  + "".join(f"{p}\t{w}\t0\n" for w, p in probs.items())
                  + "\n\\2-grams:\n-0.5\t<s> lu\n\n\\end\\\n")  # KenLM wants a bigram
    decoder = BeamSearchDecoder(phones, lm=lm)
    kept = {w for w in decoder.space.lexicon if w in names}
    assert kept == {"lu", "lou", "loo", "lieu", "lew", "leu"}
    assert any("2 word(s) left out" in n and "'lue'" in n and "spelled L UW |" in n for n in decoder.notes)
    assert "Trie label number reached limit" not in capfd.readouterr().err

    written = tmp_path / "lex_file.txt"  # a lexicon file is kept in its own order
    written.write_text("".join(f"{w} L UW |\n" for w in reversed(names)))
    report = read_lexicon(written, phones)
    assert list(report.lexicon) == list(reversed(names))[:6] and [w for w, _ in report.skipped] == ["lou", "lu"]


HOMOPHONES = ["lu", "lou", "loo", "lieu", "lew", "leu"]  # all L UW, likeliest first


def homophone_decoder(tmp_path, hotwords: str) -> BeamSearchDecoder:
    """A phone system whose LM holds six words spelled L UW (as many as the search's trie holds a
    spelling) and whose dictionary also knows "louw", searching with ``hotwords``."""
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("".join(f"{w.upper()} L UW1\n" for w in [*HOMOPHONES, "louw"]))
    phones = PhoneTokenizer.build(["lou"], lexicon)
    lm = tmp_path / "w.arpa"
    lm.write_text("\\data\\\nngram 1=9\nngram 2=1\n\n\\1-grams:\n-1\t<s>\t0\n-1\t</s>\n-9\t<unk>\n"
                  + "".join(f"-{1.5 + i / 10}\t{w}\t0\n" for i, w in enumerate(HOMOPHONES))
                  + "\n\\2-grams:\n-0.5\t<s> lu\n\n\\end\\\n")
    return BeamSearchDecoder(phones, lm=lm, hotwords=hotwords)


def searched(decoder) -> set[str]:
    return {w for w in decoder.space.lexicon if w in [*HOMOPHONES, "louw"]}


def test_a_hotword_spelled_as_six_words_already_takes_the_place_of_the_least_likely_and_is_searched(tmp_path,
                                                                                                   capfd):
    # flashlight's trie keeps 6 words a spelling: a seventh, the hotword, was dropped with a line on stderr
    decoder = homophone_decoder(tmp_path, "louw")
    assert searched(decoder) == {"lu", "lou", "loo", "lieu", "lew", "louw"}
    assert any("hotword 'louw': 'leu', spelled the same (L UW |), left out" in n for n in decoder.notes)
    assert "Trie label number reached limit" not in capfd.readouterr().err


def test_a_hotword_that_needs_room_never_takes_the_place_of_another_hotword(tmp_path):
    decoder = homophone_decoder(tmp_path, "leu,louw")  # "leu", the least likely, is boosted too
    assert searched(decoder) == {"lu", "lou", "loo", "lieu", "leu", "louw"}
    assert any("hotword 'louw': 'lew', spelled the same" in n for n in decoder.notes)


def test_a_hotword_with_no_room_left_among_other_hotwords_is_not_searched_as_the_lm_s_unk(tmp_path):
    decoder = homophone_decoder(tmp_path, ",".join([*HOMOPHONES, "louw"]))  # each boosted: no room for "louw"
    assert any("hotword 'louw' left out: 6 other hotwords are spelled the same" in n for n in decoder.notes)
    unk = decoder.space.words.get_index("<unk>")
    assert len(decoder.space.phrases) == 6 and all(unk not in p for p in decoder.space.phrases)
    assert not any("<unk>" in n for n in decoder.notes)


@pytest.mark.parametrize("text", ["sea s i1\nhello h ə0 l oʊ1\n",  # IPA, stress digits on some phones
                                  "ma m a1\nmaa m a3\nhello h ə0 l oʊ1\n"])  # tonal: every digit kept
def test_a_phone_model_whose_tokens_carry_digits_reads_its_training_lexicon_as_training_did(tmp_path, text):
    # the reader kept every digit of a model whose tokens had any (oʊ1), so "sea" s i1 was
    # outside the tokens (training had dropped i1's stress) and left out of the search
    path = tmp_path / "lexicon.txt"
    path.write_text(text, encoding="utf-8")
    model = PhoneTokenizer.build(["hello"], path)
    report = read_lexicon(path, model)
    assert report.skipped == []
    assert {w: [tuple(s[:-1]) for s in spellings] for w, spellings in report.lexicon.items()} == {
        w: [pron] for w, pron in model.pronunciations.items()}
