"""A trained model records what it came from: the code, torch, and the content of its data."""

import hashlib
import json
import shutil
import subprocess

import pytest
import torch

import asr
from asr.cli import main
from asr.provenance import PROVENANCE_FILE, code_version, provenance_files, read_provenance
from asr.train import train
from test_train import tiny_config


def sha1(path):
    return hashlib.sha1(path.read_bytes()).hexdigest()


def record(model_dir):
    return json.loads((model_dir / PROVENANCE_FILE).read_text())


@pytest.fixture(scope="module")
def run(tiny_corpus, tmp_path_factory):
    """One epoch of a tiny model: its folder, read by the tests that do not change it."""
    return train(tiny_config(tiny_corpus, tmp_path_factory.mktemp("provenance") / "run", "train.epochs=1"))


def test_a_run_records_its_code_torch_and_the_digest_of_its_manifests_in_the_models_it_saves(run, tiny_corpus):
    kept = record(run / "best")
    assert kept == record(run / "last") == record(run)
    assert kept["asr"]["version"] == asr.__version__ and kept["torch"] == torch.__version__
    assert kept["started"].endswith("Z") and "resumed" not in kept
    data = kept["data"]
    assert data["train_manifest"]["sha1"] == sha1(tiny_corpus / "train.jsonl")  # the content, not only the name
    assert data["valid_manifest"]["sha1"] == sha1(tiny_corpus / "valid.jsonl")
    assert data["train_manifest"]["path"] == str((tiny_corpus / "train.jsonl").resolve())
    assert data["init_from"] is None


def test_a_resumed_run_keeps_its_start_and_adds_each_later_one_and_a_new_run_there_starts_anew(tiny_corpus,
                                                                                                  tmp_path):
    cfg = tiny_config(tiny_corpus, tmp_path / "run", "train.epochs=1")
    run = train(cfg, stop_at_step=1)
    started = record(run)["started"]
    train(cfg, resume=True)
    kept = record(run / "best")
    assert kept["started"] == started
    assert [set(r) for r in kept["resumed"]] == [{"at", "asr", "torch"}]
    for name in ("last", "best", "tb"):  # the finished run removed, its record left behind
        shutil.rmtree(run / name, ignore_errors=True)
    (run / "log.jsonl").unlink()
    train(cfg)
    assert "resumed" not in record(run / "best") and record(run / "best")["started"] >= started


def test_fine_tuning_records_the_weights_it_started_from_with_their_own_record(run, tiny_corpus, tmp_path):
    base = run / "best"
    tuned = train(tiny_config(tiny_corpus, tmp_path / "tuned", "train.epochs=1", f"train.init_from={base}"))
    start = record(tuned / "best")["data"]["init_from"]
    assert start["sha1"] == sha1(base / "model.safetensors")
    assert start["provenance"] == record(base)


def test_tuning_on_a_manifest_a_model_trained_on_is_warned_of_through_fine_tuning_too(run, tiny_corpus, tmp_path,
                                                                                        capsys):
    from asr.cli_systems import warn_if_trained_on
    from asr.provenance import trained_on

    tuned = train(tiny_config(tiny_corpus, tmp_path / "tuned", "train.epochs=1", f"train.init_from={run / 'best'}",
                              f"train.train_manifest={tiny_corpus / 'valid.jsonl'}"))
    # the base's manifest trained the fine-tuned model too, by its record
    assert trained_on(tiny_corpus / "train.jsonl", [run / "best", tuned / "best"]) == [run / "best", tuned / "best"]
    assert trained_on(tiny_corpus / "valid.jsonl", [run / "best"]) == []  # its dev set: what tuning is for
    copy = tmp_path / "same.jsonl"
    copy.write_bytes((tiny_corpus / "train.jsonl").read_bytes())  # by content, whatever its name
    assert trained_on(copy, [run / "best", tmp_path / "nowhere", None]) == [run / "best"]
    capsys.readouterr()
    # said first, before anything else is checked (here the LM, which does not exist)
    assert main(["lm", "tune", str(copy), "--model", str(run / "best"), "--lm", str(tmp_path / "no.arpa")]) == 2
    assert f"asr: warning: {run / 'best'} was trained on {copy}: weights tuned on it favour" in capsys.readouterr().err
    warn_if_trained_on([run / "best"], tiny_corpus / "valid.jsonl")
    assert capsys.readouterr().err == ""


