"""Messages the app's widgets and workers exchange.

Workers run in threads and hand results back with ``post_message`` (thread-safe); widgets tell
their screen what the user did. Nobody reaches into another widget's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from assistant.events import AnswerFinished, Source

if TYPE_CHECKING:
    from assistant.service import IngestProgress, IngestReport, ModelStatus


@dataclass
class PromptSubmitted(Message):
    """The user pressed Enter in the prompt."""

    text: str


@dataclass
class ConversationChosen(Message):
    """A conversation was picked in the list."""

    conversation_id: str


@dataclass
class RenameRequested(Message):
    conversation_id: str


@dataclass
class DeleteRequested(Message):
    conversation_id: str


@dataclass
class SourceChosen(Message):
    """A cited passage was selected in the sources panel."""

    source: Source


@dataclass
class AnswerStarted(Message):
    """The service stored the question; the answer is on its way."""

    conversation_id: str


@dataclass
class EvidenceFound(Message):
    """Retrieval finished; ``sources`` are the passages handed to the model."""

    sources: list[Source]
    relevant: bool


@dataclass
class TokensArrived(Message):
    text: str


@dataclass
class ThinkingArrived(Message):
    """The model's thinking as it streams (shown folded, apart from the answer)."""

    text: str


@dataclass
class AnswerCompleted(Message):
    finished: AnswerFinished


@dataclass
class ResponseFailed(Message):
    """Generation failed: the UI is restored and the question goes back into the prompt."""

    title: str
    message: str
    question: str


@dataclass
class ModelLoadProgressed(Message):
    fraction: float


@dataclass
class ModelReady(Message):
    status: ModelStatus


@dataclass
class ModelFailed(Message):
    title: str
    message: str


@dataclass
class IngestProgressed(Message):
    progress: IngestProgress


@dataclass
class IngestFinished(Message):
    report: IngestReport


@dataclass
class IngestFailed(Message):
    title: str
    message: str


@dataclass
class DownloadProgressed(Message):
    name: str
    done_bytes: int
    total_bytes: int


@dataclass
class DownloadFinished(Message):
    name: str


@dataclass
class DownloadFailed(Message):
    name: str
    title: str
    message: str


@dataclass
class EmbedderSwitchProgressed(Message):
    """Passages of ``collection`` re-embedded so far with embedding model ``name``."""

    name: str
    collection: str
    done: int
    total: int


@dataclass
class EmbedderSwitched(Message):
    name: str
    collection: str
    passages: int


@dataclass
class EmbedderSwitchFailed(Message):
    name: str
    title: str
    message: str
