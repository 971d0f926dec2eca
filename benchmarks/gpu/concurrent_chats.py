"""N chats at once against one ``llama-server`` with parallel slots, through the app's own client.

Each chat is a thread with its own :class:`models.server_engine.ServerEngine` (the path the app
takes with ``[llm] base_url``), a prompt of about ``--prompt-tokens`` tokens that no other chat
and no earlier round shares (so the server's prompt cache does not help; each engine has counted
its prompt's tokens before the round, as the app does while it builds a prompt), and
``--gen-tokens`` tokens to generate. All chats of a round start together. ``--raw`` runs each
round again with the very same request bodies through a bare httpx stream that only counts SSE
lines, to tell the client's share from the server's. A first round of the most chats warms the
server (CUDA graphs, buffers, every slot used once, as on a server that has been running) and
calibrates the prompts: the server's template adds tokens the text's count does not see, so the
rounds' prompts are sized to make the server's own count ``--prompt-tokens`` (batched-bench's
``-npp``). ``--url`` may name several servers; chat ``i`` goes to server ``i`` modulo their
number (a team split across servers of fewer slots). ``--repeats`` runs each round again with new
prompts and adds the median of each column.

Reported per round: aggregate tokens/s (all generated tokens over the round's wall time, prompt
reading included: comparable to ``llama-batched-bench``'s N x ntg / T), the sum of per-chat decode
tokens/s (first to last token: comparable to its S_TG), the median per-chat decode tokens/s, time
to first token (median and max), and the prompt tokens the server reported.

    python benchmarks/gpu/concurrent_chats.py --url http://127.0.0.1:8089/v1 --chats 1,4,8,16
    python benchmarks/gpu/concurrent_chats.py --url http://127.0.0.1:8089/v1,http://127.0.0.1:8090/v1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from models.config import ServerConfig  # noqa: E402
from models.events import DoneEvent, TokenEvent  # noqa: E402
from models.sampling import SamplingParams  # noqa: E402
from models.server_engine import ServerEngine  # noqa: E402
from models.templates import ChatMessage  # noqa: E402

SENTENCE = (
    "The committee reviewed the quarterly report, compared the figures with last year, "
    "and asked the authors to explain the change in operating costs on page four."
)
WORDS = SENTENCE.split()


@dataclass(frozen=True)
class Chat:
    started: float
    first_token: float
    finished: float
    tokens: int
    prompt_tokens: int | None
    """As the server reported it; ``None`` from the raw client, which parses nothing."""


@dataclass(frozen=True)
class RoundStats:
    """One round's numbers as the table prints them (or each column's median over runs)."""

    aggregate: float
    """All generated tokens over the round's wall time, tokens/s."""
    decode_sum: float
    decode_median: float
    ttft_median: float
    ttft_max: float
    tokens: float
    prompt_tokens: float | None

    @classmethod
    def of(cls, chats: list[Chat]) -> RoundStats:
        wall = max(c.finished for c in chats) - min(c.started for c in chats)
        decode = [(c.tokens - 1) / (c.finished - c.first_token) for c in chats if c.tokens > 1]
        ttft = [c.first_token - c.started for c in chats]
        prompts = [c.prompt_tokens for c in chats if c.prompt_tokens is not None]
        tokens = sum(c.tokens for c in chats)
        return cls(
            aggregate=tokens / wall,
            decode_sum=sum(decode),
            decode_median=statistics.median(decode),
            ttft_median=statistics.median(ttft),
            ttft_max=max(ttft),
            tokens=tokens,
            prompt_tokens=statistics.median(prompts) if prompts else None,
        )

    @classmethod
    def median(cls, runs: list[RoundStats]) -> RoundStats:
        """Each column's median over ``runs`` (prompt tokens over the runs that report them)."""
        columns: dict[str, Any] = {}  # each field its own median
        for column in fields(cls):
            values = [v for run in runs if (v := getattr(run, column.name)) is not None]
            columns[column.name] = statistics.median(values) if values else None
        return cls(**columns)

    def row(self, label: str) -> str:
        prompts = "—" if self.prompt_tokens is None else f"{self.prompt_tokens:.0f}"
        return (
            f"| {label} | {self.aggregate:.1f} | {self.decode_sum:.1f} | {self.decode_median:.1f} "
            f"| {self.ttft_median:.3f} | {self.ttft_max:.3f} | {self.tokens:.0f} | {prompts} |"
        )


PARAMS = SamplingParams(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, stop=())
"""Greedy and no stop strings, so every chat generates exactly ``--gen-tokens`` tokens."""