def test_an_exported_copy_carries_the_record_and_a_model_without_one_reads_as_none(run, tmp_path):
    best = tmp_path / "best"
    shutil.copytree(run / "best", best)
    assert main(["export", str(best), str(tmp_path / "copy"), "--half"]) == 0
    assert record(tmp_path / "copy") == record(best)
    (best / PROVENANCE_FILE).unlink()
    assert read_provenance(best) is None and provenance_files(best) == {}
    assert main(["export", str(best), str(tmp_path / "bare")]) == 0  # older models export as they did
    assert not (tmp_path / "bare" / PROVENANCE_FILE).exists()
    (best / PROVENANCE_FILE).write_text("{not json")
    assert read_provenance(best) is None  # a record, never a reason to refuse the model
    assert main(["export", str(best), str(tmp_path / "broken")]) == 0
    assert (tmp_path / "broken" / PROVENANCE_FILE).read_text() == "{not json"  # carried as it was


def git(root, *args):
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                   check=True, capture_output=True)


def test_the_code_is_named_by_its_git_commit_and_whether_tracked_files_changed(tmp_path):
    assert code_version(None) == {"version": asr.__version__}  # installed, not a checkout
    assert code_version(tmp_path) == {"version": asr.__version__}  # a folder without .git
    git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git(tmp_path, "add", "a.py")
    git(tmp_path, "commit", "-q", "-m", "a")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    (tmp_path / "notes.txt").write_text("untracked: not the code that ran\n")
    assert code_version(tmp_path) == {"version": asr.__version__, "commit": head, "dirty": False}
    (tmp_path / "a.py").write_text("x = 2\n")
    assert code_version(tmp_path)["dirty"] is True


def test_a_package_that_rescores_carries_each_system_s_record(run, tiny_corpus, tmp_path):
    from asr.lm import build_lm
    from asr.rescoring import RescoringOptions, RescoringTuneResult
    from asr.rescoring_files import write_rescoring

    best = run / "best"
    second = tmp_path / "second"
    shutil.copytree(best, second)
    (second / PROVENANCE_FILE).write_text(json.dumps({"started": "another run"}))
    (tmp_path / "text.txt").write_text("hello world\nworld hello\n")
    lm = build_lm([tmp_path / "text.txt"], tmp_path / "hw.arpa", order=2, use_lmplz=False)[0]
    assert main(["export", str(best), str(tmp_path / "first"), "--lm", str(lm)]) == 0
    write_rescoring(tmp_path / "r.yaml", [tmp_path / "first", second],
                    RescoringTuneResult(RescoringOptions((1.0, 0.5), 1.0, 0.0, 4), 1.0, 1.0),
                    str(tiny_corpus / "valid.jsonl"))
    assert main(["export", str(tmp_path / "r.yaml"), str(tmp_path / "pkg")]) == 0
    assert record(tmp_path / "pkg") == record(best)
    assert record(tmp_path / "pkg" / "system2") == {"started": "another run"}


def test_asr_summary_says_what_trained_a_model_and_on_what_data(run, tiny_corpus, tmp_path, capsys):
    assert main(["summary", "--model", str(run / "best")]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith(f"trained: by asr {asr.__version__}")
    assert f"train {(tiny_corpus / 'train.jsonl').resolve()} (sha1 {sha1(tiny_corpus / 'train.jsonl')[:10]})" in line
    bare = tmp_path / "bare"
    shutil.copytree(run / "best", bare)
    (bare / PROVENANCE_FILE).unlink()
    assert main(["summary", "--model", str(bare)]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("trained: not recorded")


def test_a_resumed_run_from_before_records_were_kept_says_its_start_is_unknown():
    from asr.provenance import run_provenance

    kept = run_provenance({"train_manifest": None}, None, resumed=True, previous=None)
    assert kept["started"] is None and len(kept["resumed"]) == 1 and kept["resumed"][0]["at"].endswith("Z")
    assert kept["data"] == {"train_manifest": None}
