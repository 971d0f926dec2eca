"""Embedding models to download next to the chat model: the catalog, and a pull that leaves a
complete sentence-transformers folder or nothing.

all-MiniLM-L6-v2 ships with the app (English only) and stays the default. The multilingual
models below are a set of files each (weights, tokenizer, pooling, sentence-transformers
config). Every file is fetched with the resumable downloader of :mod:`models.fetch` into
``<models>/embedders/NAME.partial/``: a file gets its final name there only once it has the
size the server announced, so an interrupted pull resumes with the files still missing. When
all of them are in (and the JSON ones parse), the folder is renamed to ``NAME``: a folder with
the final name is complete.

The file lists follow the public Hugging Face repositories (November 2026); no checksums are
published for them, so a file is verified by the size the hub announces and, for JSON, by
parsing it. ``HF_ENDPOINT`` points the pull at a mirror (or the tests' stand-in hub).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from models.errors import ModelDownloadError, ModelNotFoundError

# models.fetch (and the gguf package under it) is imported by the pull alone: every search reads
# this catalog and would pay for the downloader's imports on each start.
if TYPE_CHECKING:
    from models.fetch import ProgressCallback

_ST_FILES = ("modules.json", "sentence_bert_config.json", "config.json", "1_Pooling/config.json")
"""What makes a folder a sentence-transformers model: module list, max length, pooling."""
_XLMR_TOKENIZER = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
)
_ATTEMPTS = 5
_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class EmbedderEntry:
    """One sentence-transformers embedding model the app knows how to get and use."""

    name: str
    """Catalog name, as typed on the command line."""
    model_id: str
    """Hub id; recorded by a collection built with this model (the bundled one: its name)."""
    title: str
    languages: str
    dimensions: int
    max_tokens: int
    size_bytes: int
    """Approximate download (the hub's listing, rounded)."""
    files: tuple[str, ...] = ()
    """Files to download, relative to the repository root; empty for the bundled model."""
    query_prefix: str = ""
    passage_prefix: str = ""
    revision: str = "main"

    @property
    def bundled(self) -> bool:
        return not self.files


EMBEDDERS: tuple[EmbedderEntry, ...] = (
    EmbedderEntry(
        name="all-MiniLM-L6-v2",
        model_id="all-MiniLM-L6-v2",
        title="all-MiniLM-L6-v2 (installed, offline default)",
        languages="English",
        dimensions=384,
        max_tokens=256,
        size_bytes=90_900_000,
    ),
    EmbedderEntry(
        name="multilingual-e5-small",
        model_id="intfloat/multilingual-e5-small",
        title="multilingual-e5-small",
        languages="~100 languages (Chinese too)",
        dimensions=384,
        max_tokens=512,
        size_bytes=494_000_000,
        files=(*_ST_FILES, "model.safetensors", *_XLMR_TOKENIZER),
        query_prefix="query: ",
        passage_prefix="passage: ",
    ),
    EmbedderEntry(
        name="bge-m3",
        model_id="BAAI/bge-m3",
        title="bge-m3",
        languages="~100 languages (Chinese too), long texts",
        dimensions=1024,
        max_tokens=8192,
        size_bytes=2_290_000_000,
        files=(*_ST_FILES, "pytorch_model.bin", *_XLMR_TOKENIZER),
    ),
)

DEFAULT_EMBEDDER = EMBEDDERS[0]
MULTILINGUAL_HINT = "minicpm-assistant models pull multilingual-e5-small"
"""The one command that gets an embedding model for Chinese (and other non-English) documents."""


def find_embedder(name: str) -> EmbedderEntry | None:
    """The catalog entry called ``name`` or whose hub id is ``name``."""
    return next((e for e in EMBEDDERS if name in (e.name, e.model_id)), None)


def embedders_dir(models_dir: Path) -> Path:
    return models_dir / "embedders"


def local_path(models_dir: Path, entry: EmbedderEntry) -> Path | None:
    """Where the complete download of ``entry`` is, or None when it is not on disk."""
    folder = embedders_dir(models_dir) / entry.name
    return folder if folder.is_dir() else None


def pull_embedder(
    entry: EmbedderEntry,
    models_dir: Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Download ``entry``'s files (resuming an interrupted pull) and return its folder.

    ``progress`` gets (bytes so far, the listed download size) over all files; files already
    complete count as done.
    """
    if entry.bundled:
        raise ModelNotFoundError(f"{entry.name} is installed with the app; nothing to download")
    final = embedders_dir(models_dir) / entry.name
    if final.is_dir():
        return final
    partial = final.with_name(entry.name + ".partial")
    done = sum(path.stat().st_size for path in _present(partial, entry.files))
    for file in entry.files:
        destination = partial / file
        if destination.is_file():
            continue
        before = done

        def report(have: int, total: int | None, before: int = before) -> None:
            if progress is not None:  # the listed size until the real total is known
                progress(before + have, max(entry.size_bytes, before + have))

        _download(_url(entry, file), destination, report, cancel)
        done = before + destination.stat().st_size
    _check_json(partial, entry)
    os.replace(partial, final)
    return final


def _present(folder: Path, files: tuple[str, ...]) -> list[Path]:
    return [folder / file for file in files if (folder / file).is_file()]


def _url(entry: EmbedderEntry, file: str) -> str:
    from models.fetch import HF_DEFAULT_ENDPOINT

    base = os.environ.get("HF_ENDPOINT") or HF_DEFAULT_ENDPOINT
    return f"{base.rstrip('/')}/{entry.model_id}/resolve/{quote(entry.revision)}/{quote(file)}"


def _download(
    url: str, destination: Path, progress: ProgressCallback, cancel: threading.Event | None
) -> None:
    """:func:`models.fetch.download_file` without its GGUF check (these files are not GGUFs):
    the same locked, resumable ``.part``, renamed only when it has the announced size."""
    from models.fetch import (
        _fetch_with_retries,
        _only_pull_of,
        _refuse_if_offline,
        _version_file,
        sync_to_disk,
    )

    _refuse_if_offline(url)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ModelDownloadError(f"cannot create {destination.parent} ({error.strerror})") from None
    part = destination.with_name(destination.name + ".part")
    with _only_pull_of(part):
        total = _fetch_with_retries(url, part, None, progress, cancel, _ATTEMPTS, _TIMEOUT_S)
        size = part.stat().st_size
        if total is not None and size != total:
            part.unlink()
            raise ModelDownloadError(
                f"{destination.name} failed verification (size is {size:,} bytes, the server "
                f"announced {total:,}); the bad file was removed, pull again to retry"
            )
        sync_to_disk(part)
        os.replace(part, destination)
        _version_file(part).unlink(missing_ok=True)


def _check_json(folder: Path, entry: EmbedderEntry) -> None:
    """A JSON file that does not parse is an error page or a truncated file: drop it, say so."""
    for file in entry.files:
        path = folder / file
        if path.suffix != ".json":
            continue
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError):
            path.unlink()
            raise ModelDownloadError(
                f"{entry.name}: {file} is not valid JSON (a proxy's error page?); it was "
                "removed, pull again to retry"
            ) from None
