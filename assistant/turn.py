"""One grounded chat turn: condense, retrieve, budget, prompt, stream, cite, persist.

The user's question is already on disk when this starts (the service writes it first). The
answer row is created before the first token and its text saved every :data:`PARTIAL_SAVE_S`
seconds, so a crash, a kill or a failure leaves the partial answer marked incomplete.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Literal

from assistant.budget import (
    MIN_ANSWER_TOKENS,
    ContextBudget,
    QuestionTooLongError,
    Turn,
    completed_turns,
    evidence_bound,
    fit_evidence,
    fit_history,
    split_context,
)
from assistant.citations import cited_numbers, cited_sources
from assistant.condense import standalone_query, with_context
from assistant.conversations import Conversation, ConversationStore, HistoryWindow
from assistant.errors import AssistantError
from assistant.events import (
    AnswerFailed,
    AnswerFinished,
    ChatEvent,
    RetrievalFinished,
    RetrievalStarted,
    Source,
    ThinkingReceived,
    TokenReceived,
)
from assistant.prompting import (
    PromptStyle,
    TurnMode,
    build_messages,
    not_in_documents,
    user_turn,
)
from models.engine import TextEngine
from models.errors import GenerationError, ModelError
from models.events import DoneEvent, Timings, TokenEvent, Usage
from models.sampling import SamplingParams
from models.templates import ChatMessage
from models.thinking import Piece, ThinkingSplitter, prompt_opens_thinking
from rag.errors import LibraryError
from rag.textclean import strip_controls
from rag.types import Hit, Relevance

PARTIAL_SAVE_S = 0.5
SAFETY_TOKENS = 8
"""Slack for tokens the engine may add around the prompt (BOS) that counting does not see."""

_NO_TIMINGS = Timings(ttft_s=0.0, prefill_tok_s=0.0, decode_tok_s=0.0, total_s=0.0)

Search = Callable[[str], tuple[list[Hit], Relevance]]
"""Runs a query against the library: the hits, best first, and whether they answer it."""


@dataclass(frozen=True)
class TurnOptions:
    collection: str
    document: str | None
    use_documents: bool
    allow_general: bool
    condense: bool
    answer_tokens: int
    evidence_share: float
    evidence_tokens: int | Literal["auto"]
    temperature: float | None
    think: bool = False
    """Let a model with a thinking mode think before it answers (this question only)."""
    thinking_tokens: int = 0
    """Output tokens reserved for the thinking, on top of ``answer_tokens``."""


@dataclass(frozen=True)
class _Prompt:
    text: str
    user_turn: str
    max_tokens: int


class ChatTurn:
    """Answers ``question`` in ``conversation`` (whose messages end before the question)."""

    def __init__(
        self,
        *,
        store: ConversationStore,
        engine: TextEngine,
        search: Search,
        conversation: Conversation,
        question: str,
        question_id: str,
        options: TurnOptions,
        cancel: threading.Event | None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.search = search
        self.conversation = conversation
        self.question = question
        self.question_id = question_id
        self.options = options
        self.cancel = cancel
        self.style = PromptStyle.for_template(engine.template.name)
        self.template = engine.template.with_thinking(options.think)
        self.thinks = options.think and self.template.can_think
        """Thinking is switched on in the prompt (a model may still think unasked)."""
        self.answer_id: str | None = None
        self.answer_text = ""
        self.thinking_text = ""
        self.query: str | None = None
        self.evidence: list[Source] = []

    def run(self) -> Iterator[ChatEvent]:
        """The turn's events; model and library errors end it with :class:`AnswerFailed`."""
        finished = False
        try:
            yield from self._run()
            finished = True
        except (AssistantError, ModelError, LibraryError) as error:
            self._close_answer()
            finished = True
            yield AnswerFailed(
                conversation_id=self.conversation.id,
                title=error.title,
                message=error.message,
                partial_answer=self.answer_text,
            )
        finally:
            if not finished:  # the consumer stopped listening (Ctrl-C, closed UI): keep the text
                self._close_answer()

    def _close_answer(self) -> None:
        """Keep what was generated, marked incomplete, with the evidence it was given."""
        if self.answer_id is not None:
            self.store.finish_answer(
                self.answer_id,
                text=self.answer_text,
                incomplete=True,
                grounded=bool(self.evidence),
                usage=None,
                timings=None,
                evidence=self.evidence,
                cited=cited_numbers(self.answer_text),
                thinking=self.thinking_text,
            )
            self.answer_id = None

    def _run(self) -> Iterator[ChatEvent]:
        count = self.engine.count_tokens
        options = self.options
        mode = TurnMode.DOCUMENTS if options.use_documents else TurnMode.PLAIN
        framed = build_messages(self.style, [], user_turn(self.question, [], mode, self.style))
        budget = split_context(
            self.engine.n_ctx,
            answer_tokens=options.answer_tokens,
            thinking_tokens=options.thinking_tokens if self.thinks else 0,
            evidence_share=options.evidence_share,
            fixed_tokens=count(self.template.render(framed)) + SAFETY_TOKENS,
            use_evidence=options.use_documents,
            evidence_limit=evidence_bound(
                options.evidence_tokens, self.engine.offload.n_gpu_layers
            ),
        )
        turns = completed_turns(self.conversation.messages)
        history, window = fit_history(turns, self.conversation.window, budget.history, count)

        evidence: list[Source] = []
        if options.use_documents:
            hits, relevance = yield from self._retrieve(history)
            if relevance.relevant:
                evidence = fit_evidence(hits, budget.evidence, count)
                if not evidence:  # found, but "not in your documents" would be untrue
                    raise QuestionTooLongError(
                        "passages about this were found, but with a question this long they do "
                        f"not fit the model's context ({self.engine.n_ctx} tokens). Shorten it."
                    )
            if not evidence:
                if not options.allow_general:
                    yield from self._answer_without_model(self.query or self.question, relevance)
                    return
                mode = TurnMode.GENERAL

        prompt, window, evidence = self._fit_prompt(mode, history, window, evidence, turns, budget)
        if window != self.conversation.window:
            self.store.set_window(self.conversation.id, window)
        self.store.record_sent(
            self.question_id, prompt_text=prompt.user_turn, searched_query=self.query
        )
        yield from self._generate(prompt, evidence, grounded=mode is TurnMode.DOCUMENTS)

    def _retrieve(
        self, history: list[ChatMessage]
    ) -> Generator[ChatEvent, None, tuple[list[Hit], Relevance]]:
        """Search for the question, rewritten when it is a follow-up.

        In a conversation, a question that finds nothing relevant on its own ("what happens at
        side exits?") is searched once more after the previous search, its likely topic.
        """
        previous = self._previous_query()
        use_model = self.options.condense and self.style is PromptStyle.CHAT
        queries = [
            standalone_query(
                self.question,
                engine=self.engine if use_model else None,
                history=history,
                previous_query=previous,
                cancel=self.cancel,
            )
        ]
        if previous:
            widened = with_context(self.question, previous)
            if widened not in queries:
                queries.append(widened)
        hits: list[Hit] = []
        relevance = Relevance(False)
        for query in queries:
            self.query = query
            yield RetrievalStarted(query=query, rewritten=query != self.question.strip())
            hits, relevance = self.search(query)
            yield RetrievalFinished(query=query, hits=hits, relevance=relevance)
            if relevance.relevant:
                break
        return hits, relevance

    def _previous_query(self) -> str | None:
        for message in reversed(self.conversation.messages):
            if message.role == "user":
                return message.searched_query or message.text
        return None

    def _fit_prompt(
        self,
        mode: TurnMode,
        history: list[ChatMessage],
        window: HistoryWindow,
        evidence: list[Source],
        turns: list[Turn],
        budget: ContextBudget,
    ) -> tuple[_Prompt, HistoryWindow, list[Source]]:
        """The rendered prompt, checked in real tokens against the context.

        The shares are estimates (template tokens per message vary); if the real prompt leaves
        less than the answer reserve, lower-ranked evidence goes first, then older history.
        """
        count = self.engine.count_tokens
        history_budget = budget.history
        while True:
            current = user_turn(self.question, evidence, mode, self.style)
            text = self.template.render(build_messages(self.style, history, current))
            tokens = count(text)
            room = self.engine.n_ctx - tokens - SAFETY_TOKENS
            if room >= budget.output:
                return _Prompt(text, current, budget.output), window, evidence
            if len(evidence) > 1:
                evidence = evidence[:-1]
            elif history:
                history_budget //= 2
                history, window = fit_history(turns, window, history_budget, count)
            elif room >= MIN_ANSWER_TOKENS:
                return _Prompt(text, current, room), window, evidence
            else:
                raise QuestionTooLongError(
                    f"the prompt needs {tokens} tokens and the model's context holds "
                    f"{self.engine.n_ctx}. Shorten the question."
                )

    def _answer_without_model(self, query: str, relevance: Relevance) -> Iterator[ChatEvent]:
        """Nothing relevant and general answers not allowed: say so, without the model."""
        text = not_in_documents(self.question, relevance)
        self.store.record_sent(self.question_id, prompt_text=None, searched_query=query)
        answer_id = self.store.start_answer(self.conversation.id, model=self.engine.model.name)
        usage = Usage(prompt_tokens=0, prompt_tokens_evaluated=0, completion_tokens=0)
        self.store.finish_answer(
            answer_id,
            text=text,
            incomplete=False,
            grounded=False,
            usage=usage,
            timings=None,
            evidence=[],
            cited=[],
        )
        yield TokenReceived(text)
        yield AnswerFinished(
            conversation_id=self.conversation.id,
            message_id=answer_id,
            answer=text,
            sources=[],
            usage=usage,
            timings=_NO_TIMINGS,
            grounded=False,
            searched_query=query,
        )

    def _sampling(self, max_tokens: int) -> SamplingParams:
        """The family's recommended sampling for the mode, with the turn's overrides."""
        entry = self.engine.model.entry
        recommended = self.engine.default_sampling
        if self.thinks and entry is not None and entry.thinking_sampling is not None:
            recommended = entry.thinking_sampling
        return recommended.with_overrides(
            max_tokens=max_tokens,
            temperature=self.options.temperature,
            stop=_merged(self.engine.default_sampling.stop, self.template.stop),
        )

    def _generate(
        self, prompt: _Prompt, evidence: list[Source], *, grounded: bool
    ) -> Iterator[ChatEvent]:
        """Stream the reply; its thinking block goes to :class:`ThinkingReceived` only.

        Only the answer is saved, cited and shown as the answer, so thinking never reaches the
        conversation's history either. A model that thinks unasked is split the same way.
        """
        sampling = self._sampling(prompt.max_tokens)
        self.evidence = evidence
        self.answer_id = self.store.start_answer(self.conversation.id, model=self.engine.model.name)
        splitter = ThinkingSplitter(inside=prompt_opens_thinking(prompt.text))
        answer: list[str] = []
        thinking: list[str] = []
        last_save = time.monotonic()
        done: DoneEvent | None = None
        for event in self.engine.stream(prompt.text, sampling, self.cancel):
            if isinstance(event, TokenEvent):
                yield from self._route(splitter.feed(event.text), answer, thinking)
                if time.monotonic() - last_save >= PARTIAL_SAVE_S:
                    self.store.save_partial(self.answer_id, self.answer_text)
                    last_save = time.monotonic()
            else:
                done = event
        yield from self._route(splitter.finish(), answer, thinking)
        if done is None:
            raise GenerationError("the model stopped without finishing the answer")
        answer_id, self.answer_id = self.answer_id, None
        # a reply that ends inside its thinking has no answer yet
        incomplete = done.stop_reason != "stop" or splitter.thinking
        self.store.finish_answer(
            answer_id,
            text=self.answer_text,
            incomplete=incomplete,
            grounded=grounded,
            usage=done.usage,
            timings=done.timings,
            evidence=evidence,
            cited=cited_numbers(self.answer_text),
            thinking=self.thinking_text,
        )
        yield AnswerFinished(
            conversation_id=self.conversation.id,
            message_id=answer_id,
            answer=self.answer_text,
            sources=cited_sources(self.answer_text, evidence),
            usage=done.usage,
            timings=done.timings,
            incomplete=incomplete,
            grounded=grounded,
            evidence=evidence,
            searched_query=self.query,
            thinking=self.thinking_text,
            thinking_tokens=self.engine.count_tokens(self.thinking_text),
            thinking_mode=self.thinks,
        )

    def _route(
        self, pieces: list[Piece], answer: list[str], thinking: list[str]
    ) -> Iterator[ChatEvent]:
        """Each piece to its side. A model can write escape sequences too: shown without
        control characters, and kept without the whole sequences, which often span tokens."""
        for piece in pieces:
            if piece.thinking:
                thinking.append(piece.text)
                self.thinking_text = strip_controls("".join(thinking))
                yield ThinkingReceived(strip_controls(piece.text))
            else:
                answer.append(piece.text)
                self.answer_text = strip_controls("".join(answer))
                yield TokenReceived(strip_controls(piece.text))


def _merged(*stops: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(stop for group in stops for stop in group))
