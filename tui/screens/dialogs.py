"""Small modal dialogs: ask for a line of text, confirm something destructive, read a source."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from assistant.display import plain, terminal_safe
from assistant.events import Source
from tui.system_open import open_in_viewer


class TextPrompt(ModalScreen[str | None]):
    """Asks for one line (e.g. a new title); Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "") -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(plain(self._title), classes="dialog-title")
            yield Input(terminal_safe(self._value, one_line=True), id="dialog-input")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _accept(self) -> None:
        value = self.query_one("#dialog-input", Input).value.strip()
        self.dismiss(value or None)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question; Esc means no."""

    BINDINGS = [Binding("escape", "no", "Cancel"), Binding("y", "yes", "Yes")]

    def __init__(self, question: str, confirm_label: str = "Delete") -> None:
        super().__init__(classes="dialog")
        self._question = question
        self._confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(plain(self._question), classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self._confirm_label, variant="error", id="yes")
                yield Button("Cancel", id="no")

    @on(Button.Pressed, "#yes")
    def action_yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        self.dismiss(False)


class SourceScreen(ModalScreen[None]):
    """The full text of a cited passage, with a way to open its file."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("o", "open_file", "Open file"),
    ]

    def __init__(self, source: Source) -> None:
        super().__init__(classes="dialog")
        self.source = source

    def compose(self) -> ComposeResult:
        source = self.source
        heading = f" — {source.heading}" if source.heading else ""
        with Vertical(classes="dialog-box source-box"):
            yield Label(
                plain(
                    f"[{source.number}] {source.file}, page {source.page}, "
                    f"score {source.score:.2f}{heading}",
                    one_line=True,
                ),
                classes="dialog-title",
            )
            with VerticalScroll(id="source-text"):
                yield Static(plain(source.text))
            with Horizontal(classes="dialog-buttons"):
                yield Button("Open file", variant="primary", id="open")
                yield Button("Close", id="close")

    @on(Button.Pressed, "#open")
    def action_open_file(self) -> None:
        problem = open_in_viewer(Path(self.source.file))
        if problem:
            self.notify(problem, title="Cannot open the file", severity="warning", timeout=8)
        else:
            self.notify(f"Opening {Path(self.source.file).name}")

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
