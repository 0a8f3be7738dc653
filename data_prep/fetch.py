"""Downloads and unpacked archives in the cache, for the corpora that are fetched from the web.

    CACHE/downloads/<sha256(url)[:16]>/<file name>   one download per URL (reused; written atomically)
    CACHE/unpacked/<sha256(archive)[:16]>/          one unpack per archive *content*, so another file
                                                     of the same name (a newer de-en.tgz) never reuses it

An unpack goes to a temporary folder that is renamed into place when complete: an interrupted unpack
never looks finished, and the next run starts it again. A download that fails (no network, dead host,
HTTP error) is one line naming the URL and the --local alternative; an unreadable archive is one line
naming the file (a bad download is deleted so that the next run fetches it again).
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from lskd.fileio import atomic_dir, atomic_path, sha256_file

from .common import DataPrepError, log

CHUNK = 1 << 20


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def download(url: str, cache_dir: Path, *, alternative: str) -> Path:
    """The file at `url`, fetched once into the cache. `alternative` says what to do offline
    (e.g. "pass --local FILE"): it ends the one-line error when the URL cannot be read."""
    name = url.rstrip("/").rsplit("/", 1)[-1] or "download"
    dest = Path(cache_dir) / "downloads" / _key(url) / name
    if dest.is_file():
        log(f"cached: {url} ({dest})")
        return dest
    log(f"downloading {url} -> {dest}")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, atomic_path(dest) as tmp, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0)
            done, shown = 0, 0
            while True:
                b = r.read(CHUNK)
                if not b:
                    break
                f.write(b)
                done += len(b)
                if done - shown >= 100 * CHUNK:
                    shown = done
                    log(f"  {done >> 20} MiB" + (f" of {total >> 20} MiB" if total else ""))
    except urllib.error.HTTPError as e:
        raise DataPrepError(f"cannot download {url} (HTTP {e.code} {e.reason}); {alternative}") from None
    except urllib.error.URLError as e:
        raise DataPrepError(f"cannot download {url} ({e.reason}); {alternative}") from None
    except (OSError, ValueError) as e:  # a timeout, a reset connection, a malformed URL
        raise DataPrepError(f"cannot download {url} ({e}); {alternative}") from None
    return dest


def unpack(archive: Path, cache_dir: Path, *, downloaded: bool = False) -> Path:
    """The folder `archive` (.tgz, .tar, .tar.gz, .zip) unpacks to, keyed by the archive's sha256."""
    archive = Path(archive)
    if not archive.is_file():
        raise DataPrepError(f"{archive}: no such archive")
    digest = sha256_file(archive)
    dest = Path(cache_dir) / "unpacked" / digest[:16]
    if dest.is_dir():
        log(f"cached: {archive} unpacked in {dest}")
        return dest
    log(f"unpacking {archive} -> {dest}")
    try:
        with atomic_dir(dest) as tmp:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as z:
                    z.extractall(tmp)
            else:
                with tarfile.open(archive) as t:
                    t.extractall(tmp, filter="data")
            (tmp / ".archive").write_text(f"{archive}\nsha256 {digest}\n", encoding="utf-8")
    except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, zlib.error, EOFError) as e:
        what = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        if downloaded:
            archive.unlink()
            raise DataPrepError(f"{archive}: the download is not a readable archive ({what}); it was deleted, "
                                f"rerun to fetch it again") from None
        raise DataPrepError(f"{archive}: not a readable .tgz/.zip archive ({what})") from None
    except OSError as e:  # disk full, permissions: the archive may be fine
        raise DataPrepError(f"cannot unpack {archive} into {dest.parent} ({e})") from None
    return dest


def fetch_and_unpack(url: str, cache_dir: Path, *, alternative: str) -> Path:
    """download() then unpack(): the folder the archive at `url` unpacks to."""
    return unpack(download(url, cache_dir, alternative=alternative), cache_dir, downloaded=True)


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(CHUNK), b""):
            h.update(b)
    return h.hexdigest()
