from __future__ import annotations

from pathlib import Path

import pytest

from assistant.locations import Locations
from assistant.settings import load_settings


def test_home_override_relocates_everything(tmp_path: Path) -> None:
    locations = Locations.default(tmp_path / "lib").ensure()
    made = (locations.config_dir, locations.data_dir, locations.models_dir, locations.index_dir)
    for path in made:
        assert path.is_dir()
        assert path.is_relative_to(tmp_path / "lib")


def test_env_home_is_used(isolated_home: Path) -> None:
    assert Locations.default().data_dir.is_relative_to(isolated_home)


def test_file_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[engine]\nmax_context = 2048\nn_gpu_layers = 0\n[chat]\ncollection = "work"\n',
        encoding="utf-8",
    )
    assert load_settings(config).engine.max_context == 2048
    monkeypatch.setenv("MINICPM_ASSISTANT_ENGINE__MAX_CONTEXT", "1024")
    settings = load_settings(config, engine={"model": "x.gguf", "n_gpu_layers": None})
    assert settings.engine.max_context == 1024
    assert settings.engine.n_gpu_layers == 0  # None flags do not override
    assert settings.engine.model == "x.gguf"
    assert settings.chat.collection == "work"
