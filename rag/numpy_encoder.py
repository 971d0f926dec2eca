"""Query vectors without torch: a sentence-transformers BERT-family encoder run in NumPy.

Importing sentence-transformers (torch, transformers, scikit-learn) takes seconds, several times
what a one-shot ``search`` or ``ask`` needs otherwise, while a query is a few dozen tokens that
NumPy encodes in milliseconds. The model's own files are read: ``tokenizer.json`` with the
``tokenizers`` library (the Rust tokenizer transformers wraps), the weights memory-mapped from
``model.safetensors`` (only the pages touched are read), pooling and length from the
sentence-transformers configuration. Only layouts this reproduces are taken: a BERT or
XLM-RoBERTa encoder with GELU, mean or CLS pooling, optionally normalised; :func:`load_encoder`
returns None for anything else, which is then left to sentence-transformers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]

_MODULES = ("Transformer", "Pooling", "Normalize")
"""sentence-transformers module types (the last part of their class path) this reproduces."""
_POSITIONS_AFTER_PADDING = {"bert": False, "xlm-roberta": True, "roberta": True}
"""The model types reproduced, and whether their positions are numbered from 0 (BERT) or from
after the padding id (RoBERTa's layout)."""
_DTYPES = {"F32": np.float32, "F16": np.float16}
_ERF_COEFFICIENTS = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592, 0.0)
"""Abramowitz & Stegun 7.1.26's polynomial in t, highest power first (for ``np.polyval``)."""


@dataclass(frozen=True)
class _Shape:
    layers: int
    heads: int
    eps: float
    position_offset: int
    max_tokens: int
    pooling: str
    """Either "mean" or "cls"."""
    lower_case: bool


class NumpyEncoder:
    """Embeds one text at a time, as the sentence-transformers model in the same folder does."""

    def __init__(self, shape: _Shape, tokenizer: Any, weights: dict[str, np.ndarray]) -> None:
        self._shape = shape
        self._tokenizer = tokenizer
        self._weights = weights

    def encode(self, texts: list[str]) -> Array:
        """Unit vectors of ``texts``, one row each.

        BLAS runs on one thread: a query's matrices are tiny, and on a busy machine OpenBLAS's
        threads wait for each other's time slices (measured: 100 products of 12x384 by 384x384
        took 9.4 s on two threads at load 9, 0.08 s on one).
        """
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):
            return np.stack([self._encode_one(text) for text in texts]).astype(np.float32)

    def _encode_one(self, text: str) -> Array:
        shape = self._shape
        text = text.strip()
        encoding = self._tokenizer.encode(text.lower() if shape.lower_case else text)
        ids = np.asarray(encoding.ids, dtype=np.int64)
        positions = np.arange(len(ids)) + shape.position_offset
        hidden = (
            self._weights["embeddings.word_embeddings.weight"][ids].astype(np.float32)
            + self._weights["embeddings.position_embeddings.weight"][positions]
            + self._weights["embeddings.token_type_embeddings.weight"][encoding.type_ids]
        )
        hidden = self._norm(hidden, "embeddings.LayerNorm")
        for layer in range(shape.layers):
            hidden = self._layer(hidden, f"encoder.layer.{layer}.")
        pooled = hidden[0] if shape.pooling == "cls" else hidden.mean(axis=0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)

    def _layer(self, hidden: Array, prefix: str) -> Array:
        heads = self._shape.heads
        tokens, width = hidden.shape
        size = width // heads

        def split(name: str) -> Array:
            projected = self._linear(hidden, prefix + "attention.self." + name)
            return projected.reshape(tokens, heads, size).transpose(1, 0, 2)

        query, key, value = split("query"), split("key"), split("value")
        scores = query @ key.transpose(0, 2, 1) / np.float32(math.sqrt(size))
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ value).transpose(1, 0, 2).reshape(tokens, width)
        attended = self._norm(
            self._linear(context, prefix + "attention.output.dense") + hidden,
            prefix + "attention.output.LayerNorm",
        )
        inner = _gelu(self._linear(attended, prefix + "intermediate.dense"))
        return self._norm(
            self._linear(inner, prefix + "output.dense") + attended, prefix + "output.LayerNorm"
        )

    def _linear(self, values: Array, name: str) -> Array:
        return values @ self._weights[name + ".weight"].T + self._weights[name + ".bias"]

    def _norm(self, values: Array, name: str) -> Array:
        mean = values.mean(axis=-1, keepdims=True)
        variance = ((values - mean) ** 2).mean(axis=-1, keepdims=True)
        normed = (values - mean) / np.sqrt(variance + np.float32(self._shape.eps))
        return normed * self._weights[name + ".weight"] + self._weights[name + ".bias"]


