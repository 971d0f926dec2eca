"""``doctor`` names where the library is stored: the embedded store, or a Chroma server (a real
``chroma run``) and whether it answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from assistant.cli import main
from assistant.locations import Locations
from tests.chroma_server import ChromaServer, free_port


def library_check(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["doctor", "--json"])
    checks = {check["name"]: check for check in json.loads(capsys.readouterr().out)["checks"]}
    return code, checks["Library"]


def test_the_embedded_store_is_named_with_its_folder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, check = library_check(capsys)
    index = Locations.default().index_dir
    assert check["status"] == "ok" and str(index) in check["detail"]
    assert check["data"] == {"backend": "embedded", "path": str(index)}


def test_a_chroma_server_that_answers_is_named_with_its_database(
    chroma_server: ChromaServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = chroma_server.new_database()
    monkeypatch.setenv("MINICPM_ASSISTANT_STORE__URL", chroma_server.url)
    monkeypatch.setenv("MINICPM_ASSISTANT_STORE__DATABASE", store.database)
    _, check = library_check(capsys)
    assert check["status"] == "ok", check
    assert chroma_server.url in check["detail"] and store.database in check["detail"]
    data = check["data"]
    assert (data["backend"], data["url"], data["database"]) == (
        "server",
        chroma_server.url,
        store.database,
    )
    assert data["collections"] == 0 and data["server_version"]


def test_a_chroma_server_that_does_not_answer_fails_the_doctor(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MINICPM_ASSISTANT_STORE__URL", url)
    code, check = library_check(capsys)
    assert code == 1 and check["status"] == "fail"
    assert check["detail"].startswith(f"cannot reach the Chroma server at {url}")
    assert check["data"]["backend"] == "server"
