"""The walk over a GGUF's binary header behind :func:`models.gguf_info.read_gguf_info`.

Kept apart because it needs the ``gguf`` package's constants (value types, file types,
quantization block sizes), and importing ``gguf`` imports NumPy: a command that only lists or
names models should not pay for that.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import gguf

from models.errors import ModelLoadError
from models.gguf_info import GgufInfo

_SCALAR_FORMATS: dict[gguf.GGUFValueType, str] = {
    gguf.GGUFValueType.UINT8: "<B",
    gguf.GGUFValueType.INT8: "<b",
    gguf.GGUFValueType.UINT16: "<H",
    gguf.GGUFValueType.INT16: "<h",
    gguf.GGUFValueType.UINT32: "<I",
    gguf.GGUFValueType.INT32: "<i",
    gguf.GGUFValueType.FLOAT32: "<f",
    gguf.GGUFValueType.BOOL: "<?",
    gguf.GGUFValueType.UINT64: "<Q",
    gguf.GGUFValueType.INT64: "<q",
    gguf.GGUFValueType.FLOAT64: "<d",
}
_KEPT_ARRAY_LENGTH = 64
"""Arrays longer than this (vocabularies, scores, merges) are skipped, not kept."""


class Truncated(Exception):
    """The header ends before what it promises."""


class _HeaderReader:
    """Sequential little-endian reads over a buffered file, failing cleanly at end of file.

    A length field is checked against the bytes left before reading, so a corrupt one (say
    2**62) is reported as a broken file instead of asking for that much memory.
    """

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self._size = size

    def read(self, size: int) -> bytes:
        if size > self._size - self._stream.tell():
            raise Truncated
        data = self._stream.read(size)
        if len(data) != size:
            raise Truncated
        return data

    def scalar(self, fmt: str) -> int | float | bool:
        value: int | float | bool = struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]
        return value

    def uint32(self) -> int:
        return int(self.scalar("<I"))

    def uint64(self) -> int:
        return int(self.scalar("<Q"))

    def string(self) -> bytes:
        return self.read(self.uint64())

    def strings(self, count: int) -> list[bytes]:
        """``count`` strings in a row, in one tight loop: a vocabulary has up to 262k pieces
        (Gemma's), which :meth:`string` per piece took 0.6 s to read on every model load."""
        read, left = self._stream.read, self._size - self._stream.tell()
        length = struct.Struct("<Q").unpack
        pieces = []
        for _ in range(count):
            head = read(8)
            if len(head) != 8:
                raise Truncated
            size = length(head)[0]
            left -= 8 + size
            if left < 0:
                raise Truncated
            pieces.append(read(size))
        return pieces

    def skip(self, size: int) -> None:
        self._stream.seek(size, 1)

    def tell(self) -> int:
        return self._stream.tell()


def parse_header(path: Path, stream: BinaryIO, size: int) -> GgufInfo:
    """The facts of the GGUF ``path`` of ``size`` bytes, read from ``stream`` at its start."""
    reader = _HeaderReader(stream, size)
    magic = reader.read(4) if size >= 4 else b""
    if magic != struct.pack("<I", gguf.GGUF_MAGIC):
        raise ModelLoadError(f"{path}: not a GGUF file (starts with {magic[:4]!r})")
    version = reader.uint32()
    if version not in (2, 3):
        raise ModelLoadError(f"{path}: unsupported GGUF version {version} (need 2 or 3)")
    tensor_count = reader.uint64()
    kv_count = reader.uint64()
    metadata: dict[str, object] = {}
    tokens: list[bytes] = []
    for _ in range(kv_count):
        key = reader.string().decode("utf-8")
        value_type = gguf.GGUFValueType(reader.uint32())
        if key == "tokenizer.ggml.tokens":
            tokens = _read_string_array(reader)
            continue
        value = _read_value(reader, value_type)
        if value is not None:
            metadata[key] = value
    parameters, data_end = _read_tensor_infos(reader, tensor_count, metadata)
    if data_end > size:
        raise ModelLoadError(
            f"{path}: truncated GGUF (tensor data needs {data_end:,} bytes, file has {size:,}; "
            "incomplete download?)"
        )
    architecture = str(metadata.get("general.architecture", ""))
    if not architecture:
        raise ModelLoadError(f"{path}: GGUF has no general.architecture key")
    return GgufInfo(
        path=path,
        size_bytes=size,
        version=version,
        architecture=architecture,
        name=_optional_str(metadata.get("general.name")),
        parameters=parameters,
        file_type=_file_type_name(metadata.get("general.file_type")),
        context_length=_optional_int(metadata.get(f"{architecture}.context_length")),
        layers=_optional_int(metadata.get(f"{architecture}.block_count")),
        chat_template=_optional_str(metadata.get("tokenizer.chat_template")),
        bos_token=_token_text(tokens, metadata.get("tokenizer.ggml.bos_token_id")),
        eos_token=_token_text(tokens, metadata.get("tokenizer.ggml.eos_token_id")),
        add_bos_token=bool(metadata.get("tokenizer.ggml.add_bos_token", True)),
        vocab_size=len(tokens),
        metadata=metadata,
    )


def _read_value(reader: _HeaderReader, value_type: gguf.GGUFValueType) -> object:
    if value_type == gguf.GGUFValueType.STRING:
        return reader.string().decode("utf-8")
    if value_type == gguf.GGUFValueType.ARRAY:
        element_type = gguf.GGUFValueType(reader.uint32())
        count = reader.uint64()
        if count > _KEPT_ARRAY_LENGTH:
            _skip_array(reader, element_type, count)
            return None
        return [_read_value(reader, element_type) for _ in range(count)]
    return reader.scalar(_SCALAR_FORMATS[value_type])


def _skip_array(reader: _HeaderReader, element_type: gguf.GGUFValueType, count: int) -> None:
    if element_type == gguf.GGUFValueType.STRING:
        reader.strings(count)  # read and dropped: its loop is 3x a skip per string (BPE merges)
    elif element_type == gguf.GGUFValueType.ARRAY:
        for _ in range(count):
            _read_value(reader, gguf.GGUFValueType.ARRAY)
    else:
        reader.skip(struct.calcsize(_SCALAR_FORMATS[element_type]) * count)


def _read_string_array(reader: _HeaderReader) -> list[bytes]:
    element_type = gguf.GGUFValueType(reader.uint32())
    count = reader.uint64()
    if element_type != gguf.GGUFValueType.STRING:
        _skip_array(reader, element_type, count)
        return []
    return reader.strings(count)


def _read_tensor_infos(
    reader: _HeaderReader, tensor_count: int, metadata: dict[str, object]
) -> tuple[int, int]:
    """Total parameter count and the file offset where the last tensor's data ends."""
    parameters = 0
    data_size = 0
    for _ in range(tensor_count):
        reader.string()
        dims = [reader.uint64() for _ in range(reader.uint32())]
        tensor_type = gguf.GGMLQuantizationType(reader.uint32())
        offset = reader.uint64()
        elements = 1
        for dim in dims:
            elements *= dim
        block_size, type_size = gguf.GGML_QUANT_SIZES[tensor_type]
        parameters += elements
        data_size = max(data_size, offset + elements // block_size * type_size)
    alignment = int(metadata.get("general.alignment", gguf.GGUF_DEFAULT_ALIGNMENT))  # type: ignore[call-overload]
    if alignment <= 0:
        raise ValueError(f"general.alignment is {alignment}")
    data_start = -(-reader.tell() // alignment) * alignment
    return parameters, data_start + data_size


def _file_type_name(value: object) -> str:
    if not isinstance(value, int):
        return "unknown"
    try:
        name = gguf.LlamaFileType(value).name
    except ValueError:
        return f"type {value}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def _token_text(tokens: list[bytes], token_id: object) -> str:
    if isinstance(token_id, int) and 0 <= token_id < len(tokens):
        return tokens[token_id].decode("utf-8", errors="replace")
    return ""


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _optional_int(value: object) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
