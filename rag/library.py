"""The document library: the one object the rest of the app talks to.

Cheap to construct: the manifest, the vector store and the embedding model open on first use.
Writes (ingest, removals) take the cross-process write lock; searches do not. Each thread gets its
own manifest connection, so a UI can search from one worker while another ingests.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from rag import aliases, relevance, salience
from rag.chroma_server import connect, machine_id
from rag.config import LibraryConfig, StoreConfig
from rag.embedder import Embedder, resolve_model
from rag.errors import CollectionNotFoundError, LibraryBusyError, LibraryError
from rag.folders import Folder, FolderList
from rag.indexer import Ingest, recover
from rag.keyword import KeywordIndex, LocalKeywords
from rag.lock import WriteLock
from rag.manifest import Manifest
from rag.reembed import Switch, SwitchProgressCallback
from rag.retriever import Methods, Reranker, Retriever
from rag.shared import ServerVectorStore, SharedIndex
from rag.shared_keyword import ServerKeywords
from rag.shared_manifest import SharedManifest
from rag.store import VectorStore, chroma_name
from rag.types import (
    DocumentRecord,
    EmbeddingSpec,
    Hit,
    IngestProgress,
    IngestReport,
    Relevance,
    SwitchReport,
)
from rag.walker import document_path

_log = logging.getLogger(__name__)
RERANK_THRESHOLD = 0.5
"""Relevance threshold on cross-encoder probabilities, used instead of the cosine one."""
NAME_COVERAGE = 0.5
"""Share of a question's salient terms (rarity-weighted) its best document must mention."""
COVERS_SHOWN = 5
"""Document titles named when a refusal says what the collection does cover."""


def _runs_of_names(terms: Sequence[salience.Term]) -> dict[salience.Term, list[str]]:
    """The question's runs of two or more names ("Hilary Rosen", "Harry Fox Agency"), each as
    a term of its own with the names it is made of.

    A long document such as a book holds "Hilary" and "Rosen" somewhere, and "Harry", "Fox"
    and "Agency" too; the person or body asked about is only there if one passage (with its
    document's identity: "the Seward Piper" is a place and an aircraft on the first page)
    holds the run's names together.
    """
    members: dict[str, list[str]] = {}
    for term in terms:
        if term.run and not term.month:
            members.setdefault(term.run, []).append(term.text)
    return {
        salience.Term(run, False, run=run): names
        for run, names in members.items()
        if len(names) > 1
    }


def _written(term: salience.Term, text: str) -> bool:
    """Whether ``text`` holds a period or a name the literal search missed, in another form."""
    if term.month:
        return aliases.period_in(term.month, term.year, text)
    if term.quarter:
        return aliases.quarter_in(term.quarter, term.year, text)
    if term.number:
        return aliases.quantity_in(term.number, term.units, text)
    return aliases.name_in(term.text, term.run or term.text, text)


