"""The CLI goes into the core through ``AssistantService``, as the TUI does: no command module
imports the library, the model store or what they open. The service opens only what a command
touches, so routing a one-shot command through it costs that command nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import assistant.cli
from assistant.cli import main
from assistant.locations import Locations

CLI = Path(assistant.cli.__file__).parent


@pytest.mark.parametrize(
    "command", [["models", "list", "--json"], ["docs", "embedder"]], ids=" ".join
)
def test_a_command_opens_only_what_it_uses(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``models list`` touches no library; neither touches the conversation database."""
    locations = Locations.default(None)

    assert main(command) == 0

    assert capsys.readouterr().out
    assert not locations.database_file.exists()
    if command[0] == "models":
        assert not (locations.index_dir / "manifest.sqlite3").exists()


FORBIDDEN = (
    "rag.library",
    "rag.watch",
    "rag.store",
    "rag.retriever",
    "rag.embedder",
    "models.store",
    "models.scan",
    "models.fetch",
    "models.runtime",
    "models.server_engine",
    "rag.chroma_server",
)
"""What the service opens for a command; a command module reaching for one bypasses it."""


def _imports(source: Path) -> set[str]:
    """Every module ``source`` imports, at the top, in a function or for type checking only
    (``from rag import library`` counts as ``rag.library``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _reaches(imported: set[str], module: str) -> bool:
    return any(name == module or name.startswith(f"{module}.") for name in imported)


@pytest.mark.parametrize("source", sorted(CLI.glob("*.py")), ids=lambda path: path.name)
def test_no_command_module_imports_the_library_or_the_model_store(source: Path) -> None:
    imported = _imports(source)

    assert [module for module in FORBIDDEN if _reaches(imported, module)] == []


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    """A module that bypasses the service in each way Python allows is caught each time."""
    source = tmp_path / "bypass.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import models.store\n"
        "from rag import library\n"
        "if TYPE_CHECKING:\n"
        "    from rag.watch import FolderWatcher\n"
        "def run():\n"
        "    from models.scan import scan\n"
    )

    imported = _imports(source)

    assert [m for m in FORBIDDEN if _reaches(imported, m)] == [
        "rag.library",
        "rag.watch",
        "models.store",
        "models.scan",
    ]