def main() -> int:
    args = parse_args()
    params = PARAMS.with_overrides(max_tokens=args.gen_tokens)
    print(
        f"# {args.prompt_tokens}-token prompts (the server's count), {args.gen_tokens} generated "
        f"tokens per chat, {len(args.url)} server(s); app: models.server_engine.ServerEngine, "
        "raw: the same request bodies through httpx"
    )
    print(
        "| chats | aggregate tok/s | sum of per-chat decode tok/s | per-chat decode tok/s "
        "(median) | TTFT median s | TTFT max s | tokens | prompt tokens (median) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    configs = [ServerConfig(base_url=url, timeout_s=600) for url in args.url]
    engines = [ServerEngine.connect(configs[i % len(configs)]) for i in range(max(args.chats))]
    clients = [("app", stream_app)] + ([("raw", stream_raw)] if args.raw else [])
    warm = [prompt(engine, f"warm-up {i}", args.prompt_tokens) for i, engine in enumerate(engines)]
    reported = RoundStats.of(round_of(stream_app, engines, warm, params)).prompt_tokens
    target = round(2 * args.prompt_tokens - (reported or args.prompt_tokens))
    for count in args.chats:
        for name, stream in clients:
            runs = []
            for run in range(args.repeats):
                prompts = [
                    prompt(engine, f"{name} {count} {run} {index}", target)
                    for index, engine in enumerate(engines[:count])
                ]
                runs.append(RoundStats.of(round_of(stream, engines[:count], prompts, params)))
                print(runs[-1].row(f"{count} ({name})"))
            if args.repeats > 1:
                print(
                    RoundStats.median(runs).row(f"**{count} ({name}), median of {args.repeats}**")
                )
    for engine in engines:
        engine.close()
    return 0


def prompt(engine: ServerEngine, label: str, tokens: int) -> str:
    """The shortest chat prompt starting with ``label`` that ``engine`` counts as ``tokens``.

    Searched word by word (a word is at least one token), so rounds get equal prompts rather than
    prompts a sentence apart.
    """

    def rendered(words: int) -> str:
        body = " ".join(WORDS[i % len(WORDS)] for i in range(words))
        message = ChatMessage("user", f"Chat {label}. {body} Summarise this.")
        return engine.template.render([message])

    low, high = 0, tokens
    while low < high:
        middle = (low + high) // 2
        if engine.count_tokens(rendered(middle)) < tokens:
            low = middle + 1
        else:
            high = middle
    return rendered(low)


Stream = Callable[[ServerEngine, str, SamplingParams], Chat]


def stream_app(engine: ServerEngine, prompt: str, params: SamplingParams) -> Chat:
    started = time.perf_counter()
    first = 0.0
    tokens = 0
    prompt_tokens = None
    for event in engine.stream(prompt, params):
        if isinstance(event, TokenEvent):
            first = first or time.perf_counter()
        elif isinstance(event, DoneEvent):
            tokens = event.usage.completion_tokens
            prompt_tokens = event.usage.prompt_tokens
    return Chat(started, first or time.perf_counter(), time.perf_counter(), tokens, prompt_tokens)


def stream_raw(engine: ServerEngine, prompt: str, params: SamplingParams) -> Chat:
    """The app's request body through httpx alone: SSE lines counted, nothing else done."""
    body = engine.request_body(prompt, params, engine.template.stop, engine.count_tokens(prompt))
    url = f"{engine.client.base_url}/chat/completions"
    started = time.perf_counter()
    first = 0.0
    pieces = 0
    with httpx.stream("POST", url, json=body, timeout=600) as response:
        for line in response.iter_lines():
            if line.startswith("data: {") and '"content"' in line:
                first = first or time.perf_counter()
                pieces += 1
    return Chat(started, first or time.perf_counter(), time.perf_counter(), pieces, None)


def round_of(
    stream: Stream, engines: list[ServerEngine], prompts: list[str], params: SamplingParams
) -> list[Chat]:
    results: list[Chat | None] = [None] * len(engines)
    start = threading.Barrier(len(engines))

    def chat(slot: int) -> None:
        start.wait()
        results[slot] = stream(engines[slot], prompts[slot], params)

    threads = [threading.Thread(target=chat, args=(slot,)) for slot in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [result for result in results if result is not None]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        required=True,
        type=lambda text: text.split(","),
        help="the server's /v1 root; several, comma-separated, share the chats",
    )
    parser.add_argument(
        "--chats", type=lambda text: [int(n) for n in text.split(",")], default=[1, 4, 8, 16]
    )
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--gen-tokens", type=int, default=128)
    parser.add_argument("--raw", action="store_true", help="also through a bare httpx stream")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each round")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
