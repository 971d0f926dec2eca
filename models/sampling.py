"""How tokens are picked: one value object shared by catalog, engine and chat pipeline."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings for one generation call.

    The catalog carries a family's recommended values; callers override single fields with
    :meth:`with_overrides` (e.g. a configured temperature) rather than rebuilding the object.
    """

    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 40
    repeat_penalty: float = 1.05
    stop: tuple[str, ...] = ()
    min_p: float = 0.05
    """Drops tokens below this share of the top token's probability (llama.cpp's default)."""

    def with_overrides(self, **changes: Any) -> SamplingParams:
        """A copy with the given fields replaced; ``None`` values are ignored."""
        return replace(self, **{key: value for key, value in changes.items() if value is not None})
