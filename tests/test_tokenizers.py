"""Subword units: sentencepiece BPE pieces inside words, ``|`` between them; saved and loaded
with the model; spelled in lexicons and searched with a word LM like characters, or searched
without a lexicon with an LM over the pieces themselves."""

import base64
import json
import random

import pytest

from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
from asr.decoding import GreedyDecoder
from asr.lexicon import lexicon_from_words, spell
from asr.arpa import inspect_lm
from asr.lm import LMError, build_lm
from asr.text import BLANK, WORD_SEP, CharTokenizer, UnknownCharacterError
from asr.tokenizers import TOKENIZER_FILE, SubwordTokenizer, TokenizerError, build_tokenizer, load_tokenizer
from conftest import ctc_log_probs

TEXTS = ["the cat sat on the mat", "the cats sat on the mats", "that thin cat", "then the cat ran",
         "a rat and a cat", "the nation's station"] * 5
BPE = SubwordTokenizer.build(TEXTS, vocab_size=30)


def pieces(tokenizer, text):
    return [tokenizer.tokens[i] for i in tokenizer.encode(text)]


def test_bpe_puts_blank_at_0_and_the_word_separator_at_1_then_pieces():
    assert BPE.tokens[:2] == (BLANK, WORD_SEP)
    assert all("\u2581" not in t and " " not in t for t in BPE.tokens[2:])
    assert len(set(BPE.tokens)) == len(BPE.tokens)


def test_every_character_of_the_training_text_is_a_piece_so_any_training_word_can_be_spelled():
    chars = set("".join(TEXTS).replace(" ", ""))
    assert chars <= set(BPE.tokens)
    assert not BPE.unknown_chars("the nation's station")


def test_pieces_merge_frequent_letter_runs_and_never_cross_a_word_boundary():
    units = pieces(BPE, "the cat sat")
    assert "the" in units or "th" in units  # the commonest run is merged
    assert len(units) < len(CharTokenizer.build(TEXTS).encode("the cat sat"))
    # words are separated by exactly one |, and no piece holds letters of two words
    words = "".join(units).split(WORD_SEP)
    assert words == ["the", "cat", "sat"]
    assert units.count(WORD_SEP) == 2


@pytest.mark.parametrize("text", ["the cat sat on the mat", "a rat", "that thin nation's station", "tac"])
def test_encode_then_decode_gives_back_the_normalized_text(text):
    assert BPE.decode(BPE.encode(text)) == text


def test_decode_skips_blanks_and_collapses_separators():
    ids = BPE.encode("the cat")
    assert BPE.decode([0, *ids[:1], 0, 1, 1, *ids[1:], 0]) == "the cat"


def test_bpe_dropout_at_zero_spells_every_word_exactly_as_sentencepieces_bpe():
    words = {w for text in TEXTS for w in text.split()} | {"mattress", "thatch", "tatters"}
    for word in words:
        assert BPE.sample_word_tokens(word, 0.0, random.Random(0)) == BPE.word_tokens(word), word


def test_bpe_dropout_spells_words_in_smaller_pieces_sometimes_and_always_the_same_letters():
    rng = random.Random(1)
    text = "the cats sat on the mats"
    spellings = {tuple(BPE.encode(text, dropout=0.3, rng=rng)) for _ in range(200)}
    assert tuple(BPE.encode(text)) in spellings and len(spellings) > 5
    assert all(BPE.decode(list(ids)) == text for ids in spellings)
    assert max(map(len, spellings)) > len(BPE.encode(text))  # broken into more, shorter pieces


def test_bpe_dropout_is_a_function_of_the_random_generator_state():
    draws = [BPE.encode("the cats sat on the mats", dropout=0.5, rng=random.Random(42)) for _ in range(2)]
    assert draws[0] == draws[1]


def test_a_character_the_pieces_do_not_cover_raises_naming_it():
    with pytest.raises(UnknownCharacterError, match="'z'"):
        BPE.encode("the zebra")


