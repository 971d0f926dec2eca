"""Splitting the model's context between system prompt, evidence, history and the answer.

Everything is counted in the model's own tokens. The current question is never cut; evidence is
trimmed by rank at sentence boundaries (the best passage at a word when no sentence of it fits).
Earlier turns are sent exactly as they were (evidence included), so llama.cpp only evaluates the
new turn; once they outgrow the history share, the conversation switches for good to compact
history (bare questions and the answers), because one turn's evidence alone is about the size of
the history share and re-compacting every turn would re-evaluate the whole history each time. In
compact form only the last exchange and the new turn are evaluated. When even that outgrows the
share, the oldest turns are dropped down to :data:`COMPACT_TARGET` of it, so the cached prefix then
stays stable for several turns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from assistant.conversations import HistoryWindow, Message
from assistant.errors import AssistantError
from assistant.events import Source
from assistant.prompting import format_passage
from models.templates import ChatMessage
from rag.types import Hit

TokenCounter = Callable[[str], int]

MESSAGE_OVERHEAD = 8
"""Template tokens around one message (role markers); the real render is checked afterwards."""

MIN_ANSWER_TOKENS = 64
MIN_PASSAGE_TOKENS = 24
"""A trimmed passage shorter than this says too little to be worth its label."""

CPU_EVIDENCE_TOKENS = 768
"""Evidence bound on the CPU: at ~18 prompt tokens/s (MiniCPM-2B, 2 cores) this alone is ~40 s."""

COMPACT_TARGET = 0.5
"""Share of the history budget left in use after compaction: room to grow before the next one."""

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|(?<=[。！？；])")
_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]\s*|[^\s\u3400-\u4dbf\u4e00-\u9fff]+\s*")


class QuestionTooLongError(AssistantError):
    title = "Question too long"


@dataclass(frozen=True)
class ContextBudget:
    """Token shares of one prompt; ``fixed`` is the system prompt plus the framed question."""

    n_ctx: int
    answer: int
    fixed: int
    evidence: int
    history: int
    thinking: int = 0
    """Output reserved for the model's thinking before its answer."""

    @property
    def output(self) -> int:
        """Tokens the model may generate: its thinking and its answer."""
        return self.thinking + self.answer


def evidence_bound(setting: int | Literal["auto"], gpu_layers: int) -> int | None:
    """The evidence token bound for ``chat.evidence_tokens``; ``None`` means only the share."""
    if setting != "auto":
        return setting
    return CPU_EVIDENCE_TOKENS if gpu_layers == 0 else None


