"""A local stand-in for Hugging Face / ModelScope: real HTTP on 127.0.0.1, with Range support
(and ``If-Range`` against an ETag of the file's content).

It can drop the connection part-way through a file (once per path), as flaky networks do, answer
a range request with the wrong range, as broken proxies do, and it records every request so tests
can check that a resumed download asked for the right range.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class HubState:
    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: dict[str, int] = field(default_factory=dict)
    """Path → byte count after which the next response for it is cut off (then forgotten)."""
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    """(path, Range header) of every GET."""
    honour_ranges: bool = True
    """False: answer every request with the whole file (200), like servers without Range."""
    redirects: dict[str, str] = field(default_factory=dict)
    """Path → absolute URL it answers 302 to, as the hub does for files kept on a CDN."""
    authorized: list[str] = field(default_factory=list)
    """Paths of the GETs that carried an Authorization header."""
    fail_once: dict[str, int] = field(default_factory=dict)
    """Path → HTTP status the next request for it gets instead of the file (then forgotten)."""
    wrong_range_once: dict[str, int | None] = field(default_factory=dict)
    """Path → where the next ranged answer for it really starts, whatever was asked (then
    forgotten), as a broken proxy or mirror does; its ``Content-Range`` says so truthfully, or
    is left out when the value is ``None``."""


class _Handler(BaseHTTPRequestHandler):
    state: HubState

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self.state.requests.append((self.path, self.headers.get("Range")))
        if "Authorization" in self.headers:
            self.state.authorized.append(self.path)
        if (status := self.state.fail_once.pop(self.path, None)) is not None:
            self.send_error(status)
            return
        if self.path in self.state.redirects:
            self.send_response(302)
            self.send_header("Location", self.state.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        etag = f'"{hashlib.sha256(body).hexdigest()}"'
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        still_same = self.headers.get("If-Range", etag) == etag
        if match and self.state.honour_ranges and still_same:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            announce = True
            if self.path in self.state.wrong_range_once:
                wrong = self.state.wrong_range_once.pop(self.path)
                start, announce = wrong or 0, wrong is not None
            self.send_response(206)
            if announce:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("ETag", etag)
        self.end_headers()
        drop = self.state.drop_after.pop(self.path, None)
        if drop is not None and drop > start:
            self.wfile.write(body[start:drop])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read ``state.requests`` instead."""


@contextmanager
def running_hub() -> Iterator[tuple[str, HubState]]:
    """Serve a fresh :class:`HubState` on a free port; yields (base URL, state)."""
    state = HubState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
