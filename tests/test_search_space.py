"""Loading a search space asks the LM what it knows once: one KenLM load for a lexicon's words as
written and as normalized, the word separator and the hotwords, and one scoring of the vocabulary."""

import re
import subprocess

import pytest

import asr.search_space as search_space
from asr.lm import LMError, build_lm, kenlm_tool
from asr.search_space import SearchSpace
from asr.text import CharTokenizer

TOKENIZER = CharTokenizer.build(["the cat sat on a mat with zebra dogs quiz"])
LM_TEXT = "the cat sat on the mat\nthe cat sat\na cat on a mat\nthe dog sat on a mat\n"

needs_build_binary = pytest.mark.skipif(kenlm_tool("build_binary") is None,
                                        reason="KenLM build_binary is not installed (make kenlm)")


def arpa_lm(tmp_path, text=LM_TEXT, unit="word", hopeless_unk=False):
    """An ARPA LM of ``text`` with "the" upper case (as LibriSpeech's words are); with
    ``hopeless_unk``, its <unk> at log10 -99 (as import-sphinx writes it)."""
    (tmp_path / "t.txt").write_text(text)
    arpa, _ = build_lm([tmp_path / "t.txt"], tmp_path / "lm.arpa", order=2 if unit == "word" else 4, unit=unit,
                       use_lmplz=False)
    if unit == "word":
        arpa.write_text(re.sub(r"(?<=[\t ])the(?=[\t \n])", "THE", arpa.read_text()))
    if hopeless_unk:
        arpa.write_text(re.sub(r"^-[0-9.]+\t<unk>", "-99\t<unk>", arpa.read_text(), flags=re.M))
    return arpa


def binary_lm(tmp_path, **arpa):
    """``arpa_lm`` as a KenLM binary (build_binary)."""
    arpa = arpa_lm(tmp_path, **arpa)
    out = tmp_path / "lm.bin"
    subprocess.run([kenlm_tool("build_binary"), str(arpa), str(out)], check=True, capture_output=True)
    return out


@pytest.fixture
def kenlm_loads(monkeypatch):
    """The paths KenLM is loaded from, one per load."""
    loads, real = [], search_space.KenLM
    monkeypatch.setattr(search_space, "KenLM", lambda path, words: loads.append(path) or real(path, words))
    return loads


@pytest.fixture
def vocabulary_scorings(monkeypatch):
    """How many times the LM scored the whole vocabulary."""
    scorings, real = [], search_space._unigram_scores
    monkeypatch.setattr(search_space, "_unigram_scores", lambda lm, words: scorings.append(1) or real(lm, words))
    return scorings


def lexicon_file(tmp_path, *words):
    path = tmp_path / "lex.txt"
    path.write_text("".join(f"{w} {' '.join(w.lower())} |\n" for w in words))
    return path


@needs_build_binary
def test_a_binary_lm_answers_every_question_about_a_lexicon_from_one_load(tmp_path, kenlm_loads,
                                                                          vocabulary_scorings):
    # It was loaded once to ask which words it holds as written, once for the search, and once
    # more to ask whether | is one of its words (as a token LM's is): three loads of the same file.
    lm = binary_lm(tmp_path, hopeless_unk=True)
    lexicon = lexicon_file(tmp_path, "THE", "Cat", "sat", "zebra", "quiz")
    space = SearchSpace.load(TOKENIZER, lm, lexicon, hotwords="zebra")
    assert kenlm_loads == [str(lm)] and len(vocabulary_scorings) == 1
    assert list(space.lexicon) == ["THE", "cat", "sat", "zebra", "quiz"]  # held as written, else normalized
    assert space.notes[0] == (f"{lexicon}: 2 of 5 lexicon words are not in {lm} (e.g. 'zebra', 'quiz'): the search "
                              "scores them as its <unk>")
    assert space.notes[1].startswith(f"hotword word(s) not in {lm}: zebra; scored as its rarest lexicon word")
    floor = min(space._unigrams()[space.words.get_index(w)] for w in ("THE", "cat", "sat"))
    assert space.lifts == {space.words.get_index("zebra"): pytest.approx(floor + 99, abs=1e-4)}


@needs_build_binary
def test_a_binary_token_lm_with_a_lexicon_is_refused_after_one_load(tmp_path, kenlm_loads):
    lm = binary_lm(tmp_path, text="the cat sat on the mat\n", unit="char")
    with pytest.raises(LMError, match=rf"{lm.name}: an LM over the model's tokens"):
        SearchSpace.load(TOKENIZER, lm, lexicon_file(tmp_path, "the", "cat", "a"))
    assert kenlm_loads == [str(lm)]


def test_an_arpa_lm_scores_the_vocabulary_once_for_a_hotword_it_does_not_know(tmp_path, kenlm_loads,
                                                                               vocabulary_scorings):
    # The hotword floor asked which words the LM lacks and then their scores: two passes over 73 k words.
    arpa = arpa_lm(tmp_path, hopeless_unk=True)
    space = SearchSpace.load(TOKENIZER, arpa, lexicon_file(tmp_path, "THE", "cat", "sat"), hotwords="zebra")
    assert kenlm_loads == [str(arpa)] and len(vocabulary_scorings) == 1
    floor = min(space._unigrams()[space.words.get_index(w)] for w in ("THE", "cat", "sat"))
    assert space.lifts == {space.words.get_index("zebra"): pytest.approx(floor + 99, abs=1e-4)}


@pytest.mark.parametrize("binary", [False, pytest.param(True, marks=needs_build_binary)])
def test_every_lexicon_word_is_searched_under_its_own_lm_score_and_a_word_never_asked_about_is_unk(tmp_path, binary):
    # n-best rescoring looks up other systems' words in the first system's words: a lexicon word
    # has its LM score, a word the LM was never loaded for scores as <unk>.
    lm = binary_lm(tmp_path) if binary else arpa_lm(tmp_path)
    lexicon = tmp_path / "lex.txt"
    lexicon.write_text("THE t h e |\nCat c a t |\nmat m a t x |\nsat s a t |\n")  # x: not a token
    space = SearchSpace.load(TOKENIZER, lm, lexicon)
    assert list(space.lexicon) == ["THE", "cat", "sat"]
    assert [space.words.get_entry(space.words.get_index(w)) for w in space.lexicon] == list(space.lexicon)
    unk = space.words.get_index("<unk>")
    assert space.words.get_index("zebra") == unk
    null = space.kenlm.start(True)
    assert space.kenlm.score(null, space.words.get_index("sat"))[1] > space.kenlm.score(null, unk)[1]


def test_spaces_of_the_same_files_under_other_names_share_the_lm_once_and_name_their_own_files(tmp_path,
                                                                                               kenlm_loads):
    # a package's phone systems: system3 searched system2's loaded LM and lexicon, and said so
    lm = arpa_lm(tmp_path)
    (tmp_path / "s2").mkdir()
    (tmp_path / "s3").mkdir()
    first = SearchSpace.load(TOKENIZER, lm, lexicon_file(tmp_path / "s2", "the", "cat"))
    second = SearchSpace.load(TOKENIZER, lm, lexicon_file(tmp_path / "s3", "the", "cat"))
    assert len(kenlm_loads) == 1 and second.kenlm is first.kenlm and second._tries is first._tries
    assert first.source.endswith(str(tmp_path / "s2" / "lex.txt"))
    assert second.source.endswith(str(tmp_path / "s3" / "lex.txt"))
