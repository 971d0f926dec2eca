"""A conversation as Markdown (to read or share) or JSON (to process), with its sources.

Both are printed to terminals, so the Markdown carries no control characters (titles and file
names on one line each) and the JSON escapes them (:mod:`assistant.display`).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, Literal

from assistant.conversations import Conversation, Message
from assistant.display import terminal_safe
from assistant.display import to_json as json_text
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
    lines = [f"# {terminal_safe(conversation.title or 'Conversation', one_line=True)}", ""]
    lines.append(f"- Conversation: `{conversation.id}`")
    lines.append(f"- Started: {timestamp(conversation.created_at)}")
    if conversation.model:
        lines.append(f"- Model: {conversation.model}")
    if conversation.collection:
        lines.append(f"- Collection: {conversation.collection}")
    lines.append("")
    for message in conversation.messages:
        lines.extend(_message_markdown(message))
    return terminal_safe("\n".join(lines).rstrip() + "\n")


def _message_markdown(message: Message) -> list[str]:
    if message.role == "user":
        lines = [f"## You · {timestamp(message.created_at)}", "", message.text.strip(), ""]
        if message.searched_query and message.searched_query != message.text.strip():
            lines += [f"*Searched for:* {message.searched_query}", ""]
        return lines
    by = f" ({message.model})" if message.model else ""
    lines = [f"## Assistant{by} · {timestamp(message.created_at)}", ""]
    if message.thinking:
        lines += [
            "<details><summary>Thinking</summary>",
            "",
            message.thinking.strip(),
            "",
            "</details>",
            "",
        ]
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
        lines += [f"- [{s.number}] {_file(s)}, page {s.page}" for s in message.evidence]
        lines.append("")
    return lines


def _source_markdown(source: Source) -> str:
    text = " ".join(source.text.split())
    if len(text) > QUOTE_CHARS:
        text = text[: QUOTE_CHARS - 1].rstrip() + "…"
    return f"- [{source.number}] {_file(source)}, page {source.page}: “{text}”"


def _file(source: Source) -> str:
    return terminal_safe(source.file, one_line=True)


def to_json(conversation: Conversation) -> str:
    data: dict[str, Any] = asdict(conversation)
    data.pop("window")
    data["created_at"] = _iso(conversation.created_at)
    data["updated_at"] = _iso(conversation.updated_at)
    for message in data["messages"]:
        message["created_at"] = _iso(message["created_at"])
    return json_text(data) + "\n"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()
