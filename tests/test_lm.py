"""N-gram LMs: modified Kneser-Ney estimation, ARPA files KenLM loads, checks of LM files."""

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from asr.arpa import ArpaModel, inspect_lm, write_arpa
from asr.lm import BOS, EOS, UNK, LMError, _discounts, build_lm, estimate_kneser_ney, kenlm_tool, read_sentences
from asr.cli import main
from asr.text import BLANK, WORD_SEP
from conftest import REPO_ROOT

# No bigram of it is seen 4 times: the bigram discount D3+ is exactly 3, on lmplz's bound.
EDGE_CORPUS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the cat ran"]
# Its unigram count-of-counts give D2 = -1: lmplz falls back.
NEGATIVE_DISCOUNT_CORPUS = ["b b", "a a c e", "a c e c", "e", "e b e", "d a e"]
CORPUS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the cat ate the fish",
          "dogs and cats sat together", "on the mat sat a cat", "the fish ate", "a dog ate the cat food"]
LJ_TEXT = REPO_ROOT.parent / "shared" / "data" / "text" / "ljspeech-13100.txt"


@pytest.fixture(scope="module")
def arpa3(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "lm3.arpa"
    return write_arpa(estimate_kneser_ney([s.split() for s in CORPUS], order=3), path)


def _section_lengths(path):
    lengths, current = {}, None
    for line in path.read_text().splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            current = int(line[1:].split("-")[0])
            lengths[current] = 0
        elif line.startswith("\\"):
            current = None
        elif current and line.strip():
            lengths[current] += 1
    return lengths


@pytest.mark.parametrize("history", [(), (BOS,), ("the",), (BOS, "the"), ("the", "cat"), ("sat", "on"),
                                     ("zebra",), ("cat", "zebra"), ("a", "dog")])
def test_probabilities_after_any_history_sum_to_one(arpa3, history):
    lm = ArpaModel(arpa3)
    vocabulary = [w for w in lm.vocabulary if w != BOS]  # <s> is never predicted
    assert sum(10 ** lm.log10_prob(w, history) for w in vocabulary) == pytest.approx(1.0, abs=1e-5)


def test_arpa_header_counts_match_the_sections_and_special_words_are_present(arpa3):
    info = inspect_lm(arpa3)
    assert info.order == 3 and not info.binary
    assert dict(enumerate(info.counts, 1)) == _section_lengths(arpa3)
    unigrams = set(ArpaModel(arpa3).vocabulary)
    assert {BOS, EOS, UNK} <= unigrams and {BOS, EOS, UNK}.isdisjoint(info.words)
    assert set(info.words) == {w for s in CORPUS for w in s.split()}


def test_kenlm_loads_the_file_and_scores_as_the_file_says(arpa3):
    words = [w for w in ArpaModel(arpa3).vocabulary if w not in (BOS, EOS)] + ["zebra"]
    lm_dict = Dictionary(words)
    kenlm = KenLM(str(arpa3), lm_dict)
    ours = ArpaModel(arpa3)
    state, history = kenlm.start(False), [BOS]
    for word in "the zebra sat on the mat".split():  # zebra is unknown to the LM
        state, score = kenlm.score(state, lm_dict.get_index(word))
        assert score == pytest.approx(ours.log10_prob(word if word != "zebra" else UNK, tuple(history)), abs=1e-5)
        history.append(word if word != "zebra" else UNK)
    _, score = kenlm.finish(state)
    assert score == pytest.approx(ours.log10_prob(EOS, tuple(history)), abs=1e-5)


def test_continuation_counts_make_a_word_that_follows_one_context_rare_on_its_own():
    # "francisco" is as frequent as "dog" but only ever follows "san": Kneser-Ney's lower-order
    # distribution counts contexts, not occurrences.
    sentences = [["san", "francisco"]] * 5 + [[w, "dog"] for w in ("a", "the", "my", "one", "big")]
    lm = estimate_kneser_ney(sentences, order=2)
    unigram = {g[0]: lp for g, (lp, _) in lm.ngrams[0].items()}
    assert unigram["francisco"] < unigram["dog"]
    assert lm.ngrams[1][("san", "francisco")][0] > unigram["francisco"]


def test_build_normalizes_text_files_and_manifests(tmp_path):
    (tmp_path / "a.txt").write_text("The CAT, sat!\n\n  \n\"Don't\" stop -- now.\n")
    (tmp_path / "m.jsonl").write_text(json.dumps({"audio_filepath": "x.wav", "text": "HELLO World"}) + "\n")
    path, _ = build_lm([tmp_path / "a.txt", tmp_path / "m.jsonl"], tmp_path / "lm.arpa", order=2, use_lmplz=False)
    assert set(inspect_lm(path).words) == {"the", "cat", "sat", "don't", "stop", "now", "hello", "world"}


def test_character_lm_units_are_letters_and_the_word_separator(tmp_path):
    (tmp_path / "a.txt").write_text("ab ba\nabc\n")
    path, _ = build_lm([tmp_path / "a.txt"], tmp_path / "c.arpa", order=4, unit="char", use_lmplz=False)
    info = inspect_lm(path)
    assert set(info.words) == {"a", "b", "c", "|"} and info.is_char_lm
    words, _ = build_lm([tmp_path / "a.txt"], tmp_path / "w.arpa", order=2, unit="word", use_lmplz=False)
    assert not inspect_lm(words).is_char_lm
    (tmp_path / "b.txt").write_text("a i\ni a\n")  # one-letter words are still words
    words, _ = build_lm([tmp_path / "b.txt"], tmp_path / "w1.arpa", order=2, unit="word", use_lmplz=False)
    assert not inspect_lm(words).is_char_lm


@pytest.mark.parametrize("content, problem", [
    (None, "not found"),
    ("hello world\n", "not an ARPA file"),
    ("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\t<s>\n-1\ta\n\n\\end\\\n", "header says 3 unigrams, file has 2"),
    ("\\data\\\nngram 1=1\nngram 3=1\n\n\\1-grams:\n-1\ta\n", "consecutive"),
    ("\\data\\\nngram 1=1\n\n\\1-grams:\nxyz\ta\n", "malformed unigram"),
])
def test_bad_lm_files_get_a_one_line_error_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.arpa"
    if content is not None:
        path.write_text(content)
    with pytest.raises(LMError, match=problem) as e:
        inspect_lm(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_kenlm_binary_files_are_recognized_by_their_header(tmp_path):
    path = tmp_path / "lm.bin"
    path.write_bytes(b"mmap lm http://kheafield.com/code format version 5\n\0" + b"\0" * 64)
    info = inspect_lm(path)
    assert info.binary and info.words == ()


def test_empty_text_is_refused_naming_it_and_an_empty_one_among_others_is_warned_of(tmp_path):
    (tmp_path / "a.txt").write_text("\n ... \n")
    with pytest.raises(LMError, match=rf"no text to build a language model from \({tmp_path / 'a.txt'}: empty"):
        build_lm([tmp_path / "a.txt"], tmp_path / "lm.arpa", use_lmplz=False)
    (tmp_path / "b.txt").write_text("the cat sat\n")
    notes = []
    build_lm([tmp_path / "a.txt", tmp_path / "b.txt"], tmp_path / "lm.arpa", use_lmplz=False, notes=notes)
    assert f"warning: {tmp_path / 'a.txt'}: no sentence in it (empty after normalization): it added nothing" in notes
    with pytest.raises(LMError, match="not found"):
        list(read_sentences([tmp_path / "missing.txt"]))


def test_text_that_is_not_utf8_is_refused_naming_the_file(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("a caf\u00e9 in the town\n".encode("latin-1"))
    with pytest.raises(LMError, match="latin1.txt: not UTF-8 text"):
        build_lm([tmp_path / "latin1.txt"], tmp_path / "lm.arpa", use_lmplz=False)


@pytest.mark.skipif(not kenlm_tool("lmplz"), reason="KenLM's lmplz is not installed (make kenlm)")
@pytest.mark.parametrize("order", [2, 4])
def test_python_estimator_gives_the_same_model_as_lmplz(tmp_path, order):
    text = tmp_path / "t.txt"
    lines = LJ_TEXT.read_text().splitlines()[:1000] if LJ_TEXT.is_file() else CORPUS * 20
    text.write_text("\n".join(lines) + "\n")
    ours, _ = build_lm([text], tmp_path / "ours.arpa", order=order, use_lmplz=False)
    theirs, tool = build_lm([text], tmp_path / "lmplz.arpa", order=order, use_lmplz=True)
    assert tool == "lmplz"
    a, b = ArpaModel(ours).ngrams, ArpaModel(theirs).ngrams
    assert a.keys() == b.keys()
    for ngram, (prob, backoff) in a.items():  # 2e-6: one unit of ARPA's 7th digit, after lmplz's float32 rounding
        assert prob == pytest.approx(b[ngram][0], abs=2e-6) and backoff == pytest.approx(b[ngram][1], abs=2e-6)


def kenlm_sentence_score(path) -> float:
    """log10 p("the cat sat") as the decoder's KenLM scores it from ``path``, no end of sentence."""
    lm = KenLM(str(path), Dictionary(["the", "cat", "sat"]))
    state, total = lm.start(False), 0.0
    for i in range(3):
        state, score = lm.score(state, i)
        total += score
    return total


@pytest.mark.skipif(not kenlm_tool("build_binary"), reason="KenLM's build_binary is not installed (make kenlm)")
def test_binary_lm_scores_like_its_arpa(arpa3, tmp_path):
    binary = tmp_path / "lm3.bin"
    subprocess.run([kenlm_tool("build_binary"), str(arpa3), str(binary)], check=True, capture_output=True)
    assert inspect_lm(binary).binary
    assert kenlm_sentence_score(arpa3) == pytest.approx(kenlm_sentence_score(binary), abs=1e-4)


def test_lm_info_tells_word_character_and_token_lms_apart(tmp_path):
    from asr.tokenizers import SubwordTokenizer

    (tmp_path / "a.txt").write_text("\n".join(CORPUS) + "\n")
    tokenizer = SubwordTokenizer.build(CORPUS, vocab_size=30)
    units = {}
    for unit in ("word", "char", "token"):
        path, _ = build_lm([tmp_path / "a.txt"], tmp_path / f"{unit}.arpa", order=2, unit=unit, use_lmplz=False,
                           tokenizer=tokenizer)
        units[unit] = inspect_lm(path).unit
    assert units == {"word": "word", "char": "char", "token": "token"}


def test_building_a_unigram_lm_warns_that_beam_search_cannot_load_it(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("\n".join(CORPUS) + "\n")
    assert main(["lm", "build", str(tmp_path / "a.txt"), "-o", str(tmp_path / "lm2.arpa"), "--order", "2"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["lm", "build", str(tmp_path / "a.txt"), "-o", str(tmp_path / "lm1.arpa"), "--order", "1"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "order 2 or more" in err


def test_a_phone_tokenizers_left_out_sentences_are_said_to_have_words_without_a_pronunciation(tmp_path, capsys):
    from asr.tokenizers import PhoneTokenizer

    tokenizer = tmp_path / "tokenizer.json"
    PhoneTokenizer((BLANK, WORD_SEP, "K", "AE", "T", "D", "AO", "G"),
                   {"cat": ("K", "AE", "T"), "dog": ("D", "AO", "G")}).save(tokenizer)
    (tmp_path / "a.txt").write_text("cat dog\nthe cat\ndog cat\n")
    assert main(["lm", "build", str(tmp_path / "a.txt"), "-o", str(tmp_path / "p.arpa"), "--order", "2",
                 "--unit", "token", "--tokenizer", str(tokenizer)]) == 0
    err = capsys.readouterr().err
    assert f"skipped 1 sentences with words the tokenizer has no pronunciation for (first: {tmp_path / 'a.txt'}:2)" \
        in err
    (tmp_path / "b.txt").write_text("the cat\n")
    assert main(["lm", "build", str(tmp_path / "b.txt"), "-o", str(tmp_path / "q.arpa"), "--unit", "token",
                 "--tokenizer", str(tokenizer)]) == 2
    assert "each of the 1 sentences has words the tokenizer has no pronunciation for" in capsys.readouterr().err


def test_lm_rnn_refuses_an_empty_dev_text_before_training(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("\n".join(CORPUS) + "\n")
    (tmp_path / "dev.txt").write_text("\n ... \n")
    assert main(["lm", "rnn", str(tmp_path / "a.txt"), "-o", str(tmp_path / "rnn"), "--dev",
                 str(tmp_path / "dev.txt")]) == 2
    assert f"{tmp_path / 'dev.txt'}: the dev text has no sentences" in capsys.readouterr().err
    assert not (tmp_path / "rnn").exists()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see where lmplz writes")
def test_lmplz_writes_its_arpa_beside_the_output_so_a_kill_never_leaves_half_of_one_there(tmp_path, monkeypatch):
    # A move from TMPDIR on another file system is a copy, which a kill leaves half done at the final name.
    fake = tmp_path / "lmplz"
    fake.write_text("#!/bin/sh\ncat > /dev/null\nout=$(readlink /proc/$$/fd/1)\n"  # where its stdout goes
                    f"echo \"$out\" > {tmp_path / 'stdout'}\n"
                    "printf '\\\\data\\\\\\nngram 1=0\\n\\n\\\\end\\\\\\n'\n")
    fake.chmod(0o755)
    monkeypatch.setattr("asr.lm.kenlm_tool", lambda name: str(fake))
    (tmp_path / "text.txt").write_text("the cat sat\n")
    out = tmp_path / "lms" / "lm.arpa"
    assert build_lm([tmp_path / "text.txt"], out, order=2) == (out, "lmplz")
    written = Path((tmp_path / "stdout").read_text().strip())
    assert written.parent == out.parent and written.name.startswith(".lm.arpa.tmp-")
    assert out.read_text().startswith("\\data\\\nngram 1=0")
    assert sorted(p.name for p in out.parent.iterdir()) == ["lm.arpa"]


# --- agreement with lmplz where the discount estimate is on or past its bounds --------------------------------------

def test_a_discount_on_its_bound_is_kept_as_lmplz_keeps_it():
    # count-of-counts n1=15 n2=3 n3=1 n4=0: D3+ = 3 - 4 y n4 / n3 = 3, which lmplz accepts (0 <= D_k <= k)
    assert _discounts([1] * 15 + [2] * 3 + [3], 2) == ((pytest.approx(5 / 7), pytest.approx(9 / 7), 3.0), None)


@pytest.mark.parametrize("adjusted, why", [
    ([1] * 2 + [2] * 3 + [3] + [4] * 5, "3-gram discount D3 would be -2, outside [0, 3]"),
    ([1] * 2 + [2] * 3, "no 3-gram has adjusted count 3"),
    ([2] * 3 + [3] * 2, "no 3-gram has adjusted count 1"),
])
def test_a_discount_out_of_range_or_undefined_falls_back_to_lmplzs_fallback(adjusted, why):
    assert _discounts(adjusted, 3) == ((0.5, 1.0, 1.5), why)


def test_the_python_estimator_gives_lmplzs_model_when_no_bigram_is_seen_four_times():
    # Values lmplz 0.3.0 wrote (lmplz -o 2 --discount_fallback); it printed "2 19 D1=0.714286 D2=1.28571 D3+=3"
    # and substituted the fallback discounts for the unigrams (no unigram has adjusted count 3).
    notes: list[str] = []
    lm = estimate_kneser_ney([s.split() for s in EDGE_CORPUS], order=2, notes=notes)
    unigrams, bigrams = lm.ngrams
    assert unigrams[(UNK,)][0] == pytest.approx(-1.4036922, abs=1e-6)
    assert unigrams[("the",)] == (pytest.approx(-1.0357156, abs=1e-6), pytest.approx(-0.1638568, abs=1e-6))
    assert unigrams[(BOS,)] == (0.0, pytest.approx(-0.032184668, abs=1e-6))
    for bigram, lmplz in {(BOS, "the"): -1.0679002, ("the", "cat"): -0.6861011, ("sat", "on"): -0.39855275,
                          ("the", "mat"): -0.9903127, (BOS, "a"): -0.80422515}.items():
        assert bigrams[bigram][0] == pytest.approx(lmplz, abs=1e-6), bigram
    assert notes == ["warning: 1-grams: the text is too small or artificial for Kneser-Ney's discount estimate "
                     "(no 1-gram has adjusted count 3): used lmplz's fallback discounts D1=0.5 D2=1 D3+=1.5"]


@pytest.mark.skipif(not kenlm_tool("lmplz"), reason="KenLM's lmplz is not installed (make kenlm)")
@pytest.mark.parametrize("corpus", [EDGE_CORPUS, NEGATIVE_DISCOUNT_CORPUS, CORPUS])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_the_python_estimator_matches_lmplz_on_small_texts_and_warns_when_it_does(tmp_path, corpus, order):
    text = tmp_path / "t.txt"
    text.write_text("\n".join(corpus) + "\n")
    ours_notes, their_notes = [], []
    ours, _ = build_lm([text], tmp_path / "ours.arpa", order=order, use_lmplz=False, notes=ours_notes)
    theirs, tool = build_lm([text], tmp_path / "lmplz.arpa", order=order, use_lmplz=True, notes=their_notes)
    assert tool == "lmplz"
    a, b = ArpaModel(ours).ngrams, ArpaModel(theirs).ngrams
    assert a.keys() == b.keys()
    for ngram, (prob, backoff) in a.items():
        assert (prob, backoff) == (pytest.approx(b[ngram][0], abs=2e-6), pytest.approx(b[ngram][1], abs=2e-6)), ngram
    # the same orders fall back (lmplz does not say why)
    assert [n.split(":")[1] for n in ours_notes] == [n.split(":")[1] for n in their_notes]


def test_lmplzs_fallback_warnings_become_one_note(tmp_path, monkeypatch):
    (tmp_path / "out.arpa").write_text("\\data\\\nngram 1=0\n\n\\end\\\n")
    fake = tmp_path / "lmplz"
    fake.write_text("#!/bin/sh\ncat > /dev/null\n"
                    "echo 'Substituting fallback discounts for order 0: D1=0.5 D2=1 D3+=1.5' >&2\n"
                    "echo 'Substituting fallback discounts for order 1: D1=0.5 D2=1 D3+=1.5' >&2\n"
                    f"cat {tmp_path / 'out.arpa'}\n")
    fake.chmod(0o755)
    monkeypatch.setattr("asr.lm.kenlm_tool", lambda name: str(fake))
    (tmp_path / "text.txt").write_text("the cat sat\n")
    notes: list[str] = []
    build_lm([tmp_path / "text.txt"], tmp_path / "lm.arpa", order=2, notes=notes)
    assert notes == ["warning: 1-grams, 2-grams: the text is too small or artificial for Kneser-Ney's discount "
                     "estimate: used lmplz's fallback discounts D1=0.5 D2=1 D3+=1.5"]


# --- what the toolchain reads: ARPA fields, manifests, gzip, BOMs ---------------------------------------------------

def test_arpa_fields_separated_by_spaces_read_as_those_separated_by_tabs(arpa3, tmp_path):
    spaced = tmp_path / "spaced.arpa"
    spaced.write_text(arpa3.read_text().replace("\t", " "))
    assert ArpaModel(spaced).ngrams == ArpaModel(arpa3).ngrams
    assert inspect_lm(spaced).words == inspect_lm(arpa3).words


@pytest.mark.parametrize("line, section", [
    ("-0.5\tthe cat", 3),  # two words in the 3-gram section
    ("-0.5\tthe cat sat on\t-0.1", 3),
    ("high\tthe cat sat", 3),
    ("-0.5\tthe\tlow", 1),
])
def test_a_malformed_ngram_line_is_a_one_line_error_naming_file_and_line(tmp_path, line, section):
    lines = ["\\data\\", "ngram 1=1", "ngram 2=0", "ngram 3=1", "", "\\1-grams:", "-1\tthe\t0", "",
             "\\2-grams:", "", "\\3-grams:", "-0.2\tthe the the", "", "\\end\\"]
    at = lines.index(f"\\{section}-grams:") + 1
    lines.insert(at, line)
    path = tmp_path / "bad.arpa"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LMError) as e:
        ArpaModel(path)
    assert str(e.value).startswith(f"{path}:{at + 1}: malformed {section}-gram line") and "\n" not in str(e.value)


@pytest.mark.parametrize("line, said", [
    ("nan\tthe cat sat", "log10 probability nan is not <= 0"),  # perplexity "nan", and a mix all NaN, exit 0
    ("0.5\tthe cat sat", "log10 probability 0.5 is not <= 0"),
    ("-0.5\tthe\tnan", "backoff nan is not a number below infinity"),
    ("-0.5\tthe\tinf", "backoff inf is not a number below infinity"),
])
def test_an_ngram_whose_numbers_are_no_probability_is_refused_naming_file_and_line(tmp_path, line, said):
    section = 3 if "cat sat" in line else 1
    lines = ["\\data\\", f"ngram 1={1 + (section == 1)}", "ngram 2=0", f"ngram 3={1 + (section == 3)}", "",
             "\\1-grams:", "-1\tcat\t0", "", "\\2-grams:", "", "\\3-grams:", "-0.2\tthe the the", "", "\\end\\"]
    at = lines.index(f"\\{section}-grams:") + 1
    lines.insert(at, line)
    path = tmp_path / "bad.arpa"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LMError, match=rf"^{re.escape(str(path))}:{at + 1}: .*: {said}$"):
        ArpaModel(path)
    lines[at] = "-inf\tthe cat sat" if section == 3 else "-99\tthe\t0"  # probability 0 is one
    path.write_text("\n".join(lines) + "\n")
    ArpaModel(path)


def test_cli_scores_prunes_and_mixes_an_arpa_file_with_spaces_and_names_a_bad_line(arpa3, tmp_path, capsys):
    spaced = tmp_path / "spaced.arpa"
    spaced.write_text(arpa3.read_text().replace("\t", " "))
    (tmp_path / "t.txt").write_text("the cat sat\n")
    assert main(["lm", "perplexity", str(spaced), "--texts", str(tmp_path / "t.txt")]) == 0
    assert main(["lm", "prune", str(spaced), "-o", str(tmp_path / "p.arpa"), "--threshold", "1e-3"]) == 0
    assert main(["lm", "mix", str(spaced), str(arpa3), "-o", str(tmp_path / "m.arpa")]) == 0
    capsys.readouterr()
    lines = spaced.read_text().splitlines()
    at = lines.index("\\3-grams:") + 1
    lines[at] = "x" + lines[at]
    spaced.write_text("\n".join(lines) + "\n")
    assert main(["lm", "perplexity", str(spaced), str(arpa3), "--texts", str(tmp_path / "t.txt")]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"asr: {spaced}:{at + 1}: malformed 3-gram line")
    assert len(captured.err.splitlines()) == 1
    assert captured.out.startswith(f"{arpa3}: perplexity")  # the other LM is still scored


@pytest.mark.parametrize("value", [None, 42, ["a"]])
def test_a_manifest_text_that_is_not_a_string_is_a_one_line_error_naming_file_and_line(tmp_path, value):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"text": "hello world"}) + "\n" + json.dumps({"text": value}) + "\n")
    with pytest.raises(LMError, match="^" + re.escape(f"{path}:2: text {value!r} is not a string")):
        build_lm([path], tmp_path / "lm.arpa", use_lmplz=False)


@pytest.mark.parametrize("bad_line", ['{"audio_filepath": "a.wav", "text": "hi"', '["a.wav", 1.0, "hi"]',
                                      '{"audio_filepath": "a.wav", "duration": 1.0, "txt": "hi"}',
                                      '{"audio_filepath": "a.wav", "duration": 1.0, "text": 7}'])
def test_a_bad_manifest_line_is_refused_in_the_words_of_read_manifest(tmp_path, bad_line):
    from asr.data import ManifestError, read_manifest

    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"audio_filepath": "b.wav", "duration": 1.0, "text": "hello"}) + "\n" + bad_line + "\n")
    with pytest.raises(ManifestError) as by_data:
        read_manifest(path)
    with pytest.raises(LMError) as by_lm:
        build_lm([path], tmp_path / "lm.arpa", use_lmplz=False)
    assert str(by_lm.value) == str(by_data.value) and str(by_lm.value).startswith(f"{path}:2: ")