def _gelu(values: Array) -> Array:
    """GELU with the exact erf, as BERT's "gelu" (not the tanh approximation).

    NumPy has no erf; Abramowitz & Stegun 7.1.26 (absolute error under 1.5e-7) is computed in
    float64, below float32's own rounding of these activations.
    """
    x = values.astype(np.float64) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    erf = np.sign(x) * (1.0 - np.polyval(_ERF_COEFFICIENTS, t) * np.exp(-x * x))
    return (values * 0.5 * (1.0 + erf)).astype(np.float32)


def load_encoder(folder: Path) -> NumpyEncoder | None:
    """The NumPy encoder for the sentence-transformers model in ``folder``, or None when its
    layout is not one this module reproduces (or its files are not all there)."""
    try:
        shape = _read_shape(folder)
        weights = _map_safetensors(folder / "model.safetensors") if shape else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if shape is None or weights is None:
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(shape.max_tokens)
    return NumpyEncoder(shape, tokenizer, weights)


def _read_shape(folder: Path) -> _Shape | None:
    """The model's shape from its configuration, in the layout of sentence-transformers 2 to 5
    (``pooling_mode_*`` flags, ``max_seq_length``) or of 6 (``pooling_mode``, the tokenizer's
    ``model_max_length``); None for anything this module does not reproduce."""
    modules = _json(folder / "modules.json")
    kinds = [str(module["type"]).rsplit(".", 1)[-1] for module in modules]
    if kinds not in (list(_MODULES), list(_MODULES[:2])) or modules[0]["path"] != "":
        return None
    config = _json(folder / "config.json")
    pooling = _pooling_mode(_json(folder / modules[1]["path"] / "config.json"))
    sentence = _json(folder / "sentence_bert_config.json")
    max_tokens = sentence.get("max_seq_length") or _json(folder / "tokenizer_config.json").get(
        "model_max_length"
    )
    after_padding = _POSITIONS_AFTER_PADDING.get(config.get("model_type", ""))
    if (
        after_padding is None
        or config.get("hidden_act") != "gelu"
        or config.get("position_embedding_type") not in (None, "absolute")
        or pooling not in ("mean", "cls")
        or not isinstance(max_tokens, int)
        or not 0 < max_tokens <= int(config["max_position_embeddings"])
        or not (folder / "tokenizer.json").is_file()
    ):
        return None
    return _Shape(
        layers=int(config["num_hidden_layers"]),
        heads=int(config["num_attention_heads"]),
        eps=float(config.get("layer_norm_eps", 1e-12)),
        position_offset=int(config["pad_token_id"]) + 1 if after_padding else 0,
        max_tokens=max_tokens,
        pooling=pooling,
        lower_case=bool(sentence.get("do_lower_case", False)),
    )


def _pooling_mode(pooling: dict[str, Any]) -> str | None:
    """The one pooling mode ("mean", "cls", ...), legacy flags or not; None for several."""
    mode = pooling.get("pooling_mode")
    if mode is None:
        flags = [key for key, on in pooling.items() if key.startswith("pooling_mode_") and on]
        mode = flags[0] if len(flags) == 1 else None
    aliases = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
    return aliases.get(mode, mode) if isinstance(mode, str) else None


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _map_safetensors(path: Path) -> dict[str, np.ndarray] | None:
    """The tensors of a safetensors file, memory-mapped (the format is an 8-byte header length,
    a JSON header of dtype/shape/offsets, then the data); None for a dtype not handled here.

    The word embeddings stay mapped in their own dtype (a query touches a few rows of a
    vocabulary-sized table); the rest, a fraction of the file, is copied once to aligned float32
    arrays (a mapped view may be unaligned, which keeps NumPy's matrix products off BLAS).
    """
    with path.open("rb") as file:
        length = int.from_bytes(file.read(8), "little")
        header = json.loads(file.read(length))
    header.pop("__metadata__", None)
    mapped = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + length)
    weights: dict[str, np.ndarray] = {}
    for raw_name, spec in header.items():
        name = raw_name.split(".", 1)[1] if raw_name.startswith(("bert.", "roberta.")) else raw_name
        if not name.startswith(("embeddings.", "encoder.")) or name.endswith("position_ids"):
            continue
        dtype = _DTYPES.get(spec["dtype"])
        if dtype is None:
            return None
        start, end = spec["data_offsets"]
        tensor = mapped[start:end].view(dtype).reshape(spec["shape"])
        keep_mapped = name == "embeddings.word_embeddings.weight"
        weights[name] = tensor if keep_mapped else np.array(tensor, dtype=np.float32)  # aligned
    return weights
