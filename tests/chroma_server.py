"""A real Chroma server for tests: ``chroma run`` on a free loopback port, in a temp folder."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from rag.config import StoreConfig

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ChromaServer:
    """One ``chroma run`` process; it can be stopped and started again on the same port and
    data (a restart), and hands out a fresh database per test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.folder / "server.log").open("ab")
        chroma = Path(sys.executable).with_name("chroma")
        self.process = subprocess.Popen(
            [str(chroma), "run", "--path", str(self.folder / "data"), "--host", "127.0.0.1"]
            + ["--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chroma run exited: {self.log_tail()}")
            try:
                httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1.0).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"chroma run did not answer within {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def kill(self) -> None:
        """``kill -9``: the server dies mid-request."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def new_database(self) -> StoreConfig:
        """A database of its own on this server: one test's shared library."""
        import chromadb
        from chromadb.config import Settings

        name = f"test-{uuid.uuid4().hex[:12]}"
        admin = chromadb.AdminClient(
            Settings(
                chroma_api_impl="chromadb.api.fastapi.FastAPI",
                chroma_server_host="127.0.0.1",
                chroma_server_http_port=self.port,
                anonymized_telemetry=False,
            )
        )
        admin.create_database(name)
        return StoreConfig(url=self.url, database=name)

    def log_tail(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""
