"""End to end: the real ``minicpm-assistant`` binary in a real terminal (tmux). Index
tracemonkey.pdf from the library screen, ask about it, see a streamed answer with its source,
quit, start again and find the conversation still there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BINARY = Path(sys.executable).parent / "minicpm-assistant"
QUESTION = "What is TraceMonkey?"


class Terminal:
    """One tmux session on a private server, so nothing touches the user's tmux."""

    def __init__(self, socket: str, env: dict[str, str]) -> None:
        self.socket = socket
        self.env = env

    def tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        )
        return result.stdout

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-s", "app", "-x", "120", "-y", "36", self._wrap(command))

    def restart(self, command: str) -> None:
        """Run ``command`` again in the same pane (same size)."""
        self.tmux("respawn-pane", "-k", "-t", "app", self._wrap(command))

    def _wrap(self, command: str) -> str:
        exports = " ".join(f"{name}={value}" for name, value in self.env.items())
        return f"env -u COLUMNS -u LINES {exports} {command}; echo EXITED $?; sleep 60"

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", "app", *(["-l"] if literal else []), *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-t", "app", "-p")

    def wait_for(self, condition: Callable[[str], bool], what: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if condition(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen was:\n{text}")
            time.sleep(0.5)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminal(isolated_home: Path) -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux): the end-to-end test needs it")
    env = {
        "MINICPM_ASSISTANT_HOME": str(isolated_home),
        "MINICPM_ASSISTANT_CHAT__ANSWER_TOKENS": "48",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""),
    }
    term = Terminal(f"minicpm-e2e-{os.getpid()}", env)
    yield term
    term.kill()


def test_ask_about_an_ingested_pdf_in_a_real_terminal(terminal: Terminal, pdf_corpus: Path) -> None:
    pdf = pdf_corpus / "clean" / "tracemonkey.pdf"
    terminal.start(str(BINARY))
    terminal.wait_for(lambda s: "Welcome to MiniCPM Assistant" in s, "the welcome", 60)
    terminal.keys("Escape")  # continue with the demo model
    terminal.wait_for(lambda s: "offline demo model" in s, "the demo model to load", 120)

    terminal.keys("F3")
    terminal.wait_for(lambda s: "Add & index" in s, "the library screen", 20)
    terminal.keys(str(pdf), literal=True)  # an empty library starts in the path field
    terminal.keys("Enter")
    terminal.wait_for(lambda s: "Done: 1 indexed" in s, "indexing to finish", 180)

    terminal.keys("F2")
    terminal.wait_for(lambda s: "Ask about your documents" in s, "the chat screen", 20)
    terminal.keys(QUESTION, literal=True)
    terminal.keys("Enter")
    answered = terminal.wait_for(lambda s: "tok/s ·" in s, "the answer", 180)
    assert "[1] tracemonkey.pdf" in answered, "the sources panel lists the PDF"
    assert "Traceback" not in answered

    terminal.keys("C-q")
    terminal.wait_for(lambda s: "EXITED 0" in s, "a clean exit", 30)

    terminal.restart(str(BINARY))
    again = terminal.wait_for(lambda s: QUESTION in s, "the conversation after a restart", 60)
    assert "Welcome to MiniCPM Assistant" not in again
