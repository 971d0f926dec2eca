"""What the TUI asks of the core: the part of :class:`assistant.service.AssistantService` it calls.

The app, its screens and the tests' scripted service are all typed against this Protocol, so
mypy notices when the fake drifts from the real service or the TUI starts to lean on something
the Protocol does not name. The core does not know about it (the TUI depends on the core).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from assistant.events import ChatEvent
    from assistant.service import (
        CatalogRow,
        Conversation,
        ConversationSummary,
        DocumentRecord,
        EmbedderRow,
        FoundModel,
        IngestProgress,
        IngestReport,
        LocalModel,
        ModelStatus,
        SwitchProgress,
        SwitchReport,
    )

LoadProgress = Callable[[float], None]
"""Called with the fraction of the model loaded."""
DownloadProgress = Callable[[int, "int | None"], None]
"""Called with (bytes so far, total bytes or ``None`` when the server does not say)."""


class Service(Protocol):
    """Conversations, grounded answers, the document library and models, as the TUI uses them."""

    # Model

    def load_engine(
        self,
        progress: LoadProgress | None = None,
        *,
        n_gpu_layers: int | Literal["auto"] | None = None,
    ) -> ModelStatus: ...

    def switch_model(
        self,
        name_or_path: str,
        progress: LoadProgress | None = None,
        *,
        n_gpu_layers: int | Literal["auto"] | None = None,
    ) -> ModelStatus: ...

    def server_models(self) -> list[str]: ...

    def catalog(self) -> list[CatalogRow]: ...

    def local_models(self) -> list[LocalModel]: ...

    def pull_model(
        self,
        name: str,
        source: Literal["hf", "modelscope"] | None = None,
        progress: DownloadProgress | None = None,
    ) -> LocalModel: ...

    def add_model(self, path: Path, name: str | None = None) -> LocalModel: ...

    def found_models(self) -> list[FoundModel]: ...

    # Chat

    def ask(
        self,
        question: str,
        *,
        conversation_id: str | None = None,
        collection: str | None = None,
        think: bool = False,
        cancel: threading.Event | None = None,
    ) -> Iterator[ChatEvent]: ...

    # Conversations

    def list_conversations(self, query: str | None = None) -> list[ConversationSummary]: ...

    def get_conversation(self, conversation_id: str) -> Conversation: ...

    def rename_conversation(self, conversation_id: str, title: str) -> None: ...

    def delete_conversation(self, conversation_id: str) -> None: ...

    def export_conversation(self, conversation_id: str, format: Literal["md", "json"]) -> str: ...

    # Library

    def ingest(
        self,
        paths: Sequence[Path],
        collection: str | None = None,
        progress: Callable[[IngestProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> IngestReport: ...

    def watch_folders(
        self,
        collection: str | None = None,
        *,
        progress: Callable[[IngestProgress], None] | None = None,
        on_report: Callable[[IngestReport], None] | None = None,
        on_busy: Callable[[str], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None: ...

    def stop_watching(self) -> None: ...

    def documents(self, collection: str | None = None) -> list[DocumentRecord]: ...

    def remove_document(self, path: str, collection: str | None = None) -> int: ...

    def collections(self) -> list[str]: ...

    # Embedding models

    def embedders(self) -> list[EmbedderRow]: ...

    def pull_embedder(self, name: str, progress: DownloadProgress | None = None) -> Path: ...

    def collection_embedder(self, collection: str | None = None) -> str | None: ...

    def switch_embedder(
        self,
        name: str,
        collection: str | None = None,
        progress: Callable[[SwitchProgress], None] | None = None,
    ) -> SwitchReport: ...

    # Settings

    def save_ui_theme(self, name: str) -> None: ...

    def close(self) -> None: ...