def test_reading_a_manifests_text_loads_no_torch():
    code = "import sys, asr.lm, asr.manifest; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=REPO_ROOT).stdout.strip() == "False"


@pytest.mark.parametrize("name", ["manifest.json", "train.JSONL", "train.Jsonl", "lines.txt", "m.json.gz"])
def test_manifests_are_read_as_manifests_whatever_their_name(tmp_path, name):
    rows = [{"audio_filepath": "x.wav", "duration": 1.5, "text": "Hello there, friend"},
            {"audio_filepath": "y.wav", "duration": 2.0, "text": "the cat sat"}]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    words = {w for s in read_sentences([tmp_path / name]) for w in s}
    assert words == {"hello", "there", "friend", "the", "cat", "sat"}


def test_a_json_file_that_is_not_a_manifest_is_refused_rather_than_read_as_words(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"text": "x", "other": 1}, indent=1) + "\n")  # pretty-printed: not JSON lines
    with pytest.raises(LMError, match=f"^{path}:1: a .json file that is not a manifest"):
        list(read_sentences([path]))


def test_gzipped_texts_manifests_and_arpa_files_read_like_plain_ones(arpa3, tmp_path):
    (tmp_path / "t.txt.gz").write_bytes(gzip.compress("The cat sat.\nA dog\n".encode()))
    (tmp_path / "no_suffix.txt").write_bytes(gzip.compress("the mat\n".encode()))  # known by its magic bytes
    (tmp_path / "m.jsonl.gz").write_bytes(gzip.compress(json.dumps({"text": "Hello"}).encode() + b"\n"))
    sentences = list(read_sentences([tmp_path / "t.txt.gz", tmp_path / "no_suffix.txt", tmp_path / "m.jsonl.gz"]))
    assert sentences == [["the", "cat", "sat"], ["a", "dog"], ["the", "mat"], ["hello"]]
    packed = tmp_path / "lm3.arpa.gz"
    packed.write_bytes(gzip.compress(arpa3.read_bytes()))
    plain, gz = inspect_lm(arpa3), inspect_lm(packed)
    assert (gz.binary, gz.order, gz.counts, gz.words) == (plain.binary, plain.order, plain.counts, plain.words)
    assert ArpaModel(packed).ngrams == ArpaModel(arpa3).ngrams
    assert kenlm_sentence_score(arpa3) == pytest.approx(kenlm_sentence_score(packed), abs=1e-6)  # the decoder's KenLM


