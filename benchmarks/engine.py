"""Engine overhead: prefill and decode tokens/s through ``LlamaEngine`` vs bare llama-cpp-python.

Both run the same GGUF in the same process with the same settings (context, batch, threads, GPU
layers, flash attention, seed, sampling), interleaved run by run so machine noise hits both
alike; the ratio engine/bare is the number to watch (target >= 0.97).

    python benchmarks/engine.py --model PATH                 # any GGUF
    python benchmarks/engine.py --demo                       # the offline Gemma demo model
    python benchmarks/engine.py --synthesize-small           # a ~100M-param MiniCPM, Q4_K_M
    python benchmarks/engine.py --synthesize-minicpm-2b      # MiniCPM-2B's exact shapes, Q4_K_M
    python benchmarks/engine.py --model PATH --matrix --bandwidth-tbps 3.35   # GPU machine

``--matrix`` runs full GPU offload and CPU, each with flash attention on and off, and reports
decode as a fraction of the memory-bandwidth bound (file bytes read once per token).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import llama_cpp  # noqa: E402

from models.config import EngineConfig  # noqa: E402
from models.events import DoneEvent, TokenEvent  # noqa: E402
from models.hardware import gpu_backend, nvidia_gpus, physical_cores  # noqa: E402
from models.llama_logs import route_llama_logs  # noqa: E402
from models.runtime import LlamaEngine  # noqa: E402
from models.sampling import SamplingParams  # noqa: E402
from models.store import ModelStore  # noqa: E402
from tests.fixtures_models import (  # noqa: E402
    MINICPM_2B_SHAPE,
    MiniCPMShape,
    build_minicpm_gguf,
    demo_gguf,
    quantize_gguf,
)

SMALL_SHAPE = MiniCPMShape(
    n_embd=1024, n_layer=8, n_head=16, n_head_kv=16, n_ff=2816, n_vocab=32000, context_length=4096
)
MINICPM4_8B_SHAPE = MiniCPMShape(
    n_embd=4096, n_layer=32, n_head=32, n_head_kv=2, n_ff=16384, n_vocab=73448, context_length=4096
)
"""MiniCPM4/4.1-8B's shapes (hidden 4096, 32 layers, 32 query and 2 key/value heads, FFN 16384,
vocab 73448), with MiniCPM-2B's plain RoPE in place of LongRoPE (same cost per token)."""
Clock = Callable[[], float]
CLOCKS: dict[str, Clock] = {"wall": time.perf_counter, "cpu": time.process_time}
"""``cpu`` (process CPU time) measures work done, unaffected by other programs on a busy machine;
meaningful with ``--threads 1`` on CPU, where all compute runs on the calling thread."""
SAMPLING = SamplingParams(temperature=0.0, top_k=40, top_p=1.0, min_p=0.0, repeat_penalty=1.0)
"""Greedy, so both loops generate the very same tokens."""


@dataclass(frozen=True)
class Rates:
    prefill_tok_s: float
    decode_tok_s: float
    generated: int


