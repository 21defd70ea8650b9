"""Files (and directories) that appear whole or not at all.

Every file the toolkit writes for another step to read (manifests, LMs, decoding settings,
priors, transcripts) is written beside its final name and renamed into place: a reader, or a
``make`` that sees the file and skips its stage, never gets half of one, and a write that fails
leaves what was there before.
"""
from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Iterator


def temp_path(path: str | Path) -> Path:
    """A hidden sibling of ``path`` for this process to write before renaming it into place."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


# Names of a process's open files: written through the descriptor itself, at its offset (a shell's
# `> log` shares it with the prints around): resolved, /dev/stdout would be the file stdout goes
# to, replaced whole, or a pipe's name, which no one can open.
_STREAMS = re.compile(r"/dev/(?:(?P<std>stdout|stderr)|fd/(?P<fd>\d+))|/proc/(?P<pid>self|\d+)/fd/(?P<pfd>\d+)")


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """``open(path, mode)`` for writing, the file renamed into place when the block ends without
    an error; on an error the partial file is removed and ``path`` is left as it was. As ``open``,
    it writes through a symlink and keeps an existing file's permissions; a pipe, a device or a
    stream (``-o /dev/stdout``) is written as it is: nothing can be renamed onto those."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open writes whole files: mode {mode!r} is not 'w' or 'wb'")
    encoding = {} if "b" in mode else {"encoding": "utf-8"}
    path = Path(path)
    if _STREAMS.fullmatch(str(path)) or (path.exists() and not path.is_file() and not path.is_dir()):
        with _open_stream(path, mode, encoding) as f:
            yield f
        return
    if path.is_symlink():  # renaming onto the link would replace it, and leave its target as it was
        path = path.resolve()
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


def _own_descriptor(path: Path) -> int | None:
    """The descriptor of this process that ``path`` names (/dev/stdout, /dev/fd/3, ...), else None."""
    found = _STREAMS.fullmatch(str(path))
    if found is None or found["pid"] not in (None, "self", str(os.getpid())):
        return None
    return {"stdout": 1, "stderr": 2}[found["std"]] if found["std"] else int(found["fd"] or found["pfd"])


def _open_stream(path: Path, mode: str, encoding: dict) -> IO:
    """A pipe, device or stream opened for writing: one of this process's own descriptors through
    a copy of it (what Python buffered for it goes first); a FIFO no process reads yet is said on
    stderr before the wait (open blocks until one does), not a silent hang at the end of a run."""
    if (fd := _own_descriptor(path)) is not None:
        for stream in (sys.stdout, sys.stderr):
            with suppress(Exception):
                stream.flush()
        try:
            copy = os.dup(fd)
        except OSError as e:
            raise OSError(e.errno, "not an open descriptor: nothing to write to", str(path)) from None
        return open(copy, mode.replace("w", "a"), **encoding)
    if stat.S_ISFIFO(os.stat(path).st_mode):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            print(f"asr: {path}: waiting for a process to read it", file=sys.stderr, flush=True)
        else:
            os.set_blocking(fd, True)
            return open(fd, mode, **encoding)
    return open(path, mode, **encoding)


def remove_stale(path: Path, min_age: float = 3600.0) -> None:
    """Remove what a killed ``atomic_dir`` left beside ``path`` (``.NAME.tmp-PID``, ``.NAME.old-PID``,
    and ``..NAME.tmp-PID.tmp-PID`` from one staged in another) when no process of those PIDs runs
    here and it was last changed ``min_age`` seconds ago or more: a kill runs no cleanup, and a
    staged package is as large as the package. A live PID's is another writer's, and so may be a
    recent one's (another machine's, on a shared disk); a number no PID can be is a name of the
    user's (``.model.old-20240101``). (Not for each file atomic_open writes: a folder of 10,000
    transcripts would be listed 10,000 times.)"""
    pattern = re.compile(r"\.+" + re.escape(path.name) + r"((?:\.(?:tmp|old)-\d+)+)")
    try:
        names = [e.name for e in os.scandir(path.parent) if e.name.startswith(".")]
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        pids = [int(pid) for pid in re.findall(r"-(\d+)", match.group(1))] if match else []
        if not pids or any(pid == os.getpid() or pid > _PID_MAX or _running(pid) for pid in pids):
            continue
        stale = path.parent / name
        with suppress(OSError):
            if time.time() - stale.lstat().st_mtime < min_age:
                continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with suppress(OSError):
                stale.unlink()


def _pid_max() -> int:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        return 4_194_304  # Linux's largest


_PID_MAX = _pid_max()


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
    if (fd := _own_descriptor(path)) is not None:  # written through the descriptor: is it open for writing?
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            raise OSError(errno.EBADF, "not an open descriptor: nothing to write to", str(path)) from None
        if flags & os.O_ACCMODE == os.O_RDONLY:
            raise PermissionError(errno.EBADF, "open for reading only", str(path))
        return path
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


def overlap(output: str | Path, source: str | Path) -> str | None:
    """How a directory to be written (and replaced whole) lies against a directory it reads: "is"
    (the same), "holds" (``source`` inside it: replacing it deletes the source), "inside" (it lies in
    ``source``), or None (apart)."""
    out, src = Path(output).resolve(), Path(source).resolve()
    if out == src:
        return "is"
    return "holds" if src.is_relative_to(out) else "inside" if out.is_relative_to(src) else None


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
    if old.is_dir() and not old.is_symlink():  # a killed process of our PID left it (a container reuses PIDs)
        shutil.rmtree(old, ignore_errors=True)
    else:  # or the file that its --force was replacing with a directory
        old.unlink(missing_ok=True)
    if path.exists():
        path.rename(old)  # two renames: a reader sees the old directory or the new, never a mix
    tmp.rename(path)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    else:  # a file that --force replaced with a directory
        old.unlink(missing_ok=True)
