"""The command's shared behaviour: global options anywhere, one clear line on errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import build_parser, main


def test_global_options_work_before_and_after_the_command(tmp_path: Path) -> None:
    parser = build_parser()
    after = parser.parse_args(["ask", "q", "--model", "m.gguf", "--home", str(tmp_path)])
    before = parser.parse_args(["--model", "m.gguf", "--home", str(tmp_path), "ask", "q"])
    nested = parser.parse_args(["models", "list", "--debug"])
    assert (after.model, after.home) == (before.model, before.home) == ("m.gguf", tmp_path)
    assert nested.debug is True and nested.model is None


def test_a_bad_model_is_one_line_and_a_non_zero_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_model = tmp_path / "notes.gguf"
    not_a_model.write_text("just text", encoding="utf-8")
    code = main(["ask", "--no-rag", "hello", "--model", str(not_a_model)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "notes.gguf" in err[0] and "Traceback" not in err[0]


def test_output_into_a_closed_pipe_exits_quietly(isolated_home: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    script = (
        "import sys; from assistant.cli import main; sys.exit(main(['models', 'list', '--json']))"
    )
    writer = subprocess.run(
        [sys.executable, "-c", script], stdout=write_end, stderr=subprocess.PIPE, text=True
    )
    os.close(write_end)
    assert writer.returncode == 141
    assert "Traceback" not in writer.stderr
