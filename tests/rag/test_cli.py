"""The ``ingest``, ``docs`` and ``search`` commands through the real CLI entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from assistant.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_ingest_search_docs_rm_round_trip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pdf_corpus: Path
) -> None:
    folder = tmp_path / "papers"
    folder.mkdir()
    shutil.copy(pdf_corpus / "clean" / "pdflatex-4-pages.pdf", folder / "four.pdf")
    shutil.copy(pdf_corpus / "hostile" / "issue15590.pdf", folder / "broken.pdf")
    (folder / "notes.md").write_text("# Notes\n\nThe tracing compiler records hot loops.\n")

    code, out = _run(capsys, "ingest", str(folder), "--collection", "work", "--json")
    report = json.loads(out)
    assert code == 0 and report["counts"]["indexed"] == 2 and report["counts"]["failed"] == 1
    failed = next(item for item in report["files"] if item["status"] == "failed")
    assert failed["path"].endswith("broken.pdf") and "no extractable text" in failed["reason"]

    code, out = _run(
        capsys, "search", "tracing compiler hot loops", "--collection", "work", "-k", "2", "--json"
    )
    hits = json.loads(out)
    assert code == 0 and hits[0]["file"].endswith("notes.md") and hits[0]["page"] == "1"
    assert set(hits[0]) >= {"file", "page", "score", "text", "chunk_id"}

    code, out = _run(capsys, "docs", "list", "--collection", "work", "--json")
    listed = {Path(item["path"]).name: item["status"] for item in json.loads(out)}
    assert listed["four.pdf"] == "ok" and listed["broken.pdf"].startswith("failed:")

    code, out = _run(
        capsys, "docs", "rm", str(folder / "notes.md"), "--collection", "work", "--json"
    )
    assert json.loads(out)["chunks_removed"] == 1

    code, out = _run(capsys, "docs", "rm", "--all", "--collection", "work", "--json")
    assert code == 0
    code, out = _run(capsys, "docs", "list", "--json")
    assert json.loads(out) == []


def test_removing_an_unknown_collection_is_one_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["docs", "rm", "--all", "--collection", "nope"]) == 1
    assert "No such collection" in capsys.readouterr().err
