"""The corpus recipes (recipes/<corpus>/Makefile): Mini LibriSpeech runs every stage end to end
on a tiny corpus in the real layout; the others prepare theirs; bad input stops with a message."""

import http.server
import json
import re
import shutil
import subprocess
import sys
import tarfile
import threading

import pytest

from asr.config import Config
from asr.corpus_formats import prepare_librispeech, prepare_own_data
from asr.data import read_manifest
from asr.text import CharTokenizer
from asr.train_setup import load_split
from conftest import REPO_ROOT
from fake_corpora import make_an4, make_commonvoice, make_librispeech, make_own_folder

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")

ASR = f"ASR={sys.executable} -m asr.cli"
TINY = ("model.cell=gru model.num_layers=1 model.hidden_size=32 model.conv_channels=4 "
        "train.epochs=2 train.batch_seconds=30 train.progress=false")


def make(recipe, tmp_path, *args, timeout=300):
    cmd = ["make", "-C", str(REPO_ROOT / "recipes" / recipe), ASR, f"DATA={tmp_path / 'data'}",
           f"EXP={tmp_path / 'exp'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def lines(path):
    return len(path.read_text().splitlines())


def test_mini_librispeech_runs_download_prepare_train_evaluate_from_one_make(tmp_path):
    made = make_librispeech(tmp_path / "corpus", {"train-clean-5": 16, "dev-clean-2": 4})
    args = [f"CORPUS_DIR={tmp_path / 'corpus'}", "VALID_SPEAKERS=1", f"OVERRIDES={TINY}"]
    done = make("mini_librispeech", tmp_path, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "using it as it is" in done.stderr  # the unpacked copy is taken, nothing downloaded
    assert lines(tmp_path / "data" / "train.jsonl") == 12 and lines(tmp_path / "data" / "valid.jsonl") == 4
    summary = json.loads((tmp_path / "exp" / "dev-clean-2.json").read_text())
    assert summary["utterances"] == len(made["dev-clean-2"]) == 4 and summary["cer"] >= 0
    assert (tmp_path / "exp" / "dev-clean-2_hyp.txt").read_text().count("REF:") == 4
    again = make("mini_librispeech", tmp_path, *args)  # every stage is done: nothing retrains
    assert again.returncode == 0 and "asr.cli train" not in again.stdout
    assert "asr.cli evaluate" not in again.stdout


def test_librispeech_recipe_prepares_the_union_of_its_train_subsets(tmp_path):
    make_librispeech(tmp_path / "corpus", {"train-clean-100": 4, "train-other-500": 3, "dev-clean": 2,
                                           "test-clean": 2})
    done = make("librispeech", tmp_path, f"CORPUS_DIR={tmp_path / 'corpus'}", "prepare",
                "TRAIN_SUBSETS=train-clean-100 train-other-500", "EVAL_SUBSETS=test-clean")
    assert done.returncode == 0, done.stderr[-3000:]
    assert lines(tmp_path / "data" / "train.jsonl") == 7
    assert lines(tmp_path / "data" / "dev-clean.jsonl") == 2 and lines(tmp_path / "data" / "test-clean.jsonl") == 2


def test_a_scored_only_subset_is_prepared_alone_as_asr_prepare_writes_it_with_the_training_set(tmp_path):
    corpus = tmp_path / "corpus"
    ids = make_librispeech(corpus, {"train-clean-100": 4, "dev-clean": 2, "test-clean": 3})
    stray = next((corpus / "LibriSpeech" / "test-clean").rglob("*.flac"))
    shutil.copy(stray, stray.with_name("stray.flac"))  # audio with no transcript: skipped, named
    done = make("librispeech", tmp_path, f"CORPUS_DIR={corpus}", "EVAL_SUBSETS=dev-clean test-clean", "prepare")
    assert done.returncode == 0, done.stderr[-3000:]
    prepare_librispeech(corpus, tmp_path / "together", train=["train-clean-100"], eval_sets=["dev-clean", "test-clean"])
    for subset in ("train", "dev-clean", "test-clean"):
        assert (tmp_path / "data" / f"{subset}.jsonl").read_text() == (tmp_path / "together" / f"{subset}.jsonl").read_text()
    assert [u.id for u in read_manifest(tmp_path / "data" / "test-clean.jsonl")] == ids["test-clean"]
    assert "test-clean: 3 utterances, 0.00 h, 1 skipped" in done.stdout
    assert "train: 4 utterances" in done.stdout and "train: 3 " not in done.stdout
    assert "asr: skipped test-clean stray: " in done.stderr and "skipped train stray" not in done.stderr


def test_an4_recipe_prepares_train_valid_and_test_from_sphere_audio(tmp_path):
    make_an4(tmp_path / "corpus", n_train=8, n_test=3)
    done = make("an4", tmp_path, f"CORPUS_DIR={tmp_path / 'corpus'}", "VALID_SPEAKERS=1", "prepare")
    assert done.returncode == 0, done.stderr[-3000:]
    assert lines(tmp_path / "data" / "train.jsonl") + lines(tmp_path / "data" / "valid.jsonl") == 8
    assert lines(tmp_path / "data" / "test.jsonl") == 3


def test_commonvoice_recipe_unpacks_the_users_archive_and_prepares_it(tmp_path):
    make_commonvoice(tmp_path / "cv", "eo")
    archive = tmp_path / "cv-corpus-0.0-test-eo.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "cv" / "cv-corpus-0.0-test", arcname="cv-corpus-0.0-test")
    done = make("commonvoice", tmp_path, f"CORPUS_DIR={tmp_path / 'corpus'}", f"ARCHIVE={archive}", "prepare")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "corpus" / "cv-corpus-0.0-test" / "eo" / "clips").is_dir()
    for split, n in (("train", 6), ("dev", 3), ("test", 3)):
        assert lines(tmp_path / "data" / f"{split}.jsonl") == n


def test_commonvoice_recipe_without_an_archive_says_how_to_get_one(tmp_path):
    done = make("commonvoice", tmp_path, f"CORPUS_DIR={tmp_path / 'corpus'}", "prepare")
    assert done.returncode != 0 and "needs a login" in done.stderr and "--archive" in done.stderr


def test_own_data_recipe_prepares_a_folder_split_by_speaker(tmp_path):
    make_own_folder(tmp_path / "mine", n=9, speakers=3)
    done = make("own_data", tmp_path, f"SRC={tmp_path / 'mine'}", "VALID_SPEAKERS=1", "prepare")
    assert done.returncode == 0, done.stderr[-3000:]
    assert lines(tmp_path / "data" / "train.jsonl") == 6 and lines(tmp_path / "data" / "valid.jsonl") == 3


@pytest.mark.parametrize("args, words", [([], "set SRC"), (["SRC=x"], "VALID_SPEAKERS")])
def test_own_data_recipe_says_what_is_missing(tmp_path, args, words):
    done = make("own_data", tmp_path, *args, "prepare")
    assert done.returncode != 0 and words in done.stderr


@pytest.fixture
def empty_server(tmp_path):
    """An HTTP server on 127.0.0.1 with nothing to serve: every archive is missing (404)."""
    (tmp_path / "empty").mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "empty"), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def test_a_recipe_whose_archive_is_missing_stops_with_the_url_and_a_non_zero_exit(tmp_path, empty_server):
    done = make("librispeech", tmp_path, f"CORPUS_DIR={tmp_path / 'corpus'}", f"URL_BASE={empty_server}",
                "TRAIN_SUBSETS=train-clean-100", "EVAL_SUBSETS=dev-clean", "prepare")
    assert done.returncode != 0
    assert "HTTP 404" in done.stderr and f"{empty_server}/dev-clean.tar.gz" in done.stderr
    assert not (tmp_path / "data" / "train.jsonl").exists()


