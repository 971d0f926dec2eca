"""Events of one chat turn, streamed by :meth:`assistant.service.AssistantService.ask`.

The CLI prints them and the TUI turns them into Textual messages; neither holds chat logic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.events import Timings, Usage
from rag.types import Hit, Relevance


@dataclass(frozen=True)
class Source:
    """A passage an answer cites, numbered as in the prompt ([1], [2], ...)."""

    number: int
    file: str
    page: str
    score: float
    text: str
    chunk_id: str
    heading: str | None = None
    ocr: bool = False
    """The passage was recognised from a scanned page (OCR): a word may be misread."""

    @classmethod
    def from_hit(cls, number: int, hit: Hit) -> Source:
        return cls(
            number=number,
            file=hit.file,
            page=hit.page,
            score=hit.score,
            text=hit.text,
            chunk_id=hit.chunk_id,
            heading=hit.heading,
            ocr=hit.ocr,
        )


@dataclass(frozen=True)
class TurnStarted:
    conversation_id: str


@dataclass(frozen=True)
class RetrievalStarted:
    query: str
    """What is searched: the question itself or its standalone rewrite."""
    rewritten: bool = False
    """True when ``query`` is a rewrite of a follow-up question rather than the question itself."""


@dataclass(frozen=True)
class RetrievalFinished:
    query: str
    hits: list[Hit]
    relevance: Relevance
    """Whether the hits answer the question; when not, which of its terms the documents lack."""

    @property
    def relevant(self) -> bool:
        return self.relevance.relevant


@dataclass(frozen=True)
class TokenReceived:
    """Answer text as it streams."""

    text: str


@dataclass(frozen=True)
class ThinkingReceived:
    """The model's thinking as it streams: shown apart from the answer, never saved as it."""

    text: str


NO_ANSWER = "the model returned no answer"
"""What the CLI and the TUI say when an answer came back empty (``AnswerFinished.no_answer``)."""


@dataclass(frozen=True)
class AnswerFinished:
    conversation_id: str
    message_id: str
    answer: str
    sources: list[Source]
    """Only the sources the answer cites, with their prompt numbers."""
    usage: Usage
    timings: Timings
    incomplete: bool = False
    """True when generation was cancelled or hit the token limit."""
    grounded: bool = True
    """False when the answer was not based on documents (nothing relevant, or --no-rag)."""
    evidence: list[Source] = field(default_factory=list)
    """Every passage that was put in the prompt."""
    searched_query: str | None = None
    """What the library was searched for; None when documents were not used."""
    thinking: str = ""
    """The model's thinking before the answer (kept out of ``answer``, citations and history)."""
    thinking_tokens: int = 0
    """Tokens the thinking took (part of ``usage.completion_tokens``)."""
    thinking_mode: bool = False
    """Thinking was switched on in the prompt (False when the model has no thinking mode)."""

    @property
    def no_answer(self) -> bool:
        """The model finished without writing a word: the user is told so and offered a retry,
        rather than shown an empty reply (a stopped answer is ``incomplete`` instead)."""
        return not self.incomplete and not self.answer.strip()


@dataclass(frozen=True)
class AnswerFailed:
    conversation_id: str
    title: str
    message: str
    partial_answer: str = ""


ChatEvent = (
    TurnStarted
    | RetrievalStarted
    | RetrievalFinished
    | ThinkingReceived
    | TokenReceived
    | AnswerFinished
    | AnswerFailed
)