def test_a_damaged_gzip_file_is_a_one_line_error_naming_it(arpa3, tmp_path):
    cut = tmp_path / "t.txt.gz"
    cut.write_bytes(gzip.compress(("the cat sat\n" * 1000).encode())[:60])
    with pytest.raises(LMError, match=f"^{cut}: damaged gzip file"):
        list(read_sentences([cut]))
    packed = tmp_path / "lm.arpa.gz"
    packed.write_bytes(gzip.compress(arpa3.read_bytes())[:200])
    with pytest.raises(LMError, match=f"^{packed}: damaged gzip file"):
        ArpaModel(packed)


def test_a_byte_order_mark_is_dropped_from_text_files_and_manifests_alike(tmp_path):
    (tmp_path / "t.txt").write_text("the cat\n", encoding="utf-8-sig")
    (tmp_path / "m.jsonl").write_text(json.dumps({"text": "a dog"}) + "\n", encoding="utf-8-sig")
    assert list(read_sentences([tmp_path / "t.txt", tmp_path / "m.jsonl"])) == [["the", "cat"], ["a", "dog"]]


def test_a_directory_given_as_text_is_said_to_be_one(tmp_path):
    with pytest.raises(LMError, match=f"^{tmp_path}: a directory, not a text file or manifest"):
        list(read_sentences([tmp_path]))


