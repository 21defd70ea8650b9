"""Files the toolkit writes appear whole or not at all (asr.atomic)."""
import errno
from pathlib import Path

import pytest

from asr.atomic import atomic_dir, atomic_open, check_writable, write_text_atomic
from asr.data import write_manifest


def test_a_finished_write_replaces_the_file_and_leaves_nothing_beside_it(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    write_text_atomic(path, "old\n")
    with atomic_open(path) as f:
        f.write("new\n")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]


def test_the_file_keeps_its_old_content_until_the_write_ends(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    with atomic_open(path) as f:
        f.write("half of the new")
        assert path.read_text() == "old\n"
    assert path.read_text() == "half of the new"


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as f:
            f.write("half")
            raise RuntimeError("the writer failed")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_binary_mode_writes_bytes(tmp_path):
    with atomic_open(tmp_path / "b.bin", "wb") as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_only_whole_file_writes_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="mode 'a'"):
        with atomic_open(tmp_path / "x", "a"):
            pass


def test_a_manifest_that_fails_half_way_leaves_no_manifest(tmp_path):
    # make sees a file and skips its stage: a half manifest must never be one
    def utterances():
        raise OSError("disk gone")
        yield
    with pytest.raises(OSError):
        write_manifest(tmp_path / "m.jsonl", utterances())
    assert list(tmp_path.iterdir()) == []


def test_check_writable_names_an_output_that_cannot_be_written_and_leaves_nothing_behind(tmp_path):
    blocker = tmp_path / "a_file"  # (a folder the tests' root user cannot write: none; a file as the parent)
    blocker.write_text("x")
    with pytest.raises(NotADirectoryError) as error:
        check_writable(blocker / "sub" / "hyp.txt")
    assert error.value.filename == str(blocker / "sub" / "hyp.txt") and "cannot write here" in error.value.strerror
    with pytest.raises(IsADirectoryError):
        check_writable(tmp_path)  # a file to write, where a folder is
    assert check_writable(tmp_path / "new" / "dir", directory=True) == tmp_path / "new" / "dir"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # the probe is gone, nothing was created


def test_a_write_that_fails_on_a_read_only_file_system_raises_its_own_error_not_the_cleanups(tmp_path,
                                                                                               monkeypatch):
    def read_only(self, missing_ok=False):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(RuntimeError, match="the writer failed"):
        with atomic_open(tmp_path / "out.txt"):
            raise RuntimeError("the writer failed")


def test_a_directory_written_through_a_symlink_replaces_its_target_and_leaves_no_old_copy(tmp_path):
    target = tmp_path / "models" / "v1"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("old")
    link = tmp_path / "current"
    link.symlink_to(target)
    with atomic_dir(link) as staged:
        (staged / "new.txt").write_text("new")
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "models"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["v1"]
