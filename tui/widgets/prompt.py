"""The multi-line prompt: Enter sends, Ctrl+J (or Shift+Enter where the terminal reports it)
adds a line, Up/Down on the first/last line walk through earlier questions."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea

NEWLINE_KEYS = frozenset({"ctrl+j", "shift+enter", "alt+enter"})


class PromptInput(TextArea):
    """A TextArea that submits on Enter and remembers what was sent."""

    @dataclass
    class Submitted(Message):
        """The user pressed Enter in the prompt."""

        text: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            placeholder="Ask about your documents…  (Enter sends, Ctrl+J new line)",
        )
        self.sent: list[str] = []
        self._history_index: int | None = None
        self._draft = ""

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.submit()
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if event.key == "up" and self.cursor_location[0] == 0 and self.sent:
            event.stop()
            event.prevent_default()
            self._walk_history(-1)
            return
        if event.key == "down" and self._history_index is not None and self._on_last_line():
            event.stop()
            event.prevent_default()
            self._walk_history(+1)
            return
        await super()._on_key(event)

    def submit(self) -> None:
        """Send the text (if any) and remember it."""
        text = self.text.strip()
        if not text:
            return
        if not self.sent or self.sent[-1] != text:
            self.sent.append(text)
        self._history_index = None
        self._draft = ""
        self.clear()
        self.post_message(self.Submitted(text))

    def restore(self, text: str) -> None:
        """Put text back (after a failed answer) with the cursor at its end."""
        self.text = text
        self.move_cursor(self.document.end)

    def _on_last_line(self) -> bool:
        return self.cursor_location[0] == self.document.line_count - 1

    def _walk_history(self, step: int) -> None:
        if self._history_index is None:
            if step > 0:
                return
            self._draft = self.text
            index = len(self.sent) - 1
        else:
            index = self._history_index + step
        if index < 0:
            return
        if index >= len(self.sent):
            self._history_index = None
            self.restore(self._draft)
            return
        self._history_index = index
        self.restore(self.sent[index])
