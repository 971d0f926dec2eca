"""First run: say what is missing (a MiniCPM model, documents, an embedding model for documents
not in English) and offer the ways forward."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui.widgets.path_input import PathInput


@dataclass(frozen=True)
class FirstRunChoice:
    """What the user picked: ``action`` is "download", "download-embedder", "local", "demo" or
    "add-folder"."""

    action: str
    model_name: str | None = None
    path: str | None = None


class FirstRunScreen(ModalScreen[FirstRunChoice]):
    BINDINGS = [
        Binding("escape", "demo", "Continue"),
        # Priority: the scroll box around the choices would otherwise take the arrows to scroll.
        Binding("down", "move_choice(1)", "Next choice", show=False, priority=True),
        Binding("up", "move_choice(-1)", "Previous choice", show=False, priority=True),
    ]

    def __init__(
        self,
        *,
        need_model: bool,
        need_documents: bool,
        suggested_model: str | None,
        suggested_title: str = "",
        suggested_size: str = "",
        suggested_embedder: str | None = None,
        suggested_embedder_size: str = "",
    ) -> None:
        super().__init__(classes="dialog")
        self.need_model = need_model
        self.need_documents = need_documents
        self.suggested_model = suggested_model
        self.suggested_title = suggested_title
        self.suggested_size = suggested_size
        self.suggested_embedder = suggested_embedder
        """A multilingual embedding model to offer (None: one is on disk already)."""
        self.suggested_embedder_size = suggested_embedder_size

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog-box", id="first-run"):
            yield Label("Welcome to MiniCPM Assistant", classes="dialog-title")
            if self.need_model:
                yield Static(
                    "No [b]MiniCPM[/b] model is on this computer yet. Until there is one, answers "
                    "come from a small [b]offline demo model[/b]: good enough to try the app, "
                    "not to rely on."
                )
                with Vertical(classes="choices"):
                    if self.suggested_model:
                        yield Button(
                            f"Download {self.suggested_title} ({self.suggested_size})",
                            variant="primary",
                            id="download",
                            compact=True,
                        )
                    yield Button("Continue with the demo model", id="demo", compact=True)
                yield PathInput(
                    placeholder="…or type the path of a MiniCPM .gguf you have",
                    suffix=".gguf",
                    id="first-run-gguf",
                    compact=True,
                )
            if self.need_documents:
                yield Static("Your library is empty: add a folder of PDFs or notes to ask about.")
                with Vertical(classes="choices"):
                    yield Button("Add a folder…", variant="primary", id="add-folder", compact=True)
                    if not self.need_model:
                        yield Button("Later", id="demo", compact=True)
            if self.suggested_embedder:
                yield Static(
                    "Documents in Chinese or another language? The built-in search model knows "
                    "English only; switch a collection to a multilingual one on the Models screen."
                )
                with Vertical(classes="choices"):
                    yield Button(
                        f"Download {self.suggested_embedder} ({self.suggested_embedder_size})",
                        id="download-embedder",
                        compact=True,
                    )

    def on_mount(self) -> None:
        """Focus the first choice: otherwise the scroll box has focus and Enter does nothing."""
        self.query(Button).first().focus()

    def action_move_choice(self, step: int) -> None:
        """Arrows move through the choices as Tab does, so Enter presses the one highlighted."""
        choices = list(self.query("Button, PathInput"))
        if self.focused not in choices:
            choices[0].focus()
            return
        at = choices.index(self.focused) + step
        choices[max(0, min(len(choices) - 1, at))].focus()

    @on(Button.Pressed, "#download")
    def _download(self) -> None:
        self.dismiss(FirstRunChoice("download", model_name=self.suggested_model))

    @on(Button.Pressed, "#download-embedder")
    def _download_embedder(self) -> None:
        self.dismiss(FirstRunChoice("download-embedder", model_name=self.suggested_embedder))

    @on(Button.Pressed, "#demo")
    def action_demo(self) -> None:
        self.dismiss(FirstRunChoice("demo"))

    @on(Button.Pressed, "#add-folder")
    def _add_folder(self) -> None:
        self.dismiss(FirstRunChoice("add-folder"))

    @on(PathInput.Submitted, "#first-run-gguf")
    def _local(self, event: PathInput.Submitted) -> None:
        path = self.query_one("#first-run-gguf", PathInput).path
        if path is None or not path.is_file():
            self.notify(
                f"{event.value!r} is not a file; type the path of a .gguf model.", severity="error"
            )
            return
        self.dismiss(FirstRunChoice("local", path=str(path)))
