"""Turning a follow-up question into a standalone search query.

"And what about the second one?" finds nothing when searched as it is. When a question looks like
a follow-up, the local model rewrites it using the conversation: the rewrite prompt is the chat
prompt so far plus one short request, so llama.cpp reuses the cached prefix and only evaluates a
few dozen new tokens. When the model is off, is a base (completion) model, or returns something
unusable, a cheap rule joins the previous search with the new question.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence

from assistant.prompting import PromptStyle, build_messages, is_chinese
from models.engine import TextEngine
from models.errors import GenerationError
from models.events import TokenEvent
from models.templates import ChatMessage
from models.thinking import prompt_opens_thinking, split_reply

log = logging.getLogger(__name__)

CONDENSE_TOKENS = 40
MAX_QUERY_CHARS = 300
CONTEXT_CHARS = 160

_ENGLISH_REFERENCES = frozenset(
    "it its it's they them their theirs this that these those he him his she her one ones "
    "former latter above previous same such also too else more there".split()
)
_ENGLISH_OPENERS = ("and ", "what about", "how about", "but ", "so ", "then ", "why ", "why?")
_CHINESE_REFERENCES = re.compile(
    r"[它他她其该此]|这[个些种样]?|那[个些种样]?|上述|前者|后者|还有|另外|呢[？?]?$"
)
_QUERY_LABEL = re.compile(
    r"^\s*(new\s+|standalone\s+)?(search\s+)?(query|question)\s*[:：]\s*|^\s*(新问题|查询)[:：]\s*",
    re.I,
)


def looks_like_follow_up(question: str) -> bool:
    """Short questions and those leaning on earlier turns ("it", "that one", 它, 那个...呢)."""
    text = question.strip().lower()
    if is_chinese(text):
        return len(text.rstrip("？?！!。")) <= 5 or bool(_CHINESE_REFERENCES.search(text))
    words = re.findall(r"[a-z']+", text)
    if len(words) <= 3:
        return True
    return text.startswith(_ENGLISH_OPENERS) or any(w in _ENGLISH_REFERENCES for w in words)


def heuristic_query(question: str, previous_query: str | None) -> str:
    """The previous search followed by the new question, when the new one leans on it."""
    if not previous_query or not looks_like_follow_up(question):
        return question.strip()
    return with_context(question, previous_query)


def with_context(question: str, previous_query: str) -> str:
    """The new question preceded by the previous search (the conversation's topic).

    The previous search may itself carry earlier context; only its last
    :data:`CONTEXT_CHARS` characters are kept so a chain of follow-ups stays a short query.
    """
    context = " ".join(previous_query.split())
    if len(context) > CONTEXT_CHARS:
        cut = context[-CONTEXT_CHARS:]
        context = cut.split(" ", 1)[1] if " " in cut and not is_chinese(cut) else cut
    return f"{context} {question.strip()}"


def _rewrite_request(question: str) -> str:
    """Names the new question explicitly: the last question *in the history* is the old one."""
    if is_chinese(question):
        return (
            "根据上面的对话，把下面这个新问题改写成一个独立的检索查询，补全其中指代的内容。"
            f"只输出查询本身。\n新问题：{question}"
        )
    return (
        "Using the conversation above, rewrite the new question below as one standalone search "
        "query that names what it refers to. Reply with the query only.\n"
        f"New question: {question}"
    )


def _clean(reply: str, question: str) -> str | None:
    """The query from the model's reply, or None when it is not usable as one.

    A line ending in a colon ("Sure, here is the query:") introduces the query and is skipped.
    """
    stripped = (line.strip() for line in reply.splitlines())
    lines = [line for line in stripped if line and not line.endswith((":", "："))]
    if not lines:
        return None
    query = _QUERY_LABEL.sub("", lines[0]).strip().strip("\"'“”「」").strip()
    if len(query) < 2 or len(query) > max(MAX_QUERY_CHARS, 3 * len(question)):
        return None
    return query


def rewrite_with_model(
    engine: TextEngine,
    history: Sequence[ChatMessage],
    question: str,
    cancel: threading.Event | None = None,
) -> str | None:
    """Ask the model for a standalone query; None when it fails or says nothing usable."""
    messages = build_messages(PromptStyle.CHAT, history, _rewrite_request(question))
    prompt = engine.template.render(messages, add_generation_prompt=True)
    params = engine.default_sampling.with_overrides(
        max_tokens=CONDENSE_TOKENS,
        temperature=0.0,
        stop=engine.template.stop,
    )
    pieces: list[str] = []
    try:
        for event in engine.stream(prompt, params, cancel):
            if isinstance(event, TokenEvent):
                pieces.append(event.text)
    except GenerationError as error:
        log.info("query rewrite failed, using the heuristic: %s", error)
        return None
    if cancel is not None and cancel.is_set():
        return None  # a rewrite cut short is half a query
    _, reply = split_reply("".join(pieces), inside=prompt_opens_thinking(prompt))
    return _clean(reply, question)  # a model that thinks unasked: its thinking is no query


def standalone_query(
    question: str,
    *,
    engine: TextEngine | None,
    history: Sequence[ChatMessage],
    previous_query: str | None,
    cancel: threading.Event | None = None,
) -> str:
    """What to search for this question; ``engine`` None means the model may not be used.

    ``history`` is what fits the prompt; when a small context left none of it, the previous
    search still gives a follow-up its topic.
    """
    if not looks_like_follow_up(question):
        return question.strip()
    if engine is not None and history:
        rewritten = rewrite_with_model(engine, history, question, cancel)
        if rewritten:
            return rewritten
    return heuristic_query(question, previous_query)
