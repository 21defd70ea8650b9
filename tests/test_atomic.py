"""Files the toolkit writes appear whole or not at all (asr.atomic)."""
import pytest

from asr.atomic import atomic_open, write_text_atomic
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
