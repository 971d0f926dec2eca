"""Settings: defaults < config.toml < ``MINICPM_ASSISTANT_*`` environment < CLI flags.

Built once in ``main()`` (or by a test) and passed down; there is no module-level instance.
Nested sections use ``__`` in the environment, e.g. ``MINICPM_ASSISTANT_ENGINE__N_GPU_LAYERS=0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from models.config import EngineConfig
from rag.config import LibraryConfig


class ChatConfig(BaseModel):
    """How questions become grounded answers."""

    collection: str = "default"
    """Document collection searched when none is named."""

    use_documents: bool = True
    """Answer from the document library; off makes a plain chat."""

    allow_general_answers: bool = False
    """When retrieval finds nothing relevant, let the model answer from its own knowledge."""

    condense_follow_ups: bool = True
    """Rewrite follow-up questions into standalone search queries with the local model."""

    answer_tokens: int = Field(default=512, ge=16)
    """Tokens reserved for the answer."""

    evidence_share: float = Field(default=0.5, gt=0, lt=1)
    """Share of the context (after the answer reserve) given to retrieved evidence."""

    evidence_tokens: int | Literal["auto"] = "auto"
    """Upper bound on evidence tokens. "auto": 768 (about three passages) when the model runs on the
    CPU, where prefill (~18 tokens/s for a 2B model on 2 cores) makes prompt length the user's
    wait; no bound beyond the share when layers run on a GPU."""

    temperature: float | None = None
    """Sampling temperature; empty uses the model family's recommendation."""


class UIConfig(BaseModel):
    """The terminal app."""

    theme: str = "textual-dark"
    """Textual theme name."""


class Settings(BaseSettings):
    """All settings of minicpm-assistant."""

    model_config = SettingsConfigDict(
        env_prefix="MINICPM_ASSISTANT_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    engine: EngineConfig = Field(default_factory=EngineConfig)
    library: LibraryConfig = Field(default_factory=LibraryConfig)
    chat: ChatConfig = Field(default_factory=ChatConfig)
    ui: UIConfig = Field(default_factory=UIConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = settings_cls.model_config.get("toml_file")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


def load_settings(config_file: Path, **overrides: Any) -> Settings:
    """Read settings from ``config_file`` (if it exists) and the environment; ``overrides`` win.

    ``overrides`` are nested dicts, e.g. ``{"engine": {"model": "x.gguf"}}`` from CLI flags; they
    are merged into the file/env values section by section rather than replacing whole sections.
    """

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": config_file})

    base = _FileSettings()
    merged = base.model_dump()
    for section, values in overrides.items():
        if isinstance(values, dict):
            given = {key: value for key, value in values.items() if value is not None}
            merged.setdefault(section, {}).update(given)
        elif values is not None:
            merged[section] = values
    return Settings.model_validate(merged)
