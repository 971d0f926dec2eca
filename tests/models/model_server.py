"""A real OpenAI-compatible model server for tests: llama-cpp-python's own
``python -m llama_cpp.server`` on a free loopback port, started and stopped by the tests.

Start-up is bounded (:data:`START_TIMEOUT_S`); a server that exits or never answers fails the test
with the end of its log. ``stop()`` and ``start()`` again on the same port is a server restart.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures_models import smollm2_gguf

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0
SMOLLM2_ALIAS = "smollm2"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LlamaCppServer:
    """One ``llama_cpp.server`` process serving ``model`` under ``alias`` on ``port``."""

    def __init__(
        self,
        model: Path,
        log_dir: Path,
        *,
        alias: str = SMOLLM2_ALIAS,
        n_ctx: int = 2048,
        threads: int = 1,
        queue_requests: bool = False,
    ) -> None:
        self.model = model
        self.alias = alias
        self.n_ctx = n_ctx
        self.threads = threads
        """One by default: a second thread spinning on a busy 2-core machine makes it slower."""
        self.queue_requests = queue_requests
        """``--interrupt_requests false``: a request arriving while another streams waits for
        it; by default llama-cpp-python's server ends the streaming one instead."""
        self.port = free_port()
        self.log_path = log_dir / f"llama-server-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model),
            "--model_alias", self.alias,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.threads),
            "--n_threads_batch", str(self.threads),  # its default is every core
            "--logits_all", "false",  # its default keeps every prompt position's logits
            "--seed", "1",
            "--interrupt_requests", "false" if self.queue_requests else "true",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                pytest.fail(f"the model server exited at start:\n{self._log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(
            f"the model server did not answer in {START_TIMEOUT_S:g} s:\n{self._log_tail()}"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def running_server(model: Path, log_dir: Path) -> Iterator[LlamaCppServer]:
    """A started server, stopped afterwards (the body of the fixtures)."""
    server = LlamaCppServer(model, log_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def smollm2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppServer]:
    """SmolLM2-135M-Instruct (a real instruct model with a ChatML template) on a real server,
    shared by the tests that leave it running."""
    yield from running_server(smollm2_gguf(), tmp_path_factory.mktemp("model-server"))


@pytest.fixture
def own_smollm2_server(tmp_path: Path) -> Iterator[LlamaCppServer]:
    """A server of this test's own, to stop and restart."""
    yield from running_server(smollm2_gguf(), tmp_path)
