"""``asr average``: a run's kept epochs, or model directories of one network, made one model whose
weights are their mean; what cannot be averaged is refused by name."""

import shutil

import pytest
import torch
from safetensors.torch import load_file

from asr.cli import main
from asr.train import train
from test_train import tiny_config


@pytest.fixture(scope="module")
def run(tiny_corpus, tmp_path_factory):
    """A tiny run that kept its last 3 epochs (train.average_last=3) and averaged them into avg/."""
    return train(tiny_config(tiny_corpus, tmp_path_factory.mktemp("avg") / "run", "train.epochs=3",
                             "train.average_last=3"))


def weights(folder):
    return load_file(str(folder / "model.safetensors"))


def test_a_runs_kept_epochs_average_to_the_model_training_made_of_them(run, tmp_path, capsys):
    assert main(["average", str(run), "-o", str(tmp_path / "mean")]) == 0
    mean, avg = weights(tmp_path / "mean"), weights(run / "avg")
    assert mean.keys() == avg.keys() and all(torch.equal(mean[k], avg[k]) for k in avg)
    assert "the mean of 3 models' weights (epoch-001, epoch-002, epoch-003)" in capsys.readouterr().out


def test_last_k_takes_only_the_runs_last_k_epochs(run, tmp_path):
    assert main(["average", str(run), "--last", "2", "-o", str(tmp_path / "mean")]) == 0
    e2, e3 = (load_file(str(run / "epochs" / f"epoch-00{e}.safetensors")) for e in (2, 3))
    mean = weights(tmp_path / "mean")
    for key, value in mean.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (e2[key] + e3[key]) / 2)


def test_model_directories_of_one_network_average_like_its_epochs(run, tmp_path):
    assert main(["average", str(run / "best"), str(run / "avg"), "-o", str(tmp_path / "mean")]) == 0
    best, avg, mean = weights(run / "best"), weights(run / "avg"), weights(tmp_path / "mean")
    for key, value in mean.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (best[key] + avg[key]) / 2)


def test_what_cannot_be_averaged_is_refused_by_name(run, tiny_corpus, tmp_path, capsys):
    other = train(tiny_config(tiny_corpus, tmp_path / "bpe", "train.epochs=1", "train.units=bpe",
                              "train.bpe_vocab_size=30"))
    cases = {
        (str(run / "best"), str(other / "best")): f"{other / 'best'}: its tokenizer differs from",
        (str(run / "best"),): "one model directory and no epochs/ in it",
        (str(run / "best"), str(run / "avg"), "--last", "2"): "--last takes the last epochs of one run directory",
        (str(tmp_path / "nowhere"), str(run / "best")): "nowhere: model directory not found",
        (str(tmp_path / "nowhere"),): "nowhere: run or model directory not found",
    }
    for inputs, said in cases.items():
        assert main(["average", *inputs, "-o", str(tmp_path / "mean")]) == 2
        assert said in capsys.readouterr().err, inputs
        assert not (tmp_path / "mean").exists()


def test_an_existing_output_is_replaced_only_with_force(run, tmp_path, capsys):
    (tmp_path / "mean").mkdir()
    (tmp_path / "mean" / "notes.txt").write_text("mine")
    assert main(["average", str(run), "-o", str(tmp_path / "mean")]) == 2
    assert "--force" in capsys.readouterr().err and (tmp_path / "mean" / "notes.txt").is_file()
    assert main(["average", str(run), "-o", str(tmp_path / "mean"), "--force"]) == 0
    assert not (tmp_path / "mean" / "notes.txt").exists() and (tmp_path / "mean" / "model.safetensors").is_file()


def test_a_mean_with_batch_norm_has_its_statistics_measured_again_on_the_train_data(tiny_corpus, tmp_path, capsys):
    bn = train(tiny_config(tiny_corpus, tmp_path / "bn", "model.norm=batch", "train.epochs=2", "train.average_last=2"))
    assert main(["average", str(bn / "best"), str(bn / "last"), "-o", str(tmp_path / "mean")]) == 0
    assert f"statistics of the mean weights measured on 20 utterances of {tiny_corpus / 'train.jsonl'}" in \
        capsys.readouterr().err
    best, last, mean = weights(bn / "best"), weights(bn / "last"), weights(tmp_path / "mean")
    stats = [k for k in mean if k.endswith(("running_mean", "running_var"))]
    assert stats
    for key in stats:
        assert not torch.allclose(mean[key], (best[key] + last[key]) / 2), key
    (tmp_path / "moved.jsonl").write_text((tiny_corpus / "train.jsonl").read_text())
    assert main(["average", str(bn / "best"), str(bn / "last"), "-o", str(tmp_path / "mean2"),
                 "--manifest", str(tmp_path / "moved.jsonl")]) == 0
    assert all(torch.allclose(weights(tmp_path / "mean2")[k], mean[k]) for k in stats)  # the same data, the same


def test_epoch_files_of_another_network_are_refused_naming_the_file(run, tmp_path, capsys):
    from safetensors.torch import save_file

    copy = tmp_path / "run"
    copy.mkdir()
    shutil.copytree(run / "best", copy / "best")
    shutil.copytree(run / "epochs", copy / "epochs")
    wrong = copy / "epochs" / "epoch-002.safetensors"
    state = load_file(str(wrong))
    save_file({k: v for k, v in state.items() if not k.startswith("layers.0.")}, str(wrong))
    assert main(["average", str(copy), "-o", str(tmp_path / "mean")]) == 2
    assert f"{wrong}: not {copy / 'best'}'s network (" in capsys.readouterr().err
    assert not (tmp_path / "mean").exists()


@pytest.mark.parametrize("damage, said", [
    ("cut", "not readable as weights ("),
    ("nan", "head.bias holds NaN or infinite weights"),  # the mean would be NaN, and was written, exit 0
    ("narrow", "head.bias is (3,) where"),  # named: the file, not the whole list of them
])
def test_a_damaged_epoch_file_is_refused_naming_it_and_nothing_is_written(run, tmp_path, capsys, damage, said):
    from safetensors.torch import save_file

    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("tb"))
    bad = copy / "epochs" / "epoch-002.safetensors"
    if damage == "cut":
        bad.write_bytes(bad.read_bytes()[:100])
    else:
        state = load_file(str(bad))
        state["head.bias"] = state["head.bias"] * float("nan") if damage == "nan" else state["head.bias"][:3]
        save_file(state, str(bad))
    assert main(["average", str(copy), "-o", str(tmp_path / "mean")]) == 2
    assert f"asr: {bad}: {said}" in capsys.readouterr().err
    assert not (tmp_path / "mean").exists()


def test_an_output_that_is_or_holds_or_lies_in_an_input_is_refused_even_with_force(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("tb"))
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    cases = [(copy / "best", [copy / "best", copy / "avg"], f"it is the input {copy / 'best'}"),
             (copy, [copy / "best", copy / "avg"], f"it holds the input {copy / 'best'}"),  # the run, replaced
             (copy / "epochs" / "mean", [copy], f"inside the input {copy}"),
             (copy / "best" / "mean", [copy / "best", copy / "avg"], f"inside the input {copy / 'best'}")]
    for output, inputs, said in cases:
        assert main(["average", *map(str, inputs), "-o", str(output), "--force"]) == 2
        assert capsys.readouterr().err.startswith(f"asr: {output}: {said}")
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before
