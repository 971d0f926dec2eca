"""The Textual app: chat, library and models as modes over one service (:class:`Service`).

``make_app`` is shared by ``run_app`` (the ``minicpm-assistant`` command) and the tests, which
pass their own service. Model loading runs in an app-level thread worker so every screen sees
the result through the ``model_status`` reactive.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from textual import on, work
from textual.app import App
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.theme import Theme

from assistant.display import terminal_safe
from assistant.locations import Locations
from assistant.settings import Settings
from tui.commands import AssistantCommands, Command, bindings
from tui.screens.base import ReportsWorkerFailures, attempt, failure
from tui.screens.chat import ChatScreen
from tui.screens.dialogs import TextPrompt
from tui.screens.first_run import FirstRunChoice, FirstRunScreen
from tui.screens.help import HelpScreen
from tui.screens.library import LibraryScreen, ocr_page, report_summary
from tui.screens.models import ModelsScreen
from tui.service_protocol import Service

if TYPE_CHECKING:
    from assistant.service import (
        CatalogEntry,
        EmbedderRow,
        IngestProgress,
        IngestReport,
        ModelStatus,
    )

FIRST_RUN_MARKER = "tui-welcome-done"
QUIET_STATUSES = frozenset({"unchanged", "failed", "skipped"})
"""Results of a folder update that need no notice: nothing changed, or a failure told when it
happened (a file that failed before is reported as failed again at every update)."""

MINICPM_THEME = Theme(
    name="minicpm",
    primary="#4F8EF7",
    secondary="#8AB4F8",
    accent="#F6A33C",
    background="#14161B",
    surface="#1C1F26",
    panel="#262A33",
    success="#5CB85C",
    warning="#F0AD4E",
    error="#E5534B",
    dark=True,
)


class MiniCPMApp(App[None], ReportsWorkerFailures):
    """The terminal document assistant."""

    @dataclass
    class ModelLoadProgressed(Message):
        fraction: float

    @dataclass
    class ModelReady(Message):
        status: ModelStatus

    @dataclass
    class FoldersProgressed(Message):
        """An update of the watched folders is under way."""

        progress: IngestProgress

    @dataclass
    class FoldersUpdated(Message):
        report: IngestReport

    @dataclass
    class FoldersBusy(Message):
        """Another process holds the library's write lock; the watch retries."""

        reason: str

    @dataclass
    class WatchEnded(Message):
        error: Exception

    CSS_PATH = "app.tcss"
    TITLE = "MiniCPM Assistant"
    MODES: ClassVar = {"chat": ChatScreen, "library": LibraryScreen, "models": ModelsScreen}
    DEFAULT_MODE = "chat"
    COMMANDS = App.COMMANDS | {AssistantCommands}
    ACTIONS = (
        Command("help", "Help", "Keys and screens (F1)", key="f1", label="Help"),
        Command(
            "switch_mode('chat')", "Chat", "Go to the chat screen (F2)", key="f2", label="Chat"
        ),
        Command(
            "switch_mode('library')",
            "Library",
            "Add, index, remove documents (F3)",
            key="f3",
            label="Library",
        ),
        Command(
            "switch_mode('models')",
            "Models",
            "Download, pick, configure models (F4)",
            key="f4",
            label="Models",
        ),
        Command("reload_model", "Reload model", "Load the current model again"),
        Command("collection", "Switch collection", "Pick the document collection to use"),
        Command("welcome", "Welcome", "Show the first-run choices again"),
    )
    BINDINGS = bindings(ACTIONS)

    model_status: reactive[ModelStatus | None] = reactive(None)
    model_activity: reactive[str] = reactive("")
    ingest_activity: reactive[str] = reactive("")
    watch_activity: reactive[str] = reactive("")
    folder_progress: reactive[IngestProgress | None] = reactive(None)
    """The update of the watched folders under way (the library screen shows it)."""
    folder_report: reactive[IngestReport | None] = reactive(None, always_update=True)
    """The last update of the watched folders."""
    collection: reactive[str] = reactive("default")

    def __init__(self, settings: Settings, locations: Locations, service: Service) -> None:
        super().__init__()
        self.settings = settings
        self.locations = locations
        self.service = service
        self.model_loading = False
        self.gpu_layers: int | Literal["auto"] = settings.engine.n_gpu_layers
        """This session's GPU offload: the settings' until the user picks another."""
        # The first-run dialog is due or open; it explains the demo model itself.
        self.welcoming = not (locations.data_dir / FIRST_RUN_MARKER).exists()
        self.set_reactive(MiniCPMApp.collection, settings.chat.collection)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Show a notification as plain text, whatever ``markup`` says.

        Notifications carry file names, conversation titles and error text taken from
        documents, so they are never read as markup and lose terminal control characters.
        """
        super().notify(
            terminal_safe(message),
            title=terminal_safe(title, one_line=True),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    @property
    def model_name(self) -> str | None:
        return self.model_status.name if self.model_status else None

    def on_mount(self) -> None:
        self.register_theme(MINICPM_THEME)
        configured = self.settings.ui.theme
        self.theme = configured if configured in self.available_themes else "minicpm"
        # Queued after the publish of the theme just set, so only the user's picks are saved.
        self.call_next(self.theme_changed_signal.subscribe, self, self._remember_theme)
        self.load_model(None)
        self.watch(self, "collection", self._follow_collection, init=True)
        if self.welcoming:
            self.call_after_refresh(self.action_welcome)

    def _remember_theme(self, theme: Theme) -> None:
        """A theme picked in the palette is written to the config file for the next start."""
        if theme.name != self.settings.ui.theme:
            attempt(self, "save the theme", lambda: self.service.save_ui_theme(theme.name))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_collection(self) -> None:
        """Ask which collection to search and index into (new names are created on ingest)."""
        ok, names = attempt(self, "list collections", self.service.collections)
        known = f" (existing: {', '.join(names)})" if ok and names else ""

        def chosen(name: str | None) -> None:
            if name:
                self.collection = name
                self.notify(f"Using the collection {name!r}.")

        self.push_screen(TextPrompt(f"Collection{known}", self.collection), chosen)

    # Models ----------------------------------------------------------------------------------

    def load_model(self, name_or_path: str | None, *, add_first: bool = False) -> None:
        """Load (or switch to) a model in the background; ``None`` loads the configured one."""
        self.model_loading = True
        self.model_activity = f"loading {Path(name_or_path).name if name_or_path else 'model'}…"
        self._load_model(name_or_path, add_first)

    def action_reload_model(self) -> None:
        current = self.model_status
        self.load_model(str(current.path) if current else None)

    def set_gpu_layers(self, layers: int | Literal["auto"]) -> None:
        """Change how many layers go to the GPU for this session and reload the model with it."""
        self.gpu_layers = layers
        self.notify(f"GPU layers set to {layers}; reloading the model.")
        self.action_reload_model()

    def add_local_model(self, path: Path) -> None:
        self.load_model(str(path), add_first=True)

    @work(thread=True, exclusive=True, exit_on_error=False, group="model")
    def _load_model(self, name_or_path: str | None, add_first: bool) -> None:
        """Runs in a thread; the result arrives as a message, a failure in ``worker_failed``."""

        def progress(fraction: float) -> None:
            self.post_message(self.ModelLoadProgressed(fraction))

        if add_first and name_or_path is not None:
            name_or_path = str(self.service.add_model(Path(name_or_path)).path)
        layers = None if self.gpu_layers == self.settings.engine.n_gpu_layers else self.gpu_layers
        if name_or_path is None:
            status = self.service.load_engine(progress, n_gpu_layers=layers)
        else:
            status = self.service.switch_model(name_or_path, progress, n_gpu_layers=layers)
        self.post_message(self.ModelReady(status))

    @on(ModelLoadProgressed)
    def _model_progress(self, event: ModelLoadProgressed) -> None:
        if self.model_loading:
            self.model_activity = f"loading model {event.fraction:.0%}"

    @on(ModelReady)
    def _model_ready(self, event: ModelReady) -> None:
        self.model_loading = False
        self.model_activity = ""
        self.model_status = event.status
        if event.status.is_demo and not self.welcoming:
            self.notify(
                "Running the small offline demo model: answers are for trying the app only. "
                "Get MiniCPM on the Models screen (F4).",
                title="Demo model",
                severity="warning",
            )

    async def worker_failed(self, group: str, title: str, message: str) -> None:
        """Say why a model did not load and where to pick another, or why the folders are not
        watched."""
        if group == "watch":
            self._watch_over(title, message)
            return
        self.model_loading = False
        self.model_activity = ""
        self.notify(
            f"{message}\nPick another model or GGUF file on the Models screen (F4).",
            title=title,
            severity="error",
            timeout=12,
        )

    # Watched folders -------------------------------------------------------------------------

    def _follow_collection(self, collection: str) -> None:
        self._watch_folders(collection)

    @work(thread=True, exclusive=True, exit_on_error=False, group="watch")
    def _watch_folders(self, collection: str) -> None:
        """Keep the collection's remembered folders indexed while the app runs (the service's
        thread does the work and stops on close); a switch of collection moves the watch."""

        def post(message: Message) -> None:
            self.post_message(message)

        self.service.watch_folders(
            collection,
            progress=lambda progress: post(self.FoldersProgressed(progress)),
            on_report=lambda report: post(self.FoldersUpdated(report)),
            on_busy=lambda reason: post(self.FoldersBusy(reason)),
            on_error=lambda error: post(self.WatchEnded(error)),
        )

    @on(FoldersProgressed)
    def _folders_progressed(self, event: FoldersProgressed) -> None:
        progress = event.progress
        self.folder_progress = progress
        working = progress.files_done < progress.files_total
        self.watch_activity = (
            f"updating folders {progress.files_done}/{progress.files_total}{ocr_page(progress)}"
            if working
            else ""
        )
        failed = progress.last_result
        if failed is not None and failed.status == "failed":
            self.notify(
                f"{failed.path}\n{failed.reason or 'unknown error'}",
                title="A watched file could not be indexed",
                severity="error",
                timeout=10,
            )

    @on(FoldersUpdated)
    def _folders_updated(self, event: FoldersUpdated) -> None:
        self.watch_activity = ""
        self.folder_progress = None
        self.folder_report = event.report
        if any(result.status not in QUIET_STATUSES for result in event.report.results):
            self.notify(f"{report_summary(event.report)}.", title="Watched folders updated")

    @on(FoldersBusy)
    def _folders_busy(self, event: FoldersBusy) -> None:
        self.notify(
            f"{event.reason}\nThe watched folders are updated once it has finished.",
            title="Library busy",
            severity="warning",
            timeout=10,
        )

    @on(WatchEnded)
    def _watch_ended(self, event: WatchEnded) -> None:
        self._watch_over(*failure(event.error))

    def _watch_over(self, title: str, message: str) -> None:
        self.watch_activity = ""
        self.notify(
            f"{message}\nChanges to the folders are not indexed until the app is started again "
            "(or Re-index all, R, on the Library screen).",
            title=f"Folders not watched: {title}",
            severity="error",
            timeout=12,
        )

    # First run -------------------------------------------------------------------------------

    def action_welcome(self) -> None:
        """Say what is missing (MiniCPM, documents) and offer the ways forward."""
        ok, setup = attempt(self, "check the setup", self._missing_setup)
        if not ok or setup is None:
            self.welcoming = False
            return
        need_model, need_documents, suggestion = setup
        if not (need_model or need_documents):
            self.welcoming = False
            return
        self.welcoming = True
        embedder = self._embedder_suggestion()
        self.push_screen(
            FirstRunScreen(
                need_model=need_model,
                need_documents=need_documents,
                suggested_model=suggestion.name if suggestion else None,
                suggested_title=suggestion.title if suggestion else "",
                suggested_size=f"{suggestion.size_bytes / 1024**3:.1f} GB" if suggestion else "",
                suggested_embedder=embedder.entry.name if embedder else None,
                suggested_embedder_size=(
                    f"{embedder.entry.size_bytes / 1024**3:.1f} GB" if embedder else ""
                ),
            ),
            self._first_run_chosen,
        )

    def _missing_setup(self) -> tuple[bool, bool, CatalogEntry | None]:
        """Whether a MiniCPM model and documents are missing, and the model to suggest."""
        need_model = self.settings.engine.model is None and not any(
            model.is_minicpm for model in self.service.local_models()
        )
        need_documents = not self.service.documents()
        suggestion = next(
            (row.entry for row in self.service.catalog() if not row.entry.is_demo), None
        )
        return need_model, need_documents, suggestion

    def _embedder_suggestion(self) -> EmbedderRow | None:
        """The multilingual embedding model to offer, unless one is on disk already."""
        rows = [row for row in self.service.embedders() if not row.entry.bundled]
        return None if any(row.on_disk for row in rows) else rows[0]

    async def _first_run_chosen(self, choice: FirstRunChoice | None) -> None:
        (self.locations.data_dir / FIRST_RUN_MARKER).touch()
        self.welcoming = False
        if choice is None or choice.action == "demo":
            return
        if choice.action in ("download", "download-embedder") and choice.model_name:
            await self.switch_mode("models")
            screen = self.screen
            if isinstance(screen, ModelsScreen):
                screen.start_download(choice.model_name)
        elif choice.action == "local" and choice.path:
            self.add_local_model(Path(choice.path))
        elif choice.action == "add-folder":
            await self.switch_mode("library")
            await self.screen.run_action("add_folder")


def make_app(
    settings: Settings, locations: Locations, *, service: Service | None = None
) -> MiniCPMApp:
    """Build the app around ``service`` (a real :class:`AssistantService` when not given)."""
    if service is None:
        from assistant.service import AssistantService

        service = AssistantService(settings, locations)  # mypy checks it against the Protocol
    return MiniCPMApp(settings, locations, service)


def run_app(settings: Settings, locations: Locations) -> int:
    """Run the app in this terminal until the user quits; closes the service afterwards."""
    app = make_app(settings, locations)
    try:
        app.run()
    finally:
        app.service.close()
    return app.return_code or 0
