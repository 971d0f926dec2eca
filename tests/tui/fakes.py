"""A scripted stand-in for :class:`assistant.service.AssistantService`, for tests about the UI
itself (layout, keys, snapshots). Conversations are stored for real (``ConversationStore`` on the
test's home); the model and the library are scripted so answers and timings are deterministic.
The main flows are also tested against the real service in ``test_real_stack.py``. It returns the
core's own record types and mypy checks it against the TUI's :class:`tui.service_protocol.Service`
(where the tests hand it to ``make_app``), so it cannot drift from what the real service offers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from assistant.conversations import Conversation, ConversationStore, ConversationSummary
from assistant.embedders import EmbedderRow, embedder_rows
from assistant.events import (
    AnswerFinished,
    ChatEvent,
    RetrievalFinished,
    RetrievalStarted,
    Source,
    ThinkingReceived,
    TokenReceived,
    TurnStarted,
)
from assistant.locations import Locations
from assistant.service import CatalogRow, ModelStatus
from models.catalog import CatalogEntry, find_entry
from models.embedders import embedders_dir
from models.events import Timings, Usage
from models.scan import FoundModel
from models.store import LocalModel
from rag.types import (
    DocumentRecord,
    EmbeddingSpec,
    FileResult,
    Hit,
    IngestProgress,
    IngestReport,
    Relevance,
    SwitchProgress,
    SwitchReport,
)

DEMO_STATUS = ModelStatus(
    "gemma3-270m-demo",
    Path("/models/gemma.gguf"),
    is_demo=True,
    is_minicpm=False,
    n_ctx=4096,
    n_gpu_layers=0,
    total_layers=19,
    backend="CPU",
    offload_reason="no GPU backend",
)
MINICPM_STATUS = replace(
    DEMO_STATUS,
    name="minicpm-2b-dpo",
    path=Path("/models/minicpm-2b-dpo-q4_k_m.gguf"),
    is_demo=False,
    is_minicpm=True,
    total_layers=40,
)


def catalog_entry(name: str, **facts: Any) -> CatalogEntry:
    """The real catalog entry ``name`` with scripted ``facts`` (titles, sizes): fixed pictures."""
    entry = find_entry(name)
    assert entry is not None, f"{name} is not in the catalog"
    return replace(entry, **facts)


PASSAGES = [
    Hit(
        "c1",
        "/docs/tracemonkey.pdf",
        1,
        1,
        0.82,
        "TraceMonkey is a trace-based JIT compiler for JavaScript built into Firefox.",
    ),
    Hit(
        "c2",
        "/docs/tracemonkey.pdf",
        3,
        4,
        0.61,
        "Trace trees record hot loops and compile them to native code with type speculation.",
    ),
    Hit("c3", "/docs/notes.md", 1, 1, 0.33, "Unrelated meeting notes."),
]


@dataclass
class FakeService:
    """Answers every question with ``answer_tokens``, citing ``[1]`` and ``[2]``."""

    locations: Locations
    answer_tokens: list[str] = field(
        default_factory=lambda: [
            "TraceMonkey ",
            "is a ",
            "**tracing JIT** ",
            "for JavaScript ",
            "[1]. ",
            "It records ",
            "hot loops [2].",
        ]
    )
    answer_gate: threading.Event | None = None
    """When given, the answer holds after its first token until it is set (at most a minute), so
    a test can look at, or stop, an answer being written however slow the machine is."""
    status: ModelStatus = MINICPM_STATUS
    minicpm_on_disk: bool = True
    documents_list: list[DocumentRecord] = field(default_factory=list)
    fail_with: Exception | None = None
    """Raised by ``ask`` after retrieval (a model failure mid-turn)."""
    download_error: Exception | None = None
    ingest_gate: threading.Event | None = None
    """When given, ``ingest`` stops after the first file until it is set (at most a minute), so
    a test sees indexing under way however slow the machine is."""
    asked: list[str] = field(default_factory=list)
    asked_collections: list[str | None] = field(default_factory=list)
    ingested: list[list[Path]] = field(default_factory=list)
    switched_to: list[str] = field(default_factory=list)
    gpu_layers_asked: list[int | Literal["auto"] | None] = field(default_factory=list)
    """The GPU offload each load or switch was asked for (None: the settings')."""
    watched: list[str | None] = field(default_factory=list)
    """The collections a watch was started for, in order."""
    saved_themes: list[str] = field(default_factory=list)
    thinking_tokens: list[str] = field(default_factory=list)
    """Streamed as thinking before the answer when a question is asked with ``think``."""
    asked_think: list[bool] = field(default_factory=list)
    embedder_in_use: str = "all-MiniLM-L6-v2"
    switched_embedders: list[tuple[str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.minicpm_on_disk:
            self.status = DEMO_STATUS
        self.store = ConversationStore(self.locations.ensure().database_file)
        self.loaded = False

    # Model

    def load_engine(
        self,
        progress: Callable[[float], None] | None = None,
        *,
        n_gpu_layers: int | Literal["auto"] | None = None,
    ) -> ModelStatus:
        if progress:
            progress(1.0)
        self.loaded = True
        self.gpu_layers_asked.append(n_gpu_layers)
        return self.status

    def switch_model(
        self,
        name_or_path: str,
        progress: Callable[[float], None] | None = None,
        *,
        n_gpu_layers: int | Literal["auto"] | None = None,
    ) -> ModelStatus:
        self.switched_to.append(name_or_path)
        self.gpu_layers_asked.append(n_gpu_layers)
        return self.status

    def server_models(self) -> list[str]:
        return []

    def local_models(self) -> list[LocalModel]:
        return [LocalModel(self.status.name, self.status.path, None, self.status.is_demo)]

    def catalog(self) -> list[CatalogRow]:
        return [
            CatalogRow(
                catalog_entry(
                    "minicpm-2b-dpo",
                    title="MiniCPM-2B DPO",
                    params="2.7B",
                    quantization="Q4_K_M",
                    size_bytes=1_700_000_000,
                    ram_gb=3.0,
                ),
                self.minicpm_on_disk,
            ),
            CatalogRow(
                catalog_entry(
                    "minicpm-1b",
                    title="MiniCPM-1B",
                    params="1.2B",
                    quantization="Q4_K_M",
                    size_bytes=800_000_000,
                    ram_gb=1.8,
                ),
                False,
            ),
            CatalogRow(
                catalog_entry(
                    "gemma3-270m-demo",
                    title="Gemma 3 270M",
                    params="270M",
                    quantization="Q4_K_M",
                    size_bytes=253_000_000,
                    ram_gb=0.6,
                ),
                True,
            ),
        ]

    def add_model(self, path: Path, name: str | None = None) -> LocalModel:
        return LocalModel(name or path.stem, path, None, False)

    def found_models(self) -> list[FoundModel]:
        return []

    def pull_model(
        self,
        name: str,
        source: Literal["hf", "modelscope"] | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> LocalModel:
        if self.download_error is not None:
            raise self.download_error
        for done in (0, 500, 1000):
            if progress:
                progress(done, 1000)
        return LocalModel(name, Path(f"/models/{name}.gguf"), find_entry(name), False)

    # Chat

    def ask(
        self,
        question: str,
        *,
        conversation_id: str | None = None,
        collection: str | None = None,
        think: bool = False,
        cancel: threading.Event | None = None,
        **_: object,
    ) -> Iterator[ChatEvent]:
        self.asked.append(question)
        self.asked_collections.append(collection)
        self.asked_think.append(think)
        conversation_id = conversation_id or self.store.create()
        self.store.add_user_message(conversation_id, question)
        yield TurnStarted(conversation_id)
        yield RetrievalStarted(question)
        yield RetrievalFinished(question, PASSAGES, Relevance(True))
        if self.fail_with is not None:
            raise self.fail_with
        answer_id = self.store.start_answer(conversation_id, model=self.status.name)
        thought = self.thinking_tokens if think else []
        for token in thought:
            yield ThinkingReceived(token)
        written: list[str] = []
        for number, token in enumerate(self.answer_tokens):
            if number == 1 and self.answer_gate is not None:
                self.answer_gate.wait(timeout=60)
            if cancel is not None and cancel.is_set():
                break
            written.append(token)
            yield TokenReceived(token)
        text = "".join(written)
        incomplete = len(written) < len(self.answer_tokens)
        evidence = [Source.from_hit(n, hit) for n, hit in enumerate(PASSAGES, 1)]
        cited = [s for s in evidence if f"[{s.number}]" in text]
        usage = Usage(600, 600, len(written))
        timings = Timings(ttft_s=1.0, prefill_tok_s=18.0, decode_tok_s=12.5, total_s=2.0)
        self.store.finish_answer(
            answer_id,
            text=text,
            incomplete=incomplete,
            grounded=True,
            usage=usage,
            timings=timings,
            evidence=evidence,
            cited=[s.number for s in cited],
            thinking="".join(thought),
        )
        yield AnswerFinished(
            conversation_id,
            answer_id,
            text,
            cited,
            usage,
            timings,
            incomplete=incomplete,
            evidence=evidence,
            thinking="".join(thought),
            thinking_tokens=len(thought),
            thinking_mode=think,
        )

    # Conversations (real store)

    def list_conversations(self, query: str | None = None) -> list[ConversationSummary]:
        return self.store.summaries(query)

    def get_conversation(self, conversation_id: str) -> Conversation:
        return self.store.get(conversation_id)

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        self.store.rename(conversation_id, title)

    def delete_conversation(self, conversation_id: str) -> None:
        self.store.delete(conversation_id)

    def export_conversation(self, conversation_id: str, format: str) -> str:
        conversation = self.store.get(conversation_id)
        return "\n\n".join(f"**{m.role}**: {m.text}" for m in conversation.messages)

    # Library

    def ingest(
        self,
        paths: Sequence[Path],
        collection: str | None = None,
        progress: Callable[[IngestProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> IngestReport:
        self.ingested.append(list(paths))
        files = sorted(p for path in paths for p in (path.iterdir() if path.is_dir() else [path]))
        report = IngestReport(collection or "default")
        for done, file in enumerate(files, 1):
            if done == 2 and self.ingest_gate is not None:
                self.ingest_gate.wait(timeout=60)
            failed = file.suffix != ".pdf"
            result = FileResult(
                str(file),
                "failed" if failed else "indexed",
                pages=0 if failed else 2,
                chunks=0 if failed else 5,
                reason="not a PDF or text file" if failed else None,
            )
            report.results.append(result)
            if not failed:
                self.documents_list.append(
                    DocumentRecord(str(file), report.collection, "h", 2, 5, 1_700_000_000.0)
                )
            if progress:
                progress(
                    IngestProgress(
                        done, len(files), done * 2, done * 5, str(file), 7.5, None, result
                    )
                )
        report.seconds = 1.0
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
        self.watched.append(collection)

    def stop_watching(self) -> None:
        """Nothing runs: ``watch_folders`` only records."""

    def documents(self, collection: str | None = None) -> list[DocumentRecord]:
        return list(self.documents_list)

    def remove_document(self, path: str, collection: str | None = None) -> int:
        before = len(self.documents_list)
        self.documents_list = [d for d in self.documents_list if d.path != path]
        return (before - len(self.documents_list)) * 5

    def collections(self) -> list[str]:
        return ["default"]

    # Embedding models: the real catalog and models folder; the switch is scripted

    def embedders(self) -> list[EmbedderRow]:
        return embedder_rows(self.locations.models_dir)

    def pull_embedder(
        self, name: str, progress: Callable[[int, int | None], None] | None = None
    ) -> Path:
        folder = embedders_dir(self.locations.models_dir) / name
        for done in (0, 500, 1000):
            if progress:
                progress(done, 1000)
        folder.mkdir(parents=True)
        return folder

    def collection_embedder(self, collection: str | None = None) -> str:
        return self.embedder_in_use

    def switch_embedder(
        self,
        name: str,
        collection: str | None = None,
        progress: Callable[[SwitchProgress], None] | None = None,
    ) -> SwitchReport:
        for done in (0, 20, 40):
            if progress:
                progress(SwitchProgress(done, 40))
        self.embedder_in_use = name
        self.switched_embedders.append((name, collection))
        return SwitchReport(collection or "default", EmbeddingSpec(name), 40, 40, 0.1)

    def save_ui_theme(self, name: str) -> None:
        self.saved_themes.append(name)

    def close(self) -> None:
        self.store.close()
