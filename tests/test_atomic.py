"""Files the toolkit writes appear whole or not at all (asr.atomic)."""
import errno
import os
import stat
import subprocess
import sys
import threading
import time
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


def test_a_file_written_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "shared").mkdir()
    target = tmp_path / "shared" / "decoding.yaml"
    target.write_text("old\n")
    link = tmp_path / "decoding.yaml"
    link.symlink_to(target)
    write_text_atomic(link, "new\n")
    assert link.is_symlink() and target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoding.yaml", "shared"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["decoding.yaml"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_a_rewritten_file_keeps_the_permissions_it_had(tmp_path, mode):
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    path.chmod(mode)
    write_text_atomic(path, "new\n")
    assert stat.S_IMODE(path.stat().st_mode) == mode and path.read_text() == "new\n"


def test_a_new_file_gets_the_permissions_the_umask_gives(tmp_path):
    before = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "out.txt", "new\n")
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o640


def test_a_fifo_is_written_into_not_replaced_by_a_file(tmp_path):
    # e.g. -o /dev/stdout: renaming a file onto a device or a pipe would replace it for everyone
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    read = []
    reader = threading.Thread(target=lambda: read.append(fifo.read_text()), daemon=True)  # never holds up exit
    reader.start()
    write_text_atomic(fifo, "through the pipe\n")
    reader.join(timeout=10)
    assert read == ["through the pipe\n"] and stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def aged(*paths, seconds=7200):
    for path in paths:
        os.utime(path, (time.time() - seconds,) * 2)


def test_what_a_killed_writer_left_beside_a_directory_is_removed_by_the_next_write_of_it(tmp_path):
    dead, alive = dead_pid(), os.getppid()  # a writer gone, and one still at work
    (tmp_path / f".model.tmp-{dead}").mkdir()
    (tmp_path / f".model.tmp-{dead}" / "model.safetensors").write_text("half")
    (tmp_path / f".model.old-{dead}").mkdir()
    (tmp_path / f".model.tmp-{alive}").mkdir()
    (tmp_path / ".model.old-20240101").mkdir()  # the user's: no PID is so large
    (tmp_path / ".model.tmp-99999999999").mkdir()
    aged(*tmp_path.iterdir())
    (tmp_path / f".model.old-{dead + 1}").mkdir()  # a dead PID's, but just now: maybe another machine's
    with atomic_dir(tmp_path / "model") as staged:
        (staged / "config.yaml").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".model.old-{dead + 1}", ".model.old-20240101",
                                                                 f".model.tmp-{alive}", ".model.tmp-99999999999",
                                                                 "model"])


def test_a_package_whose_export_is_killed_is_cleared_by_the_next_export(tmp_path):
    # asr export stages the package, and save_model_dir stages the model inside that: two levels
    killed = ("import os\nfrom asr.atomic import atomic_dir\nwith atomic_dir('pkg') as d, atomic_dir(d) as m:\n"
              "    (m / 'model.safetensors').write_text('half')\n    os._exit(9)\n")
    assert subprocess.run([sys.executable, "-c", killed], cwd=tmp_path).returncode == 9
    assert len(list(tmp_path.iterdir())) == 2  # the kill left both stagings
    aged(*tmp_path.iterdir())  # (an hour ago: a recent one may be another machine's, on a shared disk)
    with atomic_dir(tmp_path / "pkg") as staged:
        (staged / "model.safetensors").write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]


def test_a_pipe_in_a_folder_that_cannot_be_written_is_writable_output(tmp_path, monkeypatch):
    # -o /dev/stdout: /dev takes no probe file, but the output is written where it is
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def no_files_here(**kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

    monkeypatch.setattr("asr.atomic.tempfile.NamedTemporaryFile", no_files_here)
    assert check_writable(fifo) == fifo
    with pytest.raises(PermissionError, match="cannot write here"):
        check_writable(tmp_path / "out.txt")


WRITES_TO_STDOUT = ("import sys; from asr.atomic import write_text_atomic; print('before', flush=True); "
                    "write_text_atomic(sys.argv[1], 'the output\\n'); print('after', flush=True)")


@pytest.mark.parametrize("name", ["/dev/stdout", "/proc/self/fd/1"])
def test_output_to_dev_stdout_redirected_to_a_file_goes_between_the_prints_around_it(tmp_path, name):
    with open(tmp_path / "log.txt", "w") as log:  # as a shell's `> log.txt`
        subprocess.run([sys.executable, "-c", WRITES_TO_STDOUT, name], stdout=log, check=True)
    assert (tmp_path / "log.txt").read_text() == "before\nthe output\nafter\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.txt"]


def test_output_to_dev_stdout_that_is_a_pipe_is_written_into_it():
    done = subprocess.run([sys.executable, "-c", WRITES_TO_STDOUT, "/dev/stdout"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "before\nthe output\nafter\n"


def test_a_fifo_no_one_reads_yet_is_said_before_the_wait(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c", "import sys; from asr.atomic import write_text_atomic; "
                               "write_text_atomic(sys.argv[1], 'late\\n')", str(fifo)], stderr=subprocess.PIPE,
                              text=True)
    waiting = writer.stderr.readline()
    assert waiting == f"asr: {fifo}: waiting for a process to read it\n"
    assert fifo.read_text() == "late\n" and writer.wait(timeout=30) == 0


def test_an_old_copy_left_under_this_process_s_own_pid_does_not_block_replacing_a_directory(tmp_path):
    # a container reuses low PIDs: a killed run of the same PID left its old copy there
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a").write_text("old")
    left = tmp_path / f".pkg.old-{os.getpid()}"
    left.mkdir()
    (left / "stale").write_text("from a killed run")
    with atomic_dir(tmp_path / "pkg") as staged:
        (staged / "a").write_text("new")
    assert (tmp_path / "pkg" / "a").read_text() == "new" and not left.exists()


def test_an_old_file_left_under_this_process_s_own_pid_does_not_block_replacing_a_directory(tmp_path):
    # what a killed --force left while it replaced a file with a directory
    (tmp_path / "pkg").mkdir()
    left = tmp_path / f".pkg.old-{os.getpid()}"
    left.write_text("a file that --force was replacing")
    with atomic_dir(tmp_path / "pkg") as staged:
        (staged / "a").write_text("new")
    assert (tmp_path / "pkg" / "a").read_text() == "new" and not left.exists()
