"""The chat screen: conversations on the left, the answer streaming in the middle, its sources
on the right. Generation runs in a thread worker; Esc stops it and keeps what was written."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Input
from textual.worker import get_current_worker

from assistant.events import (
    NO_ANSWER,
    AnswerFailed,
    AnswerFinished,
    ChatEvent,
    RetrievalFinished,
    Source,
    ThinkingReceived,
    TokenReceived,
    TurnStarted,
)
from tui.commands import Command, bindings
from tui.screens.base import AppScreen
from tui.screens.dialogs import ConfirmDialog, SourceScreen, TextPrompt
from tui.widgets.chat_log import AnswerView, ChatLog
from tui.widgets.conversation_list import ConversationList
from tui.widgets.prompt import PromptInput
from tui.widgets.sources_panel import SourcesPanel
from tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from assistant.events import Timings, Usage


def answer_note(
    *,
    model: str | None,
    decode_tok_s: float | None,
    sources: Sequence[Source],
    incomplete: bool,
    grounded: bool,
    empty: bool = False,
) -> str:
    """The line under an answer: which model, how fast, what it cites, whether it was cut, or
    that the model wrote nothing (``empty``)."""
    parts = [Path(model).name if model else "assistant"]
    if decode_tok_s:
        parts.append(f"{decode_tok_s:.1f} tok/s")
    if empty and not incomplete:
        parts.append(NO_ANSWER)
    elif sources:
        cited = ", ".join(f"[{s.number}] {Path(s.file).name} p.{s.page}" for s in sources)
        parts.append(f"sources: {cited}")
    elif grounded:
        parts.append("cites no passage")
    if not grounded:
        parts.append("not from your documents")
    if incomplete:
        parts.append("stopped (partial answer)")
    return " · ".join(parts)


class ChatScreen(AppScreen):
    @dataclass
    class TurnEvent(Message):
        """What the core said about the turn being answered, handed from the worker as it is."""

        event: ChatEvent

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]

    ACTIONS = (
        Command(
            "stop",
            "Stop generating",
            "Stop the answer, keep what is written",
            key="escape",
            label="Stop",
        ),
        Command(
            "new_conversation",
            "New conversation",
            "Start an empty conversation",
            key="ctrl+n",
            label="New chat",
        ),
        Command("rename", "Rename conversation", "Give this conversation a title"),
        Command("delete", "Delete conversation", "Delete this conversation"),
        Command(
            "search_conversations",
            "Search conversations",
            "Full-text search",
            key="ctrl+f",
            label="Search",
        ),
        Command(
            "toggle_conversations",
            "Show/hide conversations",
            "Toggle the sidebar",
            key="ctrl+b",
            label="Chats",
        ),
        Command(
            "toggle_sources",
            "Show/hide sources",
            "Toggle the sources panel",
            key="ctrl+o",
            label="Sources",
        ),
        Command("copy", "Copy conversation", "Copy it as Markdown to the clipboard"),
        Command(
            "toggle_thinking",
            "Think before answering",
            "Let a model with a thinking mode think first (on/off; Ctrl+T)",
            key="ctrl+t",
            label="Think",
            show=False,
        ),
        Command("focus_prompt", "Focus prompt", "Type a question"),
    )
    BINDINGS = bindings(ACTIONS)

    def __init__(self) -> None:
        super().__init__()
        self.conversation_id: str | None = None
        self.generating = False
        self.think = False
        """Let a model with a thinking mode think before it answers (Ctrl+T)."""
        self._cancel = threading.Event()
        self._answer: AnswerView | None = None
        self._question = ""
        """The question being answered, put back in the prompt if no answer comes."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="chat-body"):
            yield ConversationList(id="conversations")
            with Vertical(id="chat-main"):
                yield ChatLog(id="chat-log")
                yield PromptInput(id="prompt")
            yield SourcesPanel(id="sources")
        yield StatusBar(id="status")
        yield Footer()

    async def on_mount(self) -> None:
        self.refresh_conversations()
        await self.query_one(ChatLog).show_welcome()
        self.query_one(SourcesPanel).show([], note="Sources of the answer appear here.")
        self.query_one(PromptInput).focus()

    # Conversations ---------------------------------------------------------------------------

    def refresh_conversations(self) -> None:
        listing = self.query_one(ConversationList)
        query = listing.search_text.strip() or None
        ok, conversations = self.attempt(
            "list conversations", lambda: self.service.list_conversations(query)
        )
        if ok and conversations is not None:
            listing.show(conversations, self.conversation_id)

    @on(Input.Changed, "#conversation-search")
    def _search_changed(self) -> None:
        self.refresh_conversations()

    @on(ConversationList.Chosen)
    async def _open_conversation(self, event: ConversationList.Chosen) -> None:
        if self._busy("switching conversations"):
            return
        await self.open_conversation(event.conversation_id)

    async def open_conversation(self, conversation_id: str) -> None:
        """Show a stored conversation with the sources of its last answer."""
        ok, conversation = self.attempt(
            "open the conversation", lambda: self.service.get_conversation(conversation_id)
        )
        if not ok or conversation is None:
            self.refresh_conversations()
            return
        self.conversation_id = conversation_id
        log = self.query_one(ChatLog)
        await log.reset()
        last_answer = None
        for message in conversation.messages:
            if message.role == "user":
                await log.add_user(message.text)
            elif message.role == "assistant":
                await log.add_answer(
                    message.text,
                    answer_note(
                        model=message.model,
                        decode_tok_s=message.timings.decode_tok_s if message.timings else None,
                        sources=message.sources,
                        incomplete=message.incomplete,
                        grounded=message.grounded,
                        empty=not message.text.strip(),
                    ),
                    message.thinking,
                )
                last_answer = message
        log.scroll_end(animate=False)
        if last_answer is None:
            self._show_sources([], [], note="Sources of the answer appear here.")
        else:
            self._show_sources(last_answer.sources, last_answer.evidence, last_answer.grounded)
            self._show_turn_stats(last_answer.usage, last_answer.timings)
        self.refresh_conversations()

    def _show_sources(
        self,
        cited: Sequence[Source],
        evidence: Sequence[Source],
        grounded: bool = True,
        note: str | None = None,
    ) -> None:
        """Cited passages first, then the other passages the model was given."""
        cited_ids = {source.chunk_id for source in cited}
        others = [source for source in evidence if source.chunk_id not in cited_ids]
        if note is None:
            note = (
                "Nothing relevant was found in your documents."
                if grounded
                else ("This answer is not based on your documents.")
            )
        self.query_one(SourcesPanel).show(cited, others, note=note)

    def _show_turn_stats(self, usage: Usage | None, timings: Timings | None) -> None:
        status = self.query_one(StatusBar)
        status.tokens_per_s = timings.decode_tok_s if timings else None
        status.context_used = usage.prompt_tokens + usage.completion_tokens if usage else 0

    async def action_new_conversation(self) -> None:
        if self._busy("starting a new conversation"):
            return
        self.conversation_id = None
        await self.query_one(ChatLog).show_welcome()
        self._show_sources([], [], note="Sources of the answer appear here.")
        self._show_turn_stats(None, None)
        self.refresh_conversations()
        self.query_one(PromptInput).focus()

    def action_search_conversations(self) -> None:
        listing = self.query_one(ConversationList)
        if not listing.display:
            listing.toggle_class("-toggled")
        listing.focus_search()

    def action_toggle_conversations(self) -> None:
        """Flip the sidebar from its default for this width (hidden when narrow)."""
        self.query_one(ConversationList).toggle_class("-toggled")

    def action_toggle_sources(self) -> None:
        self.query_one(SourcesPanel).toggle_class("-toggled")

    def action_toggle_thinking(self) -> None:
        self.think = not self.think
        self.query_one(StatusBar).thinking = self.think
        self.notify(
            "Thinking on: models that can think (MiniCPM4.1, MiniCPM5) think before answering; "
            "the thinking is shown folded above the answer."
            if self.think
            else "Thinking off."
        )

    def action_focus_prompt(self) -> None:
        self.query_one(PromptInput).focus()

    def action_rename(self) -> None:
        if self.conversation_id is not None:
            self.rename_conversation(self.conversation_id)
        else:
            self.notify("Ask something first: a new conversation has nothing to rename.")

    def action_delete(self) -> None:
        if self.conversation_id is not None:
            self.delete_conversation(self.conversation_id)

    def action_copy(self) -> None:
        conversation_id = self.conversation_id
        if conversation_id is None:
            return
        ok, markdown = self.attempt(
            "export", lambda: self.service.export_conversation(conversation_id, "md")
        )
        if ok and markdown is not None:
            self.app.copy_to_clipboard(markdown)
            self.notify("Conversation copied as Markdown.")

    @on(ConversationList.RenameRequested)
    def _rename_requested(self, event: ConversationList.RenameRequested) -> None:
        self.rename_conversation(event.conversation_id)

    @on(ConversationList.DeleteRequested)
    def _delete_requested(self, event: ConversationList.DeleteRequested) -> None:
        self.delete_conversation(event.conversation_id)

    def rename_conversation(self, conversation_id: str) -> None:
        """Ask for a new title for ``conversation_id``."""
        ok, conversation = self.attempt(
            "rename", lambda: self.service.get_conversation(conversation_id)
        )
        if not ok or conversation is None:
            return

        def renamed(new_title: str | None) -> None:
            if new_title:
                self.attempt(
                    "rename", lambda: self.service.rename_conversation(conversation_id, new_title)
                )
                self.refresh_conversations()

        self.app.push_screen(TextPrompt("Rename conversation", conversation.title), renamed)

    def delete_conversation(self, conversation_id: str) -> None:
        """Delete ``conversation_id`` once the user confirms."""
        if self._busy("deleting a conversation"):
            return

        async def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            self.attempt("delete", lambda: self.service.delete_conversation(conversation_id))
            if conversation_id == self.conversation_id:
                await self.action_new_conversation()
            else:
                self.refresh_conversations()

        self.app.push_screen(ConfirmDialog("Delete this conversation?"), confirmed)

    # Asking ----------------------------------------------------------------------------------

    def _busy(self, doing: str) -> bool:
        if self.generating:
            self.notify(f"An answer is being written; press Esc to stop it before {doing}.")
        return self.generating

    @on(PromptInput.Submitted)
    async def _ask(self, event: PromptInput.Submitted) -> None:
        prompt = self.query_one(PromptInput)
        if self.generating:
            prompt.restore(event.text)
            self.notify("An answer is still being written; press Esc to stop it.")
            return
        if self.assistant_app.model_loading:
            prompt.restore(event.text)
            self.notify("The model is still loading; ask again in a moment.", severity="warning")
            return
        log = self.query_one(ChatLog)
        if self.conversation_id is None:
            await log.reset()
        await log.add_user(event.text)
        self._answer = await log.start_answer()
        self.query_one(SourcesPanel).show([], note="Searching your documents…")
        self.generating = True
        self._question = event.text
        self._cancel = threading.Event()
        self.generate(
            event.text,
            self.conversation_id,
            self.assistant_app.collection,
            self.think,
            self._cancel,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="generation")
    def generate(
        self,
        question: str,
        conversation_id: str | None,
        collection: str,
        think: bool,
        cancel: threading.Event,
    ) -> None:
        """Run one turn in a thread and post the core's events as they come; a failure to
        run it at all arrives in ``worker_failed``."""
        worker = get_current_worker()
        events = self.service.ask(
            question,
            conversation_id=conversation_id,
            collection=collection,
            think=think,
            cancel=cancel,
        )
        for event in events:
            if worker.is_cancelled:
                cancel.set()
            self.post_message(self.TurnEvent(event))

    def action_stop(self) -> None:
        if self.generating:
            self._cancel.set()
            if self._answer is not None:
                self._answer.set_note("stopping…")

    @on(TurnEvent)
    async def _turn_event(self, message: TurnEvent) -> None:
        match message.event:
            case TurnStarted(conversation_id=conversation_id):
                self._answer_started(conversation_id)
            case RetrievalFinished(hits=hits) as retrieved:
                sources = [Source.from_hit(number, hit) for number, hit in enumerate(hits, 1)]
                self._evidence(sources, retrieved.relevant)
            case ThinkingReceived(text=text) if self._answer is not None:
                await self._answer.add_thinking(text)
            case TokenReceived(text=text) if self._answer is not None:
                await self._answer.append(text)
            case AnswerFinished() as finished:
                await self._completed(finished)
            case AnswerFailed(title=title, message=failure):
                await self._failed(title, failure)

    def _answer_started(self, conversation_id: str) -> None:
        if self.conversation_id != conversation_id:
            self.conversation_id = conversation_id
            self.refresh_conversations()

    def _evidence(self, sources: list[Source], relevant: bool) -> None:
        note = "" if relevant else "Nothing relevant found in your documents."
        found = sources if relevant else []
        self.query_one(SourcesPanel).show([], found, note=note, answered=False)
        if self._answer is not None:
            self._answer.set_note("writing…")

    async def _completed(self, finished: AnswerFinished) -> None:
        self.conversation_id = finished.conversation_id
        if self._answer is not None:
            self._answer.finish_thinking(finished.thinking_tokens)
            await self._answer.finish(
                answer_note(
                    model=self.assistant_app.model_name,
                    decode_tok_s=finished.timings.decode_tok_s,
                    sources=finished.sources,
                    incomplete=finished.incomplete,
                    grounded=finished.grounded,
                    empty=finished.no_answer,
                ),
                finished.answer,
            )
        self._show_sources(finished.sources, finished.evidence, finished.grounded)
        self._show_turn_stats(finished.usage, finished.timings)
        if finished.no_answer:
            self._offer_retry()
        self._turn_over()

    def _offer_retry(self) -> None:
        """An empty reply is not an answer: say so and give the question back to ask again."""
        self.notify(
            f"{NO_ANSWER.capitalize()}. Your question is back in the prompt: press Enter to try "
            "again, or pick another model (F4).",
            title="No answer",
            severity="warning",
            timeout=10,
        )
        self.query_one(PromptInput).restore(self._question)

    async def worker_failed(self, group: str, title: str, message: str) -> None:
        """The answer's worker is the screen's only one: the turn could not run at all."""
        await self._failed(title, message)

    async def _failed(self, title: str, message: str) -> None:
        """Generation failed: the UI is restored and the question goes back into the prompt."""
        if self._answer is not None:
            await self._answer.finish(f"failed: {title}")
        self.notify(
            f"{message}\nYour question is back in the prompt; try again or pick another "
            "model (F4).",
            title=title,
            severity="error",
            timeout=10,
        )
        self.query_one(PromptInput).restore(self._question)
        self._turn_over()

    def _turn_over(self) -> None:
        self.generating = False
        self._answer = None
        self.refresh_conversations()
        self.query_one(PromptInput).focus()

    @on(SourcesPanel.Chosen)
    def _show_source(self, event: SourcesPanel.Chosen) -> None:
        self.app.push_screen(SourceScreen(event.source))