def test_a_valid_transcript_with_a_character_unseen_in_training_is_reported_by_name(tmp_path, capsys):
    make_own_folder(tmp_path / "mine", n=4, speakers=2)
    (tmp_path / "mine" / "spk1" / "utt03.txt").write_text("café au lait\n")
    (tmp_path / "valid.txt").write_text("spk1\n")
    prepare_own_data(tmp_path / "mine", tmp_path / "data", valid_list=tmp_path / "valid.txt")
    train_texts = [u.text for u in read_manifest(tmp_path / "data" / "train.jsonl")]
    tokenizer = CharTokenizer.build(train_texts + ["the quick brown fox jumps over the lazy dog"])
    assert "é" not in tokenizer.tokens
    dataset = load_split(str(tmp_path / "data" / "valid.jsonl"), Config(), tokenizer, "valid")
    err = capsys.readouterr().err
    assert [u.id for u in dataset.utterances] == ["spk1/utt01"]
    assert "skipped valid utterance spk1/utt03" in err and "outside the vocabulary" in err and "'é'" in err


def test_recipe_paths_may_hold_spaces(tmp_path):
    mine = make_own_folder(tmp_path / "sp ace" / "my data", n=6, speakers=3)
    make_own_folder(tmp_path / "sp ace" / "my test", n=2, speakers=1)
    (tmp_path / "sp ace" / "valid list.txt").write_text("spk0\n")
    done = make("own_data", tmp_path, f"SRC={mine}", f"TEST_SRC={tmp_path / 'sp ace' / 'my test'}",
                f"VALID_LIST={tmp_path / 'sp ace' / 'valid list.txt'}", "prepare")
    assert done.returncode == 0, done.stderr[-3000:]
    assert [lines(tmp_path / "data" / f"{split}.jsonl") for split in ("train", "valid", "test")] == [4, 2, 2]
    make_an4(tmp_path / "an4 copy", n_train=4, n_test=2)
    done = make("an4", tmp_path, f"CORPUS_DIR={tmp_path / 'an4 copy'}", "DATA=" + str(tmp_path / "an4data"),
                "VALID_SPEAKERS=1", "prepare")
    assert done.returncode == 0, done.stderr[-3000:]
    assert lines(tmp_path / "an4data" / "test.jsonl") == 2


