"""The one core API used by both the CLI and the TUI.

It owns the conversation store, loads the model lazily (or takes a given engine, as tests do),
opens the document library lazily, and runs chat turns as a stream of events. The TUI imports
only ``assistant.*``: the library's and the catalog's record types are re-exported here.

llama.cpp, the library (Chroma, NumPy) and the model server's client (httpx) are imported where
they are first needed, not with this module: commands that use none of them (``--help``,
``conversations``) start in a fraction of the time (``tests/assistant/test_imports.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from assistant.config_file import save_setting
from assistant.conversations import Conversation, ConversationStore, ConversationSummary, Role
from assistant.embedders import (
    EmbedderRow,
    display_name,
    embedder_rows,
    entry_named,
    open_library,
    spec_for,
)
from assistant.errors import UsageError
from assistant.events import AnswerFailed, ChatEvent, TurnStarted
from assistant.export import export_conversation
from assistant.locations import Locations
from assistant.prompting import PromptStyle, system_prompt
from assistant.settings import Settings
from assistant.turn import ChatTurn, TurnOptions
from models.catalog import CATALOG, CatalogEntry
from models.config import EngineConfig
from models.embedders import pull_embedder
from models.engine import TextEngine
from models.errors import ModelError
from models.fetch import ProgressCallback
from models.scan import FoundModel
from models.scan import scan as scan_other_apps
from models.store import LocalModel, ModelStore
from rag.errors import CollectionNotFoundError
from rag.folders import Folder
from rag.types import (
    DocumentRecord,
    FileResult,
    Hit,
    IngestProgress,
    IngestReport,
    Relevance,
    SwitchProgress,
    SwitchReport,
)

if TYPE_CHECKING:
    from rag.library import Library
    from rag.watch import FolderWatcher

__all__ = [
    "AssistantService",
    "CatalogEntry",
    "CatalogRow",
    "Conversation",
    "ConversationSummary",
    "DocumentRecord",
    "EmbedderRow",
    "FileResult",
    "Folder",
    "FoundModel",
    "Hit",
    "IngestProgress",
    "IngestReport",
    "LocalModel",
    "ModelStatus",
    "SwitchProgress",
    "SwitchReport",
]

Progress = Callable[[float], None]


@dataclass(frozen=True)
class ModelStatus:
    """What is loaded and where it runs, for the status bar and `doctor`-like notices."""

    name: str
    path: Path
    is_demo: bool
    is_minicpm: bool
    n_ctx: int
    n_gpu_layers: int
    total_layers: int
    backend: str
    offload_reason: str
    server_url: str | None = None
    """The model server generating the answers; ``None`` for llama.cpp in this process."""
    parallel: int = 1
    """Turns that may generate at once: a model server's parallel answers; 1 in this process,
    where llama.cpp holds one context."""


@dataclass(frozen=True)
class ModelServerFacts:
    """A model server as ``doctor`` reports it."""

    model_id: str
    models: tuple[str, ...]
    n_ctx: int
    context_source: str
    """"server" (it reported its context), "configured" ([llm] context_length) or "default"."""
    served_template: str | None
    """The kind of chat template the server shows (None when it shows none)."""
    template: str
    """The template the app renders prompts with ("server": the server's own)."""
    tokenizer: str
    parallel: int


@dataclass(frozen=True)
class CatalogRow:
    entry: CatalogEntry
    on_disk: bool
    path: Path | None = None


class AssistantService:
    """Conversations, grounded answers, the document library and models behind one object.

    ``ask`` runs one turn at a time unless :attr:`ModelStatus.parallel` says the engine takes
    more (a model server): then that many may overlap (``serve`` does). The TUI's single chat
    worker and the CLI do not overlap turns.
    """

    def __init__(
        self,
        settings: Settings,
        locations: Locations,
        *,
        engine: TextEngine | None = None,
        library: Library | None = None,
    ) -> None:
        self.settings = settings
        self.locations = locations.ensure()
        self._engine = engine
        self._library = library
        self._owns_engine = engine is None
        self._owns_library = library is None
        self._models = ModelStore(self.locations.models_dir)
        self._conversations: ConversationStore | None = None
        self._opening_store = threading.Lock()
        self._model_choice = _configured_model(settings)
        self._loading = threading.RLock()
        self._opening_library = threading.Lock()
        self._writing = threading.Lock()
        """Held by this process's ingests and folder updates, so they take turns instead of
        one finding the library busy (the write lock is per open, not per process)."""
        self._watch: tuple[FolderWatcher, threading.Thread] | None = None
        self._watching = threading.RLock()
        """One watch at a time, however many threads start or stop it."""

    @property
    def _store(self) -> ConversationStore:
        """Opened (and migrated) on first use: ``docs`` and ``models`` commands never need it."""
        with self._opening_store:
            if self._conversations is None:
                self._conversations = ConversationStore(self.locations.database_file)
            return self._conversations

    # Model

    def load_engine(
        self,
        progress: Progress | None = None,
        *,
        conversation_id: str | None = None,
        n_gpu_layers: int | Literal["auto"] | None = None,
    ) -> ModelStatus:
        """Load the model (blocking: minutes for a large one on first use), with another GPU
        offload than configured if ``n_gpu_layers`` says so; a loaded model stays as it is.

        The configured model wins; with none configured, a resumed conversation gets the model it
        last ran with when that is still on disk, else the default. Loads are serialised: the
        TUI's model worker and a question asked meanwhile must not load two copies.
        """
        return _status_of(self._ensure_engine(progress, conversation_id, n_gpu_layers))

    def _ensure_engine(
        self,
        progress: Progress | None,
        conversation_id: str | None,
        n_gpu_layers: int | Literal["auto"] | None = None,
    ) -> TextEngine:
        with self._loading:
            if self._engine is None:
                if self._model_choice is None and conversation_id is not None:
                    self._model_choice = self._remembered_model(self._store.get(conversation_id))
                config = _with_gpu_layers(self.settings.engine, n_gpu_layers)
                self._engine = self._load(self._model_choice, progress, config)
            return self._engine

    def _remembered_model(self, conversation: Conversation) -> str | None:
        on_disk = {model.name for model in self._models.local_models()}
        return conversation.model if conversation.model in on_disk else None

    def switch_model(
        self,
        name_or_path: str,
        progress: Progress | None = None,
        *,
        n_gpu_layers: int | Literal["auto"] | None = None,
    ) -> ModelStatus:
        """Replace the loaded model, optionally with another GPU offload (``n_gpu_layers``).

        Reloading the same file closes the old engine first, so two copies of it (weights on
        the GPU, KV cache) never sit in memory at once; if that reload fails, the next question
        loads it again. A different model loads before the old one closes, so a failed switch
        keeps the working model.
        """
        config = _with_gpu_layers(self.settings.engine, n_gpu_layers)
        with self._loading:
            if (
                self._engine is not None
                and not _is_server(name_or_path)
                and _same_file(self._engine.model.path, self._models.resolve(name_or_path).path)
            ):
                self._drop_engine()
            engine = self._load(name_or_path, progress, config)
            self._drop_engine()
            self._engine = engine
            self._owns_engine = True
            self._model_choice = name_or_path
            return _status_of(engine)

    def _drop_engine(self) -> None:
        if self._engine is not None and self._owns_engine:
            self._engine.close()
        self._engine = None

    def model_status(self) -> ModelStatus | None:
        engine = self._engine
        return _status_of(engine) if engine is not None else None

    def _load(
        self, name_or_path: str | None, progress: Progress | None, config: EngineConfig
    ) -> TextEngine:
        if name_or_path is not None and _is_server(name_or_path):
            from models.server_engine import SERVER_MODEL_PREFIX, ServerEngine

            model_id = name_or_path.removeprefix(SERVER_MODEL_PREFIX)
            return ServerEngine.connect(self.settings.llm, model_id or None)
        from models.runtime import LlamaEngine

        engine = LlamaEngine.load(self._models.resolve(name_or_path), config, progress)
        # every prompt starts with the system turn: its KV comes from disk after the first load
        system = system_prompt(PromptStyle.for_template(engine.template.name))
        engine.prime_system_prompt(system, self.locations.cache_dir / "kv")
        return engine

    def server_models(self) -> list[str]:
        """Names (``server:<id>``) of the models the configured server serves; [] with none
        configured. Raises :class:`ModelError` naming the URL when the server does not answer."""
        if self.settings.llm.base_url is None:
            return []
        from models.server_engine import list_server_models, server_model_name

        return [server_model_name(model_id) for model_id in list_server_models(self.settings.llm)]

    def model_server_facts(self) -> ModelServerFacts:
        """What the configured model server serves and how the app will talk to it (``doctor``).
        Raises :class:`ModelError` naming the URL when none is configured or it does not answer."""
        if self.settings.llm.base_url is None:
            raise ModelError("no model server is configured: set [llm] base_url")
        from models.server_engine import ServerEngine, template_kind

        engine = ServerEngine.connect(self.settings.llm)
        try:
            facts = engine.facts
            return ModelServerFacts(
                model_id=engine.model_id,
                models=tuple(facts.models),
                n_ctx=engine.n_ctx,
                context_source=engine.context_source,
                served_template=template_kind(facts.chat_template),
                template=engine.template.name,
                tokenizer=facts.tokenizer,
                parallel=engine.parallel,
            )
        finally:
            engine.close()

    def store_server_facts(self) -> tuple[str, int]:
        """The shared library's Chroma server version and its number of collections (``doctor``).
        Raises :class:`LibraryError` naming the URL when it does not answer or refuses."""
        from rag.chroma_server import connect  # chromadb's client: only for a shared library

        client = connect(self.settings.store)
        return str(client.get_version()), int(client.count_collections())

    # Chat

    def ask(
        self,
        question: str,
        *,
        conversation_id: str | None = None,
        collection: str | None = None,
        document: str | None = None,
        use_documents: bool | None = None,
        allow_general: bool | None = None,
        think: bool = False,
        cancel: threading.Event | None = None,
    ) -> Generator[ChatEvent, None, None]:
        """Answer ``question``, continuing ``conversation_id`` or starting a new conversation.

        The question is saved before anything else; model and library failures end the stream
        with ``AnswerFailed`` (the partial answer kept, marked incomplete) instead of raising.
        Options left ``None`` come from the conversation's last turn, then from the settings.
        ``think`` lets a model with a thinking mode think first, for this question only.
        """
        question = question.strip()
        if not question:
            raise UsageError("the question is empty")
        if conversation_id is None:
            conversation_id = self._store.create()
        conversation = self._store.get(conversation_id)
        options = self._options_for(
            conversation,
            collection=collection,
            document=document,
            use_documents=use_documents,
            allow_general=allow_general,
            think=think,
        )
        question_id = self._store.add_user_message(conversation.id, question)
        yield TurnStarted(conversation_id=conversation.id)
        try:
            engine = self._ensure_engine(None, conversation.id)
        except ModelError as error:
            yield AnswerFailed(conversation.id, title=error.title, message=error.message)
            return
        turn = ChatTurn(
            store=self._store,
            engine=engine,
            search=lambda query: self._search(query, options),
            conversation=conversation,
            question=question,
            question_id=question_id,
            options=options,
            cancel=cancel,
        )
        self._store.update_settings(
            conversation.id,
            model=engine.model.name,
            collection=options.collection,
            settings={
                "document": options.document,
                "use_documents": options.use_documents,
                "allow_general": options.allow_general,
            },
        )
        yield from turn.run()

    def _options_for(
        self,
        conversation: Conversation,
        *,
        collection: str | None,
        document: str | None,
        use_documents: bool | None,
        allow_general: bool | None,
        think: bool = False,
    ) -> TurnOptions:
        """Explicit arguments, else what the conversation last used, else the settings."""
        chat = self.settings.chat
        remembered = conversation.settings
        return TurnOptions(
            collection=_first(collection, conversation.collection, chat.collection),
            document=document if document is not None else remembered.get("document"),
            use_documents=_first(
                use_documents, remembered.get("use_documents"), chat.use_documents
            ),
            allow_general=_first(
                allow_general, remembered.get("allow_general"), chat.allow_general_answers
            ),
            condense=chat.condense_follow_ups,
            answer_tokens=chat.answer_tokens,
            evidence_share=chat.evidence_share,
            evidence_tokens=chat.evidence_tokens,
            temperature=chat.temperature,
            think=think,
            thinking_tokens=chat.thinking_tokens,
        )

    def _search(self, query: str, options: TurnOptions) -> tuple[list[Hit], Relevance]:
        hits, relevance = self.search(
            query, collection=options.collection, document=options.document
        )
        if not hits and options.collection not in self.collections():
            raise CollectionNotFoundError(
                f"there are no documents in collection {options.collection!r} yet; add some with "
                "`minicpm-assistant ingest PATH` (or ask with --no-rag)"
            )
        return hits, relevance

    # Conversations

    def conversation_from(self, history: Sequence[tuple[Role, str]]) -> str:
        """A new conversation holding ``history``, earlier questions and answers as an API client
        sends them, so that ``ask`` in it treats the next question as a follow-up."""
        conversation_id = self._store.create()
        for role, text in history:
            if role == "user":
                self._store.add_user_message(conversation_id, text)
                continue
            answer_id = self._store.start_answer(conversation_id, model=None)
            self._store.finish_answer(
                answer_id,
                text=text,
                incomplete=False,
                grounded=False,
                usage=None,
                timings=None,
                evidence=[],
                cited=[],
            )
        return conversation_id

    def list_conversations(self, query: str | None = None) -> list[ConversationSummary]:
        """Newest first; ``query`` searches the full text of every message."""
        return self._store.summaries(query)

    def get_conversation(self, conversation_id: str) -> Conversation:
        """The conversation with its messages; ``conversation_id`` may be a unique prefix."""
        return self._store.get(conversation_id)

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        if not title.strip():
            raise UsageError("the title is empty")
        self._store.rename(conversation_id, title)

    def delete_conversation(self, conversation_id: str) -> None:
        self._store.delete(conversation_id)

    def export_conversation(self, conversation_id: str, format: Literal["md", "json"]) -> str:
        return export_conversation(self._store.get(conversation_id), format)

    # Library

    def _open_library(self) -> Library:
        """Opened once, on first use, even when TUI workers ask for it at the same time."""
        with self._opening_library:
            if self._library is None:
                self._library = open_library(
                    self.locations, self.settings.library, self.settings.store
                )
            return self._library

    def ingest(
        self,
        paths: Sequence[Path],
        collection: str | None = None,
        progress: Callable[[IngestProgress], None] | None = None,
        cancel: threading.Event | None = None,
        *,
        password: str | None = None,
        retry_failed: bool = False,
        remove_emptied: bool = False,
    ) -> IngestReport:
        """Index ``paths``; waits for a folder update of :meth:`watch_folders` in progress. A
        folder this ingest remembers is then watched too. ``password`` opens encrypted PDFs;
        ``retry_failed`` and ``remove_emptied`` are :meth:`rag.library.Library.ingest`'s."""
        library = self._open_library()
        remembered = {folder.path for folder in library.folders()}
        with self._writing:
            report = library.ingest(
                paths,
                collection or self.settings.chat.collection,
                progress=progress,
                cancel=cancel,
                password=password,
                retry_failed=retry_failed,
                remove_emptied=remove_emptied,
            )
        if self._watch is not None and {f.path for f in library.folders()} != remembered:
            self._watch[0].rescan()
        return report

    def watch_folders(
        self,
        collection: str | None = None,
        *,
        progress: Callable[[IngestProgress], None] | None = None,
        on_report: Callable[[IngestReport], None] | None = None,
        on_busy: Callable[[str], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """Keep ``collection``'s remembered folders indexed from a thread of this service
        (``ingest --watch``'s updates, see :mod:`rag.watch`) until :meth:`stop_watching` or
        :meth:`close`; a watch already running is stopped first. The callbacks run on that
        thread; ``on_error`` gets what ended the watch early."""
        with self._watching:
            self.stop_watching()
            watcher = self._watcher(collection, progress, on_report, on_busy)

            def run() -> None:
                try:
                    watcher.run()
                except Exception as error:  # the watch ends; the app goes on and says why
                    if on_error is None:
                        raise
                    on_error(error)

            thread = threading.Thread(target=run, name="folder-watch")
            self._watch = (watcher, thread)
            thread.start()

    def watch(
        self,
        collection: str | None = None,
        *,
        on_report: Callable[[IngestReport], None] | None = None,
        on_busy: Callable[[str], None] | None = None,
    ) -> None:
        """:meth:`watch_folders` in the calling thread, until it is interrupted (``ingest
        --watch``'s Ctrl-C); an update cut short resumes with the next ingest or watch."""
        self._watcher(collection, None, on_report, on_busy).run()

    def _watcher(
        self,
        collection: str | None,
        progress: Callable[[IngestProgress], None] | None,
        on_report: Callable[[IngestReport], None] | None,
        on_busy: Callable[[str], None] | None,
    ) -> FolderWatcher:
        from rag.watch import FolderWatcher  # watchdog: only for a watch

        library = self._open_library()
        return FolderWatcher(
            library,
            collection or self.settings.chat.collection,
            debounce_s=library.config.watch_debounce_s,
            rescan_s=library.config.watch_rescan_s,
            on_report=on_report,
            progress=progress,
            on_busy=on_busy,
            writing=self._writing,
        )

    def stop_watching(self) -> None:
        """End the watch, if any, and wait for it: an update in progress stops after its
        current file and is finished by the next ingest or watch."""
        with self._watching:
            if self._watch is not None:
                watcher, thread = self._watch
                self._watch = None
                watcher.stop()
                thread.join()

    def documents(
        self, collection: str | None = None, path: str | None = None
    ) -> list[DocumentRecord]:
        """Indexed documents of ``collection`` (None: every collection); with ``path``, only
        that one, once per collection holding it."""
        return self._open_library().documents(collection, path=path)

    def folders(self, collection: str | None = None) -> list[Folder]:
        """The folders ingested into ``collection`` (None: any), which a watch keeps current."""
        return self._open_library().folders(collection)

    def remove_document(self, path: str, collection: str | None = None) -> int:
        """Forget one document; returns how many chunks went (0: it was not indexed)."""
        with self._writing:
            return self._open_library().remove_document(
                path, collection or self.settings.chat.collection
            )

    def remove_folder(self, path: str, collection: str | None = None) -> int | None:
        """Forget a remembered folder and its documents; returns how many documents went
        (None: ``path`` is not a folder of the collection)."""
        with self._writing:
            return self._open_library().remove_folder(
                path, collection or self.settings.chat.collection
            )

    def remove_collection(self, name: str | None = None) -> None:
        with self._writing:
            self._open_library().remove_collection(name or self.settings.chat.collection)

    def collections(self) -> list[str]:
        return self._open_library().collections()

    def search(
        self,
        query: str,
        *,
        collection: str | None = None,
        document: str | None = None,
        k: int | None = None,
    ) -> tuple[list[Hit], Relevance]:
        """The best passages for ``query`` (no model involved), and whether they look relevant
        enough to answer from; empty when the collection holds nothing."""
        library = self._open_library()
        collection = collection or self.settings.chat.collection
        hits = library.search(query, collection=collection, k=k, document=document)
        return hits, library.judge(hits, query, collection)

    # Models

    def catalog(self) -> list[CatalogRow]:
        on_disk = {m.entry.name: m.path for m in self._models.local_models() if m.entry}
        return [CatalogRow(e, e.name in on_disk, on_disk.get(e.name)) for e in CATALOG]

    def local_models(self) -> list[LocalModel]:
        return self._models.local_models()

    def resolve_model(self, name_or_path: str) -> LocalModel:
        """A catalog or local name, or a GGUF's path, as the model it names (``models info``)."""
        return self._models.resolve(name_or_path)

    def linked_models(self) -> list[LocalModel]:
        """Models added as links to files elsewhere (``models add``, ``models scan --add``)."""
        return self._models.references()

    def broken_model_links(self) -> list[tuple[str, Path]]:
        """Links whose file is gone: the model's name and the missing file."""
        return self._models.broken_references()

    def forget_model(self, name: str) -> Path:
        """Remove a linked model (``models rm``); returns its file, which stays."""
        return self._models.remove_reference(name)

    def pull_model(
        self,
        name: str,
        source: Literal["hf", "modelscope"] | None = None,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> LocalModel:
        """Download a catalog model (resumable); ``cancel`` stops it, keeping the partial file."""
        source = source or self.settings.engine.source
        return self._models.pull(name, source, progress=progress, cancel=cancel)

    def add_model(self, path: Path, name: str | None = None) -> LocalModel:
        return self._models.add(path, name)

    def found_models(self) -> list[FoundModel]:
        """GGUFs of other apps on this machine (``models scan``); reads every file's header."""
        return scan_other_apps()

    def embedders(self) -> list[EmbedderRow]:
        """The embedding-model catalog with what is on disk."""
        return embedder_rows(self.locations.models_dir)

    def pull_embedder(
        self,
        name: str,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> Path:
        """Download a catalog embedding model (resumable); returns its folder."""
        entry = entry_named(name)
        return pull_embedder(entry, self.locations.models_dir, progress=progress, cancel=cancel)

    def library_models(self) -> list[str]:
        """The hub models the library uses as the settings name them (embedding, rerank)."""
        library = self.settings.library
        return [name for name in (library.embedding_model, library.rerank_model) if name]

    def download_library_model(self, name: str) -> str:
        """Fetch hub model ``name`` into the Hugging Face cache (``download-models``, the one
        command going online for them); returns its folder."""
        from rag.embedder import download_model  # NumPy: not for every command's start

        return download_model(name)

    def collection_embedder(self, collection: str | None = None) -> str | None:
        """The embedding model ``collection`` uses, by catalog name (None: no such collection)."""
        spec = self._open_library().embedding(collection or self.settings.chat.collection)
        return None if spec is None else display_name(spec.model)

    def switch_embedder(
        self,
        name: str,
        collection: str | None = None,
        progress: Callable[[SwitchProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> SwitchReport:
        """Re-embed ``collection``'s passages with catalog model ``name`` and switch to it; the
        old index answers until the new one is complete (see ``rag.reembed``)."""
        spec = spec_for(entry_named(name), self.locations.models_dir)
        library = self._open_library()
        with self._writing:
            return library.switch_embedder(
                collection or self.settings.chat.collection, spec, progress=progress, cancel=cancel
            )

    # Settings

    def save_ui_theme(self, name: str) -> None:
        """Remember the theme the user picked: written to the config file for the next start."""
        save_setting(self.locations.config_file, "ui", "theme", name)
        self.settings.ui.theme = name

    def close(self) -> None:
        """Stop the watch; close the store, and the engine and library unless they were given
        by the caller."""
        self.stop_watching()
        self._drop_engine()
        if self._library is not None and self._owns_library:
            self._library.close()
        self._library = None
        if self._conversations is not None:
            self._conversations.close()


def _first(*values: Any) -> Any:
    """The first value that is not None (explicit argument, remembered, configured)."""
    return next(value for value in values if value is not None)


def _configured_model(settings: Settings) -> str | None:
    """With ``[llm] base_url`` set, a server model: ``--model server:ID``, else ``[llm] model``,
    else the server's first."""
    chosen = settings.engine.model
    if settings.llm.base_url is not None and not (chosen and _is_server(chosen)):
        from models.server_engine import server_model_name

        return server_model_name(settings.llm.model or "")
    return chosen


def _is_server(name_or_path: str) -> bool:
    from models.server_engine import SERVER_MODEL_PREFIX

    return name_or_path.startswith(SERVER_MODEL_PREFIX)


def _same_file(left: Path, right: Path) -> bool:
    """Models are often reached through a symlink in the models directory."""
    return left.resolve() == right.resolve()


def _with_gpu_layers(
    config: EngineConfig, n_gpu_layers: int | Literal["auto"] | None
) -> EngineConfig:
    """The settings' engine config for one load, another GPU offload if asked (the settings
    themselves stay as the user wrote them)."""
    if n_gpu_layers is None:
        return config
    return config.model_copy(update={"n_gpu_layers": n_gpu_layers})


def _status_of(engine: TextEngine) -> ModelStatus:
    from models.server_engine import ServerEngine

    model = engine.model
    return ModelStatus(
        name=model.name,
        path=model.path,
        is_demo=model.is_demo,
        is_minicpm=model.is_minicpm,
        n_ctx=engine.n_ctx,
        n_gpu_layers=engine.offload.n_gpu_layers,
        total_layers=engine.offload.total_layers,
        backend=engine.offload.backend,
        offload_reason=engine.offload.reason,
        server_url=engine.client.base_url if isinstance(engine, ServerEngine) else None,
        parallel=engine.parallel if isinstance(engine, ServerEngine) else 1,
    )
