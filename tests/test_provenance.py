"""A package records where it came from by paths that hold on another machine: `asr export` writes
them relative to the checkout (or the current folder), so a package a recipe built can be copied
into asr/pretrained/default as it is, and still loads and searches as before."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from asr.cli import main
from asr.config_files import config_from_dict
from asr.decoding_config import PRIORS_FILE, model_decoder, write_decoding_defaults
from asr.lm import build_lm
from asr.model_dir import SOURCE_ROOT, PRETRAINED_DIR, load_model_dir, portable_path, save_model_dir
from asr.provenance import PROVENANCE_FILE, read_provenance
from asr.rescoring import RescoringOptions, RescoringTuneResult
from asr.rescoring_files import load_rescoring, read_rescoring, write_rescoring
from conftest import REPO_ROOT

# The built-in package's provenance, as it was cut by hand from a recipe run's absolute paths.
BUILT_IN = yaml.safe_load((PRETRAINED_DIR / "config.yaml").read_text())["train"]
HAND_CUT = ("train_manifest", "valid_manifest", "output_dir", "init_from", "phone_lexicon")


def absolute(relative_to_checkout):
    """This machine's path for a path the built-in package names relative to the checkout."""
    return ",".join(str(REPO_ROOT / part) if "/" in part else part for part in relative_to_checkout.split(","))


def test_a_path_in_or_beside_the_checkout_is_named_from_it_one_under_the_current_folder_from_there(tmp_path):
    root, here = tmp_path / "work" / "main", tmp_path / "elsewhere"
    assert portable_path(f"{root}/data/full/train.jsonl", root, here) == "data/full/train.jsonl"
    lexicons = f"{root}/../shared/so762/lexicon.txt,cmudict"  # beside the checkout, as the recipes' corpus
    assert portable_path(lexicons, root, here) == "../shared/so762/lexicon.txt,cmudict"
    assert portable_path(f"{here}/valid.jsonl", root, here) == "valid.jsonl"
    # nothing to name it from
    assert portable_path("/opt/corpora/valid.jsonl", root, here) == "/opt/corpora/valid.jsonl"
    assert portable_path("data/valid.jsonl", root, here) == "data/valid.jsonl"  # relative to a folder not known
    assert portable_path(f"{root}/data/v.jsonl", None, here) == f"{root}/data/v.jsonl"  # asr installed, no checkout
    assert portable_path("/opt/x.jsonl", root, Path("/")) == "/opt/x.jsonl"  # never named from the file system's top


@pytest.fixture
def run_in_place(tiny_model_dir, tmp_path, monkeypatch):
    """A trained model as a recipe run leaves it, with this machine's absolute paths: config.yaml's as
    the built-in's were before the cut, a tuned decoding.yaml and token priors; and its word LM."""
    from asr import decoding_config

    assert SOURCE_ROOT == REPO_ROOT  # the tests run from the checkout
    monkeypatch.setattr(decoding_config, "kenlm_tool", lambda name: None)  # the ARPA file is packaged as it is
    monkeypatch.chdir(tmp_path)
    loaded = load_model_dir(tiny_model_dir)
    config = loaded.config.to_dict()
    config["train"].update({key: absolute(BUILT_IN[key]) for key in HAND_CUT})
    run = save_model_dir(tmp_path / "run", config_from_dict(config), loaded.model, loaded.tokenizer)
    (tmp_path / "text.txt").write_text("hello world\nhello hello world\nworld hello\n")
    lm = build_lm([tmp_path / "text.txt"], tmp_path / "hw.arpa", order=2, use_lmplz=False)[0]
    write_decoding_defaults(run, {"lm_weight": 0.5, "word_score": 0.0, "beam_size": 8, "tuned": {
        "lm": str(lm.resolve()), "lexicon": None, "manifest": absolute("data/full/valid.jsonl"), "wer": 0.5}})
    (run / PRIORS_FILE).write_text(json.dumps({"manifest": absolute("data/full/train.jsonl"), "frames": 9,
                                               "priors": [1 / len(loaded.tokenizer)] * len(loaded.tokenizer)}))
    # a training record written where no path could be named from the run's folder; fine-tuned from
    # weights under the current folder, whose own record names the checkout's manifests
    ident = lambda path: {"path": path, "size": 9, "sha1": "0" * 40}
    init_record = {"data": {"train_manifest": ident(absolute("data/full/train.jsonl")), "valid_manifest": None}}
    (run / PROVENANCE_FILE).write_text(json.dumps({"data": {
        "train_manifest": ident(absolute("data/full/train.jsonl")), "valid_manifest": ident(absolute("data/v.jsonl")),
        "init_from": {**ident(str(tmp_path / "phones" / "best" / "model.safetensors")), "provenance": init_record}}}))
    return run, lm


