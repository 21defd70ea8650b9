"""Beam search: with and without LMs and lexicons, hotwords, n-best, workers, tuned settings."""

import math
import re
import subprocess

import pytest
import torch

from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
from asr.decoding import GreedyDecoder
from asr.decoding_config import DECODING_FILE, read_decoding_defaults, resolve_options, write_decoding_defaults
from asr.hotwords import HotwordsError, PhraseMatcher, parse_hotwords
from asr.lexicon import LexiconError, read_lexicon
from asr.lm import LMError, build_lm, kenlm_tool
from asr.text import CharTokenizer
from asr.decoder_factory import make_decoder
from conftest import ctc_log_probs, spelled_frames

TOKENIZER = CharTokenizer.build(["the cat sat on a mat with zebra dogs quiz"])
LM_TEXT = "the cat sat on the mat\nthe cat sat\na cat on a mat\nthe dog sat on a mat\n"


@pytest.fixture(scope="module")
def word_lm(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    (d / "text.txt").write_text(LM_TEXT)
    return build_lm([d / "text.txt"], d / "w2.arpa", order=2, use_lmplz=False)[0]


def doubtful(text, word, p, tokenizer=TOKENIZER):
    """Clean frames for ``text`` except ``word``, whose letters are only ``p`` likely (else blank)."""
    frames = []
    for i, w in enumerate(text.split()):
        for ch in w:
            frames += [{ch: p, "<blank>": 1 - p} if w == word else ch, "<blank>"]
        if i < len(text.split()) - 1:
            frames += ["|", "<blank>"]
    return ctc_log_probs(tokenizer, frames)


def best(decoder, log_probs_lengths):
    return decoder.decode(*log_probs_lengths)[0].text


def test_beam_search_without_lm_finds_the_clear_transcript_like_greedy():
    lp = ctc_log_probs(TOKENIZER, spelled_frames("the cat sat on a mat"))
    beam = make_decoder("beam", TOKENIZER).decode(*lp)[0]
    greedy = GreedyDecoder(TOKENIZER).decode(*lp)[0]
    assert beam.text == greedy.text == "the cat sat on a mat"
    assert beam.tokens == greedy.tokens and beam.frames == greedy.frames


def test_word_lm_repairs_a_misheard_letter_that_greedy_keeps(word_lm):
    frames = spelled_frames("the cat sat on the mat")
    frames[frames.index("m") + 2] = {"q": 0.55, "a": 0.45}  # "mqt" is slightly more likely acoustically
    lp = ctc_log_probs(TOKENIZER, frames)
    assert best(GreedyDecoder(TOKENIZER), lp) == "the cat sat on the mqt"
    beam = BeamSearchDecoder(TOKENIZER, lm=word_lm)
    assert not beam.lexicon_free  # a word LM searches over its own words
    assert best(beam, lp) == "the cat sat on the mat"


def test_searches_with_other_settings_share_one_lexicon_trie_and_find_the_same(word_lm, monkeypatch):
    # A 73 k-word lexicon takes seconds to build; tuning and rescoring make a search per setting.
    from asr.search_space import SearchSpace

    built = []
    real = SearchSpace._build_trie
    monkeypatch.setattr(SearchSpace, "_build_trie", lambda self, lm: built.append(lm) or real(self, lm))
    frames = spelled_frames("the cat sat on the mat")
    frames[frames.index("m") + 2] = {"q": 0.55, "a": 0.45}
    lp = ctc_log_probs(TOKENIZER, frames)
    beam = BeamSearchDecoder(TOKENIZER, lm=word_lm)
    others = [beam.with_options(lm_weight=w, word_score=s) for w in (0.5, 2.0) for s in (-1.0, 1.0)]
    assert len(built) == 1
    fresh = BeamSearchDecoder(TOKENIZER, lm=word_lm, options=others[-1].options)
    assert len(built) == 2  # another decoder loads its own files
    assert others[-1].decode(*lp)[0].text == fresh.decode(*lp)[0].text == "the cat sat on the mat"
    hot = BeamSearchDecoder(TOKENIZER, lm=word_lm, hotwords="mat")  # the hotword LM: a trie of its own
    assert best(hot.with_options(lm_weight=2.0), lp) == "the cat sat on the mat" and len(built) == 4


def test_with_options_can_change_the_number_of_workers_keeping_files_settings_and_priors(word_lm):
    beam = BeamSearchDecoder(TOKENIZER, lm=word_lm, options=BeamSearchOptions(beam_size=8, lm_weight=0.5),
                             log_priors=[-1.0] * len(TOKENIZER))
    spread = beam.with_options(workers=3)
    assert spread.workers == 3 and beam.workers == 1
    assert spread.space is beam.space and spread.options == beam.options and spread.log_priors is beam.log_priors
    retuned = spread.with_options(lm_weight=2.0)  # other settings keep the workers
    assert retuned.workers == 3 and retuned.options.lm_weight == 2.0 and retuned.options.beam_size == 8


def test_make_decoder_builds_greedy_or_beam_and_auto_is_beam_only_when_asked_for_search_settings():
    assert type(make_decoder("greedy", TOKENIZER)) is GreedyDecoder
    assert type(make_decoder("beam", TOKENIZER)) is BeamSearchDecoder
    assert type(make_decoder("auto", TOKENIZER)) is GreedyDecoder
    assert make_decoder("auto", TOKENIZER, options=BeamSearchOptions(beam_size=4)).options.beam_size == 4
    with pytest.raises(ValueError, match=re.escape("unknown decoder 'foo'; available: auto, greedy, beam")):
        make_decoder("foo", TOKENIZER)


def test_decoders_of_the_same_lexicon_file_and_lm_share_one_search_space(word_lm, tmp_path):
    # A package's phone systems search the same lexicon with the same LM: loaded once, not twice.
    (tmp_path / "a.txt").write_text("the t h e |\ncat c a t |\nmat m a t |\n")
    (tmp_path / "b.txt").write_text((tmp_path / "a.txt").read_text())  # same content, another file
    first = BeamSearchDecoder(TOKENIZER, lm=word_lm, lexicon=tmp_path / "a.txt")
    second = BeamSearchDecoder(TOKENIZER, lm=word_lm, lexicon=tmp_path / "b.txt").space
    assert second.kenlm is first.space.kenlm and second._tries is first.space._tries
    assert second.lexicon is first.space.lexicon and "b.txt" in second.source  # named as asked
    (tmp_path / "c.txt").write_text("the t h e |\ncat c a t |\n")
    other_tokens = CharTokenizer.build(["the cat mat"])
    for other in (BeamSearchDecoder(TOKENIZER, lm=word_lm, lexicon=tmp_path / "c.txt"),
                  BeamSearchDecoder(TOKENIZER, lexicon=tmp_path / "a.txt"),  # no LM
                  BeamSearchDecoder(other_tokens, lm=word_lm, lexicon=tmp_path / "a.txt"),
                  BeamSearchDecoder(TOKENIZER, lm=word_lm, lexicon=tmp_path / "a.txt", hotwords="cat")):
        assert other.space._tries is not first.space._tries
    lp = ctc_log_probs(TOKENIZER, spelled_frames("the cat"))
    assert best(BeamSearchDecoder(TOKENIZER, lm=word_lm, lexicon=tmp_path / "b.txt"), lp) == "the cat"


def test_a_blank_penalty_keeps_letters_that_blank_slightly_outweighs():
    lp = doubtful("the cat sat on a mat", "cat", 0.3)  # each letter of "cat" 0.3, blank 0.7
    plain = BeamSearchDecoder(TOKENIZER)
    assert best(plain, lp) == "the sat on a mat"
    assert best(plain.with_options(blank_penalty=1.0), lp) == "the cat sat on a mat"  # log 0.7 - 1 < log 0.3
    assert "blank_penalty 1" in plain.with_options(blank_penalty=1.0).describe()
    assert lp[0].exp().sum(-1).allclose(torch.ones(1))  # the caller's log-probs are left as they were


def test_the_last_word_of_a_lexicon_search_needs_no_separator_from_the_model(tmp_path):
    # Our models emit | between words only; the search must not charge the last word for one.
    (tmp_path / "lex.txt").write_text("the t h e |\ncat c a t |\n")
    lp = ctc_log_probs(TOKENIZER, spelled_frames("the cat"))
    beam = BeamSearchDecoder(TOKENIZER, lexicon=tmp_path / "lex.txt").decode(*lp)[0]
    greedy = GreedyDecoder(TOKENIZER).decode(*lp)[0]
    assert beam.text == "the cat" and beam.score == pytest.approx(greedy.score, abs=1e-3)


def test_lexicon_spellings_get_the_word_separator_and_bad_entries_are_reported(tmp_path):
    path = tmp_path / "lex.txt"
    path.write_text("cat c a t\nmat m a t |\nnaïve n a ï v e |\n")
    report = read_lexicon(path, TOKENIZER)
    assert report.lexicon == {"cat": [["c", "a", "t", "|"]], "mat": [["m", "a", "t", "|"]]}
    assert [w for w, _ in report.skipped] == ["naïve"] and "ï" in report.skipped[0][1]
    path.write_text("cat c a t |\nlonely\n")
    with pytest.raises(LexiconError, match=rf"{path}:2: no spelling"):
        read_lexicon(path, TOKENIZER)
    with pytest.raises(LexiconError, match="not found"):
        read_lexicon(tmp_path / "missing.txt", TOKENIZER)


def test_lm_words_outside_the_tokenizer_are_reported(tmp_path):
    (tmp_path / "t.txt").write_text("the café sat\n")
    lm, _ = build_lm([tmp_path / "t.txt"], tmp_path / "lm.arpa", order=2, use_lmplz=False)
    decoder = BeamSearchDecoder(TOKENIZER, lm=lm)
    assert "café" not in decoder.space.lexicon and "the" in decoder.space.lexicon
    assert any("café" in note and "é" in note for note in decoder.notes)


def binary_of(arpa):
    """The ARPA file as a KenLM binary (build_binary), beside it."""
    out = arpa.with_suffix(".bin")
    subprocess.run([kenlm_tool("build_binary"), str(arpa), str(out)], check=True, capture_output=True)
    return out


BINARY = [False, pytest.param(True, marks=pytest.mark.skipif(
    kenlm_tool("build_binary") is None, reason="KenLM build_binary is not installed (make kenlm)"))]


@pytest.mark.parametrize("binary", BINARY)
def test_an_lm_over_the_model_s_units_with_a_word_lexicon_is_refused_naming_the_pairing_needed(tmp_path, binary):
    # The search looked the lexicon's words up among the LM's letters: almost all were its <unk>,
    # and the few that are letters too ("a") won: nonsense, without a word. The reverse pairing
    # (a word LM, --lexicon none) was refused already.
    (tmp_path / "t.txt").write_text(LM_TEXT)
    (tmp_path / "lex.txt").write_text("the t h e |\ncat c a t |\na a |\n")
    lm, _ = build_lm([tmp_path / "t.txt"], tmp_path / "c.arpa", order=4, unit="char", use_lmplz=False)
    lm = binary_of(lm) if binary else lm
    with pytest.raises(LMError, match=rf"{lm.name}: an LM over the model's tokens .* give a word LM .* with the "
                                      r"lexicon, or this LM without one \(--lexicon none\)"):
        BeamSearchDecoder(TOKENIZER, lm=lm, lexicon=tmp_path / "lex.txt")
    assert BeamSearchDecoder(TOKENIZER, lm=lm, lexicon="none").lexicon_free


@pytest.mark.parametrize("binary", BINARY)
def test_lexicon_words_the_lm_does_not_know_are_counted_when_more_than_a_few(word_lm, tmp_path, binary):
    lm = binary_of(word_lm) if binary else word_lm
    lexicon = tmp_path / "lex.txt"
    lexicon.write_text("the t h e |\ncat c a t |\nzebra z e b r a |\nquiz q u i z |\n")
    notes = BeamSearchDecoder(TOKENIZER, lm=lm, lexicon=lexicon).notes
    assert notes == [f"{lexicon}: 2 of 4 lexicon words are not in {lm} (e.g. 'zebra', 'quiz'): the search scores "
                     "them as its <unk>"]
    lexicon.write_text("THE t h e |\nCat c a t |\nmat m a t |\n")  # normalized as the LM's words: all known
    assert BeamSearchDecoder(TOKENIZER, lm=lm, lexicon=lexicon).notes == []


def test_an_upper_case_lexicon_is_searched_with_a_lower_case_lm(word_lm, tmp_path):
    # Every word of it was the LM's <unk>: the LM added a constant, and "mqt" stayed.
    frames = spelled_frames("the cat sat on the mat")
    frames[frames.index("m") + 2] = {"q": 0.55, "a": 0.45}
    lp = ctc_log_probs(TOKENIZER, frames)
    (tmp_path / "lex.txt").write_text("".join(f"{w.upper()} {' '.join(w)} |\n"
                                              for w in ("the", "cat", "sat", "on", "mat", "mqt")))
    assert best(BeamSearchDecoder(TOKENIZER, lm=word_lm, lexicon=tmp_path / "lex.txt"), lp) \
        == "the cat sat on the mat"


def test_beam_size_token_limits_the_search_to_each_frames_likeliest_tokens(word_lm):
    frames = spelled_frames("the cat sat on the mat")
    frames[frames.index("m") + 2] = {"q": 0.55, "a": 0.45}
    lp = ctc_log_probs(TOKENIZER, frames)
    assert best(BeamSearchDecoder(TOKENIZER, lm=word_lm, options=BeamSearchOptions(beam_size_token=2)), lp) \
        == "the cat sat on the mat"  # q and a are the frame's two likeliest
    # With one token per frame the search never tries the "a" that the LM would prefer.
    lone = BeamSearchDecoder(TOKENIZER, lm=word_lm, options=BeamSearchOptions(beam_size_token=1))
    assert "mat" not in best(lone, lp)


@pytest.mark.parametrize("option", ["beam_size", "beam_size_token", "nbest"])
@pytest.mark.parametrize("value", [0, -3])
def test_beams_and_nbest_below_one_are_refused_by_name(option, value):
    # flashlight would return nothing (a silent 100% WER) or kill the decoding worker.
    with pytest.raises(LMError, match=f"{option} must be at least 1, got {value}"):
        BeamSearchOptions(**{option: value})
    assert getattr(BeamSearchOptions(**{option: 1}), option) == 1


def test_a_negative_beam_threshold_is_refused_and_zero_keeps_the_best(word_lm):
    # Below zero flashlight prunes every hypothesis and returns an empty transcript.
    with pytest.raises(LMError, match="beam_threshold must be 0 or more, got -1.0"):
        BeamSearchOptions(beam_threshold=-1.0)
    lp = ctc_log_probs(TOKENIZER, spelled_frames("the cat sat on the mat"))
    greedyish = BeamSearchDecoder(TOKENIZER, lm=word_lm, options=BeamSearchOptions(beam_threshold=0.0))
    assert best(greedyish, lp) == "the cat sat on the mat"


@pytest.mark.parametrize("option", ["lm_weight", "word_score", "blank_penalty", "prior_scale", "hotword_weight"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_nan_or_infinite_weight_or_score_is_refused_by_name(option, value):
    # --lm-weight nan gave empty transcripts, --word-score inf garbage
    with pytest.raises(LMError, match=f"^{option} must be a finite number, got {value}$"):
        BeamSearchOptions(**{option: value})
    assert getattr(BeamSearchOptions(**{option: -1.5}), option) == -1.5


def test_a_nan_beam_threshold_is_refused_but_an_infinite_one_means_no_pruning(word_lm):
    with pytest.raises(LMError, match="beam_threshold must be 0 or more, got nan"):
        BeamSearchOptions(beam_threshold=math.nan)
    lp = ctc_log_probs(TOKENIZER, spelled_frames("the cat sat on the mat"))
    unpruned = BeamSearchDecoder(TOKENIZER, lm=word_lm, options=BeamSearchOptions(beam_threshold=math.inf))
    assert best(unpruned, lp) == "the cat sat on the mat"


def test_character_lm_selects_lexicon_free_search(tmp_path):
    (tmp_path / "t.txt").write_text(LM_TEXT)
    lm, _ = build_lm([tmp_path / "t.txt"], tmp_path / "c.arpa", order=5, unit="char", use_lmplz=False)
    decoder = BeamSearchDecoder(TOKENIZER, lm=lm)
    assert decoder.lexicon_free
    assert best(decoder, ctc_log_probs(TOKENIZER, spelled_frames("a cat sat"))) == "a cat sat"


def test_missing_malformed_or_binary_lm_without_lexicon_is_a_clear_error(tmp_path):
    with pytest.raises(LMError, match="not found"):
        BeamSearchDecoder(TOKENIZER, lm=tmp_path / "missing.arpa")
    (tmp_path / "bad.arpa").write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\n")
    with pytest.raises(LMError, match="bad.arpa"):
        BeamSearchDecoder(TOKENIZER, lm=tmp_path / "bad.arpa")
    (tmp_path / "lm.bin").write_bytes(b"mmap lm http://kheafield.com/code format version 5\n\0")
    with pytest.raises(LMError, match="--lexicon"):
        BeamSearchDecoder(TOKENIZER, lm=tmp_path / "lm.bin")


@pytest.mark.parametrize("files", ["word_lm", "user_lexicon", "none"])
def test_a_boosted_hotword_outside_the_lm_is_recognized_only_with_the_boost(word_lm, tmp_path, files):
    lp = doubtful("the zebra sat", "zebra", 0.4)  # dropping "zebra" is acoustically a little better
    kwargs = {"word_lm": {"lm": word_lm}, "none": {},
              "user_lexicon": {"lm": word_lm, "lexicon": tmp_path / "lex.txt"}}[files]
    (tmp_path / "lex.txt").write_text("the t h e |\nsat s a t |\nzebra z e b r a |\n")
    assert best(BeamSearchDecoder(TOKENIZER, **kwargs), lp) == "the sat"
    boosted = BeamSearchDecoder(TOKENIZER, hotwords="zebra", **kwargs)
    assert best(boosted, lp) == "the zebra sat"
    assert best(boosted.with_options(hotword_weight=0.0), lp) == "the sat"  # the weight is what does it


def test_a_hotword_phrase_s_later_word_is_looked_ahead_with_its_bonus_so_a_tight_beam_keeps_it(word_lm):
    # The lexicon's trie estimates a word while it is spelled by its score at the sentence start,
    # where "the zebra" gives "zebra" no bonus yet: the beam dropped it before its bonus came.
    lp = doubtful("the zebra sat", "zebra", 0.4)
    tight = BeamSearchOptions(beam_threshold=3.0)
    assert best(BeamSearchDecoder(TOKENIZER, lm=word_lm, hotwords="zebra", options=tight), lp) == "the zebra sat"
    assert best(BeamSearchDecoder(TOKENIZER, lm=word_lm, hotwords="the zebra", options=tight), lp) == "the zebra sat"


@pytest.mark.parametrize("binary", BINARY)
def test_a_hotword_outside_an_lm_whose_unk_is_hopeless_still_wins_with_its_bonus(word_lm, tmp_path, binary):
    # asr lm import-sphinx writes <unk> at log10 -99 (KenLM takes -100 when an ARPA has none):
    # scored as that, a hotword outside the LM could not win at any weight.
    hopeless = tmp_path / "unk99.arpa"
    hopeless.write_text(re.sub(r"^-[0-9.]+\t<unk>", "-99\t<unk>", word_lm.read_text(), flags=re.M))
    files = {"lm": hopeless}
    if binary:  # with the LM's words as a lexicon, zebra not among them
        (tmp_path / "lex.txt").write_text("".join(f"{w} {' '.join(w)} |\n" for w in set(LM_TEXT.split())))
        files = {"lm": binary_of(hopeless), "lexicon": tmp_path / "lex.txt"}
    lp = doubtful("the zebra sat", "zebra", 0.4)
    boosted = BeamSearchDecoder(TOKENIZER, hotwords="zebra", **files)
    assert best(boosted, lp) == "the zebra sat"
    assert best(boosted.with_options(hotword_weight=0.0), lp) == "the sat"  # the floor alone does not do it
    [note] = boosted.notes
    assert note.startswith(f"hotword word(s) not in {files['lm']}: zebra; scored as its rarest lexicon word")
    assert note.endswith("instead of its <unk> (-99.00)")


def test_an_empty_hotword_list_changes_nothing(word_lm):
    frames = spelled_frames("the cat sat")
    frames[2] = {"h": 0.5, "a": 0.5}
    lp = ctc_log_probs(TOKENIZER, frames)
    plain = BeamSearchDecoder(TOKENIZER, lm=word_lm, options=BeamSearchOptions(nbest=3)).decode_nbest(*lp)
    for empty in ("", [], " , ", None):
        decoder = BeamSearchDecoder(TOKENIZER, lm=word_lm, hotwords=empty, options=BeamSearchOptions(nbest=3))
        assert not decoder.space.phrases
        assert decoder.decode_nbest(*lp) == plain


def test_a_phrase_earns_its_bonus_only_when_complete():
    new, york, jersey = 1, 2, 3
    matcher = PhraseMatcher([(new, york)], [(2.0, 2.0)])
    state, gained = matcher.initial, 0.0
    for word in (new, york):
        state, change = matcher.step(state, word)
        gained += change
    assert gained == 4.0 and matcher.finish(state) == 0.0
    state, first = matcher.step(matcher.initial, new)
    state, second = matcher.step(state, jersey)
    assert first + second == 0.0  # the partial match gave its bonus back
    state, first = matcher.step(matcher.initial, new)
    assert first + matcher.finish(state) == 0.0  # ... also when the utterance ends inside it


def gained(matcher, units):
    state, total = matcher.initial, 0.0
    for unit in units:
        state, change = matcher.step(state, unit)
        total += change
    return total + matcher.finish(state)


def test_a_phrase_that_begins_inside_a_match_that_broke_off_still_earns_its_bonus():
    new, york, city, university, other = 1, 2, 3, 4, 5
    matcher = PhraseMatcher([(new, york, city), (york, university)], [(2.0, 2.0, 2.0), (2.0, 2.0)])
    assert gained(matcher, [new, york, university]) == 4.0  # "new york" broke off; "york university" is there
    assert gained(matcher, [new, york, other]) == 0.0
    a, b = 1, 2
    assert gained(PhraseMatcher([(a, a, b)], [(1.0, 1.0, 1.0)]), [a, a, a, b]) == 3.0  # restarted one unit back
    # a phrase complete inside a longer one that then breaks off keeps its bonus, and only its own
    matcher = PhraseMatcher([(1, 2, 3, 4), (2, 3)], [(1.0,) * 4, (1.0, 1.0)])
    assert gained(matcher, [1, 2, 3, 9]) == 2.0 and gained(matcher, [1, 2, 3, 4]) == 4.0


def test_hotwords_are_normalized_from_lists_strings_and_files(tmp_path):
    (tmp_path / "hot.txt").write_text("Zebra\n\nNew-York\n")
    assert parse_hotwords(tmp_path / "hot.txt") == ["zebra", "new york"]
    assert parse_hotwords("Zebra, quiz ,zebra") == ["zebra", "quiz"]
    assert parse_hotwords(["A.B."]) == ["a b"]


@pytest.mark.parametrize("missing", ["names.txt", "{folder}/names", "names.LST"])
def test_a_hotwords_file_that_is_not_there_is_an_error_not_a_phrase(missing, tmp_path):
    missing = missing.format(folder=tmp_path)
    with pytest.raises(HotwordsError, match=f"{missing}: hotwords file not found"):
        parse_hotwords(missing)
    assert parse_hotwords("names.txt, mary") == ["names txt", "mary"]  # a comma: phrases, as written
    assert parse_hotwords("AC/DC") == ["ac dc"]  # no such folder: a phrase


def test_a_hotwords_file_that_is_not_utf8_is_an_error_naming_it(tmp_path):
    (tmp_path / "hot.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(HotwordsError, match="hot.txt: hotwords file is not UTF-8"):
        parse_hotwords(tmp_path / "hot.txt")


def test_a_hotwords_file_line_may_list_several_comma_separated_phrases(tmp_path):
    (tmp_path / "names.csv").write_text("Tina,John Smith\nzebra\n")
    assert parse_hotwords(tmp_path / "names.csv") == ["tina", "john smith", "zebra"]


def test_an_empty_hotwords_file_is_warned_about_and_boosts_nothing(tmp_path, capsys):
    (tmp_path / "hot.txt").write_text("\n  \n,\n")
    assert parse_hotwords(tmp_path / "hot.txt") == []
    assert f"{tmp_path / 'hot.txt'}: no hotwords in this file" in capsys.readouterr().err


@pytest.mark.parametrize("bonus", [math.inf, -math.inf, math.nan])
def test_a_phrase_matcher_refuses_an_infinite_or_nan_bonus(bonus):
    # an infinite bonus left every transcript empty, a NaN one changed them at random (a matcher
    # built without BeamSearchOptions, which refuses such a hotword_weight first)
    with pytest.raises(HotwordsError, match=f"hotword weight must be a finite number .*got {bonus}"):
        PhraseMatcher([(1, 2)], [(1.0, bonus)])


def test_nbest_gives_distinct_transcripts_best_first(word_lm):
    frames = spelled_frames("the cat sat on the mat")
    frames[frames.index("c")] = {"c": 0.6, "m": 0.4}
    lp = ctc_log_probs(TOKENIZER, frames)
    nbest = BeamSearchDecoder(TOKENIZER, lm=word_lm, options=BeamSearchOptions(nbest=3)).decode_nbest(*lp)[0]
    assert len(nbest) == 3 and len({h.text for h in nbest}) == 3
    assert [h.score for h in nbest] == sorted((h.score for h in nbest), reverse=True)
    assert nbest[0].text == "the cat sat on the mat"


def test_nbest_lists_each_transcript_once_though_paths_differ_in_a_separator_or_an_unfinished_word(word_lm):
    # a last frame as likely | as blank: "the|cat|" and "the|cat" are one transcript
    lp = ctc_log_probs(TOKENIZER, spelled_frames("the cat")[:-1] + [{"|": 0.5, "<blank>": 0.5}])
    nbest = BeamSearchDecoder(TOKENIZER, options=BeamSearchOptions(nbest=4)).decode_nbest(*lp)[0]
    assert [h.text for h in nbest][0] == "the cat" and len({h.text for h in nbest}) == len(nbest) == 4
    # a small lexicon search whose paths went on into unfinished words ("the|cat|sa", "the|cat|a")
    lp = ctc_log_probs(TOKENIZER, spelled_frames("the cat sa"))
    nbest = BeamSearchDecoder(TOKENIZER, lm=word_lm, options=BeamSearchOptions(nbest=4, beam_size=2)).decode_nbest(*lp)[0]
    assert [h.text for h in nbest] == ["the cat"]


def test_worker_processes_give_the_same_results_as_one(word_lm):
    texts = ["the cat sat", "a mat", "the dog sat on a mat"]
    batch = [ctc_log_probs(TOKENIZER, spelled_frames(t))[0][0] for t in texts]
    log_probs = torch.nn.utils.rnn.pad_sequence(batch, batch_first=True)
    lengths = torch.tensor([len(b) for b in batch])
    serial = BeamSearchDecoder(TOKENIZER, lm=word_lm).decode(log_probs, lengths)
    parallel = BeamSearchDecoder(TOKENIZER, lm=word_lm, workers=2)
    try:
        assert parallel.decode(log_probs, lengths) == serial
        assert [h.text for h in serial] == texts
    finally:
        parallel.close()


def test_a_batch_forks_no_more_search_workers_than_it_has_utterances_and_a_larger_one_more(word_lm):
    lp = ctc_log_probs(TOKENIZER, spelled_frames("the cat sat"))
    parallel = BeamSearchDecoder(TOKENIZER, lm=word_lm, workers=4)
    try:
        for n, forked in ((2, 2), (6, 4)):  # a batch of 2 forks 2; then one of 6, all 4
            texts = [h.text for h in parallel.decode(torch.cat([lp[0]] * n), torch.cat([lp[1]] * n))]
            assert texts == ["the cat sat"] * n and len(parallel._pool._processes) == forked
    finally:
        parallel.close()


def test_tuned_settings_apply_with_an_lm_and_explicit_options_win(tmp_path, word_lm):
    assert read_decoding_defaults(tmp_path) == {}
    write_decoding_defaults(tmp_path, {"lm_weight": 0.7, "word_score": 1.5, "blank_penalty": 0.5, "beam_size": 20,
                                       "tuned": {"lm": str(word_lm)}})
    assert (tmp_path / DECODING_FILE).is_file()
    options, notes = resolve_options(tmp_path, word_lm, word_score=-2.0, beam_size=None)
    assert (options.lm_weight, options.word_score, options.beam_size) == (0.7, -2.0, 20) and notes == []
    assert options.blank_penalty == 0.5
    options, notes = resolve_options(tmp_path, tmp_path / "other.arpa")
    assert options.lm_weight == 0.7 and "tuned with" in notes[0]
    assert resolve_options(tmp_path, None)[0] == BeamSearchOptions()  # no LM: nothing was tuned for it


@pytest.mark.parametrize("key, value, expected", [
    ("blank_penalty", "abc", "blank_penalty: expected a number, got 'abc'"),
    ("beam_size", 2.5, "beam_size: expected an integer, got 2.5"),
    ("log_add", "maybe", "log_add: expected true/false"),  # (yes/no, on/off are YAML's booleans)
    ("beam_size_token", "all", "beam_size_token: expected an integer, got 'all'"),
    ("beam_size", 0, "beam_size must be at least 1, got 0"),
    ("nbest", -1, "nbest must be at least 1, got -1"),
    ("beam_threshold", -5, "beam_threshold must be 0 or more, got -5.0"),
])
def test_a_mistyped_or_out_of_range_stored_setting_is_an_error_naming_the_file_and_key(tmp_path, word_lm, key, value, expected):
    write_decoding_defaults(tmp_path, {key: value})
    with pytest.raises(LMError, match=expected) as e:
        resolve_options(tmp_path, word_lm)
    assert str(tmp_path / DECODING_FILE) in str(e.value)


def test_a_misspelled_stored_setting_is_an_error_naming_the_file_and_the_setting_meant(tmp_path, word_lm):
    # `lm_wieght: 0.3` was ignored without a word: the search ran at lm_weight 1.0
    write_decoding_defaults(tmp_path, {"lm_wieght": 0.3, "beam": 20, "lm_weight": 0.5, "tuned": {"wer": 0.5},
                                       "lexicons": "lexicon.txt"})
    with pytest.raises(LMError, match=r"unknown setting\(s\): beam \(did you mean beam_size\?\), lexicons \(did "
                                      r"you mean lexicon\?\), lm_wieght \(did you mean lm_weight\?\)") as e:
        resolve_options(tmp_path, word_lm)
    assert str(e.value).startswith(f"{tmp_path / DECODING_FILE}: ")


@pytest.mark.parametrize("option, value, expected", [
    ("beam_size", "8", "beam_size must be a whole number, got '8'"),
    ("beam_size", 8.0, "beam_size must be a whole number, got 8.0"),
    ("nbest", 2.5, "nbest must be a whole number, got 2.5"),
    ("lm_weight", "0.5", "lm_weight must be a finite number, got '0.5'"),
    ("beam_threshold", "25", "beam_threshold must be a number, got '25'"),
    ("log_add", "no", "log_add must be true or false, got 'no'"),
])
def test_a_search_setting_of_the_wrong_type_from_python_is_refused_by_name(option, value, expected):
    # load_model(decoder="beam", beam_size="8") failed with "'<' not supported between 'str' and 'int'",
    # beam_size=8.0 with a page of pybind11 signatures
    with pytest.raises(LMError, match=f"^{re.escape(expected)}$"):
        BeamSearchOptions(**{option: value})


def test_numpy_booleans_and_integers_are_search_settings_as_python_s_are():
    import numpy as np

    options = BeamSearchOptions(log_add=np.True_, beam_size=np.int64(8))
    assert options.log_add and options.beam_size == 8


@pytest.mark.parametrize("value", [math.nan, math.inf, -0.5, 1.5])
def test_token_priors_that_are_not_probabilities_are_refused_naming_the_file_and_token(tmp_path, value):
    # a NaN prior (the priors of a model whose outputs were NaN) kept its token out of every
    # prior-corrected transcript ("the cat sat" -> "the cet sgt"); all NaN emptied them
    import json

    from asr.decoding_config import PRIORS_FILE, load_log_priors

    (tmp_path / PRIORS_FILE).write_text(json.dumps({"priors": [0.5, value, 0.0]}))
    with pytest.raises(LMError, match=rf"^{re.escape(str(tmp_path / PRIORS_FILE))}: token 1's prior is "
                                      rf"{value}, not a probability"):
        load_log_priors(tmp_path, 3)


def test_stored_whole_numbers_are_taken_as_floats_and_null_where_allowed(tmp_path, word_lm):
    write_decoding_defaults(tmp_path, {"lm_weight": 2, "beam_size_token": None, "log_add": True})
    options, _ = resolve_options(tmp_path, word_lm)
    assert options.lm_weight == 2.0 and isinstance(options.lm_weight, float)
    assert options.beam_size_token is None and options.log_add is True


def test_empty_utterances_decode_to_empty_text(word_lm):
    lp = ctc_log_probs(TOKENIZER, ["<blank>"] * 5)
    for decoder in (BeamSearchDecoder(TOKENIZER), BeamSearchDecoder(TOKENIZER, lm=word_lm)):
        hyp = decoder.decode(*lp)[0]
        assert hyp.text == "" and hyp.tokens == () and math.isfinite(hyp.score)


# -- the command line ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def untrained_model(tiny_corpus, tmp_path_factory):
    """A model directory with random weights: enough to run every decoding path end to end."""
    import json

    from asr.config_files import config_from_dict
    from asr.model import AcousticModel
    from asr.model_dir import save_model_dir

    texts = [json.loads(line)["text"] for line in (tiny_corpus / "train.jsonl").read_text().splitlines()]
    tokenizer = CharTokenizer.build(texts)
    cfg = config_from_dict({"model": {"num_layers": 1, "hidden_size": 16, "conv_channels": 2}})
    torch.manual_seed(0)  # the same weights every run: the tests that read its outputs are repeatable
    model = AcousticModel(cfg.features, cfg.model, len(tokenizer))
    return save_model_dir(tmp_path_factory.mktemp("model") / "m", cfg, model, tokenizer)


def test_cli_bad_lm_is_reported_before_any_audio_is_read(untrained_model, tmp_path, capsys):
    from asr.cli import main

    code = main(["transcribe", str(tmp_path / "missing.wav"), "--model", str(untrained_model), "--decoder", "beam",
                 "--lm", str(tmp_path / "missing.arpa")])
    err = capsys.readouterr().err
    assert code == 2 and "missing.arpa: language model file not found" in err and "missing.wav" not in err


def test_cli_builds_an_lm_tunes_it_and_later_decodes_with_the_stored_settings(untrained_model, tiny_corpus,
                                                                               tmp_path, capsys):
    import json
    import shutil

    from asr.cli import main

    model = tmp_path / "model"
    shutil.copytree(untrained_model, model)
    lm = tmp_path / "lm.arpa"
    assert main(["lm", "build", str(tiny_corpus / "train.jsonl"), "-o", str(lm), "--order", "2"]) == 0
    assert "2-gram word LM" in capsys.readouterr().out
    valid = str(tiny_corpus / "valid.jsonl")
    assert main(["lm", "tune", valid, "--model", str(model), "--lm", str(lm), "--lm-weights", "0,0.5",
                 "--word-scores", "0", "--blank-penalties", "0,1", "--beam-size", "8", "--beam-size-token", "5",
                 "--beam-threshold", "12.5", "--decode-workers", "1"]) == 0
    assert capsys.readouterr().err.count("blank_penalty") == 4  # 2 x 1 x 2 grid points
    stored = read_decoding_defaults(model)
    assert stored["lm_weight"] in (0.0, 0.5) and stored["word_score"] == 0.0 and stored["beam_size"] == 8
    assert stored["blank_penalty"] in (0.0, 1.0) and stored["beam_size_token"] == 5
    assert stored["beam_threshold"] == 12.5
    assert stored["tuned"]["manifest"] == valid and stored["tuned"]["lm"] == str(lm.resolve())
    capsys.readouterr()
    assert main(["evaluate", valid, "--model", str(model), "--decoder", "beam", "--lm", str(lm), "--json",
                 "--decode-workers", "1"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["utterances"] == 4


def test_cli_transcribe_json_has_one_object_per_file_with_words(untrained_model, tiny_corpus, capsys):
    import json

    from asr.cli import main

    files = [json.loads(line)["audio_filepath"] for line in (tiny_corpus / "valid.jsonl").read_text().splitlines()]
    assert main(["transcribe", *files, "--model", str(untrained_model), "--decoder", "beam", "--beam-size", "4",
                 "--format", "json", "--batch-size", "3", "--decode-workers", "2"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in rows] == files
    for r in rows:
        assert {"text", "duration", "confidence", "words"} <= r.keys() and 0 <= r["confidence"] <= 1
        assert len(r["words"]) == len(r["text"].split())
        assert all(0 <= w["start"] < w["end"] <= r["duration"] + 0.04 for w in r["words"])


def test_an_lm_of_higher_order_than_kenlm_supports_is_refused_by_name(tmp_path):
    (tmp_path / "t.txt").write_text(LM_TEXT)
    lm, _ = build_lm([tmp_path / "t.txt"], tmp_path / "c7.arpa", order=7, unit="char", use_lmplz=False)
    with pytest.raises(LMError, match="c7.arpa: a 7-gram LM"):
        BeamSearchDecoder(TOKENIZER, lm=lm)


def test_a_search_worker_given_ctrl_c_refuses_its_work_quietly_for_the_parent_to_stop(word_lm, capfd):
    # Ctrl-C reaches the whole process group: a worker's own KeyboardInterrupt printed ~20 lines.
    import os
    import signal
    import time

    lp = ctc_log_probs(TOKENIZER, spelled_frames("the cat sat"))
    batch = (torch.cat([lp[0]] * 4), torch.cat([lp[1]] * 4))
    parallel = BeamSearchDecoder(TOKENIZER, lm=word_lm, workers=2)
    try:
        parallel.decode(*batch)  # the pool starts; its workers wait for work
        for pid in list(parallel._pool._processes):
            os.kill(pid, signal.SIGINT)
        time.sleep(0.5)
        with pytest.raises(KeyboardInterrupt):
            parallel.decode(*batch)
        assert parallel._pool is None  # dropped: a later batch starts a fresh one
        assert [h.text for h in parallel.decode(*batch)] == ["the cat sat"] * 4
    finally:
        parallel.close()
    assert "Traceback" not in capfd.readouterr().err


def test_an_interrupted_parallel_search_stops_its_workers_after_their_current_search():
    import os
    import signal
    import threading
    import time

    torch.manual_seed(0)
    parallel = BeamSearchDecoder(TOKENIZER, options=BeamSearchOptions(beam_size=200), workers=2)
    lp = ctc_log_probs(TOKENIZER, spelled_frames("the cat"))
    parallel.decode(torch.cat([lp[0]] * 2), torch.cat([lp[1]] * 2))  # the pool starts
    workers = list(parallel._pool._processes.values())
    n, frames = 64, 2000  # half a minute of search or more; one utterance's takes about a second
    log_probs = torch.randn(n, frames, len(TOKENIZER)).log_softmax(-1)
    # Ctrl-C, the parent alone: a real signal (_thread.interrupt_main would wait for a result to come in)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            parallel.decode(log_probs, torch.full((n,), frames))
        # (join can return as the worker's pipes close, a moment before it is gone: so poll)
        while any(worker.is_alive() for worker in workers) and time.monotonic() - start < 16:
            time.sleep(0.05)
        assert not any(worker.is_alive() for worker in workers)
        assert time.monotonic() - start < 16  # not the rest of the batch first (half a minute or more)
    finally:
        timer.cancel()
        parallel.close()


def test_a_ctrl_c_that_lands_while_the_search_workers_fork_still_stops_the_search():
    # CPython swallows an exception raised in its fork hooks: a Ctrl-C there was lost and the run
    # went on to exit 0. A fresh process, whose first fork gets the SIGINT.
    script = """
import os, signal, torch
from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
from asr.text import CharTokenizer
from conftest import ctc_log_probs, spelled_frames
TOKENIZER = CharTokenizer.build(["the cat sat on a mat with zebra dogs quiz"])
sent = []
def before():
    if not sent:
        sent.append(1)
        os.kill(os.getpid(), signal.SIGINT)
os.register_at_fork(before=before)
decoder = BeamSearchDecoder(TOKENIZER, options=BeamSearchOptions(beam_size=8), workers=2)
lp = ctc_log_probs(TOKENIZER, spelled_frames("the cat"))
try:
    decoder.decode(torch.cat([lp[0]] * 4), torch.cat([lp[1]] * 4))
except KeyboardInterrupt:
    print("interrupted")
else:
    print("finished")
"""
    import subprocess
    import sys

    from conftest import REPO_ROOT

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT / "tests")
    assert done.stdout.strip() == "interrupted", done.stderr[-2000:]
