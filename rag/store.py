"""The vector store: Chroma on disk, holding our own embeddings.

Chroma never embeds anything itself here (its default embedding function downloads a model), and
telemetry is off. One Chroma collection backs one library collection; its metadata records the
embedding model. Every vector carries its document's content hash, which is how a document's
chunks are found, filtered and deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rag.chroma_import import ChromaError, NotFoundError, Settings, chromadb, unchecked_overrides
from rag.embedder import Vectors
from rag.errors import LibraryError
from rag.manifest import disk_is_full
from rag.permissions import private_tree

_MAX_BATCH = 4000


def chroma_name(collection: str) -> str:
    """A Chroma-safe collection name for any library collection name (Chroma allows few chars)."""
    return "lib-" + hashlib.sha1(collection.encode()).hexdigest()[:24]


class VectorStore:
    """Chunk vectors of every collection under one directory.

    ``name_of`` maps a library collection to its Chroma collection: :func:`chroma_name`, unless
    an embedding-model switch (:mod:`rag.reembed`) gave the collection vectors of its own.
    """

    def __init__(self, directory: Path, name_of: Callable[[str], str] = chroma_name) -> None:
        self.directory = directory
        self.name_of = name_of
        self._client: Any = None

    def retargeted(self, collection: str, name: str) -> VectorStore:
        """This store with ``collection`` read from and written to Chroma collection ``name``
        (same client): a switch fills its new vectors there while searches use the current."""
        view = VectorStore(self.directory, lambda c: name if c == collection else self.name_of(c))
        view._client = self.client
        return view

    def drop_others(self, collection: str, keep: set[str]) -> None:
        """Drop the Chroma collections of ``collection`` not in ``keep`` (what an interrupted or
        finished switch left behind)."""
        for found in self.client.list_collections():
            if (found.metadata or {}).get("collection") == collection and found.name not in keep:
                self.client.delete_collection(found.name)

    @property
    def client(self) -> Any:
        if self._client is None:
            private_tree(self.directory)  # Chroma writes its files with the process umask
            with self._writing(), unchecked_overrides():
                self._client = chromadb.PersistentClient(
                    path=str(self.directory),
                    settings=Settings(anonymized_telemetry=False, allow_reset=False),
                )
            private_tree(self.directory)  # ...including the database it has just created
        return self._client

    def _collection(self, collection: str, embedding_model: str | None = None) -> Any:
        if embedding_model is None:
            return self.client.get_collection(self.name_of(collection), embedding_function=None)
        return self.client.get_or_create_collection(
            self.name_of(collection),
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"collection": collection, "embedding_model": embedding_model},
            embedding_function=None,
        )

    def create(self, collection: str, embedding_model: str) -> None:
        """Start a collection afresh, dropping any vectors a previous one of that name left."""
        self.drop(collection)
        self._collection(collection, embedding_model)

    def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        vectors: Vectors,
        content_hash: str,
    ) -> None:
        target = self._collection(collection)
        with self._writing():
            for start in range(0, len(ids), _MAX_BATCH):
                end = start + _MAX_BATCH
                target.upsert(
                    ids=list(ids[start:end]),
                    embeddings=vectors[start:end],
                    metadatas=[{"content_hash": content_hash}] * len(ids[start:end]),
                )

    def delete_content(self, collection: str, content_hash: str) -> None:
        """Delete every vector of one document content (idempotent)."""
        try:
            target = self._collection(collection)
        except NotFoundError:  # nothing stored, nothing to delete
            return
        with self._writing():
            target.delete(where={"content_hash": content_hash})

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Chroma reports a full disk as an internal error ("Error in compaction: Failed to apply
        logs..."); when the disk is (nearly) full, say that, with the fix."""
        try:
            yield
        except ChromaError as error:
            if not disk_is_full(self.directory):
                raise
            raise LibraryError(
                f"cannot write the vector store in {self.directory}: the disk is full (Chroma "
                f"said: {error}); free some space and run the same command again (nothing "
                "indexed so far is lost)"
            ) from None

    def query(
        self, collection: str, vector: Vectors, limit: int, content_hash: str | None = None
    ) -> list[tuple[str, float]]:
        """Nearest ``(chunk_id, cosine similarity)`` pairs, best first."""
        target = self._collection(collection)
        total = target.count()
        if total == 0:
            return []
        result = target.query(
            query_embeddings=[vector],
            n_results=min(limit, total),
            where={"content_hash": content_hash} if content_hash else None,
            include=["distances"],
        )
        ids = result["ids"][0]
        distances = result["distances"][0] if result["distances"] else []
        return [(str(i), 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]

    def vectors(self, collection: str, ids: Sequence[str]) -> dict[str, Vectors]:
        if not ids:
            return {}
        result = self._collection(collection).get(ids=list(ids), include=["embeddings"])
        return {
            str(i): np.asarray(vector, dtype=np.float32)
            for i, vector in zip(result["ids"], result["embeddings"], strict=True)
        }

    def count(self, collection: str) -> int:
        try:
            return int(self._collection(collection).count())
        except NotFoundError:  # a collection that does not exist holds nothing
            return 0

    def ids_of(self, collection: str, content_hash: str) -> list[str]:
        try:
            target = self._collection(collection)
        except NotFoundError:  # a collection that does not exist holds nothing
            return []
        return [str(i) for i in target.get(where={"content_hash": content_hash}, include=[])["ids"]]

    def drop(self, collection: str) -> None:
        try:
            self.client.delete_collection(self.name_of(collection))
        except NotFoundError:  # already gone: dropping is idempotent
            return

    def close(self) -> None:
        if self._client is not None:
            private_tree(self.directory)  # the segment files Chroma wrote during this session
        self._client = None
