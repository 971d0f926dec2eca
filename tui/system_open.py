"""Open a document in the system's viewer, when there is a desktop to show it on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def viewer_command(path: Path) -> list[str] | None:
    """The command that opens ``path``, or None on a headless machine (SSH, container, CI)."""
    if sys.platform == "darwin":
        return ["open", str(path)]
    if sys.platform.startswith("win"):
        return ["cmd", "/c", "start", "", str(path)]
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return None
    opener = shutil.which("xdg-open")
    return [opener, str(path)] if opener else None


def open_in_viewer(path: Path) -> str | None:
    """Start the viewer without waiting for it; returns a message saying why it could not."""
    if not path.exists():
        return f"{path} no longer exists; re-index the library to drop it."
    command = viewer_command(path)
    if command is None:
        return f"No desktop viewer is available here (headless terminal). The file is at {path}"
    try:
        subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as error:
        return f"Could not start the viewer ({error}). The file is at {path}"
    return None
