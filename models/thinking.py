"""A reply's thinking (``<think>...</think>``) told apart from its answer while it streams.

Hybrid reasoners (MiniCPM4.1, MiniCPM5) open their reply with a thinking block when their chat
template lets them think, and some models think without being asked. The block is never part of
the answer: :class:`ThinkingSplitter` routes each streamed piece to one side or the other. Tags
arrive split across tokens (``<th`` + ``ink>``), so text that may still become a tag is held
back until it can be told apart.

Only a block at the very start of the reply (after whitespace) is thinking: a ``<think>`` later
in an answer is answer text (a document can quote one), and so is an answer that never opens one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


@dataclass(frozen=True)
class Piece:
    """A run of streamed text and which side it belongs to."""

    text: str
    thinking: bool


class _State(Enum):
    START = "start"
    """Nothing but whitespace yet: the reply may still open a thinking block."""
    THINKING = "thinking"
    AFTER_THINKING = "after"
    """The block closed; whitespace before the answer is dropped."""
    ANSWER = "answer"


class ThinkingSplitter:
    """Feed it the reply's text as it streams; it returns thinking and answer pieces.

    ``inside`` says the prompt itself opened the block (templates whose generation prompt ends
    with ``<think>``), so the reply starts as thinking.
    """

    def __init__(self, *, inside: bool = False) -> None:
        self._state = _State.THINKING if inside else _State.START
        self._pending = ""

    @property
    def thinking(self) -> bool:
        """True while the reply is inside its thinking block."""
        return self._state is _State.THINKING

    def feed(self, text: str) -> list[Piece]:
        """The pieces that ``text`` completes; a possible partial tag stays pending."""
        self._pending += text
        pieces: list[Piece] = []
        while self._pending and self._step(pieces):
            pass
        return [piece for piece in pieces if piece.text]

    def finish(self) -> list[Piece]:
        """What is still pending when the stream ends: an unclosed block stays thinking."""
        rest, self._pending = self._pending, ""
        if self._state is _State.THINKING:
            return [Piece(rest, True)] if rest else []
        if self._state in (_State.START, _State.ANSWER) and rest.strip():
            return [Piece(rest, False)]
        return []

    def _step(self, pieces: list[Piece]) -> bool:
        """Consume what the current state can decide; False when it must wait for more."""
        if self._state is _State.START:
            return self._start()
        if self._state is _State.THINKING:
            return self._inside(pieces)
        if self._state is _State.AFTER_THINKING:
            stripped = self._pending.lstrip()
            if not stripped:
                self._pending = ""
                return False
            self._pending, self._state = stripped, _State.ANSWER
            return True
        pieces.append(Piece(self._pending, False))
        self._pending = ""
        return True

    def _start(self) -> bool:
        stripped = self._pending.lstrip()
        if not stripped or (len(stripped) < len(OPEN_TAG) and OPEN_TAG.startswith(stripped)):
            return False  # whitespace, or what may still become the opening tag
        if stripped.startswith(OPEN_TAG):
            self._pending, self._state = stripped[len(OPEN_TAG) :], _State.THINKING
        else:
            self._state = _State.ANSWER
        return True

    def _inside(self, pieces: list[Piece]) -> bool:
        end = self._pending.find(CLOSE_TAG)
        if end >= 0:
            pieces.append(Piece(self._pending[:end], True))
            self._pending = self._pending[end + len(CLOSE_TAG) :]
            self._state = _State.AFTER_THINKING
            return True
        held = _partial_tag_length(self._pending, CLOSE_TAG)
        cut = len(self._pending) - held
        pieces.append(Piece(self._pending[:cut], True))
        self._pending = self._pending[cut:]
        return False


def _partial_tag_length(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a beginning of ``tag``."""
    for length in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:length]):
            return length
    return 0


def split_reply(text: str, *, inside: bool = False) -> tuple[str, str]:
    """A whole reply as ``(thinking, answer)``: the splitter run over it at once."""
    splitter = ThinkingSplitter(inside=inside)
    pieces = splitter.feed(text) + splitter.finish()
    thinking = "".join(piece.text for piece in pieces if piece.thinking)
    answer = "".join(piece.text for piece in pieces if not piece.thinking)
    return thinking, answer


def prompt_opens_thinking(prompt: str) -> bool:
    """The prompt ends inside an opened thinking block (the reply continues it)."""
    tail = prompt.rstrip()
    return tail.endswith(OPEN_TAG)
