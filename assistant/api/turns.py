"""Chat turns run on worker threads, as many at once as the model can answer, their events
handed to the event loop.

llama.cpp in this process holds one context, so there turns run one at a time; a model server
with parallel slots (``ModelStatus.parallel``) answers that many together. Further requests queue
in arrival order, at most ``max_waiting`` of them; more are refused at once rather than left
waiting without end. A request whose client has gone stops its turn: one still waiting is
skipped, one answering stops generating at the next token (the service's ``cancel``), and the
turns beside it go on.

Each turn gets a conversation of its own, built from the client's messages and deleted when the
turn ends: the client holds the conversation, and what a tool asked is not kept on disk.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass

from assistant.api.errors import ApiError
from assistant.conversations import Role
from assistant.errors import USER_ERRORS
from assistant.events import AnswerFailed, AnswerFinished, ChatEvent
from assistant.service import AssistantService

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnRequest:
    question: str
    history: list[tuple[Role, str]]
    collection: str
    document: str | None
    allow_general: bool | None
    think: bool = False


class _End:
    """Put after a turn's last event."""


class RunningTurn:
    """A turn's events, read with ``async for``; :meth:`stop` when the client has gone.

    A reader may stop iterating (at the first token, say) and iterate again for the rest.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.cancel = threading.Event()
        self._loop = loop
        self._events: asyncio.Queue[ChatEvent | _End] = asyncio.Queue()
        self._ended = False

    def __aiter__(self) -> AsyncIterator[ChatEvent]:
        return self

    async def __anext__(self) -> ChatEvent:
        if self._ended:
            raise StopAsyncIteration
        event = await self._events.get()
        if isinstance(event, _End):
            self._ended = True
            raise StopAsyncIteration
        return event

    def stop(self) -> None:
        self.cancel.set()

    def put(self, event: ChatEvent | _End) -> None:
        """From the worker thread. With the loop gone (shutdown) nobody listens: stop."""
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:
            self.cancel.set()


class TurnQueue:
    """Runs turns through ``service`` in order, ``parallel`` at a time."""

    def __init__(self, service: AssistantService, max_waiting: int, parallel: int = 1) -> None:
        self._service = service
        self._max_waiting = max_waiting
        self._parallel = parallel
        self._worker = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="chat-turn")
        self._lock = threading.Lock()
        self._turns: set[RunningTurn] = set()

    def start(self, request: TurnRequest) -> RunningTurn:
        """Queue ``request``; :class:`ApiError` (429) when ``max_waiting`` turns already wait."""
        turn = RunningTurn(asyncio.get_running_loop())
        with self._lock:
            if len(self._turns) >= self._parallel + self._max_waiting:
                raise ApiError(
                    429,
                    f"the model is busy: {len(self._turns)} requests are ahead of this one; "
                    "try again shortly ([serve] max_waiting sets how many may wait)",
                    type="rate_limit_error",
                    code="busy",
                )
            self._turns.add(turn)
        self._worker.submit(self._answer, turn, request)
        return turn

    def close(self) -> None:
        """Stop every turn and wait for the workers (blocking: call off the event loop)."""
        with self._lock:
            for turn in self._turns:
                turn.stop()
        self._worker.shutdown(wait=True)

    def _answer(self, turn: RunningTurn, request: TurnRequest) -> None:
        ended: _Ended | None = None
        try:
            if not turn.cancel.is_set():
                ended = self._run(turn, request)
        except USER_ERRORS as error:  # the store failing (disk full), say
            turn.put(_failure(getattr(error, "title", "Error"), getattr(error, "message", "")))
        except Exception:
            logger.exception("a chat turn failed")
            turn.put(_failure("Server error", "the turn failed; the server's log has the details"))
        finally:
            with self._lock:
                self._turns.discard(turn)
            turn.put(_End())
        if ended is not None:
            ended.log()

    def _run(self, turn: RunningTurn, request: TurnRequest) -> _Ended | None:
        """Puts the turn's events; returns how it finished (None: it failed)."""
        service = self._service
        conversation_id = service.conversation_from(request.history)
        ended: _Ended | None = None
        try:
            events = service.ask(
                request.question,
                conversation_id=conversation_id,
                collection=request.collection,
                document=request.document,
                allow_general=request.allow_general,
                think=request.think,
                cancel=turn.cancel,
            )
            with closing(events):
                for event in events:
                    if isinstance(event, AnswerFinished):
                        ended = _Ended(event, stopped=turn.cancel.is_set())
                    turn.put(event)
        finally:
            service.delete_conversation(conversation_id)
        return ended


def _failure(title: str, message: str) -> AnswerFailed:
    return AnswerFailed(conversation_id="", title=title, message=message)


@dataclass(frozen=True)
class _Ended:
    finished: AnswerFinished
    stopped: bool
    """The client went away before the answer was complete."""

    def log(self) -> None:
        """One line per answer, once it has ended; never its text or the question."""
        tokens = self.finished.usage.completion_tokens
        if self.stopped:
            logger.info("client went away: answer stopped after %d tokens", tokens)
        else:
            cited, seconds = len(self.finished.sources), self.finished.timings.total_s
            logger.info("answered: %d tokens in %.1f s, %d passages cited", tokens, seconds, cited)
