"""The `asr lm` pieces as a user chains them: an LM from text or from another tool, searched with
by the beam search, scored by perplexity, tuned and stored with the model, read back later."""

import pytest

from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
from asr.lexicon import LexiconError
from asr.lm import build_lm
from asr.text import CharTokenizer
from conftest import ctc_log_probs, spelled_frames

TOKENIZER = CharTokenizer.build(["the cat sat on a mat"])
LM_TEXT = "the cat sat on the mat\nthe cat sat\na cat on a mat\n"


@pytest.fixture
def word_lm(tmp_path):
    (tmp_path / "text.txt").write_text(LM_TEXT)
    return build_lm([tmp_path / "text.txt"], tmp_path / "w2.arpa", order=2, use_lmplz=False)[0]


def search(lm, **options):
    return BeamSearchDecoder(TOKENIZER, lm=lm, options=BeamSearchOptions(beam_size=8, **options))


def test_an_upper_case_arpa_lm_from_another_tool_is_searched_with_its_words_as_it_writes_them(word_lm, tmp_path):
    # LibriSpeech's official LMs (SRILM) are upper case: every word used to be left out of the
    # lexicon, and the search output nothing at all.
    upper = tmp_path / "upper.arpa"
    upper.write_text(word_lm.read_text().upper().replace("<S>", "<s>").replace("</S>", "</s>")
                     .replace("<UNK>", "<unk>").replace("\\DATA\\", "\\data\\").replace("NGRAM", "ngram")
                     .replace("-GRAMS", "-grams").replace("\\END\\", "\\end\\"))
    decoder = search(upper)
    assert not decoder.notes
    hyp = decoder.decode(*ctc_log_probs(TOKENIZER, spelled_frames("the cat sat")))[0]
    assert hyp.text == "THE CAT SAT"
    # a hotword names the LM's word, not a new one beside it that the LM does not know
    boosted = BeamSearchDecoder(TOKENIZER, lm=upper, hotwords="cat", options=BeamSearchOptions(beam_size=8))
    assert not boosted.notes and "cat" not in boosted.space.lexicon
    assert boosted.decode(*ctc_log_probs(TOKENIZER, spelled_frames("the cat sat")))[0].text == "THE CAT SAT"


def test_an_lm_none_of_whose_words_the_model_can_spell_is_refused_rather_than_searched_with(tmp_path):
    (tmp_path / "ru.txt").write_text("\u043c\u0438\u0440 \u0434\u0430\n\u0434\u0430 \u043c\u0438\u0440\n")
    lm = build_lm([tmp_path / "ru.txt"], tmp_path / "ru.arpa", order=2, use_lmplz=False)[0]
    with pytest.raises(LexiconError, match=rf"^{lm}: none of its 2 words can be spelled in the model's tokens"):
        search(lm)


def test_a_hotword_names_the_word_an_upper_case_lexicon_file_lists_as_its_lm_writes_it(word_lm, tmp_path):
    # a package made with an upper-case LM: lm.bin (or the ARPA) and a lexicon.txt of CAT c a t |
    upper = tmp_path / "upper.arpa"
    upper.write_text(word_lm.read_text().replace("cat", "CAT"))
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("".join(f"{w} {' '.join(w.lower())} |\n" for w in ["the", "CAT", "sat", "on", "a", "mat"]))
    boosted = BeamSearchDecoder(TOKENIZER, lm=upper, lexicon=lexicon, hotwords="cat",
                                options=BeamSearchOptions(beam_size=8))
    assert "cat" not in boosted.space.lexicon and not any("cat" in n for n in boosted.notes)
    assert boosted.space.phrases == [(boosted.space.words.get_index("CAT"),)]


def test_a_hotword_the_lm_has_as_written_boosts_that_word_not_a_capitalized_one_beside_it(tmp_path):
    cased = tmp_path / "cased.arpa"  # "cat" and "Cat", as a cased LM may hold both
    words = ["the", "cat", "Cat", "sat"]
    cased.write_text("\\data\\\nngram 1=7\nngram 2=1\n\n\\1-grams:\n-1\t<s>\t0\n-1\t</s>\n-9\t<unk>\n"
                     + "".join(f"-1\t{w}\t0\n" for w in words) + "\n\\2-grams:\n-0.5\t<s> the\n\n\\end\\\n")
    boosted = BeamSearchDecoder(TOKENIZER, lm=cased, hotwords="cat", options=BeamSearchOptions(beam_size=8))
    assert boosted.space.phrases == [(boosted.space.words.get_index("cat"),)]
