"""A conversation as Markdown (to read or share) or JSON (to process), with its sources."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, Literal

from assistant.conversations import Conversation, Message
from assistant.errors import UsageError
from assistant.events import Source

QUOTE_CHARS = 300


def export_conversation(conversation: Conversation, format: Literal["md", "json"]) -> str:
    if format == "md":
        return to_markdown(conversation)
    if format == "json":
        return to_json(conversation)
    raise UsageError(f"unknown export format {format!r}: use md or json")


def timestamp(seconds: float) -> str:
    """UTC time to the minute, the same on every machine."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def to_markdown(conversation: Conversation) -> str:
    lines = [f"# {conversation.title or 'Conversation'}", ""]
    lines.append(f"- Conversation: `{conversation.id}`")
    lines.append(f"- Started: {timestamp(conversation.created_at)}")
    if conversation.model:
        lines.append(f"- Model: {conversation.model}")
    if conversation.collection:
        lines.append(f"- Collection: {conversation.collection}")
    lines.append("")
    for message in conversation.messages:
        lines.extend(_message_markdown(message))
    return "\n".join(lines).rstrip() + "\n"


def _message_markdown(message: Message) -> list[str]:
    if message.role == "user":
        lines = [f"## You · {timestamp(message.created_at)}", "", message.text.strip(), ""]
        if message.searched_query and message.searched_query != message.text.strip():
            lines += [f"*Searched for:* {message.searched_query}", ""]
        return lines
    by = f" ({message.model})" if message.model else ""
    lines = [f"## Assistant{by} · {timestamp(message.created_at)}", ""]
    lines += [message.text.strip() or "*(no answer)*", ""]
    if message.incomplete:
        lines += ["*This answer is incomplete (stopped, failed or cut off).*", ""]
    if not message.grounded:
        lines += ["*Not based on your documents.*", ""]
    if message.sources:
        lines += ["**Sources**", ""]
        lines += [_source_markdown(source) for source in message.sources]
        lines.append("")
    elif message.evidence:
        lines += ["**Passages given to the model** (the answer cites none)", ""]
        lines += [f"- [{s.number}] {s.file}, page {s.page}" for s in message.evidence]
        lines.append("")
    return lines


def _source_markdown(source: Source) -> str:
    text = " ".join(source.text.split())
    if len(text) > QUOTE_CHARS:
        text = text[: QUOTE_CHARS - 1].rstrip() + "…"
    return f"- [{source.number}] {source.file}, page {source.page}: “{text}”"


def to_json(conversation: Conversation) -> str:
    data: dict[str, Any] = asdict(conversation)
    data.pop("window")
    data["created_at"] = _iso(conversation.created_at)
    data["updated_at"] = _iso(conversation.updated_at)
    for message in data["messages"]:
        message["created_at"] = _iso(message["created_at"])
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()
