"""A ``/v1/chat/completions`` body read into the turn it asks for.

The client's ``messages`` are the conversation: its last user message is the question and the
user and assistant messages before it are the history the pipeline rewrites follow-ups with.
System and developer messages are left out: the pipeline writes its own instructions (answer from
the passages, cite them, say when they do not cover the question), and a client's prompt must not
turn that off. ``model`` names the collection to search (``GET /v1/models`` lists them); fields
of our own, ``document``, ``allow_general`` and ``think``, match ``ask --doc``, ``--general`` and
``--think``.
Sampling fields (``temperature``, ``max_tokens``, ...) are accepted and ignored: the settings
decide them, as for ``ask``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.api.errors import ApiError
from assistant.conversations import Role

_INSTRUCTION_ROLES = {"system", "developer"}


class _StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    include_usage: bool = False


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    role: str
    content: str | list[dict[str, Any]] | None = None


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    model: str
    messages: list[_Message] = Field(min_length=1)
    stream: bool = False
    stream_options: _StreamOptions | None = None
    n: int = 1
    document: str | None = None
    allow_general: bool | None = None
    think: bool = False


@dataclass(frozen=True)
class ChatRequest:
    collection: str
    question: str
    history: list[tuple[Role, str]]
    """Earlier user and assistant messages, oldest first."""
    stream: bool
    include_usage: bool
    document: str | None
    allow_general: bool | None
    think: bool
    """Let a model with a thinking mode think first (streamed as ``reasoning_content``)."""


def parse_chat_request(body: bytes) -> ChatRequest:
    """The turn ``body`` asks for; :class:`ApiError` (400) naming the field when it is unusable."""
    try:
        parsed = _Body.model_validate_json(body)
    except ValidationError as error:
        raise _invalid(error) from None
    if parsed.n != 1:
        raise ApiError(400, "n must be 1: one answer per request", param="n")
    conversation = [
        (index, message)
        for index, message in enumerate(parsed.messages)
        if message.role not in _INSTRUCTION_ROLES
    ]
    history: list[tuple[Role, str]] = []
    for index, message in conversation:
        if message.role not in ("user", "assistant"):
            raise ApiError(
                400,
                f"messages[{index}].role {message.role!r} is not supported; send user and "
                "assistant messages (system messages are ignored)",
                param=f"messages[{index}].role",
            )
        role: Role = "user" if message.role == "user" else "assistant"
        history.append((role, _text(message, index)))
    if not history or history[-1][0] != "user" or not history[-1][1].strip():
        raise ApiError(
            400, "the last message must be the user's question, and not empty", param="messages"
        )
    return ChatRequest(
        collection=parsed.model,
        question=history[-1][1],
        history=history[:-1],
        stream=parsed.stream,
        include_usage=parsed.stream_options is not None and parsed.stream_options.include_usage,
        document=parsed.document,
        allow_general=parsed.allow_general,
        think=parsed.think,
    )


def _text(message: _Message, index: int) -> str:
    """The message's text: a string, or its text parts joined; images and audio are refused."""
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    texts = []
    for part_index, part in enumerate(message.content):
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise ApiError(
                400,
                f"messages[{index}].content[{part_index}]: only text parts are supported "
                f"(got type {part.get('type')!r})",
                param=f"messages[{index}].content",
            )
        texts.append(part["text"])
    return "\n".join(texts)


def _invalid(error: ValidationError) -> ApiError:
    """The first problem, with the field it is in, as OpenAI names fields (``messages[0].role``)."""
    problem = error.errors(include_url=False)[0]
    if problem["type"] == "json_invalid":
        return ApiError(400, "the request body is not valid JSON")
    param = _field_name(problem["loc"])
    if not param:
        return ApiError(400, "the request body must be a JSON object")
    if problem["type"] == "missing":
        return ApiError(400, f"{param} is required", param=param)
    return ApiError(400, f"{param}: {problem['msg']}", param=param)


def _field_name(loc: tuple[int | str, ...]) -> str:
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part in ("str", "list[dict[str,any]]"):  # which branch of a union failed
            break
        else:
            name += f".{part}" if name else part
    return name
