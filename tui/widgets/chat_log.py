"""The chat log: questions and answers, with the answer being written streamed in as Markdown.

Tokens go through ``Markdown.get_stream()``: fragments are appended (and batched when they come
faster than the screen refreshes) instead of re-rendering the whole reply for each token.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, Markdown, Static
from textual.widgets.markdown import MarkdownStream

WELCOME = (
    "Ask a question about your documents. Answers cite the passages they use; "
    "pick one in the sources panel to read it in full.\n\n"
    "**F1** help · **F3** library (add folders) · **F4** models · **Ctrl+P** all commands"
)


class UserMessage(Static):
    """A question as the user typed it (shown verbatim, not as Markdown)."""

    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False)


class AnswerView(Vertical):
    """One answer: Markdown body plus a one-line note (speed, sources, stopped).

    A long answer is streamed into several Markdown segments, each closed at a paragraph break
    once it holds ``SEGMENT_CHARS``: Textual's ``Markdown.append`` re-splits its whole source
    on every append, so one ever-growing document would make each token cost more than the last.
    """

    SEGMENT_CHARS = 2000

    def __init__(self, text: str = "", note: str = "") -> None:
        super().__init__()
        self._initial_text = text
        self._initial_note = note
        self._stream: MarkdownStream | None = None
        self._segment_chars = 0
        self._segment_fences = 0
        self._parts = [text]

    @property
    def text(self) -> str:
        """The answer so far (kept as parts: joining per token would copy it every time)."""
        return "".join(self._parts)

    def compose(self) -> ComposeResult:
        yield Markdown(self._initial_text, classes="answer-body")
        yield Label(self._initial_note, classes="answer-note", markup=False)

    @property
    def body(self) -> Markdown:
        """The segment being written (the whole answer unless it is long)."""
        return self.query(".answer-body").last(Markdown)

    async def append(self, fragment: str) -> None:
        """Add streamed text at the end of the answer."""
        self._parts.append(fragment)
        head, tail = self._split_for_new_segment(fragment)
        await self._write(head)
        if tail is not None:
            await self._new_segment()
            await self._write(tail)

    async def _write(self, fragment: str) -> None:
        if not fragment:
            return
        if self._stream is None:
            self._stream = Markdown.get_stream(self.body)
        self._segment_chars += len(fragment)
        self._segment_fences += fragment.count("```")
        await self._stream.write(fragment)

    def _split_for_new_segment(self, fragment: str) -> tuple[str, str | None]:
        """Where to close the current segment: at a paragraph break outside code fences."""
        if self._segment_chars < self.SEGMENT_CHARS or "\n\n" not in fragment:
            return fragment, None
        cut = fragment.rindex("\n\n") + 2
        head = fragment[:cut]
        if (self._segment_fences + head.count("```")) % 2:
            return fragment, None
        return head, fragment[cut:]

    async def _new_segment(self) -> None:
        await self._stop_stream()
        self._segment_chars = self._segment_fences = 0
        await self.mount(Markdown(classes="answer-body"), before=self.query_one(".answer-note"))

    async def _stop_stream(self) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None

    async def finish(self, note: str, final_text: str | None = None) -> None:
        """Flush the stream; replace the body when the final text differs from what streamed."""
        await self._stop_stream()
        if final_text is not None and final_text.strip() != self.text.strip():
            self._parts = [final_text]
            stale = list(self.query(".answer-body"))[:-1]
            if stale:
                await self.remove_children(stale)
            await self.body.update(final_text)
        self.set_note(note)

    def set_note(self, note: str) -> None:
        self.query_one(".answer-note", Label).update(note)


class Notice(Static):
    """A line from the app itself (welcome text, "stopped", "failed")."""


class ChatLog(VerticalScroll):
    """Scrolls to follow the newest text unless the user scrolled up."""

    can_focus = True

    async def show_welcome(self) -> None:
        await self.remove_children()
        await self.mount(Markdown(WELCOME, classes="welcome"))

    async def reset(self) -> None:
        await self.remove_children()

    async def add_user(self, text: str) -> UserMessage:
        message = UserMessage(text)
        await self.mount(message)
        self.anchor()
        return message

    async def start_answer(self) -> AnswerView:
        answer = AnswerView(note="thinking…")
        await self.mount(answer)
        self.anchor()
        return answer

    async def add_answer(self, text: str, note: str) -> AnswerView:
        answer = AnswerView(text, note)
        await self.mount(answer)
        return answer

    async def add_notice(self, text: str) -> None:
        await self.mount(Notice(text, markup=False))
        self.anchor()
