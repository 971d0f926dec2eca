"""What a GGUF file is, read from its header alone: no model load, no weights touched.

The walk follows the GGUF v2/v3 layout with the ``gguf`` package's own constants (value types,
file types, quantization block sizes). ``gguf.GGUFReader`` would also do, but it builds a numpy
view per array element and takes ~9 s on a 262k-token vocabulary on a 2-core laptop; this reader
skips what it does not need and takes a fraction of a second. It also checks that the tensor data
the header promises is really in the file, which is how a truncated download is caught. The walk
itself is in :mod:`models.gguf_header`, imported on the first read: ``gguf`` imports NumPy.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from models.errors import ModelLoadError


@dataclass(frozen=True)
class GgufInfo:
    """The facts about a GGUF that the CLI shows and the engine needs before loading it."""

    path: Path
    size_bytes: int
    version: int
    architecture: str
    name: str | None
    parameters: int
    file_type: str
    """Quantization of the file as llama.cpp names it, e.g. ``Q4_K_M``."""
    context_length: int | None
    layers: int | None
    chat_template: str | None
    bos_token: str
    eos_token: str
    add_bos_token: bool
    vocab_size: int
    metadata: dict[str, object] = field(repr=False)
    """Every scalar and short-array key, for ``models info``."""

    @property
    def parameters_label(self) -> str:
        return format_count(self.parameters)


def format_count(count: int) -> str:
    """``268098176`` → ``268M``; ``2_724_000_000`` → ``2.7B``."""
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if count >= size:
            value = count / size
            return f"{value:.1f}{suffix}" if value < 10 else f"{value:.0f}{suffix}"
    return str(count)


def read_gguf_info(path: Path) -> GgufInfo:
    """Read ``path``'s header; raise :class:`ModelLoadError` naming the file and the problem."""
    from models.gguf_header import Truncated, parse_header

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such file")
    size = path.stat().st_size
    try:
        with path.open("rb") as stream:
            return parse_header(path, stream, size)
    except Truncated:
        raise ModelLoadError(
            f"{path}: truncated GGUF (the header ends early; incomplete download?)"
        ) from None
    except (UnicodeDecodeError, ValueError, struct.error) as error:
        raise ModelLoadError(f"{path}: corrupt GGUF header ({error})") from None
    except OSError as error:
        raise ModelLoadError(f"{path}: cannot read file ({error.strerror or error})") from None