def test_a_vocabulary_with_no_room_beyond_the_characters_is_refused_saying_how_many_there_are():
    characters = len({c for text in TEXTS for c in text.replace(" ", "")})
    with pytest.raises(TokenizerError, match=f"training words' {characters} characters: give more than"):
        SubwordTokenizer.build(TEXTS, vocab_size=characters)
    assert len(SubwordTokenizer.build(TEXTS, vocab_size=characters + 1)) == characters + 2


def test_words_longer_than_sentencepieces_sentence_limit_are_trained_on_too():
    # sentencepiece skips "sentences" over 4192 bytes: a character seen only in one was no piece,
    # and a text of nothing else failed inside sentencepiece (unspaced scripts make long words)
    long_word = "ab" * 3000 + "q"
    bpe = SubwordTokenizer.build([long_word, "ab ab cab"], vocab_size=10)
    assert "q" in bpe.tokens
    assert bpe.decode(bpe.encode(long_word)) == long_word
    only_long = SubwordTokenizer.build(["\u4f60\u597d\u4e16\u754c" * 800], vocab_size=10)
    assert set(only_long.tokens[2:]) >= set("\u4f60\u597d\u4e16\u754c")


def test_the_vocabulary_size_is_sentencepieces_minus_its_unknown_plus_blank_and_separator():
    texts = ["".join(chr(97 + (i * 7 + j) % 26) for j in range(6)) for i in range(300)]
    assert len(SubwordTokenizer.build(texts, vocab_size=60)) == 61


def test_build_tokenizer_follows_train_units():
    assert isinstance(build_tokenizer("char", TEXTS), CharTokenizer)
    assert isinstance(build_tokenizer("bpe", TEXTS, 30), SubwordTokenizer)
    with pytest.raises(TokenizerError, match="wordpiece"):
        build_tokenizer("wordpiece", TEXTS)
    with pytest.raises(TokenizerError, match="no training text"):
        SubwordTokenizer.build(["", "  "])


def test_save_then_load_gives_the_same_pieces_and_segmentation(tmp_path):
    BPE.save(tmp_path / "tokenizer.json")
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    assert data["type"] == "bpe" and data["tokens"] == list(BPE.tokens)
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert isinstance(loaded, SubwordTokenizer) and loaded.tokens == BPE.tokens
    assert loaded.encode("the cats sat on the mats") == BPE.encode("the cats sat on the mats")


def test_load_tokenizer_reads_character_tokenizers_too(tmp_path):
    CharTokenizer.build(TEXTS).save(tmp_path / "tokenizer.json")
    assert load_tokenizer(tmp_path / "tokenizer.json") == CharTokenizer.build(TEXTS)


def test_load_tokenizer_given_a_model_directory_reads_its_tokenizer_file(tmp_path):
    BPE.save(tmp_path / TOKENIZER_FILE)
    assert load_tokenizer(tmp_path).tokens == BPE.tokens


def test_a_directory_without_a_tokenizer_is_an_error_naming_the_missing_file(tmp_path):
    with pytest.raises(TokenizerError, match="no tokenizer there") as e:
        load_tokenizer(tmp_path)
    assert str(tmp_path / TOKENIZER_FILE) in str(e.value)


@pytest.mark.parametrize("content, problem", [
    ({"type": "wordpiece", "tokens": [BLANK, WORD_SEP]}, "unsupported tokenizer type 'wordpiece'"),
    ({"type": "bpe", "tokens": [BLANK, WORD_SEP, "th"], "sentencepiece_model": "bm90IGEgbW9kZWw="},
     "unreadable tokenizer"),
    ({"type": "bpe", "tokens": [BLANK, WORD_SEP]}, "unreadable tokenizer"),
    ([BLANK, WORD_SEP, "a"], "unreadable tokenizer"),
])
def test_a_bad_tokenizer_file_is_an_error_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(content))
    with pytest.raises(TokenizerError, match=problem) as e:
        load_tokenizer(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("kind", ["char", "bpe", "phone"])
def test_a_tokenizer_file_listing_a_token_twice_is_an_error_naming_the_file_and_the_token(tmp_path, kind):
    # two outputs of the model would stand for one token, and encode would only ever use the later
    tokenizer = build_tokenizer("char", TEXTS) if kind == "char" else BPE
    data = {"type": kind, "tokens": [*tokenizer.tokens, tokenizer.tokens[3]]}
    if kind == "bpe":
        data["sentencepiece_model"] = base64.b64encode(BPE.model).decode("ascii")
    if kind == "phone":
        data = {"type": kind, "tokens": [BLANK, WORD_SEP, "K", "AE", "T", "K"], "pronunciations": {"cat": "K AE T"}}
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TokenizerError, match=r"duplicate tokens: \S+") as e:
        load_tokenizer(path)
    assert str(path) in str(e.value)


