"""The real ``minicpm-assistant`` CLI with a scripted model that writes slowly.

Run as ``python -m tests.assistant.slow_cli ARGS``; ``SLOW_CLI_DELAY`` sets the seconds per token.
A test kills this process mid-answer to check what survives on disk.
"""

from __future__ import annotations

import os
import sys
import time

from assistant.cli import main
from assistant.service import AssistantService
from models.engine import TextEngine
from tests.assistant.fakes import FakeEngine

REPLY = " ".join(f"word{index}" for index in range(200))


def _slow_engine(*args: object) -> TextEngine:
    delay = float(os.environ.get("SLOW_CLI_DELAY", "0"))
    return FakeEngine(script=lambda prompt: REPLY, on_token=lambda index: time.sleep(delay))


if __name__ == "__main__":
    AssistantService._load = _slow_engine  # type: ignore[assignment,method-assign]
    sys.exit(main(sys.argv[1:]))
