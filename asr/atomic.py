"""Files (and directories) that appear whole or not at all.

Every file the toolkit writes for another step to read (manifests, LMs, decoding settings,
priors, transcripts) is written beside its final name and renamed into place: a reader, or a
``make`` that sees the file and skips its stage, never gets half of one, and a write that fails
leaves what was there before.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Iterator


def temp_path(path: str | Path) -> Path:
    """A hidden sibling of ``path`` for this process to write before renaming it into place."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """``open(path, mode)`` for writing, the file renamed into place when the block ends without
    an error; on an error the partial file is removed and ``path`` is left as it was. As ``open``,
    it writes through a symlink, keeps an existing file's permissions, and writes a pipe or a
    device (``-o /dev/stdout``) as it is: nothing can be renamed onto those."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open writes whole files: mode {mode!r} is not 'w' or 'wb'")
    encoding = {} if "b" in mode else {"encoding": "utf-8"}
    path = Path(path)
    if path.is_symlink():  # renaming onto the link would replace it, and leave its target as it was
        path = path.resolve()
    if path.exists() and not path.is_file() and not path.is_dir():  # a FIFO, a device
        with open(path, mode, **encoding) as f:
            yield f
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, mode, **encoding) as f:
            yield f
        with suppress(FileNotFoundError):  # the file's mode, not the umask's: a private file stays private
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):  # on a read-only file system even this fails: keep the first error
            tmp.unlink(missing_ok=True)
        raise


def remove_stale(path: Path) -> None:
    """Remove what a killed ``atomic_dir`` left beside ``path`` (``.NAME.tmp-PID``, ``.NAME.old-PID``,
    and ``..NAME.tmp-PID.tmp-PID`` from one staged in another) when no process of those PIDs runs
    here: a kill runs no cleanup, and a staged package is as large as the package. A live PID's is
    another writer's. (Not for each file atomic_open writes: a folder of 10,000 transcripts would
    be listed 10,000 times.)"""
    pattern = re.compile(r"\.+" + re.escape(path.name) + r"((?:\.(?:tmp|old)-\d+)+)")
    try:
        names = [e.name for e in os.scandir(path.parent) if e.name.startswith(".")]
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        pids = [int(pid) for pid in re.findall(r"-(\d+)", match.group(1))] if match else []
        if not pids or any(pid == os.getpid() or _running(pid) for pid in pids):
            continue
        stale = path.parent / name
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with suppress(OSError):
                stale.unlink()


def _running(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would end the process there: take every PID for a live one
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole, or not at all."""
    with atomic_open(path) as f:
        f.write(text)
    return Path(path)


def check_writable(path: str | Path, directory: bool = False) -> Path:
    """Raise an OSError (naming ``path``) now, before a long run, if a file (or, with ``directory``,
    a directory) cannot be written at ``path``: a file is created and removed in the nearest
    existing folder above it, where this module writes its temporary siblings."""
    path = Path(path)
    if path.is_dir() and not directory:
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file to write", str(path))
    if path.exists() and not path.is_file() and not path.is_dir():  # a pipe, a device: written as it is
        if not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, "cannot write here: permission denied", str(path))
        return path
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        if not parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{parent} is not a directory")
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".asr-write-test-"):
            pass
    except OSError as e:
        raise OSError(e.errno, f"cannot write here: {e.strerror or e}", str(path)) from None
    return path


def occupied(path: str | Path) -> str | None:
    """What writing a directory at ``path`` would replace, in words ("already exists and is not
    empty", "already exists (a file)"); None for nothing there or an empty directory."""
    path = Path(path)
    if not path.exists():
        return None
    if path.is_dir():
        return "already exists and is not empty" if any(path.iterdir()) else None
    return "already exists (a file)"


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """An empty directory beside ``path`` to fill; it replaces ``path`` (and all it held) when the
    block ends without an error. On an error it is removed and ``path`` is left as it was."""
    path = Path(path)
    if path.is_symlink():  # replace what it points to: renaming the link would leave the target as it was
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = temp_path(path)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    if path.exists():
        path.rename(old)  # two renames: a reader sees the old directory or the new, never a mix
    tmp.rename(path)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    else:  # a file that --force replaced with a directory
        old.unlink(missing_ok=True)
