"""The models screen: the catalog with what is on disk, downloads with progress, switching the
model (loaded in the background) and the number of layers offloaded to the GPU; below it the
embedding models, to download and to switch the current collection to (re-embedded in the
background while its old index keeps answering), and, after a scan (s), the GGUFs other apps
downloaded, to link and use without a copy. With ``[llm] base_url`` set, the models the model
server serves are listed beside the local ones and Enter switches to one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Input, Label, ProgressBar

from assistant.display import plain
from tui.commands import Command, bindings
from tui.screens.base import AppScreen
from tui.widgets.path_input import PathInput
from tui.widgets.status_bar import describe_model

if TYPE_CHECKING:
    from assistant.service import CatalogRow, EmbedderRow, FoundModel, SwitchProgress

GIB = 1024**3


def parse_gpu_layers(text: str) -> int | Literal["auto"]:
    """``auto`` or a non-negative number of layers; raises ValueError with a readable message."""
    text = text.strip().lower()
    if text in ("", "auto"):
        return "auto"
    if not text.isdigit():
        raise ValueError(f'GPU layers must be "auto" or a number, not {text!r}.')
    return int(text)


class ModelsScreen(AppScreen):
    @dataclass
    class DownloadProgressed(Message):
        name: str
        done_bytes: int
        total_bytes: int

    @dataclass
    class DownloadFinished(Message):
        name: str

    @dataclass
    class EmbedderSwitchProgressed(Message):
        """Passages of ``collection`` re-embedded so far with embedding model ``name``."""

        name: str
        collection: str
        done: int
        total: int

    @dataclass
    class EmbedderSwitched(Message):
        name: str
        collection: str
        passages: int

    ACTIONS = (
        Command("use_model", "Use model", "Switch to the selected model", key="enter", label="Use"),
        Command(
            "download",
            "Download model",
            "Download the selected catalog model",
            key="d",
            label="Download",
        ),
        Command(
            "add_local",
            "Add a local GGUF",
            "Use a model file you already have",
            key="a",
            label="Add GGUF",
        ),
        Command(
            "gpu_layers",
            "Set GPU layers",
            "Layers to offload to the GPU (reloads)",
            key="g",
            label="GPU layers",
        ),
        Command(
            "scan",
            "Find models of other apps",
            "GGUFs of LM Studio, Ollama, GPT4All, llama.cpp and the Hugging Face cache",
            key="s",
            label="Scan other apps",
        ),
        Command(
            "use_embedder",
            "Use embedding model",
            "Re-embed this collection's passages with the selected embedding model",
        ),
        Command("app.switch_mode('chat')", key="escape", label="Chat", show=False),
    )
    BINDINGS = bindings(ACTIONS)

    def __init__(self) -> None:
        super().__init__()
        self.downloading: str | None = None
        self._rows: dict[str, CatalogRow] = {}
        self._embedder_rows: dict[str, EmbedderRow] = {}
        self.switching: str | None = None
        """The embedding model the current collection is being re-embedded with."""
        self._found: list[FoundModel] = []
        self._server_models: list[str] = []

    def compose(self) -> ComposeResult:
        yield Label("", id="current-model")
        yield Label("Catalog", classes="panel-title")
        yield DataTable(id="catalog", cursor_type="row", zebra_stripes=True)
        yield Label("", id="server-title", classes="panel-title", markup=False)
        yield DataTable(id="server-models", cursor_type="row", zebra_stripes=True)
        yield Label(
            "Embedding models, for documents (Enter: switch the collection)", classes="panel-title"
        )
        yield DataTable(id="embedders", cursor_type="row", zebra_stripes=True)
        yield Label("GGUFs of other apps (Enter: link and use)", id="found-title")
        yield DataTable(id="found", cursor_type="row", zebra_stripes=True)
        with Vertical(id="download-panel"):
            yield Label("", id="download-label", markup=False)
            yield ProgressBar(id="download-progress", show_eta=True)
        with Horizontal(id="model-forms"):
            yield PathInput(
                placeholder="Path of a local .gguf file", suffix=".gguf", id="gguf-path"
            )
            yield Button("Use file", id="gguf-add")
            yield Input(placeholder="GPU layers: auto or N", id="gpu-layers")
            yield Button("Apply", id="gpu-apply")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#catalog", DataTable)
        table.add_columns("", "Model", "Params", "Quant", "Download", "RAM", "On disk")
        embedders = self.query_one("#embedders", DataTable)
        embedders.add_columns("", "Model", "Languages", "Dims", "Download", "On disk")
        self.query_one("#download-panel").display = False
        found = self.query_one("#found", DataTable)
        found.add_columns("Model", "Architecture", "Quant", "Size", "App")
        for hidden in (found, self.query_one("#found-title")):
            hidden.display = False
        self._start_server_list()
        layers = self.assistant_app.gpu_layers
        self.query_one("#gpu-layers", Input).value = str(layers)
        self.watch(self.app, "model_status", self._model_changed)
        self.watch(self.app, "model_activity", self._model_changed)
        self.refresh_catalog()

    def _model_changed(self) -> None:
        app = self.assistant_app
        text = describe_model(app.model_status)
        if app.model_activity:
            text.append(f" · {app.model_activity}")
        self.query_one("#current-model", Label).update(text)
        self.refresh_catalog()
        self._show_server_models(self._server_models)

    def refresh_catalog(self) -> None:
        table = self.query_one("#catalog", DataTable)
        ok, rows = self.attempt("read the catalog", self.service.catalog)
        if not ok or rows is None:
            return
        current = self.assistant_app.model_status
        cursor = table.cursor_row
        table.clear()
        self._rows = {row.entry.name: row for row in rows}
        for row in rows:
            entry = row.entry
            in_use = current is not None and current.name == entry.name
            table.add_row(
                "●" if in_use else "",
                entry.title,
                entry.params,
                entry.quantization,
                f"{entry.size_bytes / GIB:.1f} GB",
                f"{entry.ram_gb:.1f} GB",
                "yes" if row.on_disk else "",
                key=entry.name,
            )
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
        self.refresh_embedders()

    def refresh_embedders(self) -> None:
        """The embedding models, ● on the one the current collection uses."""
        table = self.query_one("#embedders", DataTable)
        ok, rows = self.attempt("read the embedding models", self.service.embedders)
        if not ok or rows is None:
            return
        _, in_use = self.attempt("read the collection", self.service.collection_embedder)
        cursor = table.cursor_row
        table.clear()
        self._embedder_rows = {row.entry.name: row for row in rows}
        for row in rows:
            entry = row.entry
            table.add_row(
                "●" if entry.name == in_use else "",
                entry.name,
                entry.languages,
                str(entry.dimensions),
                "installed" if entry.bundled else f"{entry.size_bytes / GIB:.1f} GB",
                "yes" if row.on_disk else "",
                key=entry.name,
            )
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))

    def _selected(self) -> CatalogRow | None:
        return self._rows.get(_cursor_key(self.query_one("#catalog", DataTable)))

    def _selected_embedder(self) -> EmbedderRow | None:
        return self._embedder_rows.get(_cursor_key(self.query_one("#embedders", DataTable)))

    # Switching -------------------------------------------------------------------------------

    @on(DataTable.RowSelected, "#catalog")
    def action_use_model(self) -> None:
        row = self._selected()
        if row is None:
            return
        if not row.on_disk:
            self.notify(f"{row.entry.title} is not downloaded yet: press d to download it.")
            return
        self.assistant_app.load_model(row.entry.name)

    def action_add_local(self) -> None:
        self.query_one("#gguf-path", PathInput).focus()

    @on(Input.Submitted, "#gguf-path")
    @on(Button.Pressed, "#gguf-add")
    def _add_local(self) -> None:
        path = self.query_one("#gguf-path", PathInput).path
        if path is None or not path.is_file():
            self.notify(
                f"{path or 'Nothing'} is not a file. Type the path of a .gguf model.",
                title="No such file",
                severity="error",
            )
            return
        self.assistant_app.add_local_model(path)

    def action_gpu_layers(self) -> None:
        self.query_one("#gpu-layers", Input).focus()

    @on(Input.Submitted, "#gpu-layers")
    @on(Button.Pressed, "#gpu-apply")
    def _apply_gpu_layers(self) -> None:
        try:
            layers = parse_gpu_layers(self.query_one("#gpu-layers", Input).value)
        except ValueError as error:
            self.notify(str(error), title="Bad value", severity="error")
            return
        self.assistant_app.set_gpu_layers(layers)

    # Models on the model server ------------------------------------------------------------

    def _start_server_list(self) -> None:
        url = self.assistant_app.settings.llm.base_url
        table = self.query_one("#server-models", DataTable)
        table.add_columns("", "Model on the server")
        title = self.query_one("#server-title", Label)
        title.display = table.display = url is not None
        if url is not None:
            title.update(f"Model server {url} (Enter: use)")
            self.list_server_models()

    @work(thread=True, exclusive=True, exit_on_error=False, group="server-models")
    def list_server_models(self) -> None:
        """Asks the server over the network, so it runs off the UI thread."""
        names = self.service.server_models()
        self.app.call_from_thread(self._show_server_models, names)

    def _show_server_models(self, names: list[str]) -> None:
        """``names`` are ``server:<id>``; ● marks the one answering now."""
        self._server_models = names
        table = self.query_one("#server-models", DataTable)
        current = self.assistant_app.model_status
        cursor = table.cursor_row
        table.clear()
        for name in names:
            model_id = name.split(":", 1)[1]
            in_use = current is not None and current.server_url and current.name == model_id
            table.add_row("●" if in_use else "", plain(model_id, one_line=True), key=name)
        if names:
            table.move_cursor(row=min(cursor, len(names) - 1))

    @on(DataTable.RowSelected, "#server-models")
    def _use_server_model(self) -> None:
        name = _cursor_key(self.query_one("#server-models", DataTable))
        if name:
            self.assistant_app.load_model(name)

    # Models of other apps --------------------------------------------------------------------

    def action_scan(self) -> None:
        self.notify("Looking for GGUFs of other apps…")
        self.scan_other_apps()

    @work(thread=True, exclusive=True, exit_on_error=False, group="scan")
    def scan_other_apps(self) -> None:
        """Reads a header per file found, so it runs off the UI thread."""
        found = self.service.found_models()
        self.app.call_from_thread(self._show_found, found)

    def _show_found(self, found: list[FoundModel]) -> None:
        self._found = found
        table = self.query_one("#found", DataTable)
        table.clear()
        for index, model in enumerate(found):
            table.add_row(
                plain(model.name, one_line=True),
                plain(model.architecture or f"unreadable: {model.problem}", one_line=True),
                plain(model.quantization or "", one_line=True),
                f"{model.size_bytes / GIB:.1f} GB",
                model.source,
                key=str(index),
            )
        title = self.query_one("#found-title", Label)
        title.display = table.display = True
        if not found:
            title.update("No GGUFs found in the folders of other apps.")
        else:
            table.focus()

    @on(DataTable.RowSelected, "#found")
    def _use_found(self) -> None:
        key = _cursor_key(self.query_one("#found", DataTable))
        if not key:
            return
        model = self._found[int(key)]
        if model.problem is not None:
            self.notify(model.problem, title="Cannot use this file", severity="error")
            return
        ok, added = self.attempt(
            "add the model", lambda: self.service.add_model(model.path, model.link_name)
        )
        if ok and added is not None:
            self.notify(f"Linked {added.name} (no copy); loading it.", title="Added")
            self.assistant_app.load_model(str(added.path))

    # Downloading -----------------------------------------------------------------------------

    def action_download(self) -> None:
        if self.query_one("#embedders", DataTable).has_focus:
            row: CatalogRow | EmbedderRow | None = self._selected_embedder()
        else:
            row = self._selected()
        if row is not None:
            self.start_download(row.entry.name)

    def start_download(self, name: str) -> None:
        if self.downloading is not None:
            self.notify(f"Already downloading {self.downloading}.")
            return
        row = self._rows.get(name) or self._embedder_rows.get(name)
        if row is not None and row.on_disk:
            self.notify(f"{row.entry.title} is already on disk; press Enter to use it.")
            return
        self.downloading = name
        self.query_one("#download-panel").display = True
        self.query_one("#download-label", Label).update(f"Downloading {name}…")
        bar = self.query_one("#download-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self.download(name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="download")
    def download(self, name: str) -> None:
        def progress(done: int, total: int | None) -> None:
            self.post_message(self.DownloadProgressed(name, done, total or 0))

        is_embedder = name in self._embedder_rows
        pull = self.service.pull_embedder if is_embedder else self.service.pull_model
        pull(name, progress=progress)
        self.post_message(self.DownloadFinished(name))

    @on(DownloadProgressed)
    def _download_progress(self, event: DownloadProgressed) -> None:
        total = event.total_bytes or None
        self.query_one("#download-progress", ProgressBar).update(
            total=total, progress=event.done_bytes
        )
        self.query_one("#download-label", Label).update(
            f"Downloading {event.name}: {event.done_bytes / GIB:.2f}"
            + (f" of {event.total_bytes / GIB:.2f} GB" if event.total_bytes else " GB")
        )

    @on(DownloadFinished)
    def _download_finished(self, event: DownloadFinished) -> None:
        self.downloading = None
        self.query_one("#download-label", Label).update(f"Downloaded {event.name}.")
        self.notify(f"{event.name} is ready; press Enter on it to use it.", title="Downloaded")
        self.refresh_catalog()

    async def worker_failed(self, group: str, title: str, message: str) -> None:
        """Each worker's failure is shown where its work was: a download's or a switch's in the
        progress panel, the server's in its title."""
        match group:
            case "download":
                self._download_failed(title, message)
            case "embedder-switch":
                self._switch_failed(title, message)
            case "server-models":
                self.query_one("#server-title", Label).update(f"Model server: {message}")
            case _:  # the scan of other apps' folders, or any other: say what failed
                self.notify(message, title=title, severity="error")

    def _download_failed(self, title: str, message: str) -> None:
        self.downloading = None
        self.query_one("#download-label", Label).update(f"Download failed: {message}")
        self.query_one("#download-progress", ProgressBar).display = False  # not "still going"
        self.notify(
            f"{message}\nCheck the connection and try again (d), or use a local GGUF (a).",
            title=title,
            severity="error",
            timeout=10,
        )

    # Switching the collection's embedding model ----------------------------------------------

    @on(DataTable.RowSelected, "#embedders")
    def action_use_embedder(self) -> None:
        row = self._selected_embedder()
        if row is None:
            return
        if self.switching is not None:
            self.notify(f"Already re-embedding with {self.switching}.")
            return
        if not row.on_disk:
            self.notify(f"{row.entry.name} is not downloaded yet: press d to download it.")
            return
        collection = self.assistant_app.settings.chat.collection
        self.switching = row.entry.name
        self.query_one("#download-panel").display = True
        self.query_one("#download-label", Label).update(
            f"Re-embedding {collection!r} with {row.entry.name}…"
        )
        bar = self.query_one("#download-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self.switch_embedder(row.entry.name, collection)

    @work(thread=True, exclusive=True, exit_on_error=False, group="embedder-switch")
    def switch_embedder(self, name: str, collection: str) -> None:
        """Re-embeds in a thread; a failure (in ``worker_failed``) leaves the old index."""

        def progress(done: SwitchProgress) -> None:
            self.post_message(
                self.EmbedderSwitchProgressed(name, collection, done.done, done.total)
            )

        report = self.service.switch_embedder(name, collection, progress=progress)
        self.post_message(self.EmbedderSwitched(name, collection, report.passages))

    @on(EmbedderSwitchProgressed)
    def _switch_progress(self, event: EmbedderSwitchProgressed) -> None:
        self.query_one("#download-progress", ProgressBar).update(
            total=event.total or None, progress=event.done
        )
        self.query_one("#download-label", Label).update(
            f"Re-embedding {event.collection!r} with {event.name}: {event.done} of "
            f"{event.total} passages (searches use the old index until it is done)"
        )

    @on(EmbedderSwitched)
    def _switched(self, event: EmbedderSwitched) -> None:
        self.switching = None
        self.query_one("#download-label", Label).update(
            f"{event.collection!r} now uses {event.name} ({event.passages} passages)."
        )
        self.notify(f"{event.collection!r} now searches with {event.name}.", title="Switched")
        self.refresh_embedders()

    def _switch_failed(self, title: str, message: str) -> None:
        self.switching = None
        self.query_one("#download-label", Label).update(f"Switch failed: {message}")
        self.query_one("#download-progress", ProgressBar).display = False
        self.notify(
            f"{message}\nThe collection keeps its old index; try again to resume.",
            title=title,
            severity="error",
            timeout=10,
        )


def _cursor_key(table: DataTable[object]) -> str:
    """The key of the row under the cursor ("" for an empty table)."""
    if table.row_count == 0:
        return ""
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or ""
