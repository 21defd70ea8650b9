"""asr.walk.files_under: the files under a folder, through linked folders, each real folder once."""

import pytest

from asr.walk import files_under


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    return path


def listed(root, **kwargs):
    return [p.relative_to(root).as_posix() for p in files_under(root, **kwargs)]


def test_files_come_depth_first_in_sorted_order_each_folder_s_files_sorted(tmp_path):
    for name in ["b.wav", "a/z.wav", "a/c/y.wav", "a/b.wav", "c.txt"]:
        touch(tmp_path / name)
    assert listed(tmp_path) == ["b.wav", "c.txt", "a/b.wav", "a/z.wav", "a/c/y.wav"]


@pytest.mark.parametrize("own_paths_first", [False, True])
def test_a_symlink_loop_ends_and_its_link_is_reported_as_a_second_way_to_a_folder_already_read(
        tmp_path, own_paths_first):
    touch(tmp_path / "root" / "spk" / "a.wav")
    (tmp_path / "root" / "spk" / "up").symlink_to(tmp_path / "root")
    repeats = []
    assert listed(tmp_path / "root", own_paths_first=own_paths_first,
                  repeated=lambda folder, real: repeats.append((folder, real))) == ["spk/a.wav"]
    assert repeats == [(str(tmp_path / "root" / "spk" / "up"), str(tmp_path / "root"))]


@pytest.mark.parametrize("own_paths_first", [False, True])
def test_a_folder_outside_the_root_linked_twice_is_read_once_through_the_first_link_in_sorted_order(
        tmp_path, own_paths_first):
    touch(tmp_path / "disk" / "clips" / "a.wav")
    (tmp_path / "root").mkdir()
    for link in ("y", "x"):
        (tmp_path / "root" / link).symlink_to(tmp_path / "disk" / "clips")
    repeats = []
    assert listed(tmp_path / "root", own_paths_first=own_paths_first,
                  repeated=lambda folder, real: repeats.append(folder)) == ["x/a.wav"]
    assert repeats == [str(tmp_path / "root" / "y")]


def test_a_folder_under_the_root_is_read_by_the_first_path_in_sorted_order_or_with_own_paths_first_by_its_own(
        tmp_path):
    touch(tmp_path / "z" / "a.wav")
    (tmp_path / "k").symlink_to(tmp_path / "z")
    assert listed(tmp_path) == ["k/a.wav"]
    assert listed(tmp_path, own_paths_first=True) == ["z/a.wav"]


def test_a_link_to_a_file_is_listed_and_one_whose_target_is_gone_is_not(tmp_path):
    touch(tmp_path / "elsewhere" / "real.wav")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "linked.wav").symlink_to(tmp_path / "elsewhere" / "real.wav")
    (tmp_path / "root" / "gone.wav").symlink_to(tmp_path / "elsewhere" / "moved.wav")
    assert listed(tmp_path / "root") == ["linked.wav"]
