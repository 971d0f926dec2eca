"""Switching a collection to another embedding model by re-embedding its stored passages.

The passages' texts are in the manifest, so nothing is parsed again: each is embedded as ingest
embeds it (:func:`rag.indexer.matched_text`) into a Chroma collection of its own, named after
the collection and the target model. The current vectors keep answering searches meanwhile.
Only when every passage is in does one manifest transaction make the new model, prefixes and
vectors the collection's; the old vectors are dropped after it.

A crash or Ctrl-C part-way leaves the old index answering and the switch noted in the manifest
(:class:`rag.manifest.PendingSwitch`). The next switch to the same model resumes, embedding only
the passages its Chroma collection lacks, unless the collection changed meanwhile (an ingest:
the passages' fingerprint differs), in which case it starts over; a switch to another model
drops the unfinished one. The caller holds the write lock.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from rag.embedder import Embedder
from rag.errors import LibraryError
from rag.indexer import matched_text
from rag.manifest import Manifest, PendingSwitch
from rag.store import VectorStore, chroma_name
from rag.types import EmbeddingSpec, SwitchProgress, SwitchReport

SwitchProgressCallback = Callable[[SwitchProgress], None]
_SLICE = 128
"""Passages embedded per store write, progress report and cancel check."""


def vectors_name(collection: str, spec: EmbeddingSpec) -> str:
    """The Chroma collection of ``collection`` embedded with ``spec``: one per target, so a
    resumed switch finds what it stored before."""
    return chroma_name("\n".join((collection, spec.model, spec.query_prefix, spec.passage_prefix)))


class Switch:
    """One switch of ``collection`` to ``embedder`` (built for ``spec``)."""

    def __init__(
        self,
        manifest: Manifest,
        store: VectorStore,
        embedder: Embedder,
        spec: EmbeddingSpec,
        collection: str,
        progress: SwitchProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.manifest, self.store, self.embedder, self.spec = manifest, store, embedder, spec
        self.collection = collection
        self.progress = progress
        self.cancel = cancel or threading.Event()
        self.target = store.retargeted(collection, vectors_name(collection, spec))

    def run(self) -> SwitchReport:
        started = time.monotonic()
        switch = self._begin()
        contents = sorted(self.manifest.content_hashes(self.collection))
        total = self.manifest.chunk_count(self.collection)
        text_hashes: list[tuple[str, str]] = []
        done = embedded = 0
        for content in contents:
            hashes, fresh = self._embed_content(content, done, total)
            text_hashes += hashes
            done += len(hashes)
            embedded += fresh
        self.manifest.finish_switch(self.collection, switch, text_hashes)
        self.store.drop_others(self.collection, {switch.vectors})
        return SwitchReport(self.collection, self.spec, done, embedded, time.monotonic() - started)

    def _begin(self) -> PendingSwitch:
        """Resume the pending switch to this target if the passages are as it left them, else
        start afresh; either way drop any other unfinished target."""
        wanted = PendingSwitch(
            self.spec,
            vectors_name(self.collection, self.spec),
            self.manifest.passages_fingerprint(self.collection),
        )
        self.store.drop_others(
            self.collection, {self.store.name_of(self.collection), wanted.vectors}
        )
        if self.manifest.pending_switch(self.collection) != wanted:
            self.target.create(self.collection, self.spec.model)
            self.manifest.begin_switch(self.collection, wanted)
        return wanted

    def _embed_content(
        self, content: str, done: int, total: int
    ) -> tuple[list[tuple[str, str]], int]:
        """Embed the passages of one content the target lacks; returns every passage's
        ``(text_hash, chunk_id)`` and how many were embedded now."""
        passages = self.manifest.passages(self.collection, content)
        texts = [matched_text(self.embedder, p.identity, p.heading_path, p.text) for p in passages]
        stored = set(self.target.ids_of(self.collection, content))
        missing = [i for i, p in enumerate(passages) if p.chunk_id not in stored]
        for start in range(0, len(missing), _SLICE):
            if self.cancel.is_set():
                raise LibraryError(
                    f"switch of {self.collection!r} to {self.spec.model} cancelled; the old "
                    "index still answers, run the same switch again to resume"
                )
            batch = missing[start : start + _SLICE]
            vectors = self.embedder.embed_passages([texts[i] for i in batch])
            self.target.upsert(
                self.collection, [passages[i].chunk_id for i in batch], vectors, content
            )
            self._report(done + len(passages) - len(missing) + start + len(batch), total)
        self._report(done + len(passages), total)
        hashes = [hashlib.sha1(text.encode()).hexdigest() for text in texts]
        return list(zip(hashes, (p.chunk_id for p in passages), strict=True)), len(missing)

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(SwitchProgress(done, total))
