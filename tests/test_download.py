"""Downloads: resumable (HTTP Range), checksummed, extracted once with a completion marker.

Nothing here touches the network: a local HTTP server on 127.0.0.1, started by the tests,
serves small archives from a temporary folder (and file:// URLs are tried too).
"""

import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile

import pytest

from asr import download
from asr.archives import extract, is_extracted
from asr.cli import main
from asr.download import Archive, DownloadError, download_corpus, fetch


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET with optional ``Range: bytes=N-``; the server's ``cut_after`` drops the connection
    after that many body bytes, ``ignore_range`` answers every request in full."""

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        path = server.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404, "Not Found")
            return
        data = path.read_bytes()
        start = 0
        rng = self.headers.get("Range")
        if rng and not server.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_after is not None:
            self.wfile.write(body[: server.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.root, httpd.requests, httpd.cut_after, httpd.ignore_range = root, [], None, False
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def make_tar_gz(path, files: dict[str, bytes]):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


BLOB = bytes(range(256)) * 400  # 100 KiB


# --- fetch ----------------------------------------------------------------------------------

def test_fetch_downloads_and_checks_the_checksum(server, tmp_path):
    (server.root / "a.bin").write_bytes(BLOB)
    dest = fetch(f"{server.url}/a.bin", tmp_path / "dl" / "a.bin", sha256(BLOB), progress=False)
    assert dest.read_bytes() == BLOB
    assert not (tmp_path / "dl" / "a.bin.part").exists()


def test_fetch_resumes_a_part_file_with_a_range_request(server, tmp_path):
    (server.root / "a.bin").write_bytes(BLOB)
    (tmp_path / "a.bin.part").write_bytes(BLOB[:30000])
    fetch(f"{server.url}/a.bin", tmp_path / "a.bin", sha256(BLOB), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == BLOB
    assert server.requests == [("/a.bin", "bytes=30000-")]


def test_an_interrupted_download_resumes_where_it_stopped(server, tmp_path):
    (server.root / "a.bin").write_bytes(BLOB)
    server.cut_after = 40000
    with pytest.raises(DownloadError, match="run again to resume"):
        fetch(f"{server.url}/a.bin", tmp_path / "a.bin", sha256(BLOB), progress=False)
    assert (tmp_path / "a.bin.part").stat().st_size == 40000
    server.cut_after = None
    fetch(f"{server.url}/a.bin", tmp_path / "a.bin", sha256(BLOB), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == BLOB
    assert server.requests[-1] == ("/a.bin", "bytes=40000-")


def test_a_server_that_ignores_range_gets_a_fresh_download(server, tmp_path):
    (server.root / "a.bin").write_bytes(BLOB)
    (tmp_path / "a.bin.part").write_bytes(b"garbage that must not stay in front")
    server.ignore_range = True
    fetch(f"{server.url}/a.bin", tmp_path / "a.bin", sha256(BLOB), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == BLOB


def test_a_complete_part_file_is_finished_without_downloading_again(server, tmp_path):
    (server.root / "a.bin").write_bytes(BLOB)
    (tmp_path / "a.bin.part").write_bytes(BLOB)
    fetch(f"{server.url}/a.bin", tmp_path / "a.bin", sha256(BLOB), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == BLOB


def test_a_part_file_longer_than_the_served_file_is_downloaded_anew_even_without_a_checksum(server, tmp_path, capsys):
    (server.root / "a.bin").write_bytes(BLOB)
    (tmp_path / "a.bin.part").write_bytes(BLOB + b"a longer file once stood at this URL")
    fetch(f"{server.url}/a.bin", tmp_path / "a.bin", None, progress=False)
    assert (tmp_path / "a.bin").read_bytes() == BLOB
    assert server.requests[-1] == ("/a.bin", None)
    assert f"a.bin.part: {len(BLOB) + 36} bytes, but the file on the server has {len(BLOB)}; starting over" \
        in capsys.readouterr().err


def test_a_checksum_mismatch_is_an_error_and_the_bad_download_is_deleted(server, tmp_path):
    (server.root / "a.bin").write_bytes(BLOB)
    with pytest.raises(DownloadError, match="checksum mismatch.*deleted it"):
        fetch(f"{server.url}/a.bin", tmp_path / "a.bin", sha256(b"something else"), progress=False)
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "a.bin.part").exists()


def test_md5_checksums_are_checked_too(server, tmp_path):
    (server.root / "a.bin").write_bytes(BLOB)
    with pytest.raises(DownloadError, match="md5"):
        fetch(f"{server.url}/a.bin", tmp_path / "a.bin", "md5:" + "0" * 32, progress=False)
    fetch(f"{server.url}/a.bin", tmp_path / "a.bin", "md5:" + hashlib.md5(BLOB).hexdigest(), progress=False)


def test_an_existing_file_with_the_wrong_checksum_is_reported_not_replaced(server, tmp_path):
    (tmp_path / "a.bin").write_bytes(b"old")
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch(f"{server.url}/a.bin", tmp_path / "a.bin", sha256(BLOB), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == b"old" and server.requests == []


def test_a_missing_archive_on_the_server_is_a_clear_error(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(f"{server.url}/nope.tar.gz", tmp_path / "nope.tar.gz", progress=False)


def test_an_unreachable_server_is_a_clear_error(tmp_path, server):
    url = server.url
    server.shutdown()
    server.server_close()
    with pytest.raises(DownloadError, match="cannot download"):
        fetch(f"{url}/a.bin", tmp_path / "a.bin", progress=False, timeout=5)


def test_a_mirror_that_is_no_url_is_refused_in_one_line_before_any_folder_is_made(tmp_path, capsys):
    # urllib's "unknown url type" was a traceback, after the data folder was made
    assert main(["download", "an4", "--url-base", "mirror/an4", "--data-dir", str(tmp_path / "corpus")]) == 2
    assert capsys.readouterr().err == ("asr: --url-base 'mirror/an4': not a URL; give one starting with https://, "
                                       "http://, ftp:// or file://\n")
    assert not (tmp_path / "corpus").exists()
    with pytest.raises(DownloadError, match="not-a-url/a.bin: not a URL"):
        fetch("not-a-url/a.bin", tmp_path / "a.bin", progress=False)


def test_file_urls_work_as_a_local_mirror(tmp_path):
    (tmp_path / "a.bin").write_bytes(BLOB)
    fetch((tmp_path / "a.bin").as_uri(), tmp_path / "out" / "a.bin", sha256(BLOB), progress=False)
    assert (tmp_path / "out" / "a.bin").read_bytes() == BLOB


# --- extract and download_corpus ------------------------------------------------------------

FILES = {"toy/part1/a.txt": b"alpha", "toy/part1/b/c.txt": b"gamma", "toy/README": b"read me"}


@pytest.fixture
def toy(server, monkeypatch):
    """A corpus 'toy' with one subset 'part1', served by the local server."""
    archive = make_tar_gz(server.root / "part1.tar.gz", FILES)
    entry = Archive(f"{server.url}/part1.tar.gz", sha256(archive.read_bytes()), "toy/part1")
    monkeypatch.setitem(download.CORPORA, "toy", ({"part1": entry}, ("part1",)))
    return server


def test_download_corpus_fetches_extracts_and_marks_completion(toy, tmp_path):
    data = tmp_path / "data"
    download_corpus("toy", data, progress=False)
    assert (data / "toy" / "part1" / "b" / "c.txt").read_bytes() == b"gamma"
    assert json.loads((data / ".part1.tar.gz.extracted").read_text())["contents"] == ["toy"]
    assert not (data / ".part1.tar.gz.extracting").exists()


def test_a_second_download_is_skipped(toy, tmp_path, capsys):
    download_corpus("toy", tmp_path / "data", progress=False)
    requests = len(toy.requests)
    download_corpus("toy", tmp_path / "data", progress=False)
    assert len(toy.requests) == requests
    assert "already extracted" in capsys.readouterr().err


def test_a_half_extracted_folder_is_detected_and_extracted_again(toy, tmp_path, capsys):
    data = tmp_path / "data"
    download_corpus("toy", data, progress=False)
    (data / ".part1.tar.gz.extracted").unlink()         # as if killed before the marker
    (data / "toy" / "part1" / "b" / "c.txt").unlink()   # ... and halfway through
    download_corpus("toy", data, progress=False)
    assert (data / "toy" / "part1" / "b" / "c.txt").read_bytes() == b"gamma"
    assert "did not finish" in capsys.readouterr().err
    assert is_extracted(data, "part1.tar.gz")


def test_an_interrupted_extraction_without_the_archive_downloads_it_again(toy, tmp_path):
    data = tmp_path / "data"
    (data / ".part1.tar.gz.extracting" / "toy").mkdir(parents=True)
    (data / "toy" / "part1").mkdir(parents=True)
    download_corpus("toy", data, progress=False)
    assert (data / "toy" / "part1" / "a.txt").read_bytes() == b"alpha"
    assert [path for path, _ in toy.requests] == ["/part1.tar.gz"]


def test_a_copy_made_by_hand_is_used_as_it_is(toy, tmp_path, capsys):
    data = tmp_path / "data"
    (data / "toy" / "part1").mkdir(parents=True)
    download_corpus("toy", data, progress=False)
    assert toy.requests == [] and "using it as it is" in capsys.readouterr().err


def test_a_damaged_archive_is_a_clear_error(tmp_path):
    good = make_tar_gz(tmp_path / "good.tar.gz", FILES).read_bytes()
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(DownloadError, match="cannot extract.*damaged"):
        extract(bad, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / ".bad.tar.gz.extracted").exists()


def test_a_damaged_archive_leaves_no_extraction_folder_behind(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tar archive at all")
    with pytest.raises(DownloadError, match="cannot extract"):
        extract(bad, tmp_path / "out", progress=False)
    assert list((tmp_path / "out").iterdir()) == []  # no .bad.tar.gz.extracting to mistake for an interruption


def test_an_archive_without_the_expected_folder_is_refused_and_nothing_reaches_the_data_dir(tmp_path):
    junk = make_tar_gz(tmp_path / "junk.tar.gz", {"somefile": b"hi"})
    with pytest.raises(DownloadError, match=r"junk.tar.gz: not the expected archive: it unpacks to somefile, "
                                            r"without the folder an4/"):
        extract(junk, tmp_path / "out", progress=False, creates="an4")
    assert list((tmp_path / "out").iterdir()) == []


def test_an_archive_without_the_telltale_file_of_its_layout_is_refused(tmp_path):
    almost = make_tar_gz(tmp_path / "almost.tar.gz", {"an4/README": b"not the corpus"})
    with pytest.raises(DownloadError, match="without an4/etc/an4_train.transcription"):
        extract(almost, tmp_path / "out", progress=False, creates="an4", layout=("an4/etc/an4_train.transcription",))
    assert list((tmp_path / "out").iterdir()) == []


def test_corpora_without_a_checksum_name_the_layout_that_proves_their_archive():
    for corpus, subset in (("an4", "an4"), ("speechocean762", "speechocean762")):
        entry = download.CORPORA[corpus][0][subset]
        assert entry.checksum is None and entry.creates == corpus
        assert entry.layout and all(pattern.startswith(f"{corpus}/") for pattern in entry.layout)


def test_archives_cannot_write_outside_the_data_dir(tmp_path):
    evil = make_tar_gz(tmp_path / "evil.tar.gz", {"../escaped.txt": b"x"})
    with pytest.raises(DownloadError):
        extract(evil, tmp_path / "out", progress=False)
    assert not (tmp_path / "escaped.txt").exists()


def test_an_unsafe_tar_entry_is_refused_by_name_not_called_damaged(tmp_path):
    evil = make_tar_gz(tmp_path / "evil.tar.gz", {"an4/ok.txt": b"x", "../escaped.txt": b"x"})
    with pytest.raises(DownloadError, match=r"refused: entry '\.\./escaped\.txt' would be written outside") as err:
        extract(evil, tmp_path / "out", progress=False)
    assert "damaged" not in str(err.value)
    assert list((tmp_path / "out").iterdir()) == []


def make_zip(path, files: dict[str, bytes], links: dict[str, str] = {}):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        for name, target in links.items():  # a symlink entry, as `zip --symlinks` stores it
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, target)
    return path


def test_a_zip_archive_is_unpacked_like_a_tar(tmp_path, capsys):
    archive = make_zip(tmp_path / "cv-xx.zip", {"cv-corpus-0.0/xx/train.tsv": b"client_id\tpath\tsentence\n",
                                                 "cv-corpus-0.0/xx/clips/a.mp3": b"mp3"})
    assert main(["download", "commonvoice", "--data-dir", str(tmp_path / "c"), "--archive", str(archive)]) == 0
    assert (tmp_path / "c" / "cv-corpus-0.0" / "xx" / "clips" / "a.mp3").read_bytes() == b"mp3"
    assert is_extracted(tmp_path / "c", "cv-xx.zip")


@pytest.mark.parametrize("files,links,entry", [
    ({"../escaped.txt": b"x"}, {}, "../escaped.txt"),
    ({"/tmp/abs.txt": b"x"}, {}, "/tmp/abs.txt"),
    ({"an4/ok.txt": b"x"}, {"an4/link": "/etc/passwd"}, "an4/link"),
])
def test_a_zip_entry_outside_the_data_dir_or_a_link_is_refused_and_nothing_is_written(tmp_path, files, links, entry):
    evil = make_zip(tmp_path / "evil.zip", files, links)
    with pytest.raises(DownloadError, match=f"refused: entry '{entry}' would be written outside"):
        extract(evil, tmp_path / "out", progress=False)
    assert list((tmp_path / "out").iterdir()) == [] and not (tmp_path / "escaped.txt").exists()


def test_unknown_subsets_are_refused_with_the_choices_and_leave_no_data_dir(tmp_path):
    with pytest.raises(DownloadError, match="train-clean-100"):
        download_corpus("librispeech", tmp_path / "c", subsets=["train-clean-1000"], progress=False)
    assert not (tmp_path / "c").exists()


def test_known_archives_use_the_official_urls_and_checksums_where_known():
    libri, _ = download.CORPORA["librispeech"]
    assert libri["train-clean-100"].url == "https://www.openslr.org/resources/12/train-clean-100.tar.gz"
    assert all(a.checksum and a.checksum.startswith("sha256:") for a in libri.values())
    mini, _ = download.CORPORA["mini_librispeech"]
    assert mini["dev-clean-2"].url == "https://www.openslr.org/resources/31/dev-clean-2.tar.gz"
    an4, _ = download.CORPORA["an4"]
    assert an4["an4"].url == "http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz"
    musan, _ = download.CORPORA["musan"]  # noise for augment.noise_dir (openslr 17, the md5 it publishes)
    assert musan["musan"].url == "https://www.openslr.org/resources/17/musan.tar.gz"
    assert musan["musan"].checksum == "md5:0c472d4fc0c5141eca47ad1ffeb2a7df"


# --- the asr download command ---------------------------------------------------------------

def test_asr_download_from_a_mirror_with_the_wrong_file_exits_2_with_checksum_mismatch(server, tmp_path, capsys):
    make_tar_gz(server.root / "dev-clean-2.tar.gz", {"LibriSpeech/dev-clean-2/x.txt": b"not the real one"})
    code = main(["download", "mini_librispeech", "--subsets", "dev-clean-2", "--data-dir", str(tmp_path / "c"),
                 "--url-base", server.url])
    assert code == 2 and "checksum mismatch (md5" in capsys.readouterr().err
    assert not (tmp_path / "c" / "LibriSpeech").exists()


def test_asr_download_of_a_missing_archive_exits_2(server, tmp_path, capsys):
    code = main(["download", "an4", "--data-dir", str(tmp_path / "c"), "--url-base", server.url])
    assert code == 2 and "HTTP 404" in capsys.readouterr().err


def test_asr_download_commonvoice_needs_the_users_archive(tmp_path, capsys):
    assert main(["download", "commonvoice", "--data-dir", str(tmp_path / "c")]) == 2
    assert "needs a login" in capsys.readouterr().err and not (tmp_path / "c").exists()
    assert main(["download", "commonvoice", "--data-dir", str(tmp_path / "c"),
                 "--archive", str(tmp_path / "missing.tar.gz")]) == 2
    assert "archive not found" in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_another_corpus_marker_does_not_make_common_voice_ready(tmp_path, capsys):
    archive = make_tar_gz(tmp_path / "an4_sphere.tar.gz", {"an4/etc/an4_train.transcription": b"<s> YES </s> (a)\n"})
    assert main(["download", "an4", "--data-dir", str(tmp_path / "c"), "--archive", str(archive)]) == 0
    capsys.readouterr()
    assert main(["download", "commonvoice", "--data-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "already extracted" not in err and "needs a login" in err


def test_asr_download_commonvoice_unpacks_the_given_archive_once(tmp_path, capsys):
    archive = make_tar_gz(tmp_path / "cv-corpus-0.0-xx.tar.gz",
                          {"cv-corpus-0.0/xx/train.tsv": b"client_id\tpath\tsentence\n",
                           "cv-corpus-0.0/xx/clips/a.mp3": b""})
    args = ["download", "commonvoice", "--data-dir", str(tmp_path / "c"), "--archive", str(archive)]
    assert main(args) == 0
    assert (tmp_path / "c" / "cv-corpus-0.0" / "xx" / "clips" / "a.mp3").exists()
    capsys.readouterr()
    assert main(args) == 0 and "already extracted" in capsys.readouterr().err


def test_asr_download_of_a_tarball_that_is_not_the_corpus_exits_2_and_leaves_the_users_file(tmp_path, capsys):
    junk = make_tar_gz(tmp_path / "junk.tar.gz", {"somefile": b"hi"})
    code = main(["download", "an4", "--data-dir", str(tmp_path / "c"), "--archive", str(junk)])
    err = capsys.readouterr().err
    assert code == 2 and "junk.tar.gz: not the expected archive" in err and "without the folder an4/" in err
    assert "no published checksum" in err  # an unchecked archive is not called checksummed
    assert "delete" not in err  # it is the user's own file, maybe their only copy
    assert junk.is_file() and list((tmp_path / "c").iterdir()) == []  # no marker, no somefile, no leftovers


def test_asr_download_of_a_non_tar_archive_exits_2_and_leaves_no_extraction_folder(tmp_path, capsys):
    bogus = tmp_path / "an4_sphere.tar.gz"
    bogus.write_bytes(b"garbage")
    code = main(["download", "an4", "--data-dir", str(tmp_path / "c"), "--archive", str(bogus)])
    err = capsys.readouterr().err
    assert code == 2 and "cannot extract" in err and "check that --archive names the right file" in err
    assert "delete" not in err
    assert bogus.is_file() and list((tmp_path / "c").iterdir()) == []


def test_a_downloaded_archive_that_is_not_the_corpus_is_refused_with_advice_to_fetch_it_again(server, tmp_path,
                                                                                              capsys):
    make_tar_gz(server.root / "an4_sphere.tar.gz", {"an4/README": b"a mirror's stand-in"})
    code = main(["download", "an4", "--data-dir", str(tmp_path / "c"), "--url-base", server.url])
    err = capsys.readouterr().err
    assert code == 2 and "without an4/etc/an4_train.transcription" in err and "delete" in err
    assert not (tmp_path / "c" / "an4").exists()


def test_asr_download_of_an_archive_with_the_corpus_layout_succeeds(tmp_path, capsys):
    archive = make_tar_gz(tmp_path / "an4_sphere.tar.gz", {"an4/etc/an4_train.transcription": b"<s> YES </s> (a)\n"})
    assert main(["download", "an4", "--data-dir", str(tmp_path / "c"), "--archive", str(archive)]) == 0
    assert (tmp_path / "c" / "an4" / "etc" / "an4_train.transcription").is_file()
    assert "an4: ready in" in capsys.readouterr().out


def test_a_common_voice_archive_without_clips_is_refused(tmp_path, capsys):
    archive = make_tar_gz(tmp_path / "cv.tar.gz", {"cv-corpus-0.0/xx/train.tsv": b"client_id\tpath\tsentence\n"})
    assert main(["download", "commonvoice", "--data-dir", str(tmp_path / "c"), "--archive", str(archive)]) == 2
    assert "without */*/clips or */clips" in capsys.readouterr().err


# --- what users meet: links that climb out, web pages, full disks, deleted subsets ----------

def make_link_chain_tar(path, outside: str):
    """The published escape from tarfile's "data" filter (CVE-2025-4517, Python < 3.11.13): links
    nested past PATH_MAX stop its realpath() check, so a link out, and a file through it, pass."""
    comp, steps, prefix = "d" * 247, "abcdefghijklmnop", ""
    with tarfile.open(path, "w") as tar:
        for step in steps:
            folder = tarfile.TarInfo(f"{prefix}{comp}")
            folder.type = tarfile.DIRTYPE
            tar.addfile(folder)
            link = tarfile.TarInfo(f"{prefix}{step}")
            link.type, link.linkname = tarfile.SYMTYPE, comp
            tar.addfile(link)
            prefix += comp + "/"
        deep = "/".join(steps) + "/" + "l" * 254
        climb = tarfile.TarInfo(deep)
        climb.type, climb.linkname = tarfile.SYMTYPE, "../" * len(steps)
        tar.addfile(climb)
        escape = tarfile.TarInfo("escape")
        escape.type, escape.linkname = tarfile.SYMTYPE, f"{deep}/../../{outside}"
        tar.addfile(escape)
        tar.addfile(tarfile.TarInfo("escape/pwned"), io.BytesIO(b""))
    return path


def test_a_chain_of_links_climbing_out_of_the_data_dir_is_refused_and_writes_nothing_outside(tmp_path):
    (tmp_path / "outside").mkdir()
    evil = make_link_chain_tar(tmp_path / "evil.tar", "outside")
    with pytest.raises(DownloadError, match="refused: entry"):
        extract(evil, tmp_path / "data", progress=False)
    assert list((tmp_path / "outside").iterdir()) == [] and list((tmp_path / "data").iterdir()) == []


def add_link(tar, name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    tar.addfile(info)


@pytest.mark.parametrize("links, entry", [
    ([("an4/up", "../an4/etc")], "an4/up"),                                   # a link that climbs
    ([("an4/lnk", "etc"), ("an4/lnk/f.txt", None)], "an4/lnk/f.txt"),         # a file written through a link
    ([("an4/lnk", "etc"), ("an4/hard", "an4/lnk", tarfile.LNKTYPE)], "an4/hard"),  # a hard link to a link
])
def test_links_that_climb_or_that_entries_go_through_are_refused(tmp_path, links, entry):
    with tarfile.open(tmp_path / "a.tar", "w") as tar:
        tar.addfile(tarfile.TarInfo("an4/etc/x.txt"), io.BytesIO(b""))
        for name, target, *kind in links:
            if target is None:
                tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
            else:
                add_link(tar, name, target, *kind)
    with pytest.raises(DownloadError, match=f"refused: entry '{entry}'"):
        extract(tmp_path / "a.tar", tmp_path / "data", progress=False)


def test_a_link_pointing_down_inside_the_archive_is_kept(tmp_path):
    with tarfile.open(tmp_path / "a.tar", "w") as tar:
        tar.addfile(tarfile.TarInfo("an4/etc/x.txt"), io.BytesIO(b""))
        add_link(tar, "an4/latest", "etc")
    extract(tmp_path / "a.tar", tmp_path / "data", progress=False)
    assert (tmp_path / "data" / "an4" / "latest" / "x.txt").is_file()


HTML = b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head><body>busy</body></html>\n"


def test_a_web_page_served_instead_of_the_archive_is_refused_by_name_and_not_kept(server, tmp_path):
    (server.root / "an4_sphere.tar.gz").write_bytes(HTML)
    with pytest.raises(DownloadError, match=r"a web page \(503 Service Unavailable\), not the file"):
        fetch(f"{server.url}/an4_sphere.tar.gz", tmp_path / "an4_sphere.tar.gz", progress=False)
    assert list(tmp_path.iterdir()) == [server.root]  # no archive and no .part to take for one next time


def test_a_web_page_answering_a_resume_request_leaves_the_part_file_as_it_was(server, tmp_path):
    (server.root / "a.bin").write_bytes(HTML)
    server.ignore_range = True
    (tmp_path / "a.bin.part").write_bytes(BLOB[:30000])
    with pytest.raises(DownloadError, match="web page"):
        fetch(f"{server.url}/a.bin", tmp_path / "a.bin", progress=False)
    assert (tmp_path / "a.bin.part").read_bytes() == BLOB[:30000]


@pytest.fixture
def disk_full():
    """Call it to make writes past 64 KiB fail as on a full disk (EFBIG, "File too large"), in this
    process only, until the test ends."""
    import resource
    import signal

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process
    yield lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (65536, hard))
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    signal.signal(signal.SIGXFSZ, previous)


def test_a_full_disk_during_extraction_is_not_called_a_damaged_archive_and_the_archive_is_kept(tmp_path, capsys,
                                                                                                disk_full):
    archive = make_tar_gz(tmp_path / "an4_sphere.tar.gz", {"an4/etc/an4_train.transcription": b"<s> YES </s> (a)\n",
                                                             "an4/wav/big.sph": bytes(200_000)})
    data = tmp_path / "c"
    disk_full()
    code = main(["download", "an4", "--data-dir", str(data), "--archive", str(archive)])
    err = capsys.readouterr().err
    assert code == 2 and "File too large" in err and "damaged" not in err and "get it again" not in err
    assert archive.is_file() and list(data.iterdir()) == []


def test_a_full_disk_during_a_download_says_so_and_keeps_what_was_written(server, tmp_path, disk_full):
    (server.root / "a.bin").write_bytes(BLOB)
    disk_full()
    with pytest.raises(DownloadError, match=r"a.bin.part: cannot write \(File too large\)") as err:
        fetch(f"{server.url}/a.bin", tmp_path / "a.bin", progress=False)
    assert "interrupted" not in str(err.value)
    assert (tmp_path / "a.bin.part").stat().st_size > 0


def test_a_subset_deleted_after_extraction_is_extracted_again(server, tmp_path, monkeypatch):
    # Two subsets unpack into one top folder (LibriSpeech/dev-clean, LibriSpeech/test-clean).
    table = {}
    for subset in ("one", "two"):
        make_tar_gz(server.root / f"{subset}.tar.gz", {f"toy/{subset}/a.txt": subset.encode()})
        table[subset] = Archive(f"{server.url}/{subset}.tar.gz", None, f"toy/{subset}", (f"toy/{subset}/a.txt",))
    monkeypatch.setitem(download.CORPORA, "toy", (table, ("one", "two")))
    data = tmp_path / "data"
    download_corpus("toy", data, progress=False, remove_archive=True)
    (data / "toy" / "one" / "a.txt").unlink()
    (data / "toy" / "one").rmdir()
    download_corpus("toy", data, progress=False)
    assert (data / "toy" / "one" / "a.txt").read_bytes() == b"one"


def test_a_tar_gz_whose_data_was_altered_fails_its_gzip_crc_and_is_not_extracted(tmp_path):
    # Without a published checksum (AN4, speechocean762, Common Voice) gzip's CRC-32 is the only
    # check of the audio bytes; tarfile's stream mode never reads it.
    import random

    archive = make_tar_gz(tmp_path / "an4_sphere.tar.gz", {"an4/wav/a.sph": random.Random(0).randbytes(200_000)})
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside a stored block: the tar still parses
    archive.write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="CRC check failed.*damaged"):
        extract(archive, tmp_path / "data", progress=False)
    assert list((tmp_path / "data").iterdir()) == []


def test_a_corpus_folder_linked_to_another_disk_receives_the_extraction(toy, tmp_path, monkeypatch):
    # data/toy -> a folder on a bigger disk: files cannot be renamed into it, only copied (EXDEV).
    import errno
    import os

    other_disk = tmp_path / "other_disk" / "toy"
    other_disk.mkdir(parents=True)
    data = tmp_path / "data"
    data.mkdir()
    (data / "toy").symlink_to(other_disk)
    rename = os.rename

    def rename_within_one_disk(src, dst, **kw):
        if (str(other_disk) in os.path.realpath(os.path.dirname(dst))) != (str(other_disk) in os.path.realpath(src)):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), src, dst)
        return rename(src, dst, **kw)

    monkeypatch.setattr(os, "rename", rename_within_one_disk)
    download_corpus("toy", data, progress=False)
    assert (other_disk / "part1" / "b" / "c.txt").read_bytes() == b"gamma" and (data / "toy").is_symlink()
    assert is_extracted(data, "part1.tar.gz")


def test_an_archive_that_is_a_saved_web_page_is_called_one(tmp_path, capsys):
    # Common Voice's links expire: "Save link as" then keeps the sign-in page
    saved = tmp_path / "cv-corpus-17.0-xx.tar.gz"
    saved.write_bytes(HTML)
    assert main(["download", "commonvoice", "--data-dir", str(tmp_path / "c"), "--archive", str(saved)]) == 2
    err = capsys.readouterr().err
    assert "a web page (503 Service Unavailable), not an archive" in err and "damaged" not in err
