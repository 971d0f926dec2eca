"""A library shared on a Chroma server: what every machine must see is kept on the server.

Per library collection, beside its vectors (:mod:`rag.store`, named by
:func:`rag.store.chroma_name`), two server collections:

- ``<name>-passages``: one record per passage under its chunk id, with the passage (text, pages,
  heading) in its metadata and its keyword terms (:func:`rag.keyword.stems` of the passage, then
  of its document identity and heading path) as its document, which Chroma's full-text filter
  searches (:mod:`rag.shared_keyword`);
- ``<name>-records``: ``content:<hash>`` once a content is fully stored (pages, chunks, title,
  identity, its terms' total for BM25) and ``owner:<machine>:<hash>`` while a machine's documents
  reference that content. Its metadata records the collection's embedding model and prefixes.

The write order extends the manifest's (:mod:`rag.manifest`): the local pending row, the
vectors, the local commit, then the content is published (:meth:`SharedIndex.store_content`): its
passages, its content record and this machine's owner record. Readers see only contents with a
record, so a crash or a lost server at any point leaves nothing half-visible: before the local
commit the pending row makes recovery release the content (:meth:`SharedIndex.release`: this
machine's owner record goes, the records and vectors only when no other machine owns it); after
it, the next ingest or search of this machine publishes what the server lacks
(:meth:`rag.shared_manifest.SharedManifest.outdated_contents`). Ids come from the content hash and
chunk number, so two machines storing the same file write the same records: nothing is
duplicated. A content released by its last other owner while this machine stored it loses its
vectors; publishing checks for them, and such a content is embedded again instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag import keyword
from rag.chroma_import import NotFoundError
from rag.chroma_server import Guarded
from rag.manifest import ChunkRow
from rag.store import VectorStore, chroma_name
from rag.types import EmbeddingSpec

_log = logging.getLogger(__name__)
_NO_VECTOR = [1.0]
"""Chroma stores every record with an embedding; passages and records are never queried by one."""
_BATCH = 1000
_CONTEXT_MARK = " | "
"""Between a passage's terms and its context's in the stored keyword document."""


@dataclass(frozen=True)
class StoredContent:
    """The ``content:<hash>`` record: what a content holds, as the search side needs it."""

    content_hash: str
    chunks: int
    terms: int
    path: str
    title: str | None
    identity: str
    pages: int = 0
    indexed_at: float = 0.0


def keyword_document(text: str, context: str) -> tuple[str, int]:
    """The stored terms of a passage and how many there are (BM25's document length)."""
    text_terms, context_terms = keyword.stems([text, context])
    document = f" {' '.join(text_terms)}{_CONTEXT_MARK}{' '.join(context_terms)} "
    return document, len(text_terms) + len(context_terms)


def split_keyword_document(document: str) -> tuple[list[str], list[str]]:
    """A stored keyword document back as (passage terms, context terms)."""
    text, _, context = document.partition(_CONTEXT_MARK)
    return text.split(), context.split()


class SharedIndex:
    """The server side of a shared library for one machine (thread-safe: one HTTP client)."""

    def __init__(self, client: Guarded, machine: str, url: str) -> None:
        self.client, self.machine, self.url = client, machine, url
        self._handles: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._averages: dict[str, tuple[int, float]] = {}

    # server collections

    def _handle(self, name: str, metadata: dict[str, str] | None = None) -> Any | None:
        """The server collection ``name`` (created with ``metadata`` when given), else None."""
        with self._lock:
            if name not in self._handles:
                try:
                    if metadata is None:
                        handle = self.client.get_collection(name, embedding_function=None)
                    else:
                        handle = self.client.get_or_create_collection(
                            name, metadata=metadata, embedding_function=None
                        )
                except NotFoundError:
                    return None
                self._handles[name] = handle
            return self._handles[name]

    def passages_of(self, collection: str) -> Any | None:
        return self._handle(chroma_name(collection) + "-passages")

    def _records(self, collection: str) -> Any | None:
        return self._handle(chroma_name(collection) + "-records")

    def spec(self, collection: str) -> EmbeddingSpec | None:
        """The model and prefixes the shared collection is embedded with (None: no such one)."""
        records = self._records(collection)
        if records is None:
            return None
        meta = records.metadata or {}
        return EmbeddingSpec(
            str(meta["embedding_model"]),
            str(meta.get("query_prefix", "")),
            str(meta.get("passage_prefix", "")),
        )

    def create(self, collection: str, spec: EmbeddingSpec) -> EmbeddingSpec:
        """Make the shared collection if no machine has; returns the spec it is made with
        (the first machine's, when two create it at once)."""
        self._handle(
            chroma_name(collection) + "-records",
            {
                "records_of": collection,
                "embedding_model": spec.model,
                "query_prefix": spec.query_prefix,
                "passage_prefix": spec.passage_prefix,
            },
        )
        self._handle(chroma_name(collection) + "-passages", {"passages_of": collection})
        with self._lock:  # read back what the server holds
            self._handles.pop(chroma_name(collection) + "-records")
        return self.spec(collection) or spec

    def collections(self) -> list[str]:
        found = (item.metadata or {} for item in self.client.list_collections())
        return sorted({str(meta["records_of"]) for meta in found if "records_of" in meta})

    # writing

    def store_content(
        self,
        collection: str,
        content_hash: str,
        path: str,
        rows: Sequence[ChunkRow],
        identity: str,
        details: dict[str, str | int],
    ) -> bool:
        """Publish a content whose vectors are stored: its passages, then its content record
        and this machine's ownership. ``details`` (pages, title, warnings) go into the content
        record as they are.

        Returns False, leaving no content record, when its vectors turn out incomplete (another
        machine released the content meanwhile): it must be embedded again.
        """
        passages, records = self.passages_of(collection), self._records(collection)
        assert passages is not None and records is not None, "create() the collection first"
        terms = 0
        for start in range(0, len(rows), _BATCH):
            batch = rows[start : start + _BATCH]
            documents = []
            for row in batch:
                document, length = keyword_document(
                    row.text, f"{identity}\n{row.heading_path or ''}"
                )
                documents.append(document)
                terms += length
            passages.upsert(
                ids=[row.chunk_id for row in batch],
                embeddings=[_NO_VECTOR] * len(batch),
                documents=documents,
                metadatas=[_present(_passage_metadata(row)) for row in batch],
            )
        content = {
            "kind": "content",
            "content_hash": content_hash,
            "chunks": len(rows),
            "terms": terms,
            "path": path,
            "identity": identity,
            "indexed_at": time.time(),
            **details,
        }
        owner = {"kind": "owner", "content_hash": content_hash, "machine": self.machine}
        records.upsert(
            ids=[f"content:{content_hash}", self._owner_id(content_hash)],
            embeddings=[_NO_VECTOR, _NO_VECTOR],
            metadatas=[_present(content), owner],
        )
        if self.vector_count(collection, content_hash) == len(rows):
            return True
        records.delete(ids=[f"content:{content_hash}"])
        return False

    def vector_count(self, collection: str, content_hash: str) -> int:
        vectors = self._handle(chroma_name(collection))
        if vectors is None:
            return 0
        return len(vectors.get(where={"content_hash": content_hash}, include=[])["ids"])

    def release(self, collection: str, content_hash: str) -> bool:
        """This machine no longer references the content; delete it (records, passages,
        vectors) when no other machine does. Returns whether it was deleted."""
        records = self._records(collection)
        if records is None:
            return False
        records.delete(ids=[self._owner_id(content_hash)])
        if self._owners(records, content_hash):
            return False
        records.delete(ids=[f"content:{content_hash}"])  # readers stop seeing it first
        passages = self.passages_of(collection)
        if passages is not None:
            passages.delete(where={"content_hash": content_hash})
        vectors = self._handle(chroma_name(collection))
        if vectors is not None:
            vectors.delete(where={"content_hash": content_hash})
        if self._owners(records, content_hash):
            _log.warning(
                "content %s of %r was deleted while another machine stored it; that machine "
                "stores it again on its next ingest or search",
                content_hash[:12],
                collection,
            )
        return True

    def drop_if_unowned(self, collection: str) -> None:
        """Drop the shared collection's server collections once no machine owns anything."""
        records = self._records(collection)
        if records is not None and records.get(where={"kind": "owner"}, limit=1)["ids"]:
            return
        name = chroma_name(collection)
        for suffix in ("", "-passages", "-records"):
            with self._lock:
                self._handles.pop(name + suffix, None)
            try:
                self.client.delete_collection(name + suffix)
            except NotFoundError:  # already gone
                continue

    # reading

    def missing(self, collection: str, contents: Sequence[str]) -> set[str]:
        """Which of this machine's ``contents`` the server lacks (record or ownership)."""
        records = self._records(collection)
        if records is None or not contents:
            return set(contents)
        wanted = [f"content:{h}" for h in contents] + [self._owner_id(h) for h in contents]
        present = set(records.get(ids=wanted, include=[])["ids"])
        return {
            h for h in contents if f"content:{h}" not in present or self._owner_id(h) not in present
        }

    def contents(self, collection: str, hashes: Sequence[str] | None = None) -> list[StoredContent]:
        """The fully stored contents (all of them, or those of ``hashes``)."""
        records = self._records(collection)
        if records is None or (hashes is not None and not hashes):
            return []
        if hashes is None:
            found = records.get(where={"kind": "content"}, include=["metadatas"])
        else:
            found = records.get(ids=[f"content:{h}" for h in hashes], include=["metadatas"])
        return [
            StoredContent(
                str(meta["content_hash"]),
                int(meta["chunks"]),
                int(meta["terms"]),
                str(meta["path"]),
                None if meta.get("title") is None else str(meta["title"]),
                str(meta.get("identity", "")),
                int(meta.get("pages", 0)),
                float(meta.get("indexed_at", 0.0)),
            )
            for meta in found["metadatas"]
        ]

    def passages(self, collection: str, ids: Sequence[str]) -> dict[str, ChunkRow]:
        """The passages of ``ids`` whose content is fully stored."""
        passages = self.passages_of(collection)
        if passages is None or not ids:
            return {}
        found = passages.get(ids=list(dict.fromkeys(ids)), include=["metadatas"])
        rows = {
            str(i): _chunk_row(str(i), meta)
            for i, meta in zip(found["ids"], found["metadatas"], strict=True)
        }
        stored = {item.content_hash for item in self.contents(collection, _distinct(rows))}
        return {chunk: row for chunk, row in rows.items() if row.content_hash in stored}

    def average_terms(self, collection: str, passages: int) -> float:
        """Mean terms per passage (BM25's avgdl); read again when the passage count changes."""
        cached = self._averages.get(collection)
        if cached is None or cached[0] != passages:
            stored = self.contents(collection)
            chunks = sum(content.chunks for content in stored)
            terms = sum(content.terms for content in stored)
            cached = (passages, max(1.0, terms / chunks) if chunks else 1.0)
            self._averages[collection] = cached
        return cached[1]

    def content_passages(self, collection: str, content_hash: str) -> list[ChunkRow]:
        """Every passage of one fully stored content, in order."""
        passages = self.passages_of(collection)
        if passages is None or not self.contents(collection, [content_hash]):
            return []
        found = passages.get(where={"content_hash": content_hash}, include=["metadatas"])
        rows = [
            _chunk_row(str(i), meta)
            for i, meta in zip(found["ids"], found["metadatas"], strict=True)
        ]
        return sorted(rows, key=lambda row: row.seq)

    def _owners(self, records: Any, content_hash: str) -> list[str]:
        where = {"$and": [{"kind": "owner"}, {"content_hash": content_hash}]}
        return [str(i) for i in records.get(where=where, include=[])["ids"]]

    def _owner_id(self, content_hash: str) -> str:
        return f"owner:{self.machine}:{content_hash}"


class ServerVectorStore(VectorStore):
    """The vectors of a shared library, on the server. Deleting a content's vectors means
    releasing it (:meth:`SharedIndex.release`): other machines may still reference it."""

    def __init__(self, shared: SharedIndex) -> None:
        super().__init__(Path(shared.url))
        self.shared = shared
        self._client = shared.client

    def retargeted(self, collection: str, name: str) -> VectorStore:
        return self  # a shared collection keeps the vectors it was made with

    def create(self, collection: str, embedding_model: str) -> None:
        self._collection(collection, embedding_model)  # another machine's vectors stay

    def delete_content(self, collection: str, content_hash: str) -> None:
        self.shared.release(collection, content_hash)

    def drop_others(self, collection: str, keep: set[str]) -> None:
        if not keep:  # the collection is removed from this machine
            self.shared.drop_if_unowned(collection)

    def query(
        self, collection: str, vector: Any, limit: int, content_hash: str | None = None
    ) -> list[tuple[str, float]]:
        try:
            return super().query(collection, vector, limit, content_hash)
        except NotFoundError:  # another machine removed the whole collection
            return []

    def close(self) -> None:
        """The client belongs to the shared index; nothing local to tighten."""


def _passage_metadata(row: ChunkRow) -> dict[str, Any]:
    return {
        "content_hash": row.content_hash,
        "seq": row.seq,
        "page_start": row.page_start,
        "page_end": row.page_end,
        "page_label": row.page_label,
        "heading": row.heading,
        "heading_path": row.heading_path,
        "text": row.text,
        "ocr": row.ocr,
    }


def _chunk_row(chunk: str, meta: dict[str, Any]) -> ChunkRow:
    return ChunkRow(
        chunk_id=chunk,
        content_hash=str(meta["content_hash"]),
        page_start=int(meta["page_start"]),
        page_end=int(meta["page_end"]),
        page_label=meta.get("page_label"),
        heading=meta.get("heading"),
        text=str(meta["text"]),
        seq=int(meta["seq"]),
        heading_path=meta.get("heading_path"),
        ocr=bool(meta.get("ocr", False)),
    )


def _present(metadata: dict[str, Any]) -> dict[str, Any]:
    """Chroma metadata holds no empty values: leave out what is None."""
    return {key: value for key, value in metadata.items() if value is not None}


def _distinct(rows: dict[str, ChunkRow]) -> list[str]:
    return sorted({row.content_hash for row in rows.values()})
