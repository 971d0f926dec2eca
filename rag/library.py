"""The document library: the one object the rest of the app talks to.

Cheap to construct: the manifest, the vector store and the embedding model open on first use.
Writes (ingest, removals) take the cross-process write lock; searches do not. Each thread gets its
own manifest connection, so a UI can search from one worker while another ingests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from rag import keyword, relevance, salience
from rag.config import LibraryConfig
from rag.embedder import Embedder
from rag.errors import CollectionNotFoundError, EmbeddingModelMismatchError, LibraryError
from rag.indexer import Ingest, recover
from rag.lock import WriteLock
from rag.manifest import Manifest
from rag.retriever import Methods, Reranker, Retriever
from rag.store import VectorStore
from rag.types import DocumentRecord, Hit, IngestProgress, IngestReport, Relevance
from rag.walker import document_path

RERANK_THRESHOLD = 0.5
"""Relevance threshold on cross-encoder probabilities, used instead of the cosine one."""
COVERS_SHOWN = 5
"""Document titles named when a refusal says what the collection does cover."""


class Library:
    def __init__(self, index_dir: Path, config: LibraryConfig) -> None:
        self.index_dir = index_dir
        self.config = config
        self._local = threading.local()
        self._manifests: list[Manifest] = []
        self._guard = threading.Lock()
        self._store: VectorStore | None = None
        self._embedder: Embedder | None = None
        self._reranker = Reranker(config.rerank_model) if config.rerank_model else None
        self.methods = Methods()
        """Ranking methods; benchmarks switch them off one at a time."""

    # lazily opened parts

    @property
    def manifest(self) -> Manifest:
        manifest: Manifest | None = getattr(self._local, "manifest", None)
        if manifest is None:
            manifest = Manifest(self.index_dir / "manifest.sqlite3")
            self._local.manifest = manifest
            with self._guard:
                self._manifests.append(manifest)
        return manifest

    @property
    def store(self) -> VectorStore:
        with self._guard:
            if self._store is None:
                self._store = VectorStore(self.index_dir / "chroma")
            return self._store

    @property
    def embedder(self) -> Embedder:
        with self._guard:
            if self._embedder is None:
                self._embedder = Embedder(
                    self.config.embedding_model,
                    query_prefix=self.config.query_prefix,
                    passage_prefix=self.config.passage_prefix,
                    batch_size=self.config.batch_size,
                )
            return self._embedder

    def use_embedder(self, embedder: Embedder) -> None:
        """Share an already loaded embedder (tests and benchmarks load the model once)."""
        if embedder.model_name != self.config.embedding_model:
            raise LibraryError("the embedder given is not the configured embedding model")
        self._embedder = embedder

    # writing

    def ingest(
        self,
        paths: Sequence[Path],
        collection: str = "default",
        *,
        progress: Callable[[IngestProgress], None] | None = None,
        password: str | None = None,
        cancel: threading.Event | None = None,
        retry_failed: bool = False,
    ) -> IngestReport:
        """Index files and folders into ``collection``; only what changed is touched.

        ``retry_failed`` parses again files that failed before even though they did not change.
        """
        with WriteLock(self.index_dir):
            self._check_model(collection, create=True)
            recover(self.manifest, self.store)
            run = Ingest(
                self.manifest, self.store, self.embedder, self.config, collection, progress, cancel
            )
            return run.run(paths, password, retry_failed)

    def outdated(self, collection: str = "default") -> list[str]:
        """Documents indexed by an older release's passage format (see :meth:`upgrade`)."""
        if self.manifest.collection_model(collection) is None:
            return []
        return self.manifest.outdated_paths(collection)

    def upgrade(
        self,
        collection: str = "default",
        *,
        progress: Callable[[IngestProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> IngestReport | None:
        """Re-index, once, the documents an older release indexed (None when there are none).

        Passages are rebuilt from the files where they are; old and new passages are never
        searched side by side for longer than this takes.
        """
        paths = self.outdated(collection)
        if not paths:
            return None
        return self.ingest(
            [Path(path) for path in paths], collection, progress=progress, cancel=cancel
        )

    def remove_document(self, path: str, collection: str = "default") -> int:
        """Forget one document; returns how many chunks went (0 if it was not indexed)."""
        self._require(collection)
        absolute = path if self._known(collection, path) else document_path(path)
        with WriteLock(self.index_dir):
            released, chunks = self.manifest.remove_document(collection, absolute)
            if released is not None:
                self.store.delete_content(collection, released)
                self.manifest.content_deleted(collection, released)
            return chunks

    def remove_collection(self, name: str) -> None:
        self._require(name)
        with WriteLock(self.index_dir):
            self.manifest.remove_collection(name)
            self.store.drop(name)

    # reading

    def search(
        self,
        query: str,
        *,
        collection: str = "default",
        k: int | None = None,
        document: str | None = None,
    ) -> list[Hit]:
        """Best passages for ``query``, best first; empty when the collection holds nothing."""
        if not query.strip() or self.manifest.collection_model(collection) is None:
            return []
        self._check_model(collection, create=False)
        content_hash = None
        if document is not None:
            content_hash = self._content_of(collection, document)
        retriever = Retriever(
            self.manifest, self.store, self.embedder, self._reranker, self.methods
        )
        return retriever.search(query, collection, k or self.config.top_k, content_hash)

    def judge(self, hits: Sequence[Hit], query: str, collection: str = "default") -> Relevance:
        """Whether the hits answer ``query`` at all ("not in your documents" if not).

        First the question's salient terms (``rag.salience``: names, identifiers, periods): one
        that the collection never mentions, or that none of the documents found mentions, means
        the passages only look like an answer. Then the scores: the relevance threshold on the
        best cosine (the cross-encoder's when reranking); a question written mainly in CJK
        characters is judged by lexical support instead (``rag.relevance``), since an English
        embedding model's cosine carries no signal for it.
        """
        if not hits:
            return self._refusal(collection, ())
        terms = salience.salient_terms(query)
        nowhere = [term for term in terms if not self._mentions(collection, term, None)]
        if nowhere:
            return self._refusal(collection, tuple(nowhere), mentioned_nowhere=True)
        found = sorted({hit.content_hash for hit in hits if hit.content_hash})
        if found:
            absent = [term for term in terms if not self._mentions(collection, term, found)]
            if absent:
                return self._refusal(collection, tuple(absent))
        if self._reranker:
            relevant = max(hit.score for hit in hits) >= RERANK_THRESHOLD
        elif (support := self.lexical_support(hits, query)) is not None:
            relevant = support >= self.config.cjk_relevance_threshold
        else:
            relevant = max(hit.score for hit in hits) >= self.config.relevance_threshold
        return Relevance(True) if relevant else self._refusal(collection, ())

    def _mentions(self, collection: str, term: str, contents: Sequence[str] | None) -> bool:
        """Whether a passage (with its document identity) of the collection, or of one of
        ``contents``, holds every word of ``term`` (as a phrase when it carries a number)."""
        return keyword.mentions(self.manifest.connection, collection, term, contents)

    def _refusal(
        self, collection: str, missing: tuple[str, ...], *, mentioned_nowhere: bool = False
    ) -> Relevance:
        titles = self.manifest.titles(collection)
        return Relevance(
            False,
            missing=missing,
            mentioned_nowhere=mentioned_nowhere,
            covers=tuple(titles[:COVERS_SHOWN]),
            documents=sum(count for _, count in titles),
        )

    def lexical_support(self, hits: Sequence[Hit], query: str) -> float | None:
        """The share of a mainly-CJK query's content found in the best hit; None for other
        queries (and ones without content terms), which the cosine threshold judges."""
        terms = relevance.content_terms(query) if relevance.mainly_cjk(query) else []
        if not terms:
            return None
        frequencies, total = keyword.document_frequencies(self.manifest.connection, terms)
        return relevance.support(terms, [hit.text for hit in hits], frequencies, total)

    def documents(
        self, collection: str | None = None, path: str | None = None
    ) -> list[DocumentRecord]:
        """Indexed documents; with ``path``, only that one (given as ingested or any spelling
        that resolves to it), once per collection holding it."""
        records = self.manifest.records(collection)
        if path is None:
            return records
        wanted = {path, document_path(path)}
        return [record for record in records if record.path in wanted]

    def collections(self) -> list[str]:
        return self.manifest.collections()

    def close(self) -> None:
        with self._guard:
            for manifest in self._manifests:
                manifest.close()
            self._manifests.clear()
            if self._store is not None:
                self._store.close()
                self._store = None
        self._local = threading.local()

    # helpers

    def _check_model(self, collection: str, *, create: bool) -> None:
        recorded = self.manifest.collection_model(collection)
        wanted = self.config.embedding_model
        if recorded is None and create:
            self.store.create(collection, wanted)
            self.manifest.add_collection(collection, wanted)
        elif recorded is not None and recorded != wanted:
            raise EmbeddingModelMismatchError(
                f"collection {collection!r} was indexed with {recorded!r} but the embedding model "
                f"is now {wanted!r}. Vectors of different models cannot be mixed: set "
                f"library.embedding_model back, or re-index with `minicpm-assistant docs rm --all "
                f"--collection {collection}` and ingest again."
            )

    def _require(self, collection: str) -> None:
        if self.manifest.collection_model(collection) is None:
            raise CollectionNotFoundError(f"no collection named {collection!r}")

    def _known(self, collection: str, path: str) -> bool:
        return self.manifest.document(collection, path) is not None

    def _content_of(self, collection: str, document: str) -> str:
        for candidate in (document, document_path(document)):
            row = self.manifest.document(collection, candidate)
            if row is not None:
                return row.content_hash
        raise LibraryError(f"{document} is not in collection {collection!r}")
