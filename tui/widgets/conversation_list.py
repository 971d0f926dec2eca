"""The conversation sidebar: a search box over a list of past conversations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option, OptionDoesNotExist

from assistant.display import plain
from tui.widgets.pick_list import PickList


class ConversationLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def title(self) -> str: ...


class ConversationOptions(PickList):
    """Newest first; F2 and Delete act on the highlighted conversation."""

    BINDINGS = [
        Binding("f2", "rename", "Rename"),
        Binding("delete", "delete", "Delete"),
    ]

    def _highlighted_id(self) -> str | None:
        if self.highlighted is None:
            return None
        return self.get_option_at_index(self.highlighted).id

    def action_rename(self) -> None:
        if (conversation_id := self._highlighted_id()) is not None:
            self.post_message(ConversationList.RenameRequested(conversation_id))

    def action_delete(self) -> None:
        if (conversation_id := self._highlighted_id()) is not None:
            self.post_message(ConversationList.DeleteRequested(conversation_id))


class ConversationList(Vertical):
    """Shows conversations newest first; the screen fills it and reacts to its messages."""

    @dataclass
    class Chosen(Message):
        """A conversation was picked in the list."""

        conversation_id: str

    @dataclass
    class RenameRequested(Message):
        conversation_id: str

    @dataclass
    class DeleteRequested(Message):
        conversation_id: str

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search conversations", id="conversation-search")
        yield ConversationOptions(id="conversation-options")

    @property
    def search_text(self) -> str:
        return self.query_one("#conversation-search", Input).value

    def show(self, conversations: Sequence[ConversationLike], current_id: str | None) -> None:
        options = self.query_one(ConversationOptions)
        options.clear_options()
        options.add_options(
            Option(plain(conversation.title or "Untitled", one_line=True), id=conversation.id)
            for conversation in conversations
        )
        if current_id is not None:
            try:
                options.highlighted = options.get_option_index(current_id)
            except OptionDoesNotExist:
                options.highlighted = None

    def focus_search(self) -> None:
        self.query_one("#conversation-search", Input).focus()

    @on(OptionList.OptionSelected, "#conversation-options")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Chosen(event.option.id))
