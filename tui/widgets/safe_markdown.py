"""Markdown whose links never open by themselves: a click shows the URL and asks first.

Answers are written by a model that has read the user's documents, so a link in one can lead
anywhere; Textual's ``Markdown`` would hand it to the browser on a single click.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Markdown, Static


class OpenLinkDialog(ModalScreen[bool]):
    """Shows the full URL of a clicked link and opens it only on "Open"; Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, url: str) -> None:
        super().__init__(classes="dialog")
        self.url = url

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label("Open this link in your browser?", classes="dialog-title")
            yield Static(self.url, id="link-url", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Open", variant="primary", id="open")
                yield Button("Cancel", id="cancel")

    @on(Button.Pressed, "#open")
    def _open(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


class SafeMarkdown(Markdown):
    """``Markdown`` that asks with :class:`OpenLinkDialog` before a link goes to the browser."""

    def __init__(self, markdown: str | None = None, **options: Any) -> None:
        super().__init__(markdown, open_links=False, **options)

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        event.prevent_default()
        url = event.href

        def chosen(open_it: bool | None) -> None:
            if open_it:
                self.app.open_url(url)

        self.app.push_screen(OpenLinkDialog(url), chosen)
