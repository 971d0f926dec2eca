"""The sources panel: the passages behind the last answer, cited ones first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from assistant.display import terminal_safe
from assistant.events import Source
from tui.widgets.pick_list import PickList

SNIPPET_CHARS = 160


def source_label(source: Source, cited: bool | None) -> Text:
    """``[1] paper.pdf p.3  0.82`` over a short snippet; uncited passages are tagged.

    ``cited`` is None while the answer is being written: which passages it cites is not known.
    """
    snippet = terminal_safe(source.text, one_line=True)
    if len(snippet) > SNIPPET_CHARS:
        snippet = snippet[: SNIPPET_CHARS - 1] + "…"
    label = Text()
    label.append(f"[{source.number}] ", style="bold")
    name = terminal_safe(Path(source.file).name, one_line=True)
    label.append(name, style="" if cited is False else "bold")
    label.append(
        f" · p.{source.page}{' (OCR)' if source.ocr else ''} · {source.score:.2f}", style="italic"
    )
    if cited is False:
        label.append(" · not cited", style="italic")
    label.append("\n")
    label.append(snippet, style="dim")
    return label


class SourcesPanel(Vertical):
    """Lists sources; Enter on one posts :class:`SourcesPanel.Chosen`."""

    @dataclass
    class Chosen(Message):
        """A cited passage was selected."""

        source: Source

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._sources: list[Source] = []

    def compose(self) -> ComposeResult:
        yield Label("Sources", classes="panel-title")
        yield PickList(id="source-options")

    @property
    def sources(self) -> list[Source]:
        return list(self._sources)

    def show(
        self,
        cited: Sequence[Source],
        others: Sequence[Source] = (),
        note: str = "",
        *,
        answered: bool = True,
    ) -> None:
        """Show cited passages, then the other retrieved ones; ``note`` when there are none.
        Until the answer is ``answered``, ``others`` are not marked as uncited."""
        self._sources = [*cited, *others]
        options = self.query_one("#source-options", OptionList)
        options.clear_options()
        for source in cited:
            options.add_option(Option(source_label(source, cited=True)))
        for source in others:
            options.add_option(Option(source_label(source, cited=False if answered else None)))
        if not self._sources and note:
            options.add_option(Option(Text(note, style="italic"), disabled=True))

    @on(OptionList.OptionSelected, "#source-options")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if 0 <= event.option_index < len(self._sources):
            self.post_message(self.Chosen(self._sources[event.option_index]))
