"""The GPU-session helpers: packing a corpus small enough to travel, and summarizing runs."""

import json
import subprocess
import sys

import soundfile as sf

from asr.data import read_manifest
from conftest import REPO_ROOT, write_sine


def run_bench(script, *args, cwd):
    return subprocess.run([sys.executable, str(REPO_ROOT / "bench" / script), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, check=True)


def test_packed_manifest_points_at_opus_copies_that_resolve_from_anywhere(tmp_path):
    src = tmp_path / "src"
    rows = [{"audio_filepath": str(write_sine(src / f"u{i}.flac", seconds=1.0 + i, freq=300 + 100 * i)),
             "duration": 1.0 + i, "text": f"word {i}", "id": f"u{i}"} for i in range(2)]
    (src / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    out = run_bench("pack_for_device.py", tmp_path / "pack", f"train={src / 'm.jsonl'}@0.95", cwd=tmp_path)

    assert "total:" in out.stdout
    moved = tmp_path / "elsewhere"
    (tmp_path / "pack").rename(moved)  # relative paths: the copy works wherever it lands
    packed = read_manifest(moved / "train.jsonl")
    assert [u.text for u in packed] == ["word 0", "word 1"]
    for utt, row in zip(packed, rows):
        info = sf.info(utt.audio_filepath)
        assert info.format == "OGG" and info.subtype == "OPUS"
        assert abs(info.frames / info.samplerate - row["duration"]) < 0.01


def test_sweep_summary_names_the_run_with_the_lowest_valid_wer(tmp_path):
    for name, wers in (("a", [0.9, 0.7, 0.8]), ("b", [0.95, 0.75])):
        run = tmp_path / name
        run.mkdir()
        (run / "config.yaml").write_text("train:\n  epochs: 3\n")
        (run / "log.jsonl").write_text("".join(json.dumps(
            {"epoch": i + 1, "step": 10 * (i + 1), "epoch_seconds": 5.0, "audio_seconds_per_second": 100.0,
             "valid_wer": w, "valid_cer": w / 2}) + "\n" for i, w in enumerate(wers)))

    out = run_bench("sweep_summary.py", tmp_path / "a", tmp_path / "b", "--json", tmp_path / "s.jsonl",
                    "--best-file", tmp_path / "best.txt", cwd=tmp_path)

    assert (tmp_path / "best.txt").read_text().strip() == "a"
    rows = {r["run_summary"]["run"]: r["run_summary"] for r in map(json.loads, open(tmp_path / "s.jsonl"))}
    assert rows["a"]["best_epoch"] == 2 and rows["b"]["epochs_done"] == 2
    assert "| b | 2/3 |" in out.stdout


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def _device_tree(repo, verb):
    return subprocess.run(["bash", str(REPO_ROOT / "bench" / "device_tree.sh"), verb], cwd=repo,
                          capture_output=True, text=True)


def test_device_tree_hide_keeps_the_package_on_disk_but_out_of_what_travels_until_restore(tmp_path):
    repo = tmp_path / "repo"
    pkg = repo / "asr" / "pretrained" / "default"
    pkg.mkdir(parents=True)
    (pkg / "model.safetensors").write_bytes(b"\0" * 4096)
    (repo / "README.md").write_text("hi\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    travels = lambda: _git(repo, "ls-files", "-co", "--exclude-standard").split()  # noqa: E731

    assert _device_tree(repo, "hide").returncode == 0
    assert travels() == ["README.md"]
    assert (pkg / "model.safetensors").stat().st_size == 4096

    assert _device_tree(repo, "restore").returncode == 0
    assert "asr/pretrained/default/model.safetensors" in travels()
    assert _git(repo, "status", "--porcelain") == ""  # index and exclude file as before


def test_device_tree_hide_refuses_while_other_changes_are_staged(tmp_path):
    repo = tmp_path / "repo"
    (repo / "asr" / "pretrained" / "default").mkdir(parents=True)
    (repo / "asr" / "pretrained" / "default" / "config.yaml").write_text("a: 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    (repo / "new.txt").write_text("staged\n")
    _git(repo, "add", "new.txt")

    result = _device_tree(repo, "hide")

    assert result.returncode != 0 and "staged changes" in result.stderr
    assert "asr/pretrained/default/config.yaml" in _git(repo, "ls-files")
