"""Commands that use neither the library nor a model must not import what only those need.

``import chromadb`` alone took 1.1 s of ``--help``'s 2.2 s; llama.cpp, NumPy and httpx add more.
Each command runs in a fresh interpreter, as a user starts it, and reports which heavy modules
it ended up with. ``search`` is the control: it opens the library, so the probe must see Chroma.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

HEAVY = (
    "chromadb",
    "torch",
    "transformers",
    "sentence_transformers",
    "llama_cpp",
    "numpy",
    "gguf",
    "httpx",
    "huggingface_hub",
    "watchdog",
    "pypdfium2",
    "onnxruntime",
    "cv2",
    "textual",
)
"""Imported by the commands that need them, never by one that does not."""

PROBE = """
import json, sys
from assistant.cli import main
report, argv = sys.argv[1], sys.argv[2:]
try:
    code = main(argv)
except SystemExit as stop:  # argparse's --help
    code = stop.code
heavy = [name for name in HEAVY if name in sys.modules]
with open(report, "w") as file:
    json.dump({"code": code, "heavy": heavy}, file)
"""


def heavy_modules_of(command: list[str], home: Path, report: Path) -> list[str]:
    """The heavy modules loaded by the time ``minicpm-assistant COMMAND`` finished."""
    code = f"HEAVY = {HEAVY!r}\n{PROBE}"
    done = subprocess.run(
        [sys.executable, "-c", code, str(report), "--home", str(home), *command],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(report.read_text())
    assert result["code"] == 0, done.stderr
    heavy: list[str] = result["heavy"]
    return heavy


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["ask", "--help"],
        ["models", "list"],
        ["models", "list", "--json"],
        ["conversations", "list"],
    ],
    ids=" ".join,
)
def test_command_without_library_or_model_imports_nothing_heavy(
    command: list[str], tmp_path: Path
) -> None:
    assert heavy_modules_of(command, tmp_path / "home", tmp_path / "report.json") == []


def test_search_imports_the_store(tmp_path: Path) -> None:
    """The probe sees imports: a command that opens the library has Chroma loaded."""
    heavy = heavy_modules_of(["search", "anything"], tmp_path / "home", tmp_path / "report.json")
    assert "chromadb" in heavy
