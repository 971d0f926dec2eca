"""Getting a GGUF from a hub onto disk: resumable, verified, and never half-there.

Bytes go to ``NAME.part`` next to the destination; a dropped connection (or a busy server) is
retried with an HTTP ``Range`` request from where it stopped, and an interrupted pull is resumed by
the next one, with ``If-Range`` so that a file replaced upstream meanwhile starts over. Only a
file that passed the checks (sha256 when published, else the announced size and a full GGUF
header parse that also proves all tensor data is present) is renamed to its final name, so a
file that looks like a model is one.

``HF_ENDPOINT`` (as for ``huggingface_hub``) and ``MODELSCOPE_ENDPOINT`` point the two hubs
elsewhere: a mirror, or a local stand-in server in tests.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import logging
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Literal
from urllib.parse import quote, urlparse

from models.catalog import CatalogEntry
from models.errors import ModelDownloadError, ModelLoadError
from models.gguf_info import read_gguf_info

log = logging.getLogger(__name__)

Source = Literal["hf", "modelscope"]
ProgressCallback = Callable[[int, "int | None"], None]
"""Called with (bytes on disk so far, total bytes or ``None`` when the server does not say)."""

HF_DEFAULT_ENDPOINT = "https://huggingface.co"
MODELSCOPE_DEFAULT_ENDPOINT = "https://www.modelscope.cn"
_CHUNK_BYTES = 1 << 20
_USER_AGENT = "minicpm-assistant/0.1 (+llama.cpp)"


def source_url(entry: CatalogEntry, source: Source) -> str:
    """The download URL of ``entry`` on the chosen hub, honouring the endpoint overrides."""
    if source == "hf":
        repo, file, revision = entry.hf_repo, entry.hf_file, entry.hf_revision
        base = os.environ.get("HF_ENDPOINT") or HF_DEFAULT_ENDPOINT
        prefix = ""
    else:
        repo, file = entry.modelscope_repo, entry.modelscope_file
        revision = entry.modelscope_revision
        base = os.environ.get("MODELSCOPE_ENDPOINT") or MODELSCOPE_DEFAULT_ENDPOINT
        prefix = "/models"
    if repo is None or file is None:
        other = "modelscope" if source == "hf" else "hf"
        raise ModelDownloadError(
            f"{entry.name} has no GGUF on {_hub_name(source)}. {entry.notes} "
            f"Try --source {other}, or get the file another way and run "
            "`minicpm-assistant models add PATH`."
        )
    return f"{base.rstrip('/')}{prefix}/{repo}/resolve/{quote(revision)}/{quote(file)}"


def download_file(
    url: str,
    destination: Path,
    *,
    expected_size: int | None = None,
    sha256: str | None = None,
    sha256_origin: str = "published one",
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    attempts: int = 5,
    timeout_s: float = 30.0,
) -> Path:
    """Download ``url`` to ``destination`` (a GGUF), resuming any ``.part`` left by a prior try.

    ``expected_size`` is checked when given (pass it only when exact); ``sha256`` when known
    (``sha256_origin`` says where it came from, for the message when it does not match).
    Raises :class:`ModelDownloadError` with what to do next; a partial file is kept for resuming
    unless it proved corrupt.
    """
    _refuse_if_offline(url)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _disk_error(destination.parent, error) from None
    part = destination.with_name(destination.name + ".part")
    with _only_pull_of(part):
        total = _fetch_with_retries(url, part, expected_size, progress, cancel, attempts, timeout_s)
        _verify(part, destination, total, expected_size, sha256, sha256_origin)
        sync_to_disk(part)
        os.replace(part, destination)
        _version_file(part).unlink(missing_ok=True)
    return destination


@contextmanager
def _only_pull_of(part: Path) -> Iterator[None]:
    """One writer per part: a second pull of the same file would append to the part, or to the
    model it was just renamed to after passing verification."""
    lock_path = part.with_name(part.name + ".lock")
    try:
        lock = lock_path.open("a")
    except OSError as error:
        raise _disk_error(lock_path, error) from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ModelDownloadError(
                f"{part.name.removesuffix('.part')} is already being downloaded by another "
                "pull; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)


def _fetch_with_retries(
    url: str,
    part: Path,
    total: int | None,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    attempts: int,
    timeout_s: float,
) -> int | None:
    """:func:`_fetch_into` until the part is complete, resuming after transient failures."""
    failures = 0
    while True:
        try:
            return _fetch_into(url, part, total, progress, cancel, timeout_s)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            if isinstance(error, urllib.error.HTTPError) and not _is_transient(error.code):
                raise _http_error(url, error) from None
            failures += 1
            if failures >= attempts:
                raise _network_error(url, error, part) from None
            log.info("download interrupted (%s); resuming (try %d/%d)", error, failures, attempts)
            time.sleep(min(2.0 ** (failures - 1), 8.0) * 0.25)


def _fetch_into(
    url: str,
    part: Path,
    total: int | None,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    timeout_s: float,
) -> int | None:
    """One HTTP request appending to ``part``; returns the total size once the file is complete."""
    have = part.stat().st_size if part.exists() else 0
    if total is not None and have == total:
        return total
    if total is not None and have > total:
        part.unlink()
        have = 0
    version_file = _version_file(part)
    version = version_file.read_text() if have and version_file.exists() else None
    request = urllib.request.Request(url, headers=_headers(url, have, version))
    try:
        response = urllib.request.build_opener(_TokenKeepingRedirects).open(
            request, timeout=timeout_s
        )
    except urllib.error.HTTPError as error:
        if error.code == 416 and have > 0:  # nothing left to send: the part is complete...
            # ...or longer than the file (it changed upstream): verification will tell
            return _content_range(error.headers.get("Content-Range"))[1] or have
        raise
    with response:
        if response.status == 206:
            start, announced = _content_range(response.headers.get("Content-Range"))
            if start != have:  # appending these bytes would splice the file at the wrong place
                _discard(part)
                raise _WrongRange(
                    f"asked for bytes from {have:,}, the server sent a range starting at "
                    f"{start if start is not None else 'an unknown offset'}; starting over"
                )
            total = announced or total
        else:  # the server ignored the range, or the file changed since the part began
            have = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else total
        if total is not None:
            _check_disk_space(part, total - have)
        try:
            if not have:
                _remember_version(version_file, response.headers)
            out = part.open("ab" if have else "wb")
        except OSError as error:
            raise _disk_error(part, error) from None
        with out:
            if progress is not None:
                progress(have, total)
            while chunk := response.read(_CHUNK_BYTES):
                try:  # flushed here, so a full disk is reported as such, not retried as network
                    out.write(chunk)
                    out.flush()
                except OSError as error:
                    raise _disk_error(part, error) from None
                have += len(chunk)
                if progress is not None:
                    progress(have, total)
                if cancel is not None and cancel.is_set():
                    raise ModelDownloadError(
                        f"download cancelled; {have:,} bytes kept in {part.name}, "
                        "run the same pull again to resume"
                    )
    if total is not None and have < total:
        raise http.client.IncompleteRead(b"", total - have)
    return total if total is not None else have


def _verify(
    part: Path,
    destination: Path,
    total: int | None,
    expected_size: int | None,
    sha256: str | None,
    sha256_origin: str,
) -> None:
    """Checks before the rename; a part that fails them is deleted (it can never become valid)."""
    size = part.stat().st_size
    problem = None
    if expected_size is not None and size != expected_size:
        problem = f"size is {size:,} bytes, expected {expected_size:,}"
    elif total is not None and size != total:
        problem = f"size is {size:,} bytes, the server announced {total:,}"
    elif sha256 is not None and (digest := sha256_of(part)) != sha256.lower():
        problem = f"sha256 {digest} does not match the {sha256_origin}, {sha256}"
    else:
        try:
            read_gguf_info(part)
        except ModelLoadError as error:
            problem = error.message.split(": ", 1)[-1]
    if problem is not None:
        _discard(part)
        raise ModelDownloadError(
            f"{destination.name} failed verification ({problem}); the bad file was removed, "
            "pull again to retry"
        )


def sync_to_disk(path: Path) -> None:
    """Flush the file's data before it gets its final name: after a power cut, the name then
    points at the complete file or does not exist, never at a file that is partly empty."""
    with path.open("rb") as stream:
        os.fsync(stream.fileno())


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in large blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(_CHUNK_BYTES * 4):
            digest.update(block)
    return digest.hexdigest()


def _version_file(part: Path) -> Path:
    """Beside a part: the ETag (or Last-Modified) of the file version its bytes came from."""
    return part.with_name(part.name + ".version")


def _remember_version(version_file: Path, headers: http.client.HTTPMessage) -> None:
    etag = headers.get("ETag")
    version = etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")
    if version:
        version_file.write_text(version)
    else:
        version_file.unlink(missing_ok=True)


def _headers(url: str, have: int, version: str | None) -> dict[str, str]:
    """``If-Range`` makes the server send the whole file instead of the rest when the file
    changed upstream since the part began: old and new bytes are never spliced together."""
    headers = {"User-Agent": _USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
        if version:
            headers["If-Range"] = version
    token = os.environ.get("HF_TOKEN")
    hf_host = urlparse(os.environ.get("HF_ENDPOINT") or HF_DEFAULT_ENDPOINT).netloc
    if token and urlparse(url).netloc == hf_host:
        headers["Authorization"] = f"Bearer {token}"
    return headers


class _TokenKeepingRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but the hub token goes to the hub's host only, not to its CDN.

    urllib forwards every header on a redirect; ``requests`` (and so ``huggingface_hub``)
    drops ``Authorization`` when the host changes, and so does this.
    """

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlparse(newurl).netloc != urlparse(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


class _WrongRange(http.client.HTTPException):
    """A 206 answer whose ``Content-Range`` does not start where the part ends (a broken proxy
    or mirror); the part was discarded, so the retry downloads the file from the start."""


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, full size) of ``bytes 100-199/1234`` (a range sent) or ``bytes */1234``
    (none sent, no first byte); ``None`` for what the header does not say."""
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)", (header or "").strip())
    if match is None:
        return None, None
    start, total = match.groups()
    return (
        int(start) if start is not None else None,
        int(total) if total != "*" else None,
    )


def _discard(part: Path) -> None:
    """Drop a part and the version its bytes came from: the next request starts from zero."""
    part.unlink(missing_ok=True)
    _version_file(part).unlink(missing_ok=True)


def _disk_error(path: Path, error: OSError) -> ModelDownloadError:
    return ModelDownloadError(
        f"cannot write {path} ({error.strerror or error}); free some disk space or choose "
        "another home with --home, then pull again to resume"
    )


def _check_disk_space(part: Path, needed: int) -> None:
    free = shutil.disk_usage(part.parent).free
    if needed > free:
        raise ModelDownloadError(
            f"not enough disk space in {part.parent}: need {needed / 1e9:.1f} GB more, "
            f"{free / 1e9:.1f} GB free"
        )


def _refuse_if_offline(url: str) -> None:
    hf_host = urlparse(os.environ.get("HF_ENDPOINT") or HF_DEFAULT_ENDPOINT).netloc
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") and (
        urlparse(url).netloc == hf_host
    ):
        raise ModelDownloadError(
            "HF_HUB_OFFLINE is set, so nothing is downloaded from Hugging Face. Unset it, use "
            "--source modelscope, or run `minicpm-assistant models add PATH` with a GGUF you have."
        )


def _is_transient(status: int) -> bool:
    """Overloaded or failing servers (429, 5xx) are worth another try; 4xx answers are final."""
    return status == 429 or status >= 500


def _http_error(url: str, error: urllib.error.HTTPError) -> ModelDownloadError:
    if error.code in (401, 403):
        advice = "the hub refused access (gated or private repo?); set HF_TOKEN if you have one"
    elif error.code == 404:
        advice = "the file is not there (renamed upstream?); check `models list` for the source"
    else:
        advice = f"the server answered {error.code} {error.reason}; try again later"
    return ModelDownloadError(f"{url}: {advice}")


def _network_error(url: str, error: BaseException, part: Path) -> ModelDownloadError:
    host = urlparse(url).netloc
    reason = getattr(error, "reason", error)
    kept = part.stat().st_size if part.exists() else 0
    if isinstance(reason, (socket.gaierror, ConnectionRefusedError)) and not kept:
        return ModelDownloadError(
            f"cannot reach {host} ({reason}); are you offline? Download the GGUF elsewhere and "
            "run `minicpm-assistant models add PATH`, or try the other --source"
        )
    return ModelDownloadError(
        f"download from {host} kept failing ({reason}); {kept:,} bytes are kept in {part.name}, "
        "run the same pull again to resume, or use `minicpm-assistant models add PATH`"
    )


def _hub_name(source: Source) -> str:
    return "Hugging Face" if source == "hf" else "ModelScope"
