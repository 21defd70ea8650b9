"""Unpacks a downloaded corpus archive into the data folder, safely and exactly once.

:func:`extract` unpacks a tar (any compression) or zip archive into the temporary folder
``DIR/.NAME.extracting``, refusing any entry that would land outside it (``..``, an absolute path,
a link that climbs or that an entry is written through, a device), checks gzip's CRC-32 and the
expected layout, and only then merges what it unpacked into ``DIR``; the completion marker
``DIR/.NAME.extracted`` is written last. Fetching, and which archives make up a corpus, are
:mod:`asr.download`'s. That module imports this one, never the reverse, so the errors and the
progress bar that both use are defined here.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import shutil
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath


class DownloadError(RuntimeError):
    """A corpus archive that cannot be fetched or unpacked (``asr download`` reports it in one line)."""


class DiskError(DownloadError):
    """Writing failed (a full disk, no permission): the archive is fine and is kept."""


def disk_error(path, e: OSError, kept: str) -> DiskError:
    return DiskError(f"{path}: cannot write ({e.strerror}); free some space (or fix the permissions) and run "
                     f"again: {kept} is kept")


def progress_bar(total, desc: str, progress: bool, initial: int = 0):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, disable=None if progress else True, leave=False)


def web_page(start: bytes) -> str | None:
    """The title (or "untitled") of an HTML/XML page, which no archive starts like: what error pages,
    login walls and proxies send with a 200 in place of the file. None for anything else."""
    head = start[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
        return None
    title = re.search(rb"<title[^>]*>(.*?)</title>", start[:4096], re.I | re.S)
    text = html.unescape(title[1].decode("utf-8", "replace")).split() if title else []
    return " ".join(text)[:80] or "untitled"


class _ProgressReader:
    """A file wrapper that advances a progress bar by the compressed bytes read."""

    def __init__(self, f, bar):
        self.f, self.bar = f, bar

    def read(self, n=-1):
        data = self.f.read(n)
        self.bar.update(len(data))
        return data


def _merge(src: Path, dst: Path) -> None:
    """Move the tree ``src`` into ``dst``: folders are merged, files replaced."""
    dst.mkdir(parents=True, exist_ok=True)
    for child in src.iterdir():
        target = dst / child.name
        if child.is_dir() and not child.is_symlink() and target.is_dir():
            _merge(child, target)
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        shutil.move(child, target)  # a rename, or a copy where DIR/LibriSpeech links to another disk


def marker_path(data_dir: Path, archive_name: str) -> Path:
    return Path(data_dir) / f".{archive_name}.extracted"


def is_extracted(data_dir: Path, archive_name: str) -> bool:
    marker = marker_path(data_dir, archive_name)
    if not marker.is_file():
        return False
    try:
        contents = json.loads(marker.read_text())["contents"]
    except (ValueError, KeyError, TypeError):
        return False
    return all((Path(data_dir) / name).exists() for name in contents)


def missing_layout(root: Path, creates: str | None, layout: tuple[str, ...]) -> str | None:
    """What of the expected layout is absent under ``root``, in words; None if nothing is."""
    if creates is not None and not (root / creates).is_dir():
        return f"the folder {creates}/"
    if layout and not any(next(root.glob(pattern), None) is not None for pattern in layout):
        return " or ".join(layout)
    return None


def extract(archive: Path, data_dir: Path, progress: bool = True, creates: str | None = None,
            layout: tuple[str, ...] = ()) -> list[str]:
    """Unpack a tar archive (any compression) or a zip archive into ``data_dir``; returns its
    top-level names. An entry that would land outside the folder (``..``, an absolute path, a link
    pointing out, a device) is refused, and the archive with it, as is a link that climbs or that an
    entry is written through. A write that fails (a full disk) is a :class:`DiskError`.

    ``creates`` (a folder) and ``layout`` (globs, any one of which must match), both relative to
    ``data_dir``, are checked before anything is moved there: an archive that fails, or cannot be
    unpacked, leaves ``data_dir`` as it was.
    """
    archive, data_dir = Path(archive), Path(data_dir)
    with open(archive, "rb") as f:
        page = web_page(f.read(4096))
    if page is not None:
        raise DownloadError(f"{archive}: a web page ({page}), not an archive")
    tmp = data_dir / f".{archive.name}.extracting"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        try:
            if zipfile.is_zipfile(archive):  # re-packed Common Voice copies often are
                _extract_zip(archive, tmp, data_dir)
            else:
                _extract_tar(archive, tmp, data_dir, progress)
        except OSError as e:
            if e.errno is None:  # gzip/bz2 say "not a gzipped file" with an OSError without an errno
                raise DownloadError(f"{archive}: cannot extract ({e}); the archive is damaged or incomplete") from None
            raise disk_error(data_dir, e, "the archive") from None
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as e:
            raise DownloadError(f"{archive}: cannot extract ({e}); the archive is damaged or incomplete") from None
        contents = sorted(p.name for p in tmp.iterdir())
        missing = missing_layout(tmp, creates, layout)
        if missing is not None:
            raise DownloadError(f"{archive}: not the expected archive: it unpacks to "
                                f"{', '.join(contents) or 'nothing'}, without {missing}")
    except DownloadError:
        # A failed extraction is not an interrupted one: leave no folder that says otherwise.
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _merge(tmp, data_dir)
    shutil.rmtree(tmp)
    marker_path(data_dir, archive.name).write_text(json.dumps({"archive": archive.name, "contents": contents}) + "\n")
    return contents


def _unsafe(archive: Path, entry: str, data_dir: Path) -> DownloadError:
    return DownloadError(f"{archive}: refused: entry {entry!r} would be written outside {data_dir} "
                         "(or is a link or device); unpack it yourself if you trust it")


def _extract_tar(archive: Path, tmp: Path, data_dir: Path, progress: bool) -> None:
    if not hasattr(tarfile, "data_filter"):  # Python < 3.11.4 has no filter: refuse rather than trust
        raise DownloadError(f"{archive}: this Python's tarfile cannot extract safely; use Python >= 3.11.4")
    with open(archive, "rb") as raw, progress_bar(archive.stat().st_size, f"extract {archive.name}", progress) as bar:
        source = _ProgressReader(raw, bar)
        # tarfile's stream mode never checks gzip's CRC-32, the only check of an archive with no
        # published checksum: gzip does, once read to the end (past tar's end-of-archive blocks).
        gz = gzip.GzipFile(fileobj=source, mode="rb") if raw.read(2) == b"\x1f\x8b" else None
        raw.seek(0)
        with tarfile.open(fileobj=gz or source, mode="r|" if gz else "r|*") as tar:
            try:
                tar.extractall(tmp, filter=_corpus_filter(archive, data_dir))
            except tarfile.FilterError as e:
                raise _unsafe(archive, e.tarinfo.name, data_dir) from None
        while gz is not None and gz.read(1 << 20):
            pass


def _corpus_filter(archive: Path, data_dir: Path):
    """tarfile's "data" filter (no ../, absolute paths, links out, devices), made stricter first:
    its own check, realpath(), is fooled by links nested past PATH_MAX before Python 3.11.13 /
    3.12.11 / 3.13.4 (CVE-2025-4517). A corpus needs no link that climbs ("..") and no entry written
    through a link; with neither, where every entry lands follows from the names alone."""
    links: set[tuple[str, ...]] = set()

    def through_link(parts: tuple[str, ...]) -> bool:
        return any(parts[:i] in links for i in range(1, len(parts) + 1))

    def check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        name = PurePosixPath(member.name)
        bad = name.is_absolute() or ".." in name.parts or through_link(name.parts[:-1])
        if member.issym() or member.islnk():
            target = PurePosixPath(member.linkname)
            # a symlink's target is relative to its folder, a hard link's to the archive's top
            bad = bad or not member.linkname or target.is_absolute() or ".." in target.parts \
                or (member.islnk() and through_link(target.parts))
        if bad:
            raise _unsafe(archive, member.name, data_dir)
        if member.issym():
            links.add(name.parts)
        return tarfile.data_filter(member, dest)

    return check


def _extract_zip(archive: Path, tmp: Path, data_dir: Path) -> None:
    """zipfile silently rewrites ``..`` and absolute names; refuse them instead, as the tar filter does."""
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            parts = Path(info.filename.replace("\\", "/")).parts
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if info.filename.startswith(("/", "\\")) or ".." in parts or ":" in info.filename or is_link:
                raise _unsafe(archive, info.filename, data_dir)
        z.extractall(tmp)

