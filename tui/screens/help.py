"""F1: what the keys do on each screen, and how the pieces fit together."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen

from tui.widgets.safe_markdown import SafeMarkdown

HELP = """\
# MiniCPM Assistant

Chat with your own documents through a local model. Nothing leaves this computer.

## Everywhere
- **F1** this help · **F2** chat · **F3** library · **F4** models
- **Ctrl+P** command palette: every action, searchable (themes too) · **Ctrl+Q** quit

## Chat
- **Enter** send · **Ctrl+J** new line (**Shift+Enter** where the terminal reports it)
- **Up / Down** on the first / last line: earlier questions
- **Esc** stop the answer; what was written is kept
- **Ctrl+N** new conversation · **Ctrl+F** search conversations
- **Ctrl+B / Ctrl+O** show or hide conversations / sources
- **Ctrl+T** let the model think before it answers (MiniCPM4.1, MiniCPM5): the thinking is shown
  folded above the answer, never as the answer
- In the conversation list: **Enter** open, **F2** rename, **Delete** delete
- In the sources panel: **Enter** read the whole passage, then **o** opens the file

## Library (F3)
Type a folder (**→** completes names) and press **Enter** to index it; indexing keeps running
while you chat. **a** add · **Delete** remove · **r** re-index the selected document ·
**R** re-index all · **s** stop indexing

## Models (F4)
**Enter** use the selected model (loads in the background) · **d** download · **a** use a
local GGUF file · **g** GPU layers ("auto", or 0 for CPU only)

Answers say "not in your documents" when nothing relevant was found. The status bar shows the
model (MiniCPM, or the small offline demo model, which is not MiniCPM), where it runs, the
context used, the speed of the last answer and the collection searched.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield SafeMarkdown(HELP)

    def action_close(self) -> None:
        self.dismiss(None)
