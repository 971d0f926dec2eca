"""How the chat log copes with a long streamed answer.

Tokens are posted from a thread as the generation worker does (``TokensArrived`` messages) and
appended to an :class:`AnswerView` through ``Markdown.get_stream()``. For N = 500, 2000, 8000
tokens it reports the time per token until the whole answer is on screen, and the event loop's
lag while streaming (how late a 16 ms frame tick runs: the delay a key press or a repaint would
see). The baseline, run in the same process, re-renders the whole Markdown per token
(``Markdown.update(text_so_far)``), the approach oterm moved away from.

Run: ``.venv/bin/python benchmarks/tui_stream.py`` (headless; about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from textual import on
from textual.app import App, ComposeResult
from textual.widgets import Markdown

from tui.messages import TokensArrived
from tui.widgets.chat_log import AnswerView, ChatLog

WORDS = (
    "TraceMonkey records hot loops as typed traces and compiles them to native code ; "
    "side exits return to the interpreter when a type guard fails [1] ."
).split()
FRAME_S = 1 / 60


def answer_tokens(n: int) -> list[str]:
    """A Markdown answer of ``n`` tokens: paragraphs of ~60 tokens, a short list every fourth."""
    tokens: list[str] = []
    for i in range(n):
        if i and i % 240 == 0:
            tokens.append("\n\n- first point\n- second point\n\n")
        elif i and i % 60 == 0:
            tokens.append("\n\n")
        else:
            tokens.append(WORDS[i % len(WORDS)] + " ")
    return tokens


@dataclass
class Result:
    n: int
    seconds: float
    lags_ms: list[float]

    @property
    def us_per_token(self) -> float:
        return self.seconds / self.n * 1e6

    def lag(self, q: float) -> float:
        if not self.lags_ms:
            return 0.0
        ordered = sorted(self.lags_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class StreamHost(App[None]):
    """A chat log alone; ``mode`` picks streaming or the re-render baseline."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.answer: AnswerView | None = None
        self.received = 0

    def compose(self) -> ComposeResult:
        yield ChatLog()

    @on(TokensArrived)
    async def _token(self, event: TokensArrived) -> None:
        assert self.answer is not None
        if self.mode == "stream":
            await self.answer.append(event.text)
        else:
            await self.answer.body.update(self.answer.body.source + event.text)
        self.received += 1


async def sample_lag(stop: asyncio.Event, lags_ms: list[float]) -> None:
    """Record how late each frame tick wakes up while the answer streams."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(FRAME_S)
        lags_ms.append((time.perf_counter() - start - FRAME_S) * 1000)


def post_all(app: App[None], tokens: list[str]) -> None:
    """What the generation worker does, as fast as it can."""
    for token in tokens:
        app.post_message(TokensArrived(token))


async def run_once(mode: str, n: int) -> Result:
    app = StreamHost(mode)
    tokens = answer_tokens(n)
    async with app.run_test(size=(100, 40)) as pilot:
        app.answer = await app.query_one(ChatLog).start_answer()
        await pilot.pause()
        stop = asyncio.Event()
        lags: list[float] = []
        sampler = asyncio.create_task(sample_lag(stop, lags))
        start = time.perf_counter()
        poster = threading.Thread(target=post_all, args=(app, tokens))
        poster.start()
        while app.received < n:
            await asyncio.sleep(0.001)
        await app.answer.finish("done")
        await pilot.pause()
        seconds = time.perf_counter() - start
        stop.set()
        await sampler
        poster.join()
        blocks = sum(len(segment.children) for segment in app.answer.query(Markdown))
        assert blocks > n // 80, f"the answer rendered as {blocks} blocks"
        if mode == "stream":
            assert app.answer.text == "".join(tokens)
    return Result(n, seconds, lags)


def table(title: str, results: list[Result], baseline: Callable[[int], Result | None]) -> None:
    print(f"\n{title}")
    print("| tokens | µs/token | vs N=500 | frame lag p50 / p95 / max (ms) | baseline µs/token |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    first = results[0].us_per_token
    for result in results:
        base = baseline(result.n)
        print(
            f"| {result.n} | {result.us_per_token:.0f} | {result.us_per_token / first:.2f}x | "
            f"{result.lag(0.5):.1f} / {result.lag(0.95):.1f} / {max(result.lags_ms or [0]):.1f} | "
            f"{f'{base.us_per_token:.0f}' if base else '—'} |"
        )


async def main(sizes: list[int], baseline_sizes: list[int]) -> None:
    machine = f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs)"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# tui_stream on {machine}, Python {platform.python_version()}, {when}")
    await run_once("stream", 200)  # warm up imports and CSS
    streamed = [await run_once("stream", n) for n in sizes]
    baselines = {n: await run_once("rerender", n) for n in baseline_sizes}
    table("Markdown.get_stream() (the app)", streamed, baselines.get)
    for n, base in baselines.items():
        ours = next((r for r in streamed if r.n == n), None)
        if ours:
            ratio = base.us_per_token / ours.us_per_token
            print(f"\nAt N={n} the re-render baseline costs {ratio:.1f}x more per token "
                  f"(lag p95 {base.lag(0.95):.1f} ms vs {ours.lag(0.95):.1f} ms).")
    print(f"\nmedian frame lag over all streamed runs: "
          f"{statistics.median(lag for r in streamed for lag in r.lags_ms):.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--baseline-sizes", type=int, nargs="+", default=[500, 2000])
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.baseline_sizes))