def main() -> int:
    args = parse_args()
    route_llama_logs()
    path = resolve_model(args)
    if args.build_only:
        print(path)
        return 0
    configs = (
        [(layers, fa) for layers in (-1, 0) for fa in (True, False)]
        if args.matrix
        else [(args.n_gpu_layers, args.flash_attn == "on")]
    )
    print(f"# {path.name} ({path.stat().st_size / 1e9:.2f} GB) on {machine()}, {today()}")
    print(
        f"# prompt {args.prompt_tokens} tokens, decode {args.gen_tokens} tokens, "
        f"{args.repeats} interleaved repeats, median; {args.clock} clock, "
        f"{args.threads or physical_cores()} threads"
    )
    print(
        "| offload | flash attn | prefill engine | prefill bare | ratio | decode engine | "
        "decode bare | ratio | decode / bandwidth bound |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for layers, flash in configs:
        engine_rates, bare_rates, offloaded = compare(path, args, layers, flash)
        bound = ""
        if args.bandwidth_tbps:
            ceiling = args.bandwidth_tbps * 1e12 / path.stat().st_size
            bound = f"{statistics.median(r.decode_tok_s for r in engine_rates) / ceiling:.1%}"
        print(row(offloaded, flash, engine_rates, bare_rates, bound))
    return 0


def compare(
    path: Path, args: argparse.Namespace, layers: int, flash: bool
) -> tuple[list[Rates], list[Rates], str]:
    threads = args.threads or physical_cores()
    config = EngineConfig(
        n_gpu_layers="auto" if layers < 0 else layers,
        max_context=args.ctx,
        n_threads=threads,
        flash_attention=flash,
        n_batch=512,
        seed=1,
        prompt_lookup=args.prompt_lookup,
    )
    engine = LlamaEngine.load(ModelStore(path.parent).resolve(str(path)), config)
    bare = llama_cpp.Llama(
        model_path=str(path),
        n_gpu_layers=engine.offload.n_gpu_layers,
        n_ctx=engine.n_ctx,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        flash_attn=flash,
        seed=1,
        verbose=False,
    )
    offload = engine.offload
    offloaded = f"{offload.n_gpu_layers}/{offload.total_layers} {offload.backend}"
    base = prompt_of(bare, args.prompt_tokens)
    engine_rates, bare_rates = [], []
    for repeat in range(args.repeats):
        prompt = f"{repeat} {base}"  # differs from what the KV cache holds: a full prefill
        clock = CLOCKS[args.clock]
        if repeat % 2:  # alternate who goes first, so drift and warm-up hit both alike
            bare_rates.append(bare_run(bare, prompt, args.gen_tokens, clock))
            engine_rates.append(engine_run(engine, prompt, args.gen_tokens, clock))
        else:
            engine_rates.append(engine_run(engine, prompt, args.gen_tokens, clock))
            bare_rates.append(bare_run(bare, prompt, args.gen_tokens, clock))
    engine.close()
    bare.close()
    return engine_rates, bare_rates, offloaded


def engine_run(engine: LlamaEngine, prompt: str, gen_tokens: int, clock: Clock) -> Rates:
    """Timed from outside, like the bare loop: prefill = call to first token (1-token answer),
    decode = first streamed token to the end, in generated tokens per second."""
    started = clock()
    for event in engine.stream(prompt, SAMPLING.with_overrides(max_tokens=1)):
        if isinstance(event, DoneEvent):
            prefill = event.usage.prompt_tokens / (clock() - started)
    first_at, done = 0.0, None
    for event in engine.stream(prompt + " and", SAMPLING.with_overrides(max_tokens=gen_tokens)):
        if isinstance(event, TokenEvent):
            first_at = first_at or clock()
        else:
            done = event
    finished = clock()
    assert done is not None
    generated = done.usage.completion_tokens
    decode = (generated - 1) / (finished - first_at) if generated > 1 and first_at else 0.0
    return Rates(prefill, decode, generated)


def bare_run(llm: llama_cpp.Llama, prompt: str, gen_tokens: int, clock: Clock) -> Rates:
    started = clock()
    tokens = llm.tokenize(prompt.encode(), add_bos=True, special=True)
    for _ in _bare_generate(llm, tokens):
        prefill = len(tokens) / (clock() - started)
        break
    tokens = llm.tokenize((prompt + " and").encode(), add_bos=True, special=True)
    count, first_at = 0, 0.0
    for token in _bare_generate(llm, tokens):
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
            break
        llm.detokenize([token])  # what any streaming caller does per token
        first_at = first_at or clock()
        count += 1
        if count >= gen_tokens:
            break
    finished = clock()
    decode = (count - 1) / (finished - first_at) if count > 1 and first_at else 0.0
    return Rates(prefill, decode, count)


def _bare_generate(llm: llama_cpp.Llama, tokens: list[int]) -> Iterator[int]:
    return llm.generate(
        tokens,
        top_k=SAMPLING.top_k,
        top_p=SAMPLING.top_p,
        min_p=SAMPLING.min_p,
        temp=SAMPLING.temperature,
        repeat_penalty=SAMPLING.repeat_penalty,
    )


def prompt_of(llm: llama_cpp.Llama, n_tokens: int) -> str:
    """Plain English text of about ``n_tokens`` tokens for this model's tokenizer."""
    sentence = (
        "The committee reviewed the quarterly report, compared the figures with last year, "
        "and asked the authors to explain the change in operating costs on page four. "
    )
    text = sentence
    while len(llm.tokenize(text.encode(), add_bos=False)) < n_tokens:
        text += sentence
    pieces = llm.tokenize(text.encode(), add_bos=False)[:n_tokens]
    return llm.detokenize(pieces).decode("utf-8", errors="ignore")


def row(offloaded: str, flash: bool, engine: list[Rates], bare: list[Rates], bound: str) -> str:
    e_pre = statistics.median(r.prefill_tok_s for r in engine)
    b_pre = statistics.median(r.prefill_tok_s for r in bare)
    e_dec = statistics.median(r.decode_tok_s for r in engine)
    b_dec = statistics.median(r.decode_tok_s for r in bare)
    return (
        f"| {offloaded} | {'on' if flash else 'off'} | {e_pre:.1f} | {b_pre:.1f} | "
        f"{e_pre / b_pre:.3f} | {e_dec:.2f} | {b_dec:.2f} | {e_dec / b_dec:.3f} | {bound or '-'} |"
    )


def resolve_model(args: argparse.Namespace) -> Path:
    if args.model:
        return Path(args.model)
    work = Path(args.out or tempfile.mkdtemp(prefix="engine-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.demo:
        return demo_gguf(work)
    shape, name = (
        (MINICPM_2B_SHAPE, "minicpm-2b-shapes")
        if args.synthesize_minicpm_2b
        else (MINICPM4_8B_SHAPE, "minicpm41-8b-shapes")
        if args.synthesize_minicpm4_8b
        else (SMALL_SHAPE, "minicpm-small")
    )
    quantized = work / f"{name}-q4_k_m.gguf"
    if not quantized.exists():
        import numpy as np

        f16 = build_minicpm_gguf(work / f"{name}-f16.gguf", shape=shape, dtype=np.float16)
        quantize_gguf(f16, quantized)
        f16.unlink()
    return quantized


def machine() -> str:
    gpus = nvidia_gpus()
    gpu = f", GPU {gpus[0].name}" if gpus else ""
    return (
        f"{platform.processor() or platform.machine()}, {physical_cores()} physical cores{gpu}, "
        f"llama-cpp-python {llama_cpp.__version__} ({gpu_backend()} build)"
    )


def today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="path to a GGUF")
    source.add_argument("--demo", action="store_true", help="the offline Gemma 3 270M demo model")
    source.add_argument(
        "--synthesize-small",
        action="store_true",
        help="build a ~100M-parameter MiniCPM GGUF (Q4_K_M) with random weights",
    )
    source.add_argument(
        "--synthesize-minicpm-2b",
        action="store_true",
        help="build a GGUF with MiniCPM-2B's exact shapes (Q4_K_M, random weights)",
    )
    source.add_argument(
        "--synthesize-minicpm4-8b",
        action="store_true",
        help="build a GGUF with MiniCPM4.1-8B's shapes (Q4_K_M, random weights)",
    )
    parser.add_argument("--out", help="directory for built models (default: a temp dir)")
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="build (or find) the model, print its path and stop",
    )
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--gen-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--n-gpu-layers", type=int, default=-1, help="-1: auto (all if it fits)")
    parser.add_argument("--flash-attn", choices=("on", "off"), default="on")
    parser.add_argument(
        "--prompt-lookup",
        choices=("auto", "on", "off"),
        default="off",
        help="the engine's speculative decoding (off: the plain loop's overhead)",
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time, or process CPU time (robust on a busy machine)",
    )
    parser.add_argument(
        "--matrix", action="store_true", help="GPU offload all vs CPU, flash attention on vs off"
    )
    parser.add_argument(
        "--bandwidth-tbps",
        type=float,
        default=None,
        help="memory bandwidth (H100 SXM: 3.35) to report decode vs its bound",
    )
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
