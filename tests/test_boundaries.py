"""The headless packages must work without Textual, and the layers must not be crossed."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_headless_packages_import_without_textual() -> None:
    code = (
        "import sys, pkgutil, importlib\n"
        "import assistant, rag, models\n"
        "for pkg in (assistant, rag, models):\n"
        "    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if info.name.startswith('assistant.cli') or info.name.endswith('__main__'):\n"
        "            continue\n"
        "        importlib.import_module(info.name)\n"
        "import assistant.cli\n"
        "assistant.cli.build_parser()\n"
        "loaded = [m for m in sys.modules if m == 'textual' or m.startswith('textual.')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


LINT_IMPORTS = (
    "import sys; from importlinter.cli import lint_imports_command as run; sys.exit(run())"
)


def test_import_contracts_hold() -> None:
    result = subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout
