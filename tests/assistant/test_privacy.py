"""Private data stays private: user-only files, deleted conversations erased, a hidden password."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.conversations import ConversationStore
from assistant.locations import Locations
from rag.config import LibraryConfig
from rag.embedder import Embedder
from rag.library import Library
from tests.assistant.conftest import PLANTED
from tests.conftest import REPO_ROOT


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which files are created 644 and folders 755."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _everything_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if not path.is_symlink()]


def _open_to_others(root: Path) -> list[str]:
    """Every folder or file below ``root`` that group or others can access, with its mode.

    The write lock is left out: it holds a process id, no data, and sits in the user-only index
    folder like everything else."""
    return [
        f"{path} {stat.filemode(path.stat().st_mode)}"
        for path in [root, *_everything_under(root)]
        if path.stat().st_mode & 0o077 and path.name != "write.lock"
    ]


def _use_everything(locations: Locations, embedder: Embedder) -> None:
    """What a first session writes: an index (manifest and Chroma), a conversation, a setting."""
    library = Library(locations.index_dir, LibraryConfig())
    library.use_embedder(embedder)
    assert library.ingest([PLANTED]).count("indexed") == 1
    assert library.search("planted instruction")
    library.close()
    store = ConversationStore(locations.database_file)
    store.add_user_message(store.create("private"), "my medical results")
    store.close()
    main(["docs", "list", "--json"])  # the CLI path: locations, settings, the index opened again


def test_data_written_by_a_session_is_user_only(
    isolated_home: Path, embedder: Embedder, umask_022: None
) -> None:
    locations = Locations.default().ensure()
    _use_everything(locations, embedder)
    for root in (locations.config_dir, locations.data_dir, locations.cache_dir):
        assert stat.S_IMODE(root.stat().st_mode) == 0o700, root
    databases = [
        locations.database_file,
        locations.index_dir / "manifest.sqlite3",
        locations.index_dir / "chroma" / "chroma.sqlite3",
    ]
    for database in databases:
        assert stat.S_IMODE(database.stat().st_mode) == 0o600, database
    assert _open_to_others(locations.data_dir) == []  # Chroma's own files too, once it closed


def test_data_left_world_readable_by_an_earlier_version_is_tightened(
    isolated_home: Path, embedder: Embedder, umask_022: None
) -> None:
    locations = Locations.default().ensure()
    _use_everything(locations, embedder)
    for path in [locations.data_dir, *_everything_under(locations.data_dir)]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert _open_to_others(locations.data_dir)

    main(["search", "planted instruction", "--json"])
    ConversationStore(locations.database_file).close()
    assert _open_to_others(locations.data_dir) == []


def test_a_deleted_conversation_leaves_no_text_in_the_database_files(
    isolated_home: Path,
) -> None:
    path = Locations.default().ensure().database_file
    store = ConversationStore(path)
    kept = store.create("kept")
    store.add_user_message(kept, "an ordinary question")
    secret = "SECRET-diagnosis-7f3a9c " * 20
    doomed = store.create("doomed")
    store.add_user_message(doomed, secret)
    answer = store.start_answer(doomed, model="m")
    store.save_partial(answer, "partial " + secret)
    store.delete(doomed)
    files = [path, *(path.with_name(path.name + end) for end in ("-wal", "-shm"))]
    while_open = b"".join(file.read_bytes() for file in files if file.exists())
    store.close()
    after_close = b"".join(file.read_bytes() for file in files if file.exists())
    assert b"SECRET-diagnosis" not in while_open
    assert b"SECRET-diagnosis" not in after_close
    assert b"an ordinary question" in after_close


PARSE_PASSWORD = (
    "from assistant.cli import build_parser; import sys; "
    "print(build_parser().parse_args(sys.argv[1:]).password)"
)


@pytest.mark.parametrize("flag", ["--password", "--password-prompt"])
def test_the_pdf_password_can_be_typed_at_a_prompt(flag: str) -> None:
    """Asked for with getpass: with no terminal (a new session) it reads one line of stdin."""
    result = subprocess.run(
        [sys.executable, "-c", PARSE_PASSWORD, "ingest", "locked.pdf", flag],
        input="openpassword\n",
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        start_new_session=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "openpassword"
    assert "PDF password:" in result.stderr


def test_the_pdf_password_can_come_from_the_environment(
    pdf_corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MINICPM_ASSISTANT_PDF_PASSWORD", "openpassword")
    locked = pdf_corpus / "hostile" / "libreoffice-writer-password.pdf"
    assert main(["ingest", str(locked), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["indexed"] == 1, report
