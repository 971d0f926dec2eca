"""A path field that suggests the rest of a file or folder name (→ accepts the suggestion)."""

from __future__ import annotations

import os
from pathlib import Path

from textual.suggester import Suggester
from textual.widgets import Input


class PathSuggester(Suggester):
    """Completes the last path component from what exists on disk."""

    def __init__(self, *, directories_only: bool, suffix: str | None = None) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.directories_only = directories_only
        self.suffix = suffix

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        expanded = os.path.expanduser(value)
        folder, prefix = os.path.split(expanded)
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:
            return None
        for name in names:
            if not name.startswith(prefix) or name == prefix or name.startswith("."):
                continue
            candidate = Path(folder or ".", name)
            if candidate.is_dir():
                completion = name + os.sep
            elif self.directories_only or (self.suffix and not name.endswith(self.suffix)):
                continue
            else:
                completion = name
            return value[: len(value) - len(prefix)] + completion
        return None


class PathInput(Input):
    """An Input with on-disk completion; the screen validates the path when it is submitted."""

    def __init__(
        self,
        *,
        placeholder: str,
        directories_only: bool = False,
        suffix: str | None = None,
        id: str | None = None,
        compact: bool = False,
    ) -> None:
        super().__init__(
            placeholder=placeholder,
            suggester=PathSuggester(directories_only=directories_only, suffix=suffix),
            id=id,
            compact=compact,
        )

    @property
    def path(self) -> Path | None:
        text = self.value.strip()
        return Path(os.path.expanduser(text)) if text else None