def test_a_tokenizer_file_that_is_not_utf8_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_bytes(b'{"type": "char", "tokens": ["\xff"]}')
    with pytest.raises(TokenizerError, match="unreadable tokenizer") as e:
        load_tokenizer(path)
    assert str(path) in str(e.value)


def test_files_with_the_same_content_load_as_one_shared_tokenizer(tmp_path):
    # A package's phone systems each carry the same tokenizer file: its pronunciations load once.
    for name in ("a", "b"):
        BPE.save(tmp_path / f"{name}.json")
    CharTokenizer.build(TEXTS).save(tmp_path / "c.json")
    a = load_tokenizer(tmp_path / "a.json")
    assert load_tokenizer(tmp_path / "b.json") is a
    assert load_tokenizer(tmp_path / "c.json") is not a


def test_a_missing_tokenizer_file_is_an_error_naming_the_path(tmp_path):
    with pytest.raises(TokenizerError, match="no tokenizer there") as e:
        load_tokenizer(tmp_path / "absent.json")
    assert str(tmp_path / "absent.json") in str(e.value)


def test_lexicon_spellings_are_the_words_pieces_then_the_separator():
    assert spell("cat", BPE) == [*BPE.word_tokens("cat"), WORD_SEP]
    report = lexicon_from_words(["cat", "zebra"], BPE)
    assert report.lexicon == {"cat": [spell("cat", BPE)]}
    assert report.skipped[0][0] == "zebra"


def piece_frames(tokenizer, text):
    """Clean CTC frames for ``text`` in ``tokenizer``'s units: each token then a blank."""
    frames = []
    for token in pieces(tokenizer, text):
        frames += [token, BLANK]
    return frames


def test_a_word_lm_search_over_pieces_repairs_a_misheard_word(tmp_path):
    (tmp_path / "t.txt").write_text("\n".join(TEXTS[:6]) + "\n")
    lm, _ = build_lm([tmp_path / "t.txt"], tmp_path / "w.arpa", order=2, use_lmplz=False)
    frames = piece_frames(BPE, "the cat sat on the mat")
    i = len(frames) - 2 * len(BPE.word_tokens("mat"))  # the first piece of "mat"
    frames[i] = {frames[i]: 0.45, BPE.word_tokens("rat")[0]: 0.55}  # the acoustics lean to "rat"
    lp = ctc_log_probs(BPE, frames)
    assert GreedyDecoder(BPE).decode(*lp)[0].text == "the cat sat on the rat"
    decoder = BeamSearchDecoder(BPE, lm=lm)
    assert not decoder.lexicon_free
    assert decoder.decode(*lp)[0].text == "the cat sat on the mat"


def test_beam_search_without_an_lm_decodes_pieces():
    lp = ctc_log_probs(BPE, piece_frames(BPE, "then the rat ran"))
    assert BeamSearchDecoder(BPE).decode(*lp)[0].text == "then the rat ran"


def test_a_character_lm_with_a_subword_model_is_refused_by_name(tmp_path):
    (tmp_path / "t.txt").write_text("\n".join(TEXTS[:6]) + "\n")
    lm, _ = build_lm([tmp_path / "t.txt"], tmp_path / "c.arpa", order=4, unit="char", use_lmplz=False)
    assert inspect_lm(lm).is_token_lm(CharTokenizer.build(TEXTS)) and not inspect_lm(lm).is_token_lm(BPE)
    with pytest.raises(LMError, match="c.arpa: lexicon-free search .* bpe pieces: build one with `asr lm build "
                       "--unit token"):
        BeamSearchDecoder(BPE, lm=lm)


