"""The files under a folder, through the folders it links to: data and noise folders are often
assembled from links to other disks, which pathlib's ``rglob`` does not enter (before Python 3.13)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def file_or_dangling_link(path: str | Path) -> bool:
    """A file (or a link to one), or a link whose target is gone: an input whose reading says so,
    rather than one left out silently."""
    return os.path.isfile(path) or (os.path.islink(path) and not os.path.exists(path))


def files_under(root: str | Path, *, own_paths_first: bool = False, dangling: bool = False,
                repeated: Callable[[str, str], None] | None = None) -> list[Path]:
    """Every file under ``root`` (a link to a file counts; one whose target is gone only with
    ``dangling``: ``file_or_dangling_link``),
    through linked folders too, each real folder read once: a link back up ends there, and each
    second way to a folder is passed to ``repeated(folder, its real path)``.

    Folders are read depth-first in sorted order, each one's files sorted, a folder by the first
    path that reaches it. With ``own_paths_first``, every folder that lies under ``root`` is read
    by its own path and the linked ones after (links in sorted order), so the paths do not depend
    on what a link to a folder under ``root`` is called."""
    seen, found, links = set(), [], []

    def walk(top: str, follow: bool) -> None:
        for folder, subfolders, names in os.walk(top, followlinks=follow):
            subfolders.sort()
            if (real := os.path.realpath(folder)) in seen:
                subfolders.clear()
                if repeated is not None:
                    repeated(folder, real)
                continue
            seen.add(real)
            if not follow:  # entered after every real folder under root is marked as read
                links.extend(os.path.join(folder, d) for d in subfolders if os.path.islink(os.path.join(folder, d)))
            keep = file_or_dangling_link if dangling else os.path.isfile
            found.extend(Path(folder, name) for name in sorted(names) if keep(os.path.join(folder, name)))

    walk(os.fspath(root), follow=not own_paths_first)
    for link in sorted(links):
        walk(link, follow=True)
    return found
