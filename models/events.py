"""What a generation stream yields: text as it arrives, then one summary with usage and timings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    """Tokens in the prompt."""
    prompt_tokens_evaluated: int
    """Prompt tokens actually run through the model; the rest came from the KV cache."""
    completion_tokens: int


@dataclass(frozen=True)
class Timings:
    ttft_s: float
    """Seconds from the call to the first token of text."""
    prefill_tok_s: float
    """Evaluated prompt tokens per second."""
    decode_tok_s: float
    """Generated tokens per second after the first."""
    total_s: float


@dataclass(frozen=True)
class TokenEvent:
    text: str


@dataclass(frozen=True)
class DoneEvent:
    usage: Usage
    timings: Timings
    stop_reason: Literal["stop", "length", "cancelled"]


GenerationEvent = TokenEvent | DoneEvent
