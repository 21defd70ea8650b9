"""A model directory on disk: what saving writes, and what exporting a damaged one says (asr.model_dir)."""

import os
import shutil
import stat

import pytest

from asr.cli import main
from asr.model_dir import ModelDirError, load_model_dir, save_model_dir


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
