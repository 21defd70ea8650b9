"""A model directory can carry its LM: `asr export --lm` packages it, and plain `asr transcribe`
(and `asr.load_model()`) then search with it and its tuned weights; without one they decode greedily."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

import asr
from asr import decoding_config
from asr.beam_search import BeamSearchDecoder
from asr.cli import main
from asr.decoding import GreedyDecoder
from asr.decoding_config import DECODING_FILE, package_lm, packaged_lm, read_decoding_defaults, write_decoding_defaults
from asr.arpa import KENLM_BINARY_MAGIC
from asr.lm import LMError, build_lm, kenlm_tool
from asr.model_dir import load_model_dir


@pytest.fixture
def lm(tmp_path):
    (tmp_path / "text.txt").write_text("hello world\nhello hello world\nworld hello\n")
    return build_lm([tmp_path / "text.txt"], tmp_path / "hw.arpa", order=2, use_lmplz=False)[0]


@pytest.fixture
def tuned_model(tiny_model_dir, tmp_path, lm):
    """The tiny model with weights "tuned" for ``lm``, as `asr lm tune` leaves it."""
    model = tmp_path / "trained"
    shutil.copytree(tiny_model_dir, model)
    write_decoding_defaults(model, {"lm_weight": 0.5, "word_score": -1.0, "beam_size": 8,
                                    "tuned": {"lm": str(lm.resolve()), "manifest": "valid.jsonl", "wer": 0.5}})
    return model


@pytest.fixture
def wav(tmp_path):
    t = np.arange(16000) / 16000
    path = tmp_path / "tone.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    return path


@pytest.fixture
def no_build_binary(monkeypatch):
    monkeypatch.setattr(decoding_config, "kenlm_tool", lambda name: None)


def evaluate_json(model, manifest, *extra):
    assert main(["evaluate", str(manifest), "--model", str(model), "--json", "--decode-workers", "1", *extra]) == 0


def test_export_with_an_arpa_lm_packages_it_with_the_tuned_weights(tuned_model, lm, tmp_path, capsys,
                                                                  no_build_binary):
    out = tmp_path / "package"
    assert main(["export", str(tuned_model), str(out), "--half", "--lm", str(lm)]) == 0
    assert "lm.arpa" in capsys.readouterr().out
    stored = read_decoding_defaults(out)
    assert stored["lm"] == "lm.arpa" and "lexicon" not in stored  # an ARPA file lists its own words
    assert (stored["lm_weight"], stored["word_score"], stored["beam_size"]) == (0.5, -1.0, 8)
    assert stored["tuned"]["lm"] == "lm.arpa" and stored["tuned"]["source_lm"] == str(lm.resolve())
    assert (out / "lm.arpa").read_bytes() == lm.read_bytes()


def test_a_packaged_model_searches_with_its_lm_by_default_wherever_it_is_moved(tuned_model, lm, tmp_path,
                                                                             no_build_binary):
    package_lm(tuned_model, lm, load_model_dir(tuned_model).tokenizer)
    moved = tmp_path / "elsewhere" / "model"
    shutil.move(str(tuned_model), moved)
    model = asr.load_model(moved, device="cpu")
    assert isinstance(model.decoder, BeamSearchDecoder)
    assert model.decoder.options.lm_weight == 0.5 and model.decoder.options.beam_size == 8
    assert str(moved / "lm.arpa") in model.decoder.describe()
    assert isinstance(asr.load_model(moved, decoder="greedy", device="cpu").decoder, GreedyDecoder)
    no_lm = asr.load_model(moved, decoder="beam", lm="none", device="cpu").decoder
    assert isinstance(no_lm, BeamSearchDecoder) and "no LM" in no_lm.describe()


def test_a_model_without_an_lm_decodes_greedily_unless_asked(tiny_model_dir):
    assert packaged_lm(tiny_model_dir) is None
    assert isinstance(asr.load_model(tiny_model_dir, device="cpu").decoder, GreedyDecoder)
    beam = asr.load_model(tiny_model_dir, decoder="beam", beam_size=4, device="cpu").decoder
    assert isinstance(beam, BeamSearchDecoder) and "no LM" in beam.describe()


def test_cli_transcripts_with_the_packaged_lm_equal_those_with_the_same_lm_given(tuned_model, lm, wav, tmp_path,
                                                                              capsys, no_build_binary):
    manifest = tmp_path / "one.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": str(wav), "duration": 1.0, "text": "hello world"}) + "\n")
    plain = tmp_path / "plain"
    shutil.copytree(tuned_model, plain)
    package_lm(tuned_model, lm, load_model_dir(tuned_model).tokenizer)
    capsys.readouterr()
    evaluate_json(tuned_model, manifest)
    packaged = json.loads(capsys.readouterr().out.splitlines()[-1])
    evaluate_json(plain, manifest, "--lm", str(lm))
    given = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert packaged["decoder"].startswith("beam 8, lm ") and "lm_weight 0.5, word_score -1" in packaged["decoder"]
    assert packaged["wer"] == given["wer"] and packaged["cer"] == given["cer"]
    evaluate_json(plain, manifest)  # nothing packaged, nothing asked: greedy
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["decoder"] == "greedy"


def test_greedy_with_beam_options_is_refused(tiny_model_dir, wav, capsys):
    assert main(["transcribe", str(wav), "--model", str(tiny_model_dir), "--decoder", "greedy",
                 "--lm", "x.arpa"]) == 2
    assert "--lm needs beam search" in capsys.readouterr().err


def test_a_package_missing_its_lm_file_names_it(tuned_model, lm, wav, capsys, no_build_binary):
    package_lm(tuned_model, lm, load_model_dir(tuned_model).tokenizer)
    (tuned_model / "lm.arpa").unlink()
    assert main(["transcribe", str(wav), "--model", str(tuned_model)]) == 2
    assert "names lm.arpa, which is missing from" in capsys.readouterr().err


def test_exporting_a_packaged_model_again_carries_its_lm(tuned_model, lm, tmp_path, no_build_binary):
    package_lm(tuned_model, lm, load_model_dir(tuned_model).tokenizer)
    again = tmp_path / "again"
    assert main(["export", str(tuned_model), str(again)]) == 0
    assert read_decoding_defaults(again) == read_decoding_defaults(tuned_model)
    assert packaged_lm(again) == (again / "lm.arpa", None)


def test_packaging_an_untuned_lm_says_so(tiny_model_dir, lm, tmp_path, no_build_binary):
    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    notes = package_lm(model, lm, load_model_dir(model).tokenizer)
    assert any("no tuned LM weight" in n for n in notes)
    assert (model / DECODING_FILE).is_file() and packaged_lm(model)[0] == model / "lm.arpa"


def test_a_binary_lm_needs_a_lexicon(tiny_model_dir, tmp_path):
    fake = tmp_path / "lm.bin"
    fake.write_bytes(KENLM_BINARY_MAGIC + bytes(64))
    with pytest.raises(LMError, match="no readable word list"):
        package_lm(tiny_model_dir, fake, load_model_dir(tiny_model_dir).tokenizer)


@pytest.mark.skipif(kenlm_tool("build_binary") is None, reason="KenLM build_binary is not installed (make kenlm)")
def test_with_build_binary_the_lm_is_packaged_as_a_quantized_trie_with_its_words(tuned_model, lm):
    package_lm(tuned_model, lm, load_model_dir(tuned_model).tokenizer)
    stored = read_decoding_defaults(tuned_model)
    assert (stored["lm"], stored["lexicon"]) == ("lm.bin", "lexicon.txt")
    words = {line.split()[0] for line in (tuned_model / "lexicon.txt").read_text().splitlines()}
    assert words == {"hello", "world"}
    assert all(line.endswith(" |") for line in (tuned_model / "lexicon.txt").read_text().splitlines())
    model = asr.load_model(tuned_model, device="cpu")
    assert isinstance(model.decoder, BeamSearchDecoder) and not model.decoder.lexicon_free


@pytest.mark.parametrize("binary", [False, pytest.param(True, marks=pytest.mark.skipif(
    kenlm_tool("build_binary") is None, reason="KenLM build_binary is not installed (make kenlm)"))])
def test_lm_words_the_model_cannot_spell_are_reported_at_export(tuned_model, tmp_path, monkeypatch, binary):
    # With build_binary they were left out of the packaged lexicon silently, and transcribe,
    # reading that lexicon, had nothing to say either.
    if not binary:
        monkeypatch.setattr(decoding_config, "kenlm_tool", lambda name: None)
    (tmp_path / "text.txt").write_text("hello world\nhello café world\n")
    lm, _ = build_lm([tmp_path / "text.txt"], tmp_path / "cafe.arpa", order=2, use_lmplz=False)
    notes = package_lm(tuned_model, lm, load_model_dir(tuned_model).tokenizer)
    assert read_decoding_defaults(tuned_model)["lm"] == ("lm.bin" if binary else "lm.arpa")
    assert any("1 word(s) left out of the lexicon: 'café' (characters outside the tokenizer" in n for n in notes)


def test_a_given_lexicon_is_packaged_as_the_search_reads_it(tuned_model, lm, tmp_path, no_build_binary):
    (tmp_path / "lex.txt").write_text("HELLO h e l l o |\nhello h e l l o |\nworld w o r l d\n",
                                      encoding="utf-8-sig")
    tokenizer = load_model_dir(tuned_model).tokenizer
    assert package_lm(tuned_model, lm, tokenizer, lexicon=tmp_path / "lex.txt") == []  # nothing left out
    assert (tuned_model / "lexicon.txt").read_text() == "hello h e l l o |\nworld w o r l d |\n"
    # the package's own lexicon, given again, is read before the old files go
    package_lm(tuned_model, lm, tokenizer, lexicon=tuned_model / "lexicon.txt")
    assert (tuned_model / "lexicon.txt").read_text() == "hello h e l l o |\nworld w o r l d |\n"


def test_tuning_a_package_again_keeps_its_lm_packaged(tuned_model, lm, tmp_path, no_build_binary):
    from types import SimpleNamespace

    from asr.beam_search import BeamSearchOptions
    from asr.tuning import TuneResult, store

    package = tmp_path / "package"
    assert main(["export", str(tuned_model), str(package), "--lm", str(lm)]) == 0
    # as `asr lm tune data/dev.jsonl --model PACKAGE --lm PACKAGE/lm.arpa --beam-size 100` leaves it
    store(package, TuneResult(lm_weight=1.0, word_score=0.0, wer=0.4, greedy_wer=0.6, utterances=3),
          SimpleNamespace(options=BeamSearchOptions(beam_size=100)), package / "lm.arpa", None, "dev.jsonl")
    stored = read_decoding_defaults(package)
    assert stored["lm"] == "lm.arpa" and packaged_lm(package)[0] == package / "lm.arpa"
    assert (stored["lm_weight"], stored["word_score"], stored["beam_size"]) == (1.0, 0.0, 100)
    assert stored["tuned"]["lm"] == "lm.arpa" and stored["tuned"]["source_lm"] == str(lm.resolve())
    assert stored["tuned"]["manifest"] == "dev.jsonl"


@pytest.mark.parametrize("binary", [False, pytest.param(True, marks=pytest.mark.skipif(
    kenlm_tool("build_binary") is None, reason="KenLM build_binary is not installed (make kenlm)"))])
def test_a_token_lm_is_packaged_for_lexicon_free_search(tuned_model, tmp_path, monkeypatch, binary):
    if not binary:
        monkeypatch.setattr(decoding_config, "kenlm_tool", lambda name: None)
    tokenizer = load_model_dir(tuned_model).tokenizer
    letters = "".join(t for t in tokenizer.tokens[2:] if t.isalpha())
    (tmp_path / "t.txt").write_text(f"{letters[:3]} {letters[3:6]}\n{letters[3:6]} {letters[:3]}\n")
    lm, _ = build_lm([tmp_path / "t.txt"], tmp_path / "t.arpa", order=4, unit="token", tokenizer=tokenizer,
                     use_lmplz=False)
    package_lm(tuned_model, lm, tokenizer)
    stored = read_decoding_defaults(tuned_model)
    assert stored["lm"] == ("lm.bin" if binary else "lm.arpa")
    assert stored.get("lexicon", "none") == "none" and not (tuned_model / "lexicon.txt").exists()
    model = asr.load_model(tuned_model, device="cpu")
    assert isinstance(model.decoder, BeamSearchDecoder) and model.decoder.lexicon_free


def test_tuning_lexicon_free_records_none_as_a_setting_not_a_file(tuned_model, lm, tmp_path):
    from types import SimpleNamespace

    from asr.beam_search import BeamSearchOptions
    from asr.tuning import TuneResult, store

    store(tuned_model, TuneResult(lm_weight=1.0, word_score=0.0, wer=0.4, greedy_wer=0.6, utterances=3),
          SimpleNamespace(options=BeamSearchOptions()), lm, "none", "dev.jsonl")
    assert read_decoding_defaults(tuned_model)["tuned"]["lexicon"] == "none"


def test_a_character_lm_for_a_subword_model_is_refused_before_the_package_changes(tuned_model, lm, tmp_path):
    from asr.tokenizers import SubwordTokenizer

    package_lm(tuned_model, lm, load_model_dir(tuned_model).tokenizer, binary=False)
    before = sorted(p.name for p in tuned_model.iterdir())
    (tmp_path / "t.txt").write_text("hello world\n")
    char_lm, _ = build_lm([tmp_path / "t.txt"], tmp_path / "c.arpa", order=3, unit="char", use_lmplz=False)
    pieces = SubwordTokenizer.build(["hello world", "held old words"], vocab_size=20)
    with pytest.raises(LMError, match="c.arpa: a character LM, and this model's tokens are bpe pieces"):
        package_lm(tuned_model, char_lm, pieces)
    assert sorted(p.name for p in tuned_model.iterdir()) == before and (tuned_model / "lm.arpa").is_file()


def test_export_refuses_a_destination_that_holds_anything_and_leaves_it_as_it_was(tuned_model, tmp_path, capsys):
    run = tmp_path / "run"  # e.g. the training run the model came from
    (run / "best").mkdir(parents=True)
    (run / "log.jsonl").write_text("{}\n")
    assert main(["export", str(tuned_model), str(run)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == ["best", "log.jsonl"]
    (tmp_path / "a_file").write_text("x")
    assert main(["export", str(tuned_model), str(tmp_path / "a_file")]) == 2
    assert (tmp_path / "a_file").read_text() == "x"
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tuned_model), str(tmp_path / "empty")]) == 0  # an empty folder is as good as none


def test_export_force_replaces_the_destination_whole(tuned_model, lm, tmp_path, no_build_binary):
    package = tmp_path / "package"
    assert main(["export", str(tuned_model), str(package), "--lm", str(lm)]) == 0
    (package / "notes.txt").write_text("mine")
    assert main(["export", str(tuned_model), str(package), "--force"]) == 0
    assert not (package / "notes.txt").exists()
    assert packaged_lm(package) is None  # the source carried no LM, so neither does the new package
    (tmp_path / "a_file").write_text("x")
    assert main(["export", str(tuned_model), str(tmp_path / "a_file"), "--force"]) == 0
    assert (tmp_path / "a_file").is_dir() and not list(tmp_path.glob(".a_file*"))  # no old file left hidden


def test_an_lm_that_cannot_be_packaged_leaves_no_destination_behind(tuned_model, tmp_path, capsys):
    package = tmp_path / "package"
    assert main(["export", str(tuned_model), str(package), "--lm", str(tmp_path / "absent.arpa")]) == 2
    assert "absent.arpa" in capsys.readouterr().err
    assert list(tmp_path.glob("*package*")) == []  # neither the package nor its staging folder
    assert main(["export", str(tuned_model), str(tuned_model), "--force", "--lm", str(tmp_path / "absent.arpa")]) == 2
    assert load_model_dir(tuned_model).path == tuned_model and (tuned_model / DECODING_FILE).is_file()


@pytest.mark.skipif(kenlm_tool("build_binary") is None, reason="KenLM build_binary is not installed (make kenlm)")
def test_exporting_a_binary_lm_with_a_lexicon_loads_it_once_to_read_the_lexicon_and_once_to_check_the_package(
        tuned_model, lm, tmp_path, monkeypatch):
    # Reading the packaged lexicon back asked the LM again, in a load of its own, which words it
    # holds as written ("HELLO"): three loads where two do.
    import re
    import subprocess

    from asr import search_space

    upper = tmp_path / "upper.arpa"
    upper.write_text(re.sub(r"(?<=[\t ])hello(?=[\t \n])", "HELLO", lm.read_text()))
    binary = tmp_path / "upper.bin"
    subprocess.run([kenlm_tool("build_binary"), str(upper), str(binary)], check=True, capture_output=True)
    (tmp_path / "lex.txt").write_text("HELLO h e l l o |\nWorld w o r l d |\n")
    loads, real = [], search_space.KenLM
    monkeypatch.setattr(search_space, "KenLM", lambda path, words: loads.append(path) or real(path, words))
    package_lm(tuned_model, binary, load_model_dir(tuned_model).tokenizer, lexicon=tmp_path / "lex.txt")
    assert loads == [str(binary), str(tuned_model / "lm.bin")]
    assert (tuned_model / "lexicon.txt").read_text() == "HELLO h e l l o |\nworld w o r l d |\n"


def test_a_system_copied_without_the_lm_it_shares_says_where_the_lm_was_looked_for(tuned_model, lm, tmp_path,
                                                                                    no_build_binary):
    # A package's systems name its one LM as ../lm.bin: copied alone, the error said that lm.bin
    # was missing from the system's own folder, where it had never been looked for.
    package_lm(tuned_model, lm, load_model_dir(tuned_model).tokenizer)
    stored = read_decoding_defaults(tuned_model)
    write_decoding_defaults(tuned_model, {**stored, "lm": "../shared/lm.arpa"})
    with pytest.raises(LMError) as caught:
        packaged_lm(tuned_model)
    assert str(caught.value) == (f"{tuned_model / DECODING_FILE} names ../shared/lm.arpa, which is missing from "
                                 f"{tmp_path / 'shared'}")


def test_a_hand_edited_tuned_entry_that_is_not_a_mapping_is_named_in_one_line(tuned_model, lm):
    from asr.decoding_config import resolve_options

    write_decoding_defaults(tuned_model, {"lm_weight": 0.5, "tuned": "yesterday"})
    with pytest.raises(LMError, match=rf"{DECODING_FILE}: tuned: expected a mapping of what `asr lm tune` "
                                      r"recorded, got 'yesterday'"):
        resolve_options(tuned_model, lm)


def test_a_copy_of_a_system_that_names_its_lm_outside_itself_carries_it_and_names_it_there(tuned_model, lm, tmp_path,
                                                                                          no_build_binary):
    # `asr export PACKAGE/system2 OUT` copied ../lm.bin into OUT as lm.bin, and OUT/decoding.yaml
    # still named ../lm.bin: the copy could not decode.
    from asr.decoding_config import carried_files
    from asr.model_dir import save_model_dir

    package_lm(tuned_model, lm, load_model_dir(tuned_model).tokenizer)
    (tmp_path / "shared").mkdir()
    shutil.move(str(tuned_model / "lm.arpa"), tmp_path / "shared" / "lm.arpa")
    stored = read_decoding_defaults(tuned_model)
    write_decoding_defaults(tuned_model, {**stored, "lm": "../shared/lm.arpa",
                                          "tuned": {**stored["tuned"], "lm": "../shared/lm.arpa"}})
    loaded = load_model_dir(tuned_model)
    copy = save_model_dir(tmp_path / "copy", loaded.config, loaded.model, loaded.tokenizer,
                          extra_files=carried_files(tuned_model))
    assert packaged_lm(copy) == (copy / "lm.arpa", None)
    copied = read_decoding_defaults(copy)
    assert copied["tuned"]["lm"] == "lm.arpa" and copied["lm_weight"] == 0.5  # still tuned for its LM
    assert (copy / "lm.arpa").read_bytes() == lm.read_bytes()
    model = asr.load_model(copy, device="cpu")
    assert str(copy / "lm.arpa") in model.decoder.describe() and model.decoder.options.beam_size == 8


def test_asr_export_of_a_system_that_shares_its_package_s_lm_gives_a_package_that_decodes_with_it(
        tuned_model, lm, tmp_path, no_build_binary):
    package_lm(tuned_model, lm, load_model_dir(tuned_model).tokenizer)
    (tmp_path / "shared").mkdir()
    shutil.move(str(tuned_model / "lm.arpa"), tmp_path / "shared" / "lm.arpa")  # as PACKAGE/systemN's ../lm.bin
    write_decoding_defaults(tuned_model, {**read_decoding_defaults(tuned_model), "lm": "../shared/lm.arpa"})
    assert main(["export", str(tuned_model), str(tmp_path / "out")]) == 0
    assert packaged_lm(tmp_path / "out") == (tmp_path / "out" / "lm.arpa", None)
    assert str(tmp_path / "out" / "lm.arpa") in asr.load_model(tmp_path / "out", device="cpu").decoder.describe()


@pytest.mark.skipif(kenlm_tool("build_binary") is None, reason="KenLM build_binary is not installed (make kenlm)")
def test_a_package_s_binary_lm_named_by_its_path_is_searched_and_tuned_with_the_package_s_lexicon(
        tuned_model, lm, tmp_path, tiny_corpus, capsys):
    # Re-tuning an exported package (`asr lm tune DEV --model PKG --lm PKG/lm.bin`) was refused:
    # "a binary KenLM file has no readable word list", though the package names its lexicon.
    package = tmp_path / "package"
    assert main(["export", str(tuned_model), str(package), "--lm", str(lm)]) == 0
    assert read_decoding_defaults(package)["lexicon"] == "lexicon.txt"
    decoder, _ = decoding_config.model_decoder(package, load_model_dir(package).tokenizer, lm=str(package / "lm.bin"))
    assert f"lexicon {package / 'lexicon.txt'}" in decoder.describe()
    assert main(["lm", "tune", str(tiny_corpus / "valid.jsonl"), "--model", str(package), "--lm",
                 str(package / "lm.bin"), "--lm-weights", "0.5", "--word-scores", "0", "--beam-size", "4",
                 "--decode-workers", "1"]) == 0
    stored = read_decoding_defaults(package)
    assert (stored["lm"], stored["lexicon"], stored["lm_weight"]) == ("lm.bin", "lexicon.txt", 0.5)
    assert (stored["tuned"]["lm"], stored["tuned"]["lexicon"]) == ("lm.bin", "lexicon.txt")


@pytest.mark.skipif(kenlm_tool("build_binary") is None, reason="KenLM build_binary is not installed (make kenlm)")
def test_an_arpa_file_build_binary_refuses_is_named_with_kenlm_s_reason(tuned_model, tmp_path):
    # The message was "build_binary failed: ['ERROR']": the last line of its stderr, as a list.
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=3\nngram 2=1\n\n\\1-grams:\n-1\ta\t0\n-1\t<s>\t0\n-1\t</s>\n\n"
                   "\\2-grams:\n-1\ta b\n\n\\end\\\n")
    with pytest.raises(LMError, match=r"bad\.arpa: build_binary failed: Word b was not seen in the unigrams"):
        package_lm(tuned_model, bad, load_model_dir(tuned_model).tokenizer)


def test_a_packaged_lm_that_is_a_broken_link_is_named_as_a_link_to_a_missing_file(tuned_model, lm, tmp_path,
                                                                                   no_build_binary):
    # `ls MODEL` lists lm.arpa: "missing from MODEL" sent the user looking for a file that is there
    package_lm(tuned_model, lm, load_model_dir(tuned_model).tokenizer)
    (tuned_model / "lm.arpa").unlink()
    (tuned_model / "lm.arpa").symlink_to(tmp_path / "moved" / "hw.arpa")
    with pytest.raises(LMError) as caught:
        packaged_lm(tuned_model)
    assert str(caught.value) == (f"{tuned_model / DECODING_FILE} names lm.arpa, a link to "
                                 f"{tmp_path / 'moved' / 'hw.arpa'}, which does not exist")
