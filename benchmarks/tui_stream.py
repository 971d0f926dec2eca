"""How the chat log copes with a long streamed answer.

Tokens are posted from a thread as the generation worker does (one message per token) and
appended to an :class:`AnswerView` through ``Markdown.get_stream()``. For N = 500, 2000, 8000
tokens it reports the time per token until the whole answer is on screen, and the event loop's
lag while streaming (how late a 16 ms frame tick runs: the delay a key press or a repaint would
see). The baseline, run in the same process, re-renders the whole Markdown per token
(``Markdown.update(text_so_far)``), the approach oterm moved away from.

Wall-clock numbers swing with other load on the machine; the UI thread's CPU time per token
does not, so the flatness claim is read from that column.

Run: ``.venv/bin/python benchmarks/tui_stream.py`` (headless; about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from textual import on
from textual.app import App, ComposeResult
from textual.message import Message
from textual.widgets import Markdown

from tui.widgets.chat_log import AnswerView, ChatLog

WORDS = (
    "TraceMonkey records hot loops as typed traces and compiles them to native code ; "
    "side exits return to the interpreter when a type guard fails [1] ."
).split()
FRAME_S = 1 / 60
PACE = 50.0
"""Tokens per second of the paced phase: a fast GPU; a 2B model on a laptop CPU gives ~4."""


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
    cpu_seconds: float
    """CPU time of the UI thread (the event loop): what the rendering costs, whatever else runs."""
    lags_ms: list[float]

    @property
    def us_per_token(self) -> float:
        return self.seconds / self.n * 1e6

    @property
    def cpu_us_per_token(self) -> float:
        return self.cpu_seconds / self.n * 1e6

    def lag(self, q: float) -> float:
        if not self.lags_ms:
            return 0.0
        ordered = sorted(self.lags_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class StreamHost(App[None]):
    """A chat log alone; ``mode`` picks the app's streaming or the re-render baseline."""

    @dataclass
    class TokenArrived(Message):
        """One generated token, posted from the worker thread."""

        text: str

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.answer: AnswerView | None = None
        self.baseline = Markdown()
        self.received = 0

    def compose(self) -> ComposeResult:
        yield ChatLog()

    @on(TokenArrived)
    async def _token(self, event: TokenArrived) -> None:
        assert self.answer is not None
        if self.mode == "stream":
            await self.answer.append(event.text)
        else:
            await self.baseline.update(self.baseline.source + event.text)
        self.received += 1


async def sample_lag(stop: asyncio.Event, lags_ms: list[float]) -> None:
    """Record how late each frame tick wakes up while the answer streams."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(FRAME_S)
        lags_ms.append((time.perf_counter() - start - FRAME_S) * 1000)


def post_all(app: StreamHost, tokens: list[str], rate: float | None) -> None:
    """What the generation worker does: as fast as it can, or at ``rate`` tokens per second."""
    for token in tokens:
        app.post_message(StreamHost.TokenArrived(token))
        if rate:
            time.sleep(1 / rate)


async def stream(app: StreamHost, tokens: list[str], rate: float | None) -> Result:
    """Post ``tokens`` from a thread and measure until all of them are on screen."""
    assert app.answer is not None
    target = app.received + len(tokens)
    stop = asyncio.Event()
    lags: list[float] = []
    sampler = asyncio.create_task(sample_lag(stop, lags))
    start = time.perf_counter()
    cpu_start = time.thread_time()
    poster = threading.Thread(target=post_all, args=(app, tokens, rate))
    poster.start()
    while app.received < target:
        await asyncio.sleep(0.001)
    await app.answer.flush()
    seconds = time.perf_counter() - start
    cpu_seconds = time.thread_time() - cpu_start
    stop.set()
    await sampler
    poster.join()
    return Result(len(tokens), seconds, cpu_seconds, lags)


async def run_once(mode: str, n: int, tail: int = 0) -> tuple[Result, Result | None]:
    """Flood ``n`` tokens; then, if ``tail``, stream ``tail`` more at a model-like pace."""
    app = StreamHost(mode)
    tokens = answer_tokens(n)
    async with app.run_test(size=(100, 40)) as pilot:
        app.answer = await app.query_one(ChatLog).start_answer()
        await app.answer.mount(app.baseline)
        await pilot.pause()
        flood = await stream(app, tokens, rate=None)
        paced = await stream(app, answer_tokens(tail), rate=PACE) if tail else None
        expected = "".join(tokens + answer_tokens(tail))
        if mode == "stream":
            await app.answer.finish("done")
            assert app.answer.text == expected
        else:
            assert app.baseline.source == expected
        await pilot.pause()
    return flood, paced


def table(title: str, results: list[Result], baseline: Callable[[int], Result | None]) -> None:
    print(f"\n{title}")
    print(
        "| tokens | wall µs/token | UI CPU µs/token | CPU vs first | frame lag p50 / p95 / max (ms)"
        " | baseline UI CPU µs/token |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    first = results[0].cpu_us_per_token
    for result in results:
        base = baseline(result.n)
        lags = f"{result.lag(0.5):.1f} / {result.lag(0.95):.1f} / {max(result.lags_ms or [0]):.1f}"
        print(
            f"| {result.n} | {result.us_per_token:.0f} | {result.cpu_us_per_token:.0f} | "
            f"{result.cpu_us_per_token / first:.2f}x | {lags} | "
            f"{f'{base.cpu_us_per_token:.0f}' if base else '—'} |"
        )


async def main(sizes: list[int], baseline_sizes: list[int], tail: int) -> None:
    machine = f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs)"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# tui_stream on {machine}, Python {platform.python_version()}, {when}")
    await run_once("stream", 200)  # warm up imports and CSS
    runs = [await run_once("stream", n, tail) for n in sizes]
    baselines = {n: (await run_once("rerender", n))[0] for n in baseline_sizes}
    table(
        "Flood: N tokens posted at once (Markdown.get_stream(), the app)",
        [flood for flood, _ in runs],
        baselines.get,
    )
    for n, base in baselines.items():
        ours = next((flood for flood, _ in runs if flood.n == n), None)
        if ours:
            ratio = base.cpu_us_per_token / ours.cpu_us_per_token
            print(
                f"\nAt N={n} the re-render baseline costs {ratio:.1f}x more UI CPU per token "
                f"(lag p95 {base.lag(0.95):.1f} ms vs {ours.lag(0.95):.1f} ms)."
            )
    print(f"\nPaced: {tail} more tokens at {PACE:.0f} tok/s after the N already shown")
    print("| already shown | UI CPU µs/token | vs first | frame lag p50 / p95 / max (ms) |")
    print("| ---: | ---: | ---: | ---: |")
    paced = [(flood.n, tail_run) for flood, tail_run in runs if tail_run is not None]
    for n, result in paced:
        lags = f"{result.lag(0.5):.1f} / {result.lag(0.95):.1f} / {max(result.lags_ms or [0]):.1f}"
        ratio = result.cpu_us_per_token / paced[0][1].cpu_us_per_token
        print(f"| {n} | {result.cpu_us_per_token:.0f} | {ratio:.2f}x | {lags} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--baseline-sizes", type=int, nargs="+", default=[500])
    parser.add_argument("--tail", type=int, default=200, help="paced tokens after each flood")
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.baseline_sizes, args.tail))