@pytest.mark.parametrize("variable", ["DATA", "EXP"])
def test_a_data_or_exp_path_with_a_space_is_refused_in_one_line(tmp_path, variable):
    done = make("own_data", tmp_path, f"{variable}={tmp_path / 'sp ace'}", "prepare")
    assert done.returncode != 0 and f"{variable}=" in done.stderr and "space" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_failed_prepare_is_redone_by_the_next_make_with_the_same_arguments(tmp_path):
    mine = make_own_folder(tmp_path / "mine", n=6, speakers=3)
    tests = make_own_folder(tmp_path / "tests", n=2, speakers=1)
    audio = sorted(tests.rglob("*.wav"))
    saved = [wav.read_bytes() for wav in audio]
    for wav in audio:
        wav.write_bytes(b"not audio")  # the test set fails after train and valid were read
    args = [f"SRC={mine}", f"TEST_SRC={tests}", "VALID_SPEAKERS=1", "prepare"]
    failed = make("own_data", tmp_path, *args)
    assert failed.returncode != 0 and "test: no usable utterances" in failed.stderr
    assert not (tmp_path / "data" / "test.jsonl").exists()  # train and valid: a stage of their own
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == [".args", "train.jsonl", "valid.jsonl"]
    for wav, data in zip(audio, saved):
        wav.write_bytes(data)
    done = make("own_data", tmp_path, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert lines(tmp_path / "data" / "test.jsonl") == 2
    # its folder aside is removed, and its count of train utterances (all of SRC) is no training set's
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == [".args", "test.jsonl", "train.jsonl",
                                                                          "valid.jsonl"]
    assert "test: 2 utterances" in done.stdout and not re.search("^train: ", done.stdout, re.M)


def test_a_test_set_that_shares_audio_with_the_training_data_is_refused(tmp_path):
    # prepared apart from train and valid, it is still checked against them
    mine = make_own_folder(tmp_path / "mine", n=6, speakers=3)
    done = make("own_data", tmp_path, f"SRC={mine}", f"TEST_SRC={mine / 'spk0'}", "VALID_SPEAKERS=1", "prepare")
    assert done.returncode != 0 and "shares 2 audio file(s) with train/valid" in done.stderr
    assert not (tmp_path / "data" / "test.jsonl").exists()


def test_a_step_that_writes_its_output_and_then_fails_leaves_no_output(tmp_path):
    fake = tmp_path / "fake_asr.py"  # `asr prepare folder SRC DATA ...` that writes half a train.jsonl and fails
    fake.write_text("import pathlib, sys\npathlib.Path(sys.argv[4], 'train.jsonl').write_text('{')\nsys.exit(1)\n")
    (tmp_path / "data").mkdir()
    done = make("own_data", tmp_path, f"ASR={sys.executable} {fake}", "SRC=x", "VALID_SPEAKERS=1", "prepare")
    assert done.returncode != 0 and not (tmp_path / "data" / "train.jsonl").exists()


@pytest.mark.parametrize("recipe", ["an4", "commonvoice", "librispeech", "mini_librispeech", "own_data",
                                    "speechocean762"])
def test_each_recipe_s_header_names_the_stages_its_default_make_runs(recipe):
    plan = subprocess.run(["make", "-n", "-C", str(REPO_ROOT / "recipes" / recipe), "SRC=x", "VALID_SPEAKERS=1"],
                          capture_output=True, text=True, check=True).stdout
    header = (REPO_ROOT / "recipes" / recipe / "Makefile").read_text().split("\n#\n")[0]
    header = " ".join(line.lstrip("# ") for line in header.splitlines())
    chain = set(re.findall(r"(\w+) ->", header)) | set(re.findall(r"-> (\w+)", header))  # a -> b -> c
    for stage, command in (("prepare", r"asr prepare "), ("train", r"asr train "), ("lm", r"asr lm (build|mix) "),
                           ("tune", r"asr lm tune "), ("evaluate", r"asr evaluate ")):
        assert re.search(command, plan), (recipe, stage)
        assert stage in chain, (recipe, stage)
