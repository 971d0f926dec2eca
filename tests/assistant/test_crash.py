"""A process killed mid-answer (SIGKILL, no cleanup) leaves the history intact on disk."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from assistant.conversations import ConversationStore
from tests.conftest import REPO_ROOT


def _cli(home: Path, *args: str, delay: float = 0.0) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SLOW_CLI_DELAY": str(delay)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.assistant.slow_cli", "--home", str(home), *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _ask_json(home: Path, *args: str) -> dict[str, object]:
    out, err = _cli(home, "ask", "--no-rag", "--json", *args).communicate(timeout=120)
    return dict(json.loads(out))


def _read_until_killed(process: subprocess.Popen[bytes], min_chars: int, after_s: float) -> str:
    """Read streamed output; SIGKILL the process once enough has arrived and time has passed."""
    assert process.stdout is not None
    received = b""
    first_at: float | None = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            chunk = os.read(process.stdout.fileno(), 4096)
            assert chunk, "the process ended before it could be killed"
            received += chunk
            first_at = first_at or time.monotonic()
        if first_at and len(received) >= min_chars and time.monotonic() - first_at >= after_s:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            return received.decode()
    raise AssertionError("no answer was streamed in time")


def test_history_survives_a_kill_mid_answer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = _ask_json(home, "What is a trace tree?")
    conversation_id = str(first["conversation_id"])

    process = _cli(
        home, "ask", "--no-rag", "--conversation", conversation_id, "And side exits?", delay=0.02
    )
    printed = _read_until_killed(process, min_chars=60, after_s=1.5)
    assert process.returncode == -signal.SIGKILL

    store = ConversationStore(home / "data" / "conversations.sqlite3")
    messages = store.get(conversation_id).messages
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0].text == "What is a trace tree?"
    assert messages[1].text.strip() == first["answer"] and not messages[1].incomplete
    assert messages[2].text == "And side exits?"
    partial = messages[3]
    assert partial.incomplete
    assert len(partial.text.split()) >= 10  # saved while it streamed, not only at the end
    assert printed.startswith(partial.text.strip())
    store.close()

    third = _ask_json(home, "--conversation", conversation_id, "Thanks, and loops?")
    assert third["conversation_id"] == conversation_id and "error" not in third
    messages = (
        ConversationStore(home / "data" / "conversations.sqlite3").get(conversation_id).messages
    )
    assert len(messages) == 6 and messages[3].incomplete and not messages[5].incomplete
