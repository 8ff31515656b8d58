"""Downloading one file from a list of mirrors into the cache, verified, resumable, placed atomically.

    fetch_file(spec, ["https://a.example/x/", "https://b.example/y/"], cache / "fashion-mnist")

For each mirror in turn: an HTTP(S) GET with a timeout on every blocking operation (a stalled
connection fails instead of hanging), resumed with a Range request from the bytes a previous,
interrupted attempt left in `.<name>.partial` (a server that ignores the range sends the whole file,
which then replaces them); refused at once when the answer is an HTML page (a host's error or login
page served with status 200), when the declared or received size passes the file's cap, or when the
status is not 200/206. A complete download is checked (`verify`) and only then moved to its name
by the guarded writer (dualnet.outputs.publish: an os.replace after the target's checks), so the
cache never holds an unverified file under a dataset's name. A failed mirror's
bytes are discarded when they are wrong (checksum, HTML, too large) and kept for the next mirror's
resume when the connection merely dropped; when every mirror fails the partial file is removed and
one DataError names each mirror's failure. Ctrl-C keeps the partial file, so the next fetch resumes.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import pathlib
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from .. import outputs
from ..errors import DataError
from ..outputs import publish
from .atomic import PARTIAL_SUFFIX

__all__ = ["DownloadError", "RemoteFile", "fetch_file", "verify"]

TIMEOUT_S = 30.0
_BLOCK = 1 << 16
_HTML_STARTS = (b"<!doctype html", b"<html", b"<?xml", b"<head", b"<!--")


class DownloadError(DataError):
    """Every mirror failed for a file; the message lists why, and the manual route."""


@dataclass(frozen=True)
class RemoteFile:
    """A dataset file and what it must be.

    name: its file name (also its name on every mirror). size: the exact bytes of the file as
    published (None when distributions recompress it). md5: the published MD5 of those bytes.
    content_sha256 and content_size: SHA-256 and length of the decompressed content of a gzip file,
    which stays the same when a distribution recompresses it. A file is accepted when its bytes match
    `size` and `md5`, or (gzip) its decompressed content matches `content_sha256` and `content_size`.
    cap: the most bytes a download may take.
    """

    name: str
    size: int | None
    md5: str | None
    content_sha256: str | None = None
    content_size: int | None = None
    cap: int = 1 << 30


def _digests(path: pathlib.Path) -> tuple[int, str]:
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            md5.update(block)
            size += len(block)
    return size, md5.hexdigest()


def _content(path: pathlib.Path) -> tuple[int, str] | None:
    """(size, SHA-256) of a gzip file's decompressed content; None when it is not gzip or damaged."""
    sha = hashlib.sha256()
    size = 0
    try:
        with gzip.open(path, "rb") as f:
            while block := f.read(1 << 20):
                sha.update(block)
                size += len(block)
    except (OSError, EOFError, zlib.error):
        return None
    return size, sha.hexdigest()


def verify(path: pathlib.Path, spec: RemoteFile) -> str | None:
    """None when `path` is the file `spec` describes, else what is wrong with it, in words."""
    size, md5 = _digests(path)
    if spec.md5 is not None and md5 == spec.md5 and (spec.size is None or size == spec.size):
        return None
    if spec.content_sha256 is not None:
        content = _content(path)
        if content == (spec.content_size, spec.content_sha256):
            return None
        if content is None:
            return f"not a gzip file ({size:,} bytes, MD5 {md5})"
        return (f"wrong content: {content[0]:,} bytes decompressed with SHA-256 {content[1][:16]}..., expected "
                f"{spec.content_size:,} with {spec.content_sha256[:16]}...")
    if spec.size is not None and size != spec.size:
        return f"wrong size: {size:,} bytes, expected {spec.size:,}"
    return f"wrong checksum: MD5 {md5}, expected {spec.md5}"


class _Failed(Exception):
    def __init__(self, why: str, keep: bool):
        super().__init__(why)
        self.keep = keep  # the bytes received so far may be resumed from


def _get(url: str, part: pathlib.Path, spec: RemoteFile, timeout: float,
         progress: Callable[[int, int | None], None] | None) -> None:
    """Append `url`'s bytes (from part's current length) to `part`; raise _Failed on any failure."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "dualnet", "Accept-Encoding": "identity",
                                                   **({"Range": f"bytes={have}-"} if have else {})})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https only: checked)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the range starts at the end: the partial file may be whole
            return
        raise _Failed(f"HTTP {exc.code} {exc.reason}", keep=True) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Failed(f"cannot connect ({reason})", keep=True) from None
    with response:
        status = response.status
        if status == 200 and have:
            have = 0  # the server ignored the range: it sends the whole file
        elif status not in (200, 206):
            raise _Failed(f"HTTP {status}", keep=True)
        declared = response.headers.get("Content-Length")
        total = have + int(declared) if declared and declared.isdigit() else None
        if total is not None and total > spec.cap:
            raise _Failed(f"declares {total:,} bytes, more than the {spec.cap:,} accepted", keep=False)
        kind = response.headers.get("Content-Type", "")
        first = True
        with outputs.resumable(part) as out:  # a fixed name: opened without following links
            out.seek(have)
            out.truncate()
            received = have
            while True:
                try:
                    block = response.read(_BLOCK)
                except TimeoutError:
                    raise _Failed(f"timed out after {received:,} bytes (no data for {timeout:g} s)",
                                  keep=True) from None
                except OSError as exc:
                    raise _Failed(f"connection broken after {received:,} bytes ({exc})", keep=True) from None
                if first and not have and (kind.startswith("text/html") or
                                           block[:64].lstrip().lower().startswith(_HTML_STARTS)):
                    raise _Failed("answered with an HTML page instead of the file (an error or login page)",
                                  keep=False)
                first = False
                if not block:
                    break
                received += len(block)
                if received > spec.cap:
                    raise _Failed(f"sent more than the {spec.cap:,} bytes accepted", keep=False)
                out.write(block)
                if progress is not None:
                    progress(received, total)
        if total is not None and received < total:
            raise _Failed(f"connection closed after {received:,} of {total:,} bytes", keep=True)


def fetch_file(spec: RemoteFile, mirrors: list[str], folder: pathlib.Path, manual: str,
               timeout: float | None = None,
               progress: Callable[[int, int | None], None] | None = None) -> pathlib.Path:
    """Download `spec` from the first mirror (a base URL) that gives the right file into `folder`:
    its path. Raises DownloadError (naming each mirror's failure and `manual`, the way to get the file
    by hand) when none does; no partial file is left then."""
    timeout = TIMEOUT_S if timeout is None else timeout
    outputs.output_folder(folder, "dataset cache folder")
    final = folder / spec.name
    part = folder / f".{spec.name}{PARTIAL_SUFFIX}"
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + spec.name
        if not url.startswith(("https://", "http://")):
            failures.append(f"{url}: not an http(s) address")
            continue
        try:
            _get(url, part, spec, timeout, progress)
        except _Failed as exc:
            failures.append(f"{url}: {exc}")
            if not exc.keep:
                with contextlib.suppress(OSError):
                    part.unlink()
            continue
        problem = verify(part, spec)
        if problem is None:
            return publish(part, final, f"{spec.name} (a downloaded dataset file)")
        failures.append(f"{url}: {problem}")
        with contextlib.suppress(OSError):
            part.unlink()
    with contextlib.suppress(OSError):
        part.unlink()
    raise DownloadError(f"{spec.name}: no mirror gave the verified file ({'; '.join(failures) or 'no mirrors'}); "
                        f"{manual}")
