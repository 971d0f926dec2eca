"""Wait for the app to reach a state instead of sleeping a fixed time (workers run in threads)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot


async def wait_until(
    pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 30.0, what: str = ""
) -> None:
    """Pause the pilot until ``condition()`` holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            notes = [f"{n.title}: {n.message}" for n in pilot.app._notifications]
            raise AssertionError(f"timed out waiting for {what or condition}; notices: {notes}")
        await pilot.pause(0.05)
