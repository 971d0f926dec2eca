"""The GGUF header reader reports real facts and refuses broken files with a clear reason."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import pytest

from models.errors import ModelLoadError
from models.gguf_info import format_count, read_gguf_info


def test_reads_a_minicpm_header(model_files: dict[str, Path]) -> None:
    info = read_gguf_info(model_files["f32"])
    assert info.architecture == "minicpm"
    assert info.layers == 2
    assert info.context_length == 2048
    assert info.file_type == "F32"
    assert info.chat_template is None
    assert (info.bos_token, info.eos_token, info.add_bos_token) == ("<s>", "</s>", True)
    assert info.metadata["minicpm.embedding_scale"] == 12.0
    # 2 layers of (4 x 256x256 attention + 3 x 256x512 FFN + 2 norms) + embeddings + final norm
    per_layer = 4 * 256 * 256 + 3 * 256 * 512 + 2 * 256
    assert info.parameters == 2 * per_layer + info.vocab_size * 256 + 256


def test_reads_quantization_and_template(model_files: dict[str, Path]) -> None:
    assert read_gguf_info(model_files["q4_k_m"]).file_type == "Q4_K_M"
    chatml = read_gguf_info(model_files["chatml"])
    assert chatml.chat_template is not None and "<|im_start|>" in chatml.chat_template


def test_reads_the_demo_model(demo_model_path: Path) -> None:
    info = read_gguf_info(demo_model_path)
    assert (info.architecture, info.file_type, info.layers) == ("gemma3", "Q4_K_M", 18)
    assert info.parameters_label == "268M"
    assert info.chat_template is None


def test_truncated_file_is_named_with_the_reason(
    model_files: dict[str, Path], tmp_path: Path
) -> None:
    data = model_files["q4_k_m"].read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: len(data) - 1000])
    with pytest.raises(ModelLoadError, match=r"cut\.gguf: truncated GGUF \(tensor data needs"):
        read_gguf_info(cut)
    cut.write_bytes(data[:300])
    with pytest.raises(ModelLoadError, match=r"cut\.gguf: truncated GGUF \(the header ends early"):
        read_gguf_info(cut)


def test_the_vocabulary_is_read_whole_and_a_cut_inside_it_is_named(
    model_files: dict[str, Path], demo_model_path: Path, tmp_path: Path
) -> None:
    """The vocabulary is read in a loop of its own: every piece (Gemma 3 has 262,144), and a
    file that ends inside it is a truncated GGUF, wherever it ends."""
    assert read_gguf_info(demo_model_path).vocab_size == 262144
    path = model_files["f32"]
    tokens = gguf.GGUFReader(path).fields["tokenizer.ggml.tokens"]
    assert read_gguf_info(path).vocab_size == len(tokens.data)
    head = path.read_bytes()[: tokens.offset + sum(len(part) for part in tokens.parts)]
    cut = tmp_path / "cut.gguf"
    for end in range(tokens.offset + 16, len(head), max(1, (len(head) - tokens.offset) // 9)):
        cut.write_bytes(head[:end])
        with pytest.raises(ModelLoadError, match=r"truncated GGUF \(the header ends early"):
            read_gguf_info(cut)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "not a GGUF file"), (b"%PDF-1.7 not a model", "not a GGUF file")],
)
def test_non_gguf_files_are_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "notes.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=f"notes.gguf: {reason}"):
        read_gguf_info(path)


def test_corrupt_length_field_is_refused_without_reading_it(tmp_path: Path) -> None:
    """One metadata key whose name length is absurd: a clear error, not a huge allocation."""
    path = tmp_path / "corrupt.gguf"
    path.write_bytes(struct.pack("<IIQQQ", gguf.GGUF_MAGIC, 3, 0, 1, 2**62) + b"general")
    with pytest.raises(ModelLoadError, match="corrupt.gguf: truncated GGUF"):
        read_gguf_info(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="absent.gguf: no such file"):
        read_gguf_info(tmp_path / "absent.gguf")


def test_format_count() -> None:
    assert [format_count(n) for n in (999, 1_400_000, 268_098_176, 2_724_000_000)] == [
        "999",
        "1.4M",
        "268M",
        "2.7B",
    ]
