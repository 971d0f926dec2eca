"""The manifest of a machine using a shared library: local bookkeeping, shared answers.

This machine's documents, failures and pending writes stay in its SQLite manifest, so ingest,
removal and crash recovery work as they do alone (:mod:`rag.manifest`). What a search, a
refusal or another machine needs comes from the server (:class:`rag.shared.SharedIndex`): the
collections and their embedding model, the passages, their documents' paths and titles. A
content is published on the server right after the local commit that records it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from rag.chunker import Chunk
from rag.errors import LibraryError
from rag.manifest import ChunkRow, DocumentRow, Manifest, PassageRow, PendingSwitch
from rag.shared import SharedIndex
from rag.types import DocumentRecord, EmbeddingSpec

_log = logging.getLogger(__name__)


class SharedManifest(Manifest):
    """:class:`Manifest` whose shared facts live on the server (one connection, one thread)."""

    def __init__(self, path: Path, shared: SharedIndex) -> None:
        super().__init__(path)
        self.shared = shared

    # collections: the server's, adopted locally on first use

    def collection_model(self, collection: str) -> str | None:
        model = super().collection_model(collection)
        if model is None and (spec := self.shared.spec(collection)) is not None:
            super().add_collection(collection, spec)
            model = spec.model
        return model

    def add_collection(self, collection: str, spec: EmbeddingSpec) -> None:
        super().add_collection(collection, self.shared.create(collection, spec))

    def embedding(
        self, collection: str, configured: EmbeddingSpec
    ) -> tuple[EmbeddingSpec, str | None] | None:
        self.collection_model(collection)
        return super().embedding(collection, configured)

    def collections(self) -> list[str]:
        return sorted(set(super().collections()) | set(self.shared.collections()))

    def remove_collection(self, collection: str) -> None:
        """Forget this machine's documents of the collection; what others own stays."""
        pending = {h for c, h in self.pending() if c == collection}
        for content_hash in sorted(self.content_hashes(collection) | pending):
            self.shared.release(collection, content_hash)
        super().remove_collection(collection)

    def begin_switch(self, collection: str, switch: PendingSwitch) -> None:
        raise LibraryError(
            f"collection {collection!r} is shared on {self.shared.url}: switching its embedding "
            "model is not supported there; ingest into a new collection with the new model"
        )

    # writing: the local record, then the server's

    def commit_content(
        self,
        collection: str,
        document: DocumentRow,
        chunks: Sequence[Chunk],
        text_hashes: Sequence[str],
        pages: int,
        title: str | None,
        warnings: str | None,
        identity: str = "",
    ) -> str | None:
        """Record the content as :class:`Manifest` does, then publish it on the server.

        A crash or a lost server in between leaves it recorded here but unpublished, which the
        next ingest or search finds (:meth:`outdated_contents`) and publishes.
        """
        released = super().commit_content(
            collection, document, chunks, text_hashes, pages, title, warnings, identity
        )
        if not self._publish(collection, document.content_hash, document.path):
            _log.warning("%s is embedded again on the next ingest", document.path)
        return released

    def _publish(self, collection: str, content_hash: str, path: str) -> bool:
        """Put a recorded content's passages and records on the server; False when the server
        no longer holds all its vectors (it must be embedded again)."""
        passages = super().passages(collection, content_hash)
        rows = super().chunks(collection, [passage.chunk_id for passage in passages])
        if self.shared.vector_count(collection, content_hash) != len(passages):
            return False
        pages, title, warnings = self.connection.execute(
            "SELECT pages, title, warnings FROM contents WHERE collection = ? AND content_hash = ?",
            (collection, content_hash),
        ).fetchone()
        details = {"pages": pages, "title": title, "warnings": warnings}
        return self.shared.store_content(
            collection,
            content_hash,
            path,
            [rows[passage.chunk_id] for passage in passages],
            passages[0].identity if passages else "",
            {key: value for key, value in details.items() if value is not None},
        )

    def outdated_contents(self, collection: str) -> set[str]:
        """Also this machine's contents the server lost: another machine released them while
        this one stored them (or they were indexed before the library was shared). Those
        whose vectors the server still has are published at once; the rest are embedded again
        by the next ingest."""
        return super().outdated_contents(collection) | self._unpublished(collection)

    def outdated_paths(self, collection: str) -> list[str]:
        lost = self._unpublished(collection)
        paths = set(super().outdated_paths(collection))
        paths |= {d.path for d in self.documents_under(collection, ["/"]) if d.content_hash in lost}
        return sorted(paths)

    def _unpublished(self, collection: str) -> set[str]:
        """Publish what the server lacks of this machine's contents; returns what it could not."""
        lost: set[str] = set()
        local = sorted(self.content_hashes(collection))
        for content_hash in sorted(self.shared.missing(collection, local)):
            path = super().path_of(collection, content_hash) or ""
            if not self._publish(collection, content_hash, path):
                lost.add(content_hash)
        return lost

    # reading: what every machine stored

    def chunks(self, collection: str, ids: Sequence[str]) -> dict[str, ChunkRow]:
        return self.shared.passages(collection, ids)

    def passages(self, collection: str, content_hash: str) -> list[PassageRow]:
        stored = self.shared.contents(collection, [content_hash])
        identity = stored[0].identity if stored else ""
        return [
            PassageRow(row.chunk_id, identity, row.heading_path, row.text)
            for row in self.shared.content_passages(collection, content_hash)
        ]

    def chunk_count(self, collection: str, content_hash: str | None = None) -> int:
        wanted = None if content_hash is None else [content_hash]
        return sum(content.chunks for content in self.shared.contents(collection, wanted))

    def path_of(self, collection: str, content_hash: str) -> str | None:
        local = super().path_of(collection, content_hash)
        if local is not None:
            return local
        stored = self.shared.contents(collection, [content_hash])
        return stored[0].path if stored else None

    def records(self, collection: str | None = None) -> list[DocumentRecord]:
        """This machine's documents, then the contents only other machines hold (under the
        path the first of them indexed it from)."""
        records = super().records(collection)
        for name in [collection] if collection is not None else self.collections():
            local = self.content_hashes(name)
            records += [
                DocumentRecord(
                    content.path,
                    name,
                    content.content_hash,
                    content.pages,
                    content.chunks,
                    content.indexed_at,
                    content.title,
                    "ok (another machine's)",
                )
                for content in self.shared.contents(name)
                if content.content_hash not in local
            ]
        return records

    def titles(self, collection: str) -> list[tuple[str, int]]:
        """As :meth:`Manifest.titles`, over every machine's contents."""
        counts = Counter(
            _title(content.identity, content.title, content.path)
            for content in self.shared.contents(collection)
        )
        return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))


def _title(identity: str, title: str | None, path: str) -> str:
    """The identity's title line, else the metadata title, else the file name."""
    for candidate in (identity.split("\n", 1)[0], title):
        if candidate and candidate.strip():
            return " ".join(candidate.split())
    return Path(path).name
