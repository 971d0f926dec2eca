"""A mistake in config.toml, the environment or the index: one line with where, what and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.cli import main
from assistant.locations import Locations


def _one_error_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def config_file(isolated_home: Path) -> Path:
    path = Locations.default().ensure().config_file
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[library]\nembeding_model = "intfloat/multilingual-e5-small"\n',
            "unknown setting [library] embeding_model; did you mean embedding_model?",
        ),
        ('theme = "nord"\n', "unknown setting theme; it belongs under [ui]"),
        ("[chat]\nspeed = 3\n", "the keys here are collection, use_documents,"),
    ],
    ids=["typo", "wrong table", "no close name"],
)
def test_an_unknown_key_is_refused_with_its_file_and_a_fix(
    config_file: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    config_file.write_text(text)
    line = _one_error_line(capsys, "docs", "list")
    assert line.startswith(f"Bad configuration: {config_file}: ")
    assert expected in line
    assert "remove the line" in line


def test_a_value_of_the_wrong_type_names_the_file_key_and_value(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file.write_text('[ui]\ntheme = "nord"\n\n[engine]\nn_gpu_layers = "lots"\n')
    line = _one_error_line(capsys, "docs", "list")
    assert line.startswith(f"Bad configuration: {config_file}: [engine] n_gpu_layers = 'lots'")
    assert "valid integer" in line and "fix it or remove the line" in line
    assert "Bad value" not in line


def test_a_bad_environment_value_names_the_variable(
    config_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text("[chat]\nanswer_tokens = 256\n")
    monkeypatch.setenv("MINICPM_ASSISTANT_CHAT__ANSWER_TOKENS", "many")
    line = _one_error_line(capsys, "docs", "list")
    assert "environment variable MINICPM_ASSISTANT_CHAT__ANSWER_TOKENS=many is not valid" in line
    assert "fix or unset it" in line


def test_invalid_toml_names_the_file(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file.write_text("[ui\ntheme = 1\n")
    assert f"{config_file}: not valid TOML" in _one_error_line(capsys, "docs", "list")


def test_a_corrupt_manifest_is_one_line_with_the_fix(
    isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir = Locations.default().ensure().index_dir
    manifest = index_dir / "manifest.sqlite3"
    manifest.write_bytes(b"this is not an SQLite database, it was overwritten " * 100)
    line = _one_error_line(capsys, "docs", "list")
    assert f"{manifest} is damaged (file is not a database)" in line
    assert f"move the folder {index_dir} aside" in line
