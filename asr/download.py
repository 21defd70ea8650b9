"""Corpus downloads: official URLs, resumable, checksummed where a checksum is known, extracted exactly once.

``asr download CORPUS --data-dir DIR`` fetches each archive into DIR (a ``NAME.part`` file that
an HTTP Range request resumes; a web page sent in its place is refused, not saved), checks it
against the known checksum if there is one, and unpacks it through the temporary folder
``DIR/.NAME.extracting``, where what it unpacked is checked against the corpus layout (its
folder and a telltale file) before anything reaches DIR; that unpacking, with its safety checks,
is :mod:`asr.archives`'s. The completion marker ``DIR/.NAME.extracted`` is written last, so a run
killed at any point is redone on the next call, and a complete one is skipped. A corpus folder
found without a marker and without its archive (a copy you made yourself) is used as it is.

Checksums are the published ones where we found them, each with its source below; ``None``
means we found no trustworthy value (AN4, speechocean762, and Common Voice, whose archive is the
user's), and the archive is then only checked by unpacking it (gzip's own CRC-32 included) and
looking at its layout.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# The errors live with the extraction, which raises them too (it cannot import this module);
# callers keep importing them from here.
from asr.archives import (DiskError, DownloadError, disk_error, extract, is_extracted, missing_layout,
                          progress_bar, web_page)


@dataclass(frozen=True)
class Archive:
    url: str
    checksum: str | None = None  # "sha256:<hex>" or "md5:<hex>"
    creates: str | None = None  # the folder it unpacks to, relative to the data dir
    # Globs relative to the data dir, any one of which shows the layout the importer reads: without a
    # checksum, this is what tells the official archive from some other tarball.
    layout: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


_OPENSLR = "https://www.openslr.org/resources"

# sha256 from torchaudio, src/torchaudio/datasets/librispeech.py (_CHECKSUMS); Apple's mlx-data
# LibriSpeech loader lists the same values.
_LIBRISPEECH_SHA256 = {
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "dev-other": "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
    "test-clean": "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
    "test-other": "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
    "train-clean-360": "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
    "train-other-500": "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
}
# md5 from PaddleSpeech, dataset/mini_librispeech/mini_librispeech.py.
_MINI_LIBRISPEECH_MD5 = {
    "train-clean-5": "5df7d4e78065366204ca6845bb08f490",
    "dev-clean-2": "6d7ab67ac6a1d2c993d050e16d61080d",
}

# corpus -> ({subset: Archive}, subsets fetched when none are named)
CORPORA: dict[str, tuple[dict[str, Archive], tuple[str, ...]]] = {
    "librispeech": (
        {s: Archive(f"{_OPENSLR}/12/{s}.tar.gz", f"sha256:{h}", f"LibriSpeech/{s}",
                    (f"LibriSpeech/{s}/*/*/*.trans.txt",))
         for s, h in _LIBRISPEECH_SHA256.items()},
        ("train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other"),
    ),
    "mini_librispeech": (
        {s: Archive(f"{_OPENSLR}/31/{s}.tar.gz", f"md5:{h}", f"LibriSpeech/{s}",
                    (f"LibriSpeech/{s}/*/*/*.trans.txt",))
         for s, h in _MINI_LIBRISPEECH_MD5.items()},
        ("train-clean-5", "dev-clean-2"),
    ),
    "an4": ({"an4": Archive("http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz", None, "an4",
                            ("an4/etc/an4_train.transcription",))}, ("an4",)),
    "speechocean762": ({"speechocean762": Archive(f"{_OPENSLR}/101/speechocean762.tar.gz", None, "speechocean762",
                                                  ("speechocean762/train/wav.scp",))}, ("speechocean762",)),
    # Noise, music and babble for augmentation (11 GB), not a corpus to import: point
    # augment.noise_dir at musan/noise (or musan/music) for asr.noise.
    "musan": ({"musan": Archive(f"{_OPENSLR}/17/musan.tar.gz", "md5:0c472d4fc0c5141eca47ad1ffeb2a7df", "musan",
                                ("musan/noise",))},
              ("musan",)),
}
COMMONVOICE_HELP = ("Common Voice needs a login: download the archive for your language from "
                    "https://commonvoice.mozilla.org/datasets, then run: "
                    "asr download commonvoice --archive PATH [--data-dir DIR]")


def log(message: str) -> None:
    print(f"asr download: {message}", file=sys.stderr, flush=True)


def file_checksum(path: Path, algorithm: str, progress: bool = True) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f, progress_bar(path.stat().st_size, f"{algorithm} {path.name}", progress) as bar:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def verify(path: Path, checksum: str | None, progress: bool = True) -> None:
    """Raise DownloadError if ``path`` does not match ``checksum`` ("sha256:..." / "md5:...")."""
    if checksum is None:
        return
    algorithm, _, expected = checksum.partition(":")
    got = file_checksum(path, algorithm, progress)
    if got != expected.lower():
        raise DownloadError(f"{path}: checksum mismatch ({algorithm} {got}, expected {expected}); "
                            "the file is damaged or not the official archive")


def fetch(url: str, dest: str | Path, checksum: str | None = None, progress: bool = True,
          timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` with an HTTP Range request when a
    previous try left one. A complete ``dest`` is only checked. A download that fails its
    checksum is deleted (resuming it could not repair it)."""
    dest = Path(dest)
    if dest.is_file():
        log(f"{dest}: already downloaded")
        verify(dest, checksum, progress)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "asr-download/1"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing after `offset`: the .part file is whole, or too long
            if (whole := _range_total(e.headers)) is not None and whole != offset:
                log(f"{part}: {offset} bytes, but the file on the server has {whole}; starting over")
                part.unlink()
                return fetch(url, dest, checksum, progress, timeout)
            response = None
        else:
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except ValueError as e:  # urllib's "unknown url type"
        raise DownloadError(f"{url}: not a URL ({e})") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"{url}: cannot download ({reason}); check the network, or put the archive "
                            f"at {dest} yourself") from None
    if response is not None:
        with response:
            resumed = offset and response.getcode() == 206
            chunk = _read(response, url, part)
            page = None if resumed else web_page(chunk)  # looked at before a .part is started over
            if page is not None:
                raise DownloadError(f"{url}: the server sent a web page ({page}), not the file; "
                                    "check the URL or the mirror (--url-base)")
            if offset and not resumed:
                log(f"{url}: the server does not resume downloads; starting over")
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            if offset:
                log(f"{dest.name}: resuming at {offset / 2**20:.1f} MiB")
            with (open(part, "ab" if offset else "wb") as f,
                  progress_bar(total, dest.name, progress, initial=offset) as bar):
                while chunk:
                    try:
                        f.write(chunk)
                    except OSError as e:
                        raise disk_error(part, e, "what was downloaded") from None
                    bar.update(len(chunk))
                    chunk = _read(response, url, part)
        size = part.stat().st_size
        if total is not None and size != total:
            raise DownloadError(f"{url}: incomplete ({size} of {total} bytes); run again to resume")
    try:
        verify(part, checksum, progress)
    except DownloadError as e:
        part.unlink()
        raise DownloadError(f"{e}; deleted it, run again to download it anew") from None
    part.replace(dest)
    return dest


