"""Shared fixtures: every test gets its own home directory, so nothing touches the user's files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chroma_server import ChromaServer

REPO_ROOT = Path(__file__).resolve().parent.parent
PDF_CORPUS = REPO_ROOT.parent / "shared" / "pdf-corpus"


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point MINICPM_ASSISTANT_HOME at a fresh directory and keep hubs offline."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MINICPM_ASSISTANT_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    for name in list(os.environ):
        if name.startswith("MINICPM_ASSISTANT_") and name != "MINICPM_ASSISTANT_HOME":
            monkeypatch.delenv(name)
    return home


@pytest.fixture
def pdf_corpus() -> Path:
    if not PDF_CORPUS.is_dir():
        pytest.fail(f"the shared PDF corpus is missing at {PDF_CORPUS}")
    return PDF_CORPUS


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A real ``chroma run`` on a free loopback port for the whole session (bounded start,
    stopped at the end); tests take a database of their own with ``new_database()``."""
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server"))
    server.start()
    yield server
    server.stop()