def split_context(
    n_ctx: int,
    *,
    answer_tokens: int,
    evidence_share: float,
    fixed_tokens: int,
    use_evidence: bool,
    evidence_limit: int | None = None,
    thinking_tokens: int = 0,
) -> ContextBudget:
    """Shares of ``n_ctx``; the answer reserve shrinks to a floor before a question is refused.

    Thinking, when asked for, gets its own reserve (at most a quarter of the context, like the
    answer), given up first when the prompt leaves too little. Evidence gets its share, at most
    ``evidence_limit`` tokens; what it leaves goes to history.
    """
    quarter = max(MIN_ANSWER_TOKENS, n_ctx // 4)
    answer = min(answer_tokens, quarter)
    thinking = min(thinking_tokens, quarter)
    spare = n_ctx - answer - thinking - fixed_tokens
    if spare < 0:  # thinking gives way first
        thinking = max(0, thinking + spare)
        spare = n_ctx - answer - thinking - fixed_tokens
    if spare < 0:
        answer = max(MIN_ANSWER_TOKENS, n_ctx - fixed_tokens)
        spare = n_ctx - answer - fixed_tokens
    if spare < 0:
        raise QuestionTooLongError(
            f"the question needs {fixed_tokens} tokens with the instructions; the model's context "
            f"holds {n_ctx} including {MIN_ANSWER_TOKENS} for the answer. Shorten it."
        )
    evidence = int(spare * evidence_share) if use_evidence else 0
    if evidence_limit is not None:
        evidence = min(evidence, evidence_limit)
    return ContextBudget(n_ctx, answer, fixed_tokens, evidence, spare - evidence, thinking)


@dataclass(frozen=True)
class Turn:
    """A question and the answer it got (complete or partial)."""

    question: Message
    answer: Message

    @property
    def order(self) -> int:
        return int(self.question.id)

    def messages(self, compact: bool) -> tuple[ChatMessage, ChatMessage]:
        sent = self.question.prompt_text
        user_text = self.question.text if compact or not sent else sent
        return ChatMessage("user", user_text), ChatMessage("assistant", self.answer.text)


def completed_turns(messages: Sequence[Message]) -> list[Turn]:
    """Question/answer pairs; a question whose answer never produced text is left out."""
    turns = []
    for question, answer in zip(messages, messages[1:], strict=False):
        if question.role == "user" and answer.role == "assistant" and answer.text.strip():
            turns.append(Turn(question, answer))
    return turns


def _history_cost(
    turns: Sequence[Turn], window: HistoryWindow, count: TokenCounter
) -> tuple[list[ChatMessage], int]:
    messages: list[ChatMessage] = []
    for turn in turns:
        if turn.order >= window.start:
            messages.extend(turn.messages(compact=window.compact))
    return messages, sum(count(m.content) + MESSAGE_OVERHEAD for m in messages)


def fit_history(
    turns: Sequence[Turn], window: HistoryWindow, budget: int, count: TokenCounter
) -> tuple[list[ChatMessage], HistoryWindow]:
    """Earlier turns for the prompt within ``budget`` tokens, and the window that produced them.

    The same window keeps producing the same messages (a stable prefix) until they no longer fit;
    then history turns compact and the oldest turns are dropped down to :data:`COMPACT_TARGET`.
    """
    messages, cost = _history_cost(turns, window, count)
    if cost <= budget:
        return messages, window
    target = int(budget * COMPACT_TARGET)
    for turn in turns:
        candidate = HistoryWindow(start=max(turn.order, window.start), compact=True)
        messages, cost = _history_cost(turns, candidate, count)
        if cost <= target:
            return messages, candidate
    after_all = turns[-1].order + 1 if turns else window.start
    return [], HistoryWindow(start=after_all, compact=True)


def split_sentences(text: str) -> list[str]:
    """Sentences of English or Chinese text, each keeping its end punctuation."""
    return [piece for piece in _SENTENCE_END.split(text.strip()) if piece.strip()]


def _trimmed(source: Source, budget: int, count: TokenCounter, *, best: bool) -> Source | None:
    """The longest run of leading sentences of ``source`` that fits ``budget``, if any.

    The best passage alone may be cut mid-sentence (at a word, or a Chinese character) when not
    even its first sentence fits: tables and unpunctuated text have no sentence to stop at, and
    dropping it would answer "not in your documents" about text that was found.
    """
    sentences = _longest_prefix(source, split_sentences(source.text), " ".join, budget, count)
    if sentences is not None or not best:
        return sentences
    return _longest_prefix(source, _WORD.findall(source.text.strip()), _cut_text, budget, count)


def _cut_text(words: Sequence[str]) -> str:
    return "".join(words).rstrip() + "…"


def _longest_prefix(
    source: Source,
    pieces: Sequence[str],
    join: Callable[[Sequence[str]], str],
    budget: int,
    count: TokenCounter,
) -> Source | None:
    """``source`` with the most leading ``pieces`` whose passage fits ``budget`` (a search)."""
    low, high = 0, len(pieces)
    while low < high:
        middle = (low + high + 1) // 2
        if count(format_passage(replace(source, text=join(pieces[:middle])))) <= budget:
            low = middle
        else:
            high = middle - 1
    return replace(source, text=join(pieces[:low])) if low else None


def fit_evidence(hits: Sequence[Hit], budget: int, count: TokenCounter) -> list[Source]:
    """Numbered passages, best first, within ``budget`` tokens.

    Whole passages are taken by rank; the first that does not fit is cut back to whole sentences
    (when enough of it fits to be useful; the best passage at a word if it must) and the
    lower-ranked rest are left out. What is left of the budget then widens the passages taken,
    best first, with the text around them in their document (:func:`_widened`).
    """
    sources: list[Source] = []
    left = budget
    for hit in hits:
        source = Source.from_hit(len(sources) + 1, hit)
        cost = count(format_passage(source)) + 2
        if cost <= left:
            sources.append(source)
            left -= cost
            continue
        if left >= MIN_PASSAGE_TOKENS:
            trimmed = _trimmed(source, left - 2, count, best=not sources)
            if trimmed is not None:
                sources.append(trimmed)
        return sources  # the budget is spent
    return _widened(sources, hits, left, count)


def _widened(
    sources: list[Source], hits: Sequence[Hit], left: int, count: TokenCounter
) -> list[Source]:
    """Each passage with the text after and before it while the budget lasts, best first.

    Passages are small so that the embedder matches them well; an answer often needs the
    sentences around the match. Text another passage already shows is not added twice.
    """
    widened = list(sources)
    for position, (source, hit) in enumerate(zip(sources, hits, strict=False)):
        for side, extra in (("after", hit.after), ("before", hit.before)):
            if not extra or any(extra in other.text for other in widened):
                continue
            text = f"{source.text} {extra}" if side == "after" else f"{extra} {source.text}"
            candidate = replace(source, text=text)
            cost = count(format_passage(candidate)) - count(format_passage(widened[position]))
            if cost <= left:
                widened[position], source, left = candidate, candidate, left - cost
    return widened
