"""A model directory on disk: what saving writes, and what exporting a damaged one says (asr.model_dir)."""

import os
import shutil
import stat

import pytest

from asr.cli import main
from asr.model_dir import ModelDirError, load_model_dir, save_model_dir
from conftest import export_rescoring_package


def test_a_saved_model_directory_is_readable_as_the_umask_allows_and_no_further(tiny_model_dir, tmp_path):
    loaded = load_model_dir(tiny_model_dir)
    before = os.umask(0o027)  # a group may read the models, others may not
    try:
        saved = save_model_dir(tmp_path / "model", loaded.config, loaded.model, loaded.tokenizer,
                               extra_files={"train_state.pt": lambda path: path.write_bytes(b"state")})
    finally:
        os.umask(before)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in saved.iterdir()}
    assert modes == dict.fromkeys(["cmvn.json", "config.yaml", "model.safetensors", "tokenizer.json",
                                   "train_state.pt"], 0o640)


def test_a_saved_model_directory_is_readable_by_all_under_the_usual_umask(tiny_model_dir, tmp_path):
    # safetensors writes 0600 of its own: a model is meant to be shared and packaged
    loaded = load_model_dir(tiny_model_dir)
    before = os.umask(0o022)
    try:
        saved = save_model_dir(tmp_path / "model", loaded.config, loaded.model, loaded.tokenizer)
    finally:
        os.umask(before)
    assert {stat.S_IMODE(p.stat().st_mode) for p in saved.iterdir()} == {0o644}


@pytest.mark.parametrize("priors", ["{", "[1, 2]", '{"manifest": "/a.jsonl"'])
def test_exporting_a_model_whose_token_priors_are_not_json_names_the_file_in_one_line(tiny_model_dir, tmp_path,
                                                                                      capsys, priors):
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (model / "token_priors.json").write_text(priors)
    assert main(["export", str(model), str(tmp_path / "pkg")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{model / 'token_priors.json'}" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no package, no staging left


def test_making_a_package_portable_names_a_broken_settings_file_with_its_line_and_column(tmp_path):
    from asr.model_dir import ModelDirError, make_portable

    (tmp_path / "decoding.yaml").write_text("# tuned\nlm_weight: 0.5\nlm_weight: 0.7\n")
    with pytest.raises(ModelDirError, match=rf"^{tmp_path / 'decoding.yaml'}:3:1: .*lm_weight"):
        make_portable(tmp_path)
    assert (tmp_path / "decoding.yaml").read_text() == "# tuned\nlm_weight: 0.5\nlm_weight: 0.7\n"  # left as it was


def test_loading_a_training_run_s_folder_names_the_model_inside_it(tiny_model_dir, tmp_path):
    # `asr train ... train.output_dir=exp/small` writes the model to exp/small/best (and last/)
    run = tmp_path / "run"
    shutil.copytree(tiny_model_dir, run / "best")
    shutil.copy(tiny_model_dir / "config.yaml", run / "config.yaml")
    with pytest.raises(ModelDirError) as error:
        load_model_dir(run)
    assert str(error.value) == (f"{run}: a training run's folder, not a model directory: its best model is "
                                f"{run / 'best'}")


@pytest.mark.parametrize("name", [".", "absolute"])
def test_exporting_into_the_current_directory_is_refused_in_one_line_and_leaves_it_in_place(
        tiny_model_dir, tmp_path, monkeypatch, capsys, name):
    # renamed into place, the directory the shell stands in would be replaced by another, and "." has no
    # name to stage a sibling by (a traceback)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["export", str(tiny_model_dir), str(here) if name == "absolute" else name]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "the current directory" in error
    assert here.is_dir() and os.path.samefile(os.getcwd(), here) and sorted(tmp_path.iterdir()) == [here]


def test_a_forced_export_over_the_model_s_own_run_folder_is_refused_and_deletes_nothing(
        tiny_model_dir, tmp_path, capsys):
    # `asr export RUN/best RUN --force` would have replaced the run (checkpoints, logs, the model itself)
    run = tmp_path / "run"
    shutil.copytree(tiny_model_dir, run / "best")
    (run / "log.jsonl").write_text("{}\n")
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    assert main(["export", str(run / "best"), str(run), "--half", "--force"]) == 2
    assert "holds the model exported" in capsys.readouterr().err
    assert main(["export", str(run / "best"), str(run / "best" / "copy"), "--half"]) == 2
    assert "inside the model exported" in capsys.readouterr().err
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
    # in place is still an export: the model replaced by its float16 copy
    assert main(["export", str(run / "best"), str(run / "best"), "--half", "--force"]) == 0
    assert load_model_dir(run / "best").half and (run / "log.jsonl").is_file()


def test_exporting_a_float16_model_keeps_its_weights_in_float16(tiny_model_dir, tmp_path):
    # a package's systems (and the built-in model) are stored in float16: a copy was twice their size
    from safetensors import safe_open

    assert main(["export", str(tiny_model_dir), str(tmp_path / "half"), "--half"]) == 0
    assert main(["export", str(tmp_path / "half"), str(tmp_path / "copy")]) == 0
    with safe_open(str(tmp_path / "copy" / "model.safetensors"), "pt") as f:
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"F16"}
    assert main(["export", str(tiny_model_dir), str(tmp_path / "full")]) == 0  # and a float32 one in float32
    with safe_open(str(tmp_path / "full" / "model.safetensors"), "pt") as f:
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"F32"}


