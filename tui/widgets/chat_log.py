"""The chat log: questions and answers, with the answer being written streamed in as Markdown.

Tokens go through ``Markdown.get_stream()``: fragments are appended (and batched when they come
faster than the screen refreshes) instead of re-rendering the whole reply for each token.
Finished text, earlier answers included, is kept in one widget per answer.
"""

from __future__ import annotations

from rich.markdown import Markdown as RichMarkdown
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Collapsible, Label, Markdown, Static
from textual.widgets.markdown import MarkdownStream

from assistant.display import plain, terminal_safe
from tui.widgets.safe_markdown import SafeMarkdown

WELCOME = (
    "Ask a question about your documents. Answers cite the passages they use; "
    "pick one in the sources panel to read it in full.\n\n"
    "**Ctrl+B** past conversations · **F1** help · **F3** library (add folders) · "
    "**F4** models · **Ctrl+P** all commands"
)


class UserMessage(Static):
    """A question as the user typed it (shown verbatim, not as Markdown)."""

    def __init__(self, text: str) -> None:
        super().__init__(plain(text))


class FrozenMarkdown(Static):
    """Finished Markdown drawn by one widget (Rich's renderer, cached per width).

    Textual's Markdown widget mounts a widget per block, and every layout pass walks every widget
    in the log: keeping finished text in a single widget is what keeps a token's cost flat as the
    answer and the conversation grow.
    """

    def __init__(self, source: str) -> None:
        source = terminal_safe(source)  # answers saved before escape sequences were stripped
        # links are drawn as "text (url)": nothing the terminal could open on a click
        super().__init__(RichMarkdown(source, hyperlinks=False), classes="answer-body")
        self.source = source


class ThinkingBlock(Collapsible):
    """The model's thinking above its answer: folded, plain text, never part of the answer."""

    def __init__(self, text: str = "") -> None:
        self._body = Static(terminal_safe(text).strip(), classes="thinking-body", markup=False)
        title = "Thought" if text else "Thinking…"
        super().__init__(self._body, title=title, collapsed=True, classes="thinking")
        self._parts: list[str] = [terminal_safe(text)]

    def append(self, fragment: str) -> None:
        self._parts.append(terminal_safe(fragment))
        self._body.update("".join(self._parts).strip())

    def finish(self, tokens: int) -> None:
        self.title = f"Thought for {tokens} tokens" if tokens else "Thought"


class AnswerView(Vertical):
    """One answer: its Markdown plus a one-line note (speed, sources, stopped).

    While streaming, text goes into a live ``Markdown`` through ``Markdown.get_stream()``. Once
    the live part holds ``SEGMENT_CHARS`` it is frozen at the next paragraph break (outside code
    fences) and a new live part starts, so neither parsing nor layout grows with the answer.
    """

    SEGMENT_CHARS = 2000

    def __init__(self, text: str = "", note: str = "", thinking: str | None = None) -> None:
        super().__init__()
        self._initial_note = note
        self._initial_thinking = thinking
        self._parts = [text]
        self._live: Markdown | None = None
        self._stream: MarkdownStream | None = None
        self._live_chars = 0
        self._live_fences = 0
        self._thinking: ThinkingBlock | None = None

    @property
    def text(self) -> str:
        """The answer so far (kept as parts: joining per token would copy it every time)."""
        return "".join(self._parts)

    def compose(self) -> ComposeResult:
        if self._initial_thinking:
            self._thinking = ThinkingBlock(self._initial_thinking)
            yield self._thinking
        if self.text:
            yield FrozenMarkdown(self.text)
        yield Label(self._initial_note, classes="answer-note", markup=False)

    async def add_thinking(self, fragment: str) -> None:
        """Add streamed thinking to the folded block above the answer (made on first use)."""
        if self._thinking is None:
            self._thinking = ThinkingBlock()
            await self.mount(self._thinking, before=0)
        self._thinking.append(fragment)

    def finish_thinking(self, tokens: int) -> None:
        if self._thinking is not None:
            self._thinking.finish(tokens)

    async def append(self, fragment: str) -> None:
        """Add streamed text at the end of the answer."""
        fragment = terminal_safe(fragment)
        self._parts.append(fragment)
        head, tail = self._split_at_paragraph(fragment)
        await self._write(head)
        if tail is not None:
            await self._freeze_live()
            await self._write(tail)

    async def flush(self) -> None:
        """Wait until everything appended is on screen (a later append starts a new stream)."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None

    async def finish(self, note: str, final_text: str | None = None) -> None:
        """Freeze the whole answer into one widget, using ``final_text`` if it differs."""
        await self.flush()
        if final_text is not None and final_text.strip() != self.text.strip():
            self._parts = [final_text]
        await self.remove_children(list(self.query(".answer-body")))
        self._live = None
        await self.mount(FrozenMarkdown(self.text), before=self._note)
        self.set_note(note)

    def set_note(self, note: str) -> None:
        self._note.update(note)

    @property
    def _note(self) -> Label:
        return self.query_one(".answer-note", Label)

    async def _write(self, fragment: str) -> None:
        if not fragment:
            return
        if self._live is None:
            self._live = SafeMarkdown(classes="answer-body")
            await self.mount(self._live, before=self._note)
        if self._stream is None:
            self._stream = Markdown.get_stream(self._live)
        self._live_chars += len(fragment)
        self._live_fences += fragment.count("```")
        await self._stream.write(fragment)

    def _split_at_paragraph(self, fragment: str) -> tuple[str, str | None]:
        """Where to close the live part: the last paragraph break, if not inside a code fence."""
        if self._live_chars < self.SEGMENT_CHARS or "\n\n" not in fragment:
            return fragment, None
        cut = fragment.rindex("\n\n") + 2
        head = fragment[:cut]
        if (self._live_fences + head.count("```")) % 2:
            return fragment, None
        return head, fragment[cut:]

    async def _freeze_live(self) -> None:
        await self.flush()
        live = self._live
        if live is None:
            return
        await self.mount(FrozenMarkdown(live.source), before=live)
        await live.remove()
        self._live = None
        self._live_chars = self._live_fences = 0


class ChatLog(VerticalScroll):
    """Scrolls to follow the newest text unless the user scrolled up."""

    can_focus = True

    async def show_welcome(self) -> None:
        await self.remove_children()
        await self.mount(SafeMarkdown(WELCOME, classes="welcome"))

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

    async def add_answer(self, text: str, note: str, thinking: str | None = None) -> AnswerView:
        answer = AnswerView(text, note, thinking)
        await self.mount(answer)
        return answer