def test_building_says_once_how_many_words_have_digits_with_examples(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("in 1999 we paid $5.50\nin 1999 the cat sat\nthe dog sat\n")
    assert main(["lm", "build", str(tmp_path / "a.txt"), "-o", str(tmp_path / "lm.arpa"), "--order", "2"]) == 0
    err = capsys.readouterr().err
    assert err.count("contain digits") == 1
    assert "2 distinct words contain digits (e.g. 1999, 5.50)" in err and "does not spell numbers out" in err
    assert main(["lm", "build", str(tmp_path / "a.txt"), "-o", str(tmp_path / "c.arpa"), "--order", "2",
                 "--unit", "char"]) == 0
    assert "2 distinct words contain digits" in capsys.readouterr().err
    (tmp_path / "b.txt").write_text("\n".join(CORPUS) + "\n")
    assert main(["lm", "build", str(tmp_path / "b.txt"), "-o", str(tmp_path / "lm.arpa"), "--order", "2"]) == 0
    assert "digits" not in capsys.readouterr().err


@pytest.mark.parametrize("cut, problem", [
    (lambda lines: lines[:lines.index("\\3-grams:") - 3], r"header says \d+ 2-grams, the file has \d+"),
    (lambda lines: lines[:lines.index("\\end\\")], r"no \\end\\ line"),
    (lambda lines: lines[:lines.index("\\2-grams:") + 1] + lines[lines.index("\\2-grams:") + 2:],  # one lost
     r"header says \d+ 2-grams, the file has \d+"),
], ids=["cut inside the 2-grams", "cut before its end line", "a 2-gram missing"])
def test_an_arpa_file_cut_short_or_missing_ngrams_is_refused_rather_than_read_as_a_smaller_model(
        arpa3, tmp_path, cut, problem, capsys):
    # A download or copy cut at a line end was scored, mixed and pruned without a word (pruning
    # wrote a good-looking 2-gram LM from a 3-gram one); KenLM refuses the file.
    lines = arpa3.read_text().splitlines()
    path = tmp_path / "cut.arpa"
    path.write_text("\n".join(cut(lines)) + "\n")
    with pytest.raises(LMError, match=f"{re.escape(str(path))}: {problem}"):
        ArpaModel(path)
    assert main(["lm", "prune", str(path), "-o", str(tmp_path / "p.arpa"), "--threshold", "0"]) == 2
    assert not (tmp_path / "p.arpa").exists()


def test_an_irstlm_header_with_a_space_after_each_equals_sign_is_read_as_kenlm_reads_it(arpa3, tmp_path, capsys):
    # IRSTLM writes "ngram 1= 5007" after a blank first line; KenLM loads that, and asr refused
    # it ("expected 'ngram N=COUNT'") for decoding, perplexity, mixing and pruning alike.
    irstlm = tmp_path / "irstlm.arpa"
    irstlm.write_text("\n" + re.sub(r"^ngram (\d+)=", r"ngram \1= ", arpa3.read_text(), flags=re.MULTILINE))
    assert "ngram 1= " in irstlm.read_text()
    assert inspect_lm(irstlm).counts == inspect_lm(arpa3).counts
    assert ArpaModel(irstlm).ngrams == ArpaModel(arpa3).ngrams
    KenLM(str(irstlm), Dictionary(["the", UNK]))  # loads
    (tmp_path / "t.txt").write_text("the cat sat\n")
    assert main(["lm", "perplexity", str(irstlm), "--texts", str(tmp_path / "t.txt")]) == 0


def test_a_text_line_of_brackets_nested_too_deep_for_json_is_read_as_text_not_a_crash(tmp_path):
    from asr.lm import read_sentences

    (tmp_path / "t.txt").write_text('{"a": ' + "[" * 100000 + "\nhello world\n")
    assert list(read_sentences([tmp_path / "t.txt"]))[-1] == ["hello", "world"]
