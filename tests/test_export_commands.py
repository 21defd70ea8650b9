"""``asr export`` of a tune-rescoring file and of a package that rescores: the same rules for DST
(--force replaces it whole, once the package is staged), whichever of the two names the systems."""

import shutil

import pytest

from asr.cli import main
from asr.model_dir import load_model_dir
from asr.rescoring_files import read_rescoring
from conftest import export_rescoring_package


@pytest.fixture(scope="module")
def systems(tiny_model_dir, tmp_path_factory):
    """A tune-rescoring file (r.yaml) of two systems, the first with a packaged word LM, and the
    package made of it (pkg)."""
    tmp = tmp_path_factory.mktemp("export")
    export_rescoring_package(tiny_model_dir, tmp, "pkg")
    return tmp


def occupied_folder(path):
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    return path


def nothing_staged_beside(path):
    return not [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.")]


SOURCES = ["r.yaml", "pkg", "pkg/rescoring.yaml"]


@pytest.mark.parametrize("source", SOURCES)
def test_force_replaces_an_occupied_destination_whole_whether_src_is_the_rescoring_file_or_the_package(
        systems, tmp_path, capsys, source):
    # `asr export pkg/rescoring.yaml DST --force` was refused while `asr export pkg DST --force` worked
    dst = occupied_folder(tmp_path / "dst")
    assert main(["export", str(systems / source), str(dst), "--force"]) == 0
    assert not (dst / "notes.txt").exists() and (dst / "rescoring.yaml").is_file()
    assert read_rescoring(dst / "rescoring.yaml")[0] == [str(dst / "."), str(dst / "system2")]
    assert load_model_dir(dst / "system2").model.num_parameters() > 0
    assert nothing_staged_beside(dst)


@pytest.mark.parametrize("source, also", [("r.yaml", "the first system's own, "), ("pkg", ""),
                                          ("pkg/rescoring.yaml", "")])
def test_an_occupied_destination_without_force_is_refused_naming_force_whatever_the_source(
        systems, tmp_path, capsys, source, also):
    dst = occupied_folder(tmp_path / "dst")
    capsys.readouterr()
    assert main(["export", str(systems / source), str(dst)]) == 2
    assert capsys.readouterr().err == (f"asr: {dst}: already exists and is not empty; give a new directory, {also}"
                                       "or --force to replace it and all it holds\n")
    assert sorted(p.name for p in dst.iterdir()) == ["notes.txt"]


def test_a_forced_export_that_fails_leaves_the_destination_as_it_was(systems, tiny_model_dir, tmp_path, capsys):
    broken = shutil.copytree(tiny_model_dir, tmp_path / "broken")
    (broken / "config.yaml").write_text("model: [\n")
    (tmp_path / "r.yaml").write_text(f"models: [{systems / 'first'}, {broken}]\nweights: [1.0, 0.5]\n"
                                     "lm_weight: 1.0\nword_score: 0.0\n")
    dst = occupied_folder(tmp_path / "dst")
    assert main(["export", str(tmp_path / "r.yaml"), str(dst), "--force"]) == 2
    assert f"{broken / 'config.yaml'}" in capsys.readouterr().err
    assert sorted(p.name for p in dst.iterdir()) == ["notes.txt"] and nothing_staged_beside(dst)


def test_force_may_replace_the_folder_that_holds_the_systems_which_are_read_before_it_goes(
        systems, tiny_model_dir, tmp_path):
    from asr.decoding_config import packaged_lm

    work = tmp_path / "work"
    shutil.copytree(systems / "first", work / "first")
    shutil.copytree(tiny_model_dir, work / "second")
    (work / "r.yaml").write_text("models: [first, second]\nweights: [1.0, 0.5]\nlm_weight: 1.0\nword_score: 0.0\n")
    assert main(["export", str(work / "r.yaml"), str(work), "--force"]) == 0
    assert sorted(p.name for p in work.iterdir() if p.is_dir()) == ["system2"]  # first's files, second as system2
    assert load_model_dir(work).model.num_parameters() > 0 and packaged_lm(work) is not None
    assert load_model_dir(work / "system2").model.num_parameters() > 0
    assert nothing_staged_beside(work)


def test_a_package_s_own_rescoring_file_exports_as_the_package_does_keeping_its_tuned_weights(
        systems, tmp_path, capsys):
    capsys.readouterr()
    assert main(["export", str(systems / "pkg" / "rescoring.yaml"), str(tmp_path / "copy")]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'copy'}: the package copied whole, with its 2 systems and " \
                                      "their tuned rescoring\n"
    assert main(["export", str(systems / "r.yaml"), str(tmp_path / "new")]) == 0
    assert "re-tune it on a dev set" in capsys.readouterr().out  # systems gathered anew: their LM is the first's


@pytest.mark.parametrize("flags", [["--half"], ["--lm", "lm.arpa"], ["--lm", "lm.arpa", "--lexicon", "lex.txt"]])
def test_half_lm_or_lexicon_with_a_rescoring_file_is_refused_naming_the_first_system_to_export(
        systems, tmp_path, capsys, flags):
    assert main(["export", str(systems / "r.yaml"), str(tmp_path / "dst"), *flags]) == 2
    assert capsys.readouterr().err == (f"asr: {systems / 'r.yaml'}: a rescoring file's systems are packaged as they "
                                       f"are (no --half, --lm, --lexicon): for those, export its first system, "
                                       f"{systems / 'first'}\n")
    assert not (tmp_path / "dst").exists()
