"""Where minicpm-assistant keeps its files.

Everything hangs off one home directory when ``MINICPM_ASSISTANT_HOME`` (or ``--home``) is set,
so tests and users with several libraries can relocate config, data, models and index at once.
Without it the platform's usual config/data/cache directories are used. They hold private data
(documents' text, conversations), so they are made user-only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from rag.permissions import private_dir

APP_NAME = "minicpm-assistant"
HOME_ENV = "MINICPM_ASSISTANT_HOME"


@dataclass(frozen=True)
class Locations:
    """The directories the app reads and writes; created on demand by :meth:`ensure`."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def database_file(self) -> Path:
        return self.data_dir / "conversations.sqlite3"

    def ensure(self) -> Locations:
        """Create the directories user-only (0700), tightening any made with the umask before."""
        for path in (
            self.config_dir,
            self.data_dir,
            self.cache_dir,
            self.models_dir,
            self.index_dir,
        ):
            private_dir(path)
        return self

    @classmethod
    def under(cls, home: Path) -> Locations:
        home = home.expanduser().resolve()
        return cls(config_dir=home / "config", data_dir=home / "data", cache_dir=home / "cache")

    @classmethod
    def default(cls, home: Path | None = None) -> Locations:
        """Locations from ``home``, else ``$MINICPM_ASSISTANT_HOME``, else platformdirs."""
        if home is None and os.environ.get(HOME_ENV):
            home = Path(os.environ[HOME_ENV])
        if home is not None:
            return cls.under(home)
        return cls(
            config_dir=Path(platformdirs.user_config_dir(APP_NAME)),
            data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
            cache_dir=Path(platformdirs.user_cache_dir(APP_NAME)),
        )
