"""Scripted stand-ins for the model and the library, for fast tests of the chat pipeline.

:class:`FakeEngine` has the shape of ``models.engine.TextEngine``. It counts tokens with a simple
word/punctuation rule, refuses (like llama.cpp) a prompt plus answer that exceeds its context, and
reports how much of each prompt it could have taken from a KV cache holding the previous one.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from models.engine import OffloadInfo
from models.errors import GenerationError
from models.events import DoneEvent, GenerationEvent, Timings, TokenEvent, Usage
from models.sampling import SamplingParams
from models.store import LocalModel
from models.templates import ChatMLTemplate, ChatTemplate
from rag.types import Hit, Relevance

_TOKEN = re.compile(r"\s+|[\u3400-\u9fff]|\w+|[^\w\s]")

Script = Callable[[str], str]
"""Maps the prompt to the reply text the fake model produces."""


def fake_tokens(text: str) -> list[str]:
    """Runs of whitespace, words, single CJK characters and punctuation marks."""
    return _TOKEN.findall(text)


@dataclass
class FakeEngine:
    script: Script = lambda prompt: "The answer is in the passages [1]."
    n_ctx: int = 2048
    template: ChatTemplate = field(default_factory=ChatMLTemplate)
    fail_after_tokens: int | None = None
    """Raise GenerationError after this many reply tokens (a model crash mid-answer)."""
    on_token: Callable[[int], None] | None = None
    """Called with the index of each token before it is yielded (to cancel or kill mid-answer)."""
    model: LocalModel = field(
        default_factory=lambda: LocalModel("fake-model", Path("fake.gguf"), None, False)
    )
    offload: OffloadInfo = field(default_factory=lambda: OffloadInfo(0, 0, "CPU", "fake"))
    default_sampling: SamplingParams = field(default_factory=SamplingParams)
    prompts: list[str] = field(default_factory=list)
    params: list[SamplingParams] = field(default_factory=list)
    evaluated: list[int] = field(default_factory=list)
    """Prompt tokens a prefix-reusing engine would evaluate, per call."""
    _cached: list[str] = field(default_factory=list)

    def count_tokens(self, text: str) -> int:
        return len(fake_tokens(text))

    def stream(
        self,
        prompt: str,
        params: SamplingParams,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationEvent]:
        tokens = fake_tokens(prompt)
        if len(tokens) + params.max_tokens > self.n_ctx:
            raise GenerationError(
                f"Requested tokens ({len(tokens) + params.max_tokens}) exceed context window "
                f"of {self.n_ctx}"
            )
        self.prompts.append(prompt)
        self.params.append(params)
        shared = _common_prefix(self._cached, tokens)
        self.evaluated.append(len(tokens) - shared)
        reply = fake_tokens(self.script(prompt))[: params.max_tokens]
        produced: list[str] = []
        stop_reason = "stop"
        for index, token in enumerate(reply):
            if cancel is not None and cancel.is_set():
                stop_reason = "cancelled"
                break
            if self.fail_after_tokens is not None and index >= self.fail_after_tokens:
                raise GenerationError("the fake model crashed")
            if self.on_token is not None:
                self.on_token(index)
            produced.append(token)
            yield TokenEvent(token)
        else:
            if len(reply) == params.max_tokens:
                stop_reason = "length"
        self._cached = tokens + produced
        yield DoneEvent(
            usage=Usage(len(tokens), len(tokens) - shared, len(produced)),
            timings=Timings(ttft_s=0.01, prefill_tok_s=100.0, decode_tok_s=10.0, total_s=0.1),
            stop_reason=stop_reason,  # type: ignore[arg-type]
        )

    def close(self) -> None:
        self._cached = []


def _common_prefix(left: Sequence[str], right: Sequence[str]) -> int:
    shared = 0
    for a, b in zip(left, right, strict=False):
        if a != b:
            break
        shared += 1
    return shared


@dataclass
class FakeLibrary:
    """Returns fixed hits for every query and records the queries; relevant above a threshold."""

    hits: list[Hit] = field(default_factory=list)
    threshold: float = 0.3
    queries: list[str] = field(default_factory=list)

    def search(
        self,
        query: str,
        *,
        collection: str = "default",
        k: int | None = None,
        document: str | None = None,
    ) -> list[Hit]:
        self.queries.append(query)
        hits = [h for h in self.hits if document is None or h.file == document]
        return hits[: k or len(hits)]

    def judge(self, hits: Sequence[Hit], query: str, collection: str = "default") -> Relevance:
        return Relevance(any(hit.score >= self.threshold for hit in hits))

    def collections(self) -> list[str]:
        return ["default"] if self.hits else []

    def close(self) -> None:
        pass


def hit(
    number: int, text: str, *, file: str = "paper.pdf", page: int = 1, score: float = 0.8
) -> Hit:
    return Hit(
        chunk_id=f"chunk-{number}",
        file=file,
        page_start=page,
        page_end=page,
        score=score,
        text=text,
    )
