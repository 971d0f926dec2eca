"""Embedding models between the catalog (``models.embedders``) and the library (``rag``).

A collection records the model its vectors come from by hub id (``intfloat/multilingual-e5-
small``), with its prefixes; that record, not ``library.embedding_model``, decides how the
collection is searched and extended (the setting names the model of new collections). Here a
catalog name becomes that record (:func:`spec_for`), and a recorded hub id becomes the folder
``models pull`` downloaded it to (:func:`locator`), so the library loads it offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.errors import UsageError
from assistant.locations import Locations
from models.embedders import EMBEDDERS, EmbedderEntry, find_embedder, local_path
from models.errors import ModelNotFoundError
from rag.config import LibraryConfig, StoreConfig
from rag.types import EmbeddingSpec

if TYPE_CHECKING:
    from rag.library import Library


@dataclass(frozen=True)
class EmbedderRow:
    """A catalog embedding model and whether it can be used now (bundled or downloaded)."""

    entry: EmbedderEntry
    on_disk: bool


def embedder_rows(models_dir: Path) -> list[EmbedderRow]:
    return [EmbedderRow(e, e.bundled or local_path(models_dir, e) is not None) for e in EMBEDDERS]


def entry_named(name: str) -> EmbedderEntry:
    entry = find_embedder(name)
    if entry is None:
        known = ", ".join(e.name for e in EMBEDDERS)
        raise UsageError(f"{name!r} is not an embedding model of the catalog (known: {known})")
    return entry


def spec_for(entry: EmbedderEntry, models_dir: Path) -> EmbeddingSpec:
    """What a collection switched to ``entry`` records; the model must be on disk."""
    if not entry.bundled and local_path(models_dir, entry) is None:
        raise ModelNotFoundError(
            f"{entry.name} is not downloaded; run `minicpm-assistant models pull {entry.name}`"
        )
    return EmbeddingSpec(entry.model_id, entry.query_prefix, entry.passage_prefix)


def display_name(model: str) -> str:
    """The catalog name of a recorded model (its hub id or name otherwise)."""
    entry = find_embedder(model)
    return entry.name if entry is not None else model


def locator(models_dir: Path) -> Callable[[str], str]:
    """Recorded model -> what the library loads: a downloaded catalog model's folder, else the
    name itself (bundled, a folder, or the Hugging Face cache)."""

    def locate(model: str) -> str:
        entry = find_embedder(model)
        folder = local_path(models_dir, entry) if entry is not None else None
        return str(folder) if folder is not None else model

    return locate


def open_library(
    locations: Locations, config: LibraryConfig, store: StoreConfig | None = None
) -> Library:
    """The library as the app uses it: collections load the models ``models pull`` fetched;
    with ``[store] url`` set, the library is the one shared on that Chroma server."""
    from rag.library import Library  # Chroma and NumPy: only for commands that use the library

    return Library(
        locations.index_dir, config, locate_model=locator(locations.models_dir), server=store
    )
