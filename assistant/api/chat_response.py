"""A turn's events as OpenAI chat completions: one JSON object, or server-sent chunks.

Beside OpenAI's fields a completion carries the library's: ``sources`` (the passages, cited ones
first, each with ``file``, ``page``, ``score``, ``text``, ``cited``), ``searched_query``,
``relevant``, ``grounded`` and, for a question the documents do not cover, ``not_mentioned`` and
``collection_covers``, as in ``ask --json``. A stream puts them in its last chunk, the one with
``finish_reason``. A model's thinking (``think``) is ``reasoning_content`` in the message or the
deltas, as vLLM sends it. Clients read these as extra fields (``model_extra`` in ``openai``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from assistant.answer_json import retrieval_json, sources_json
from assistant.display import to_json
from assistant.events import (
    AnswerFailed,
    AnswerFinished,
    ChatEvent,
    RetrievalFinished,
    ThinkingReceived,
    TokenReceived,
)

DONE = "data: [DONE]\n\n"


class AnswerTracker:
    """Follows a turn's events: the answer text as it grows, the last search and how it ended."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.text = ""
        self.retrieval: RetrievalFinished | None = None
        self.finished: AnswerFinished | None = None
        self.failed: AnswerFailed | None = None

    def add(self, event: ChatEvent) -> dict[str, str]:
        """Take ``event``; returns the stream delta it makes: answer text (none of the leading
        whitespace) as ``content``, thinking as ``reasoning_content``, or nothing."""
        if isinstance(event, TokenReceived):
            piece = event.text if self.text else event.text.lstrip()
            self.text += piece
            return {"content": piece} if piece else {}
        if isinstance(event, ThinkingReceived):
            return {"reasoning_content": event.text} if event.text else {}
        if isinstance(event, RetrievalFinished):
            self.retrieval = event
        elif isinstance(event, AnswerFinished):
            self.finished = event
        elif isinstance(event, AnswerFailed):
            self.failed = event
        return {}

    @property
    def ended(self) -> bool:
        return self.finished is not None or self.failed is not None

    def completion(self, finished: AnswerFinished) -> dict[str, Any]:
        return {
            **self._envelope("chat.completion"),
            "choices": [
                {
                    "index": 0,
                    "message": _message(finished),
                    "finish_reason": _finish_reason(finished),
                    "logprobs": None,
                }
            ],
            "usage": _usage(finished),
            **self._library_fields(finished),
        }

    def chunk(self, delta: dict[str, str]) -> dict[str, Any]:
        return {
            **self._envelope("chat.completion.chunk"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}],
        }

    def last_chunk(self, finished: AnswerFinished) -> dict[str, Any]:
        return {
            **self._envelope("chat.completion.chunk"),
            "choices": [
                {
                    "index": 0,
                    "delta": {},
                    "finish_reason": _finish_reason(finished),
                    "logprobs": None,
                }
            ],
            **self._library_fields(finished),
        }

    def usage_chunk(self, finished: AnswerFinished) -> dict[str, Any]:
        """Sent after the last chunk when the client asks (``stream_options.include_usage``)."""
        return {**self._envelope("chat.completion.chunk"), "choices": [], "usage": _usage(finished)}

    def _envelope(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.collection}

    def _library_fields(self, finished: AnswerFinished) -> dict[str, Any]:
        fields: dict[str, Any] = {"sources": sources_json(finished), "grounded": finished.grounded}
        if self.retrieval is not None:
            fields.update(retrieval_json(self.retrieval))
        return fields


def sse(data: dict[str, Any]) -> str:
    """One server-sent event; the JSON is on one line, every control character escaped."""
    return f"data: {to_json(data, indent=None)}\n\n"


def _message(finished: AnswerFinished) -> dict[str, str]:
    message = {"role": "assistant", "content": finished.answer.strip()}
    if finished.thinking.strip():
        message["reasoning_content"] = finished.thinking.strip()
    return message


def _finish_reason(finished: AnswerFinished) -> str:
    return "length" if finished.incomplete else "stop"


def _usage(finished: AnswerFinished) -> dict[str, int]:
    prompt = finished.usage.prompt_tokens
    completion = finished.usage.completion_tokens
    total = prompt + completion
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
