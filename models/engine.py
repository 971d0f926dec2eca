"""The one narrow interface the rest of the app uses to run a model.

``assistant`` codes against :class:`TextEngine`; :class:`models.runtime.LlamaEngine` (llama.cpp in
this process) and :class:`models.server_engine.ServerEngine` (an OpenAI-compatible model server)
are the real implementations, and tests of the chat pipeline may pass a fake with the same shape.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from models.events import GenerationEvent
from models.sampling import SamplingParams
from models.store import LocalModel
from models.templates import ChatTemplate


@dataclass(frozen=True)
class OffloadInfo:
    """Where the layers run, and why: shown by the CLI, the TUI and ``doctor``."""

    n_gpu_layers: int
    total_layers: int
    backend: str
    """``CPU``, ``CUDA``, ``Metal``, ``Vulkan``, ... (the llama.cpp build's GPU backend)."""
    reason: str


class TextEngine(Protocol):
    model: LocalModel
    n_ctx: int
    template: ChatTemplate
    offload: OffloadInfo
    default_sampling: SamplingParams

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in a prompt (without the BOS token the engine adds once).

        A plain ``str`` is message text (control tokens in it are read as text); a
        :class:`models.templates.Prompt` is counted as :meth:`stream` reads it.
        """
        ...

    def stream(
        self,
        prompt: str,
        params: SamplingParams,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationEvent]:
        """``TokenEvent``s, then exactly one ``DoneEvent``; raises ``GenerationError``.

        Control tokens are read only in a :class:`models.templates.Prompt`'s markup, never in
        its message contents or in a plain ``str``.
        """
        ...

    def close(self) -> None: ...