@pytest.fixture
def rescoring_package(tiny_model_dir, tmp_path):
    """A package that rescores, as `asr export RESCORING_FILE DIR` makes it: the tiny model with a
    packaged LM, and itself again as system2."""
    return export_rescoring_package(tiny_model_dir, tmp_path, "package")


def test_export_force_replaces_a_destination_with_a_whole_copy_of_a_package_that_rescores(
        rescoring_package, tmp_path, capsys):
    dst = tmp_path / "copy"
    dst.mkdir()
    (dst / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(["export", str(rescoring_package), str(dst)]) == 2
    assert capsys.readouterr().err == (f"asr: {dst}: already exists and is not empty; give a new directory, or "
                                       "--force to replace it and all it holds\n")
    assert main(["export", str(rescoring_package), str(dst), "--force"]) == 0
    assert not (dst / "notes.txt").exists() and (dst / "rescoring.yaml").is_file()
    assert load_model_dir(dst / "system2").model.num_parameters() > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left beside it


def test_a_copy_of_a_package_that_rescores_whose_files_are_refused_leaves_no_destination_behind(
        rescoring_package, tmp_path, capsys):
    (rescoring_package / "token_priors.json").write_text("[1")
    assert main(["export", str(rescoring_package), str(tmp_path / "copy")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{rescoring_package / 'token_priors.json'}: not JSON" in error  # where it is
    assert not [p for p in tmp_path.iterdir() if "copy" in p.name]


@pytest.mark.parametrize("content", ['{"audio_filepath": "a.wav", "duration": 1.0, "text": "hi"}\n' * 2,
                                     "features:\n  n_mels: 80\n", ""])
def test_exporting_a_file_that_is_no_rescoring_file_says_what_export_takes(tmp_path, capsys, content):
    (tmp_path / "given").write_text(content)  # a manifest, a config, an empty file
    assert main(["export", str(tmp_path / "given"), str(tmp_path / "pkg")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"asr: {tmp_path / 'given'}") and error.count("\n") == 1
    assert error.endswith("; asr export takes a model directory or a tune-rescoring file\n")
    assert "Error" not in error and not (tmp_path / "pkg").exists()  # no Python exception's name


@pytest.mark.parametrize("name, flags", [("model.safetensors", ["--half"]), ("config.yaml", [])])
def test_exporting_a_file_of_a_model_directory_names_the_directory_to_export(tiny_model_dir, tmp_path, capsys,
                                                                            name, flags):
    # it was taken for a rescoring file: "not a rescoring file (KeyError: 'models')", or that --half is refused there
    assert main(["export", str(tiny_model_dir / name), str(tmp_path / "pkg"), *flags]) == 2
    assert capsys.readouterr().err == (f"asr: {tiny_model_dir / name}: a file of a model directory; export the "
                                       f"directory, {tiny_model_dir}\n")