class Library:
    """``locate_model`` turns the embedding model a collection records into what to load (the
    app maps its downloaded models' hub ids to their folders); by default the name is loaded as
    :func:`rag.embedder.resolve_model` finds it. With ``server`` (a ``[store] url``) the
    passages, both search legs and who owns what are on a Chroma server shared with other
    machines (:mod:`rag.shared`); this machine's bookkeeping stays in ``index_dir``."""

    def __init__(
        self,
        index_dir: Path,
        config: LibraryConfig,
        *,
        locate_model: Callable[[str], str] = resolve_model,
        server: StoreConfig | None = None,
    ) -> None:
        self.index_dir = index_dir
        self._server = server if server is not None and server.url else None
        self._shared: SharedIndex | None = None
        self.config = config
        self._locate_model = locate_model
        self._configured = EmbeddingSpec(
            config.embedding_model, config.query_prefix, config.passage_prefix
        )
        """The model new collections are built with; an existing one keeps its own."""
        self._embedders: dict[EmbeddingSpec, Embedder] = {}
        self._local = threading.local()
        self._manifests: list[Manifest] = []
        self._guard = threading.Lock()
        self._store: VectorStore | None = None
        self._reranker = Reranker(config.rerank_model) if config.rerank_model else None
        self.methods = Methods()
        """Ranking methods; benchmarks switch them off one at a time."""
        self._upgraded: set[str] = set()
        self._folder_list: FolderList | None = None

    # lazily opened parts

    @property
    def manifest(self) -> Manifest:
        manifest: Manifest | None = getattr(self._local, "manifest", None)
        if manifest is None:
            path = self.index_dir / "manifest.sqlite3"
            shared = self.shared
            manifest = Manifest(path) if shared is None else SharedManifest(path, shared)
            self._local.manifest = manifest
            with self._guard:
                self._manifests.append(manifest)
        return manifest

    @property
    def store(self) -> VectorStore:
        shared = self.shared
        with self._guard:
            if self._store is None and shared is not None:
                self._store = ServerVectorStore(shared)
            elif self._store is None:
                self._store = VectorStore(self.index_dir / "chroma", self._vectors_of)
            return self._store

    @property
    def shared(self) -> SharedIndex | None:
        """The Chroma server side of a shared library (None: the library is on this machine)."""
        if self._server is not None and self._shared is None:
            client = connect(self._server)
            with self._guard:
                if self._shared is None:
                    self._shared = SharedIndex(
                        client, machine_id(self.index_dir), str(self._server.url)
                    )
        return self._shared

    @property
    def folder_list(self) -> FolderList:
        """The folders remembered for each collection (:mod:`rag.folders`)."""
        with self._guard:
            if self._folder_list is None:
                self._folder_list = FolderList(self.index_dir)
            return self._folder_list

    @property
    def keywords(self) -> KeywordIndex:
        """The keyword index: the manifest's FTS5, or the shared passages on the server."""
        shared = self.shared
        if shared is None:
            return LocalKeywords(self.manifest.connection)
        return ServerKeywords(shared, self.manifest.collections)

    def _vectors_of(self, collection: str) -> str:
        return self.manifest.vectors(collection) or chroma_name(collection)

    @property
    def embedder(self) -> Embedder:
        """The configured embedding model (that of new collections)."""
        return self._embedder_of(self._configured)

    def embedder_for(self, collection: str) -> Embedder:
        """The collection's own model and prefixes; the configured ones for a new collection."""
        return self._embedder_of(self.embedding(collection) or self._configured)

    def embedding(self, collection: str) -> EmbeddingSpec | None:
        """What the collection's vectors are made with (None: no such collection)."""
        recorded = self.manifest.embedding(collection, self._configured)
        return None if recorded is None else recorded[0]

    def _embedder_of(self, spec: EmbeddingSpec) -> Embedder:
        with self._guard:
            if spec not in self._embedders:
                self._embedders[spec] = Embedder(
                    self._locate_model(spec.model),
                    query_prefix=spec.query_prefix,
                    passage_prefix=spec.passage_prefix,
                    batch_size=self.config.batch_size,
                )
            return self._embedders[spec]

    def use_embedder(self, embedder: Embedder) -> None:
        """Share an already loaded embedder (tests and benchmarks load the model once)."""
        spec = EmbeddingSpec(embedder.model_name, embedder.query_prefix, embedder.passage_prefix)
        with self._guard:
            self._embedders[spec] = embedder

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
        remove_emptied: bool = False,
    ) -> IngestReport:
        """Index files and folders into ``collection``; only what changed is touched.

        ``retry_failed`` parses again files that failed before even though they did not change.
        A folder that reads as completely empty keeps its documents (an unmounted drive) unless
        ``remove_emptied`` confirms its files are gone.
        The folders among ``paths`` are remembered for the collection (see :meth:`folders`).
        """
        with WriteLock(self.index_dir):
            self._ensure_collection(collection)
            for path in paths:
                if os.path.isdir(resolved := document_path(path)):
                    self.folder_list.add(collection, resolved)
            recover(self.manifest, self.store)
            run = Ingest(
                self.manifest,
                self.store,
                self.embedder_for(collection),
                self.config,
                collection,
                progress,
                cancel,
            )
            return run.run(paths, password, retry_failed, remove_emptied)

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

    def _upgrade_once(self, collection: str) -> None:
        """Before the first search of a collection an older release indexed, re-index it.

        Skipped (and tried again at the next search) while another process is writing.
        """
        if collection in self._upgraded:
            return
        outdated = self.outdated(collection)
        if outdated:
            _log.warning(
                "re-indexing %d documents of collection %r for this version's passage format "
                "(once)",
                len(outdated),
                collection,
            )
            try:
                self.upgrade(collection)
            except LibraryBusyError:
                return
        self._upgraded.add(collection)

    def remove_document(self, path: str, collection: str = "default") -> int:
        """Forget one document; returns how many chunks went (0 if it was not indexed)."""
        self._require(collection)
        absolute = path if self._known(collection, path) else document_path(path)
        with WriteLock(self.index_dir):
            return self._forget_document(collection, absolute)

    def _forget_document(self, collection: str, path: str) -> int:
        """Remove one document's record, and its passages when no other path holds them (the
        caller holds the write lock); returns how many chunks the document had."""
        released, chunks = self.manifest.remove_document(collection, path)
        if released is not None:
            self.store.delete_content(collection, released)
            self.manifest.content_deleted(collection, released)
        return chunks

    def remove_folder(self, path: str, collection: str = "default") -> int | None:
        """Forget a remembered folder and remove the documents below it; returns how many
        documents went (None: ``path`` is not a folder of the collection)."""
        self._require(collection)
        folder = document_path(path)
        with WriteLock(self.index_dir):
            if not self.folder_list.remove(collection, folder):
                return None
            documents = self.manifest.documents_under(collection, [folder])
            for document in documents:
                self._forget_document(collection, document.path)
            for failure in self.manifest.failures_under(collection, [folder]):
                self.manifest.forget_failure(collection, failure.path)
            return len(documents)

    def remove_collection(self, name: str) -> None:
        self._require(name)
        with WriteLock(self.index_dir):
            self.folder_list.forget_collection(name)
            self.manifest.remove_collection(name)
            self.store.drop_others(name, set())  # its vectors, and an unfinished switch's

    def switch_embedder(
        self,
        collection: str,
        spec: EmbeddingSpec,
        *,
        progress: SwitchProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> SwitchReport:
        """Re-embed the collection's stored passages with ``spec`` and switch to them (see
        :mod:`rag.reembed`); searches use the old vectors until the new ones are complete."""
        with WriteLock(self.index_dir):
            self._require(collection)
            recover(self.manifest, self.store)
            if self.embedding(collection) == spec:
                count = self.manifest.chunk_count(collection)
                return SwitchReport(collection, spec, count, 0, 0.0)
            embedder = self._embedder_of(spec)
            run = Switch(self.manifest, self.store, embedder, spec, collection, progress, cancel)
            return run.run()

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
        self._upgrade_once(collection)
        content_hash = None
        if document is not None:
            content_hash = self._content_of(collection, document)
        store, embedder = self._index_of(collection)
        retriever = Retriever(
            self.manifest, store, embedder, self._reranker, self.methods, self.keywords
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
        refusal = self._missing_terms(hits, query, collection)
        if refusal is not None:
            return refusal
        if self._reranker:
            relevant = max(hit.score for hit in hits) >= RERANK_THRESHOLD
        elif (support := self.lexical_support(hits, query)) is not None:
            relevant = support >= self.config.cjk_relevance_threshold
        else:
            relevant = max(hit.score for hit in hits) >= self.config.relevance_threshold
        return Relevance(True) if relevant else self._refusal(collection, ())

    def _missing_terms(self, hits: Sequence[Hit], query: str, collection: str) -> Relevance | None:
        """A refusal when the documents found are not about what the question names.

        An identifier (number, model, code, quote) that the collection never mentions refuses,
        and so does a question whose identifiers and periods no one document found holds
        together ("the Houston accident in July 2008" when the Houston report is of December
        2007). A name (Chinese too) or technical word (``salience.rare_words``) the collection
        never spells the question's way must be there in another form (:mod:`rag.aliases`: "AL"
        for "Alabama"), in that same document; other names may be spelt another way, so they
        only count towards coverage: the document must also hold at least :data:`NAME_COVERAGE` of
        the question's terms, each weighted by its rarity (idf).
        """
        found = sorted({hit.content_hash for hit in hits if hit.content_hash})
        keywords = self.keywords
        terms = salience.salient_terms(query)
        frequency = {term: keywords.passages_mentioning(collection, term.probe) for term in terms}
        pieces = lambda word: len(self.embedder.token_offsets([word])[0])  # noqa: E731
        for word in salience.rare_words(query, pieces):
            if keywords.passages_mentioning(collection, word.text) == 0:
                terms.append(word)  # a technical word the collection never spells this way
                frequency[word] = 0
        if not terms or not found:
            return None
        # a quantity's unit may be written with another number ("cycle 48"), and a quarter
        # without its year in words ("Q3" as "the third quarter"): neither is missing by count
        nowhere = [
            term.text
            for term in terms
            if term.identifier
            and not term.number
            and not (term.quarter and not term.year)
            and not frequency[term]
        ]
        if nowhere:
            return self._refusal(collection, tuple(nowhere), mentioned_nowhere=True)
        written_otherwise = [
            term
            for term in terms
            if term.month or term.quarter or term.number or frequency[term] == 0
        ]
        holders = {
            term: keywords.contents_mentioning(collection, [term.text], found)
            for term in terms
            if term not in written_otherwise
        }
        if written_otherwise:
            texts = {content: self._content_text(collection, content) for content in found}
            for term in written_otherwise:
                holders[term] = {content for content, text in texts.items() if _written(term, text)}
        runs = _runs_of_names([term for term in terms if term not in written_otherwise])
        for run, members in runs.items():
            holders[run] = keywords.contents_mentioning(collection, members, found)
        required = [term for term in terms if term.identifier or term in written_otherwise]
        required += runs
        total = self.manifest.chunk_count(collection)
        weight = {term: relevance.idf(frequency[term], total) for term in terms}
        whole = sum(weight.values())

        def coverage(content: str) -> tuple[bool, float]:
            complete = all(content in holders[term] for term in required)
            return complete, sum(w for term, w in weight.items() if content in holders[term])

        best = max(found, key=coverage)
        complete, covered = coverage(best)
        if complete and (whole <= 0 or covered / whole >= NAME_COVERAGE):
            return None
        missing = [term for term in [*terms, *runs] if best not in holders[term]]
        return self._refusal(
            collection,
            tuple(term.text for term in missing),
            mentioned_nowhere=all(frequency.get(term, 1) == 0 for term in missing),
        )

    def _content_text(self, collection: str, content_hash: str) -> str:
        """A document's passages with its identity, where other forms of a name are looked for."""
        passages = self.manifest.passages(collection, content_hash)
        identity = passages[0].identity if passages else ""
        return "\n".join([identity, *(f"{row.heading_path or ''}\n{row.text}" for row in passages)])

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
        frequencies, total = self.keywords.document_frequencies(terms)
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

    def folders(self, collection: str | None = None) -> list[Folder]:
        """The folders ingested into ``collection`` (or any), which ``ingest --watch`` keeps
        current."""
        return self.folder_list.of(collection)

    def close(self) -> None:
        with self._guard:
            for manifest in self._manifests:
                manifest.close()
            self._manifests.clear()
            if self._store is not None:
                self._store.close()
                self._store = None
            if self._folder_list is not None:
                self._folder_list.close()
                self._folder_list = None
        self._local = threading.local()

    # helpers

    def _ensure_collection(self, collection: str) -> None:
        """A new collection is built with the configured model; an existing one keeps the model
        it records (changing ``library.embedding_model`` does not touch it: see
        :meth:`switch_embedder`)."""
        if self.manifest.collection_model(collection) is None:
            self.store.create(collection, self._configured.model)
            self.manifest.add_collection(collection, self._configured)

    def _index_of(self, collection: str) -> tuple[VectorStore, Embedder]:
        """The collection's vectors and the model that made them, read together: a search
        never embeds its query with one model and looks it up among another's vectors."""
        recorded = self.manifest.embedding(collection, self._configured)
        if recorded is None:
            raise CollectionNotFoundError(f"no collection named {collection!r}")
        spec, vectors = recorded
        store = self.store.retargeted(collection, vectors or chroma_name(collection))
        return store, self._embedder_of(spec)

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