def machine_paths(package):
    """The package's YAML and JSON files that name a folder of this machine's (the checkout, or beside it)."""
    return [p for p in package.rglob("*") if p.suffix in (".yaml", ".json") and str(REPO_ROOT.parent) in p.read_text()]


def test_an_exported_package_names_no_folder_of_this_machine_and_moves_with_its_lm(run_in_place, tmp_path):
    run, lm = run_in_place
    assert main(["export", str(run), str(tmp_path / "pkg"), "--half", "--lm", str(lm)]) == 0
    assert machine_paths(tmp_path / "pkg") == []
    assert str(tmp_path) not in (tmp_path / "pkg" / "decoding.yaml").read_text()  # nor of the current folder
    train = yaml.safe_load((tmp_path / "pkg" / "config.yaml").read_text())["train"]
    assert {key: train[key] for key in HAND_CUT} == {key: BUILT_IN[key] for key in HAND_CUT}  # the hand-cut form
    decoding = (tmp_path / "pkg" / "decoding.yaml").read_text()
    assert decoding.startswith("# written by")
    tuned = yaml.safe_load(decoding)["tuned"]
    assert tuned["manifest"] == "data/full/valid.jsonl" and tuned["source_lm"] == "hw.arpa"  # from the current folder
    assert tuned["lm"] == "lm.arpa"  # the packaged LM, which the search finds by it
    assert json.loads((tmp_path / "pkg" / PRIORS_FILE).read_text())["manifest"] == "data/full/train.jsonl"
    data = read_provenance(tmp_path / "pkg")["data"]
    assert data["valid_manifest"]["path"] == "data/v.jsonl" and data["valid_manifest"]["sha1"] == "0" * 40
    assert data["init_from"]["path"] == "phones/best/model.safetensors"  # from the current folder
    assert data["init_from"]["provenance"]["data"]["train_manifest"]["path"] == "data/full/train.jsonl"
    copied = shutil.copytree(tmp_path / "pkg", tmp_path / "copied")
    shutil.rmtree(tmp_path / "pkg")
    decoder, notes = model_decoder(copied, load_model_dir(copied).tokenizer)
    assert notes == [] and decoder.log_priors is not None  # tuned for its own LM, its priors found
    assert decoder.options.lm_weight == 0.5


def test_a_package_that_rescores_names_no_folder_of_this_machine_and_its_systems_load_where_it_is_copied(
        run_in_place, tmp_path):
    run, lm = run_in_place
    assert main(["export", str(run), str(tmp_path / "first"), "--lm", str(lm)]) == 0
    second = shutil.copytree(run, tmp_path / "second")
    result = RescoringTuneResult(RescoringOptions((1.0, 0.5), 1.0, 0.0), wer=0.5, first_wer=0.6, utterances=3)
    write_rescoring(tmp_path / "r.yaml", [str(tmp_path / "first"), str(second)], result,
                    manifest=absolute("data/full/valid.jsonl"))
    assert main(["export", str(tmp_path / "r.yaml"), str(tmp_path / "pkg")]) == 0
    assert machine_paths(tmp_path / "pkg") == []
    settings = yaml.safe_load((tmp_path / "pkg" / "rescoring.yaml").read_text())
    assert settings["tuned"]["manifest"] == "data/full/valid.jsonl" and settings["tuned"]["packaged_from"] == "r.yaml"
    system2 = yaml.safe_load((tmp_path / "pkg" / "system2" / "config.yaml").read_text())["train"]
    assert system2["train_manifest"] == "data/full/train.jsonl"
    assert json.loads((tmp_path / "pkg" / "system2" / PRIORS_FILE).read_text())["manifest"] == "data/full/train.jsonl"
    assert read_provenance(tmp_path / "pkg" / "system2")["data"]["valid_manifest"]["path"] == "data/v.jsonl"
    copied = shutil.copytree(tmp_path / "pkg", tmp_path / "copied")
    shutil.rmtree(tmp_path / "pkg")
    models, _ = read_rescoring(copied / "rescoring.yaml")
    assert [Path(m).resolve() for m in models] == [copied.resolve(), (copied / "system2").resolve()]
    assert len(load_rescoring(copied / "rescoring.yaml").systems) == 2
