"""Settings: defaults < config.toml < ``MINICPM_ASSISTANT_*`` environment < CLI flags.

Built once in ``main()`` (or by a test) and passed down; there is no module-level instance.
Nested sections use ``__`` in the environment, e.g. ``MINICPM_ASSISTANT_ENGINE__N_GPU_LAYERS=0``.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from assistant.config_file import read_config_file
from assistant.errors import ConfigError
from models.config import EngineConfig, ServerConfig
from rag.config import LibraryConfig, StoreConfig


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

    thinking_tokens: int = Field(default=1024, ge=0)
    """Tokens reserved, on top of the answer's, for a model's thinking when a question asks for
    it (`ask --think`); at most a quarter of the context, and given up first when it is short."""

    evidence_share: float = Field(default=0.5, gt=0, lt=1)
    """Share of the context (after the answer reserve) given to retrieved evidence."""

    evidence_tokens: int | Literal["auto"] = "auto"
    """Upper bound on evidence tokens. "auto": 768 (about three passages) when the model runs on the
    CPU, where prefill (~18 tokens/s for a 2B model on 2 cores) makes prompt length the user's
    wait; no bound beyond the share when layers run on a GPU."""

    temperature: float | None = None
    """Sampling temperature; empty uses the model family's recommendation."""


class ServeConfig(BaseModel):
    """``minicpm-assistant serve``: the grounded chat as an OpenAI-compatible local API."""

    host: str = "127.0.0.1"
    """Address to listen on. Anything but loopback is reachable from other machines and needs a
    token."""

    port: int = Field(default=8765, ge=0, le=65535)
    """TCP port; 0 takes a free one (printed at start)."""

    token: SecretStr | None = None
    """Bearer token every request must carry (``Authorization: Bearer ...``); required when
    ``host`` is not loopback. Prefer this or ``MINICPM_ASSISTANT_SERVE__TOKEN`` to ``--token``,
    which other users can see in the process list."""

    max_waiting: int = Field(default=8, ge=0)
    """Requests that may wait while the model answers others (one at a time in this process,
    ``[llm] parallel`` on a model server); further ones get HTTP 429."""

    max_request_kb: int = Field(default=1024, ge=1)
    """Largest request body accepted, in KiB; larger ones get HTTP 413."""


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
    llm: ServerConfig = Field(default_factory=ServerConfig)
    library: LibraryConfig = Field(default_factory=LibraryConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    chat: ChatConfig = Field(default_factory=ChatConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
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
    A key the file should not have, or a value of the wrong type, is a :class:`ConfigError` that
    names the file (or environment variable), the key and the fix.
    """
    file_values = read_config_file(config_file)
    check_keys(config_file, file_values, Settings)

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": config_file})

    try:
        base = _FileSettings()
        merged = base.model_dump()
        for section, values in overrides.items():
            if isinstance(values, dict):
                given = {key: value for key, value in values.items() if value is not None}
                merged.setdefault(section, {}).update(given)
            elif values is not None:
                merged[section] = values
        return Settings.model_validate(merged)
    except ValidationError as error:
        raise _invalid_value(error, config_file, file_values) from None


def check_keys(
    path: Path, table: dict[str, Any], model: type[BaseModel], section: tuple[str, ...] = ()
) -> None:
    """Refuse a key ``model`` does not have (a typo would otherwise be ignored silently)."""
    for key, value in table.items():
        field = model.model_fields.get(key)
        if field is None:
            raise ConfigError(
                f"{path}: unknown setting {_key_name((*section, key))}; {_hint(key, model)}"
            )
        nested = field.annotation
        if isinstance(value, dict) and isinstance(nested, type) and issubclass(nested, BaseModel):
            check_keys(path, value, nested, (*section, key))


def _hint(key: str, model: type[BaseModel]) -> str:
    """What the user probably meant: a close name in the same table, or the table that has it."""
    if close := difflib.get_close_matches(key, list(model.model_fields), n=1):
        return f"did you mean {close[0]}? Fix or remove the line"
    if model is Settings:
        for section, field in Settings.model_fields.items():
            nested = field.annotation
            if (
                isinstance(nested, type)
                and issubclass(nested, BaseModel)
                and key in nested.model_fields
            ):
                return f"it belongs under [{section}]; move or remove the line"
    return f"the keys here are {', '.join(model.model_fields)}; fix or remove the line"


def _invalid_value(error: ValidationError, path: Path, file_values: dict[str, Any]) -> ConfigError:
    """The first bad value as one line: where it came from (file or environment), key, reason."""
    problems = error.errors()
    loc = _field_path(problems[0]["loc"])
    reasons = "; ".join(
        dict.fromkeys(problem["msg"] for problem in problems if _field_path(problem["loc"]) == loc)
    )
    value = problems[0].get("input")
    env_name = "MINICPM_ASSISTANT_" + "__".join(loc).upper()
    if env_name in {name.upper() for name in os.environ}:
        where, fix = f"environment variable {env_name}={value}", "fix or unset it"
    elif _lookup(file_values, loc):
        where, fix = f"{path}: {_key_name(loc)} = {value!r}", "fix it or remove the line"
    else:
        where, fix = f"{'.'.join(loc)} = {value!r}", "check the command-line option"
    return ConfigError(f"{where} is not valid ({reasons}); {fix}")


def _field_path(loc: tuple[int | str, ...]) -> tuple[str, ...]:
    """The settings keys in a pydantic error location (dropping union-branch and index parts)."""
    keys: list[str] = []
    model: type[BaseModel] | None = Settings
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            break
        keys.append(part)
        nested = model.model_fields[part].annotation
        model = nested if isinstance(nested, type) and issubclass(nested, BaseModel) else None
    return tuple(keys)


def _lookup(table: dict[str, Any], keys: tuple[str, ...]) -> bool:
    """Whether the nested ``keys`` are set in ``table`` (the config file's values)."""
    for key in keys:
        if not isinstance(table, dict) or key not in table:
            return False
        table = table[key]
    return bool(keys)


def _key_name(keys: tuple[str, ...]) -> str:
    """``[engine] n_gpu_layers`` as the user writes it in config.toml."""
    if len(keys) == 1:
        return keys[0]
    return f"[{'.'.join(keys[:-1])}] {keys[-1]}"