def test_a_token_lm_predicts_the_models_own_pieces_with_the_separator_between_words(tmp_path):
    (tmp_path / "t.txt").write_text("\n".join(TEXTS[:6]) + "\n")
    lm, _ = build_lm([tmp_path / "t.txt"], tmp_path / "p.arpa", order=6, unit="token", tokenizer=BPE,
                     use_lmplz=False)
    info = inspect_lm(lm)
    assert set(info.words) == {t for text in TEXTS for t in pieces(BPE, text)}
    assert WORD_SEP in info.words and info.is_token_lm(BPE)
    words, _ = build_lm([tmp_path / "t.txt"], tmp_path / "w.arpa", order=2, use_lmplz=False)
    assert not inspect_lm(words).is_token_lm(BPE)


def test_a_token_lm_needs_the_tokenizer_and_leaves_out_sentences_it_cannot_spell(tmp_path):
    (tmp_path / "t.txt").write_text("the cat sat\nthe zebra sat\nthat cat\n")
    with pytest.raises(LMError, match="tokenizer"):
        build_lm([tmp_path / "t.txt"], tmp_path / "p.arpa", unit="token", use_lmplz=False)
    skipped = []
    lm, _ = build_lm([tmp_path / "t.txt"], tmp_path / "p.arpa", order=3, unit="token", tokenizer=BPE,
                     use_lmplz=False, skipped=skipped)
    assert skipped == [f"{tmp_path / 't.txt'}:2"]  # "z" and "b" are no pieces of BPE
    assert not {"z", "b"} & set(inspect_lm(lm).words)
    (tmp_path / "z.txt").write_text("zebra\nquiz\n")
    with pytest.raises(LMError, match=f"each of the 2 sentences has characters the tokenizer cannot spell, "
                                      f"e.g. {tmp_path / 'z.txt'}:1"):
        build_lm([tmp_path / "z.txt"], tmp_path / "z.arpa", unit="token", tokenizer=BPE, use_lmplz=False)


def test_lexicon_free_search_with_a_token_lm_repairs_a_word_and_can_write_words_no_lexicon_lists(tmp_path):
    (tmp_path / "t.txt").write_text("\n".join(TEXTS[:6]) + "\n")
    lm, _ = build_lm([tmp_path / "t.txt"], tmp_path / "p.arpa", order=6, unit="token", tokenizer=BPE,
                     use_lmplz=False)
    frames = piece_frames(BPE, "the cat sat on the mat")
    i = len(frames) - 2 * len(BPE.word_tokens("mat"))
    frames[i] = {frames[i]: 0.45, BPE.word_tokens("rat")[0]: 0.55}
    lp = ctc_log_probs(BPE, frames)
    decoder = BeamSearchDecoder(BPE, lm=lm, options=BeamSearchOptions(lm_weight=1.0))
    assert decoder.lexicon_free  # chosen from the LM's units, no lexicon given
    assert decoder.decode(*lp)[0].text == "the cat sat on the mat"
    # "catnat" is in no text the LM saw: clear acoustics still win, which a lexicon would forbid
    clear = ctc_log_probs(BPE, piece_frames(BPE, "the catnat sat"))
    assert decoder.decode(*clear)[0].text == "the catnat sat"


def test_a_model_whose_tokenizer_cannot_be_read_is_a_one_line_error_naming_the_file(tiny_model_dir, tmp_path,
                                                                                   capsys):
    import shutil

    from asr.cli import main

    broken = tmp_path / "model"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "tokenizer.json").write_text(json.dumps({"type": "bpe", "tokens": [BLANK, WORD_SEP]}))
    assert main(["summary", "--model", str(broken)]) == 2
    assert f"{broken / 'tokenizer.json'}: unreadable tokenizer" in capsys.readouterr().err