def _range_total(headers) -> int | None:
    """The file's size from a 416 answer's ``Content-Range: bytes */SIZE``, when it gives one."""
    found = re.fullmatch(r"bytes \*/(\d+)", (headers or {}).get("Content-Range", "").strip())
    return int(found[1]) if found else None


def _read(response, url: str, part: Path) -> bytes:
    try:
        return response.read(1 << 20)
    except (OSError, http.client.HTTPException) as e:  # reset, timeout, IncompleteRead
        done = part.stat().st_size if part.is_file() else 0
        raise DownloadError(f"{url}: interrupted after {done} bytes ({e!r}); run again to resume") from None


def _commonvoice_present(data_dir: Path) -> bool:
    """A Common Voice release under ``data_dir``: its own clips folder, not another corpus's marker."""
    return any(data_dir.glob("*/*/clips")) or any(data_dir.glob("*/clips"))


def download_corpus(corpus: str, data_dir: str | Path, subsets: list[str] | None = None,
                    archive: str | Path | None = None, url_base: str | None = None,
                    remove_archive: bool = False, progress: bool = True) -> Path:
    """Fetch and unpack ``corpus`` (or some of its ``subsets``) into ``data_dir``; each part
    already complete is skipped. ``archive``: a local copy of the archive to unpack instead of
    downloading (required for Common Voice). ``url_base``: a mirror holding the same files."""
    data_dir = Path(data_dir)
    if url_base is not None and not re.match(r"(https?|ftp|file)://", url_base):  # before any folder is made
        raise DownloadError(f"--url-base {url_base!r}: not a URL; give one starting with https://, http://, ftp:// "
                            "or file://")
    if corpus == "commonvoice":
        if archive is None:
            if _commonvoice_present(data_dir):
                log(f"{data_dir}: Common Voice already extracted")
                return data_dir
            raise DownloadError(COMMONVOICE_HELP)
        # Releases unpack to cv-corpus-VERSION/LANG/clips (older ones to LANG/clips).
        items = [(Archive(Path(archive).name, layout=("*/*/clips", "*/clips")), Path(archive))]
    elif corpus in CORPORA:
        table, defaults = CORPORA[corpus]
        subsets = list(subsets or defaults)
        unknown = [s for s in subsets if s not in table]
        if unknown:
            raise DownloadError(f"{corpus}: no subset {', '.join(unknown)} (choose from {', '.join(table)})")
        if archive is not None and len(subsets) != 1:
            raise DownloadError("--archive gives one archive: name exactly one subset with it")
        items = [(table[s], Path(archive) if archive is not None else data_dir / table[s].name) for s in subsets]
    else:
        raise DownloadError(f"unknown corpus {corpus!r} (choose from {', '.join([*CORPORA, 'commonvoice'])})")
    for item, local in items:
        # Subsets share a top folder (LibriSpeech/): the marker alone misses one deleted since.
        whole = missing_layout(data_dir, item.creates, item.layout) is None
        if is_extracted(data_dir, local.name) and whole:
            log(f"{local.name}: already extracted in {data_dir}")
            continue
        interrupted = (data_dir / f".{local.name}.extracting").exists()
        present = item.creates is not None and (data_dir / item.creates).is_dir()
        if present and whole and not interrupted and not local.is_file():
            log(f"{data_dir / item.creates}: present without a completion marker (a copy made by hand?); "
                "using it as it is. Delete it and run again to download it afresh.")
            continue
        if interrupted or present:
            log(f"{local.name}: its extraction did not finish; extracting again")
        if archive is not None and not local.is_file():
            raise DownloadError(f"{local}: archive not found"
                                + (f". {COMMONVOICE_HELP}" if corpus == "commonvoice" else ""))
        data_dir.mkdir(parents=True, exist_ok=True)  # after every check: a refused command leaves no empty folder
        if archive is not None:
            verify(local, item.checksum, progress)
            # Never advise deleting the user's own file: it may be their only copy.
            advice = "check that --archive names the right file, or get it again"
        else:
            url = f"{url_base.rstrip('/')}/{item.name}" if url_base else item.url
            log(f"{local.name}: downloading {url}")
            fetch(url, local, item.checksum, progress)
            advice = f"delete {local} and run again to download it anew"
        if item.checksum is None:
            log(f"{local.name}: no published checksum to check; checking what it unpacks to instead")
        log(f"{local.name}: extracting into {data_dir}")
        try:
            contents = extract(local, data_dir, progress, item.creates, item.layout)
        except DiskError:
            raise
        except DownloadError as e:
            raise DownloadError(f"{e}; {advice}") from None
        log(f"{local.name}: done ({', '.join(contents)})")
        if remove_archive and archive is None:
            local.unlink()
    return data_dir
