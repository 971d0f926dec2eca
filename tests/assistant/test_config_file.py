"""One setting is written into the user's config.toml; the rest of the file is left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from assistant.config_file import save_setting
from assistant.errors import ConfigError


def test_creates_the_file_and_the_table(tmp_path: Path) -> None:
    path = tmp_path / "config" / "config.toml"
    save_setting(path, "ui", "theme", 'dark "blue" 蓝')
    assert tomllib.loads(path.read_text()) == {"ui": {"theme": 'dark "blue" 蓝'}}


def test_replaces_the_value_in_its_table_only(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = (
        "# chosen by hand\n[chat]\ntheme = \"not the ui one\"\ncollection = \"papers\"\n\n"
        "[ui]  # the app\ntheme = \"nord\"  # old\n\n[[plugins]]\nname = \"x\"\n"
    )
    path.write_text(original)
    save_setting(path, "ui", "theme", "gruvbox")
    text = path.read_text()
    assert tomllib.loads(text) == {
        **tomllib.loads(original),
        "ui": {"theme": "gruvbox"},
    }
    assert text.startswith("# chosen by hand\n") and "[ui]  # the app\n" in text


def test_adds_a_key_to_an_existing_table(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[engine]\nn_gpu_layers = 0\n[chat]\nanswer_tokens = 256")
    save_setting(path, "engine", "flash_attention", False)
    save_setting(path, "chat", "evidence_share", 0.4)
    assert tomllib.loads(path.read_text()) == {
        "engine": {"n_gpu_layers": 0, "flash_attention": False},
        "chat": {"answer_tokens": 256, "evidence_share": 0.4},
    }


@pytest.mark.parametrize(
    "original",
    ['ui.theme = "nord"\n', 'ui = { theme = "nord" }\n', "[ui\n"],
    ids=["dotted key", "inline table", "broken"],
)
def test_a_layout_it_cannot_edit_is_refused_and_left_alone(tmp_path: Path, original: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(original)
    with pytest.raises(ConfigError):
        save_setting(path, "ui", "theme", "gruvbox")
    assert path.read_text() == original
