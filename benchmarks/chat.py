"""Chat latency: time to first token over a 20-turn RAG conversation, with KV-cache reuse vs a
naive re-prefill of the very same prompts, and where the time of one question goes.

One process, one model, one index: the conversation runs through ``AssistantService`` and every
prompt and answer is recorded. Then, for turns 1, 5, 10 and 20, two measurements are taken back
to back so machine noise hits both alike: "reuse" puts the previous turn's prompt and answer in
the KV cache (as in the live conversation) and times the turn's prompt; "naive" times the same
prompt from an empty cache (what a pipeline that rebuilds the prompt differently each turn pays).
Tokens evaluated are exact; wall seconds depend on what else the machine does, so the CPU-time
ratios are given too.

    python benchmarks/chat.py                          # the offline demo model (Gemma 3 270M)
    python benchmarks/chat.py --synthesize-minicpm     # a ~100M-param MiniCPM-shaped Q4_K_M
    python benchmarks/chat.py --model PATH             # any GGUF
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from assistant.events import (  # noqa: E402
    AnswerFailed,
    AnswerFinished,
    RetrievalFinished,
    RetrievalStarted,
    TokenReceived,
)
from assistant.locations import Locations  # noqa: E402
from assistant.service import AssistantService  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from models.events import DoneEvent, GenerationEvent  # noqa: E402
from models.runtime import LlamaEngine  # noqa: E402
from models.sampling import SamplingParams  # noqa: E402
from models.store import ModelStore  # noqa: E402
from rag.library import Library  # noqa: E402
from tests.fixtures_models import (  # noqa: E402
    MiniCPMShape,
    build_minicpm_gguf,
    demo_gguf,
    quantize_gguf,
)

PAPER = REPO_ROOT.parent / "shared" / "pdf-corpus" / "clean" / "tracemonkey.pdf"
QUESTIONS = (
    "What is a trace tree in TraceMonkey?",
    "How is a trace tree formed?",
    "What happens at a side exit?",
    "Why are loops the unit of tracing?",
    "How fast is TraceMonkey on SunSpider?",
    "And on the benchmarks where it is slow?",
    "What is a type-stable loop?",
    "How are type-unstable loops handled?",
    "What is nested trace tree formation?",
    "Why does TraceMonkey not trace recursion?",
    "What does the trace monitor do?",
    "How does the recorder handle function calls?",
    "What is LIR in TraceMonkey?",
    "Which optimizations run on a recorded trace?",
    "How is register allocation done?",
    "What is blacklisting?",
    "Why is blacklisting needed?",
    "How does TraceMonkey compare to other JavaScript engines?",
    "What future work do the authors plan?",
    "Can you summarise the main idea of the paper?",
)
MEASURED_TURNS = (1, 5, 10, 20)
SMALL_MINICPM = MiniCPMShape(
    n_embd=1024, n_layer=8, n_head=16, n_head_kv=16, n_ff=2816, n_vocab=32000, context_length=4096
)
FIRST_TOKEN_ONLY = SamplingParams(max_tokens=1, temperature=0.0)


@dataclass
class Call:
    prompt: str
    answer: str
    done: DoneEvent
    cpu_to_first_token_s: float
    """Process CPU seconds (all llama.cpp threads) until the first token: the work done,
    unlike wall time barely moved by other programs competing for the cores."""


class RecordingEngine:
    """Wraps an engine to keep every prompt it was given with its usage and timings."""

    def __init__(self, engine: LlamaEngine) -> None:
        self.engine = engine
        self.calls: list[Call] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.engine, name)

    def stream(
        self, prompt: str, params: SamplingParams, cancel: object = None
    ) -> Iterator[GenerationEvent]:
        started = time.process_time()
        first: float | None = None
        pieces: list[str] = []
        for event in self.engine.stream(prompt, params, cancel):  # type: ignore[arg-type]
            if first is None:
                first = time.process_time() - started
            if isinstance(event, DoneEvent):
                self.calls.append(Call(prompt, "".join(pieces), event, first))
            else:
                pieces.append(event.text)
            yield event


@dataclass
class Turn:
    number: int
    call: Call
    """The answer's generation call (the prompt as sent and the answer)."""
    wall_to_first_token_s: float
    """From the question to the first streamed token (retrieval and prompt build included)."""
    retrieval_s: float
    total_s: float


def run_turn(
    service: AssistantService,
    engine: RecordingEngine,
    number: int,
    question: str,
    conversation_id: str | None,
) -> tuple[Turn, str]:
    started = time.perf_counter()
    calls_before = len(engine.calls)
    retrieval_started = retrieval_finished = first_token = None
    finished: AnswerFinished | None = None
    for event in service.ask(question, conversation_id=conversation_id):
        now = time.perf_counter()
        if isinstance(event, RetrievalStarted) and retrieval_started is None:
            retrieval_started = now
        elif isinstance(event, RetrievalFinished):
            retrieval_finished = now
        elif isinstance(event, TokenReceived) and first_token is None:
            first_token = now
        elif isinstance(event, AnswerFinished):
            finished = event
        elif isinstance(event, AnswerFailed):
            raise SystemExit(f"turn {number} failed: {event.title}: {event.message}")
    if finished is None or first_token is None or len(engine.calls) == calls_before:
        raise SystemExit(f"turn {number} ({question!r}) was not answered by the model")
    turn = Turn(
        number=number,
        call=engine.calls[-1],
        wall_to_first_token_s=first_token - started,
        retrieval_s=(retrieval_finished or started) - (retrieval_started or started),
        total_s=time.perf_counter() - started,
    )
    return turn, finished.conversation_id


def first_token(engine: LlamaEngine, prompt: str) -> Call:
    recording = RecordingEngine(engine)
    for _ in recording.stream(prompt, FIRST_TOKEN_ONLY):
        pass
    return recording.calls[-1]


def reuse_and_naive(engine: LlamaEngine, previous: Call | None, prompt: str) -> tuple[Call, Call]:
    """``prompt`` timed with the previous turn cached, then from an empty cache."""
    first_token(engine, previous.prompt + previous.answer if previous else "Unrelated text.")
    reuse = first_token(engine, prompt)
    first_token(engine, "Unrelated text.")
    return reuse, first_token(engine, prompt)


def model_path(args: argparse.Namespace, work: Path) -> Path:
    if args.model:
        return Path(args.model)
    if args.synthesize_minicpm:
        f32 = build_minicpm_gguf(work / "minicpm-small-f32.gguf", shape=SMALL_MINICPM)
        return quantize_gguf(f32, work / "minicpm-small-q4_k_m.gguf")
    return demo_gguf(work / "demo")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="path of a GGUF")
    parser.add_argument("--synthesize-minicpm", action="store_true")
    parser.add_argument("--answer-tokens", type=int, default=32)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--max-context", type=int, default=4096)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument(
        "--threads",
        type=int,
        help="llama.cpp threads; 1 makes CPU time a clean measure of work on a busy machine",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    locations = Locations.under(work / "home").ensure()
    settings = Settings.model_validate(
        {
            "engine": {"max_context": args.max_context, "seed": 1, "n_threads": args.threads},
            "library": {"top_k": args.top_k},
            "chat": {"answer_tokens": args.answer_tokens, "temperature": 0.0},
        }
    )
    library = Library(locations.index_dir, settings.library)
    library.ingest([PAPER])
    library.search("warm up the embedding model")
    path = model_path(args, work)
    engine = LlamaEngine.load(ModelStore(locations.models_dir).add(path), settings.engine)
    recording = RecordingEngine(engine)
    service = AssistantService(settings, locations, engine=recording, library=library)  # type: ignore[arg-type]
    print(
        f"model {engine.model.name} ({engine.template.name} template), n_ctx {engine.n_ctx}, "
        f"{engine.offload.backend}, top_k {args.top_k}, answer tokens {args.answer_tokens}"
    )

    turns: list[Turn] = []
    conversation_id = None
    for number, question in enumerate(QUESTIONS[: args.turns], start=1):
        turn, conversation_id = run_turn(service, recording, number, question, conversation_id)
        turns.append(turn)
        usage = turn.call.done.usage
        print(
            f"  turn {number:2}: prompt {usage.prompt_tokens:5} tok, evaluated "
            f"{usage.prompt_tokens_evaluated:5}, TTFT {turn.call.done.timings.ttft_s:6.2f} s"
        )

    rows = [
        (
            turns[n - 1],
            *reuse_and_naive(
                engine, turns[n - 2].call if n > 1 else None, turns[n - 1].call.prompt
            ),
        )
        for n in MEASURED_TURNS
        if n <= len(turns)
    ]

    breakdown = one_question_breakdown(settings, locations, library, engine)
    engine.close()
    library.close()
    print(report(args, engine, rows, breakdown))
    return 0


def one_question_breakdown(
    settings: Settings, locations: Locations, library: Library, engine: LlamaEngine
) -> dict[str, float]:
    """A new conversation's first question, cold cache: where the seconds go."""
    for _ in engine.stream("Unrelated warm-up text.", FIRST_TOKEN_ONLY):
        pass
    recording = RecordingEngine(engine)
    service = AssistantService(settings, locations, engine=recording, library=library)  # type: ignore[arg-type]
    turn, _ = run_turn(service, recording, 1, "How does TraceMonkey handle side exits?", None)
    done = turn.call.done
    prefill_s = done.usage.prompt_tokens_evaluated / done.timings.prefill_tok_s
    after_retrieval = turn.wall_to_first_token_s - turn.retrieval_s
    return {
        "retrieval_s": turn.retrieval_s,
        "prompt_build_s": max(after_retrieval - done.timings.ttft_s, 0.0),
        "prefill_s": prefill_s,
        "first_token_s": turn.wall_to_first_token_s,
        "decode_s": turn.total_s - turn.wall_to_first_token_s,
        "prompt_tokens": float(done.usage.prompt_tokens),
        "completion_tokens": float(done.usage.completion_tokens),
        "decode_tok_s": done.timings.decode_tok_s,
    }


def report(
    args: argparse.Namespace,
    engine: LlamaEngine,
    rows: list[tuple[Turn, Call, Call]],
    breakdown: dict[str, float],
) -> str:
    _, first_reuse, first_naive = rows[0]

    def ratio(call: Call, base: Call) -> str:
        wall = call.done.timings.ttft_s / base.done.timings.ttft_s
        return f"{wall:.2f}x / {call.cpu_to_first_token_s / base.cpu_to_first_token_s:.2f}x"

    lines = [
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
        f"{platform.machine()} {platform.system()} ({os.cpu_count()} CPUs), "
        f"{engine.offload.backend}; model `{engine.model.name}` ({engine.template.name} template), "
        f"n_ctx {engine.n_ctx}, top_k {args.top_k}, answer {args.answer_tokens} tokens, "
        f"{args.threads or 'default'} threads.",
        "",
        "| turn | prompt tok | evaluated reuse / naive | TTFT reuse / naive (s) "
        "| reuse vs turn 1 (wall / CPU) | naive vs turn 1 (wall / CPU) "
        "| naive / reuse (wall / CPU) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for turn, reuse, naive in rows:
        lines.append(
            f"| {turn.number} | {turn.call.done.usage.prompt_tokens} | "
            f"{reuse.done.usage.prompt_tokens_evaluated} / "
            f"{naive.done.usage.prompt_tokens_evaluated} | {reuse.done.timings.ttft_s:.2f} / "
            f"{naive.done.timings.ttft_s:.2f} | {ratio(reuse, first_reuse)} | "
            f"{ratio(naive, first_naive)} | {ratio(naive, reuse)} |"
        )
    b = breakdown
    lines += [
        "",
        "One RAG question, new conversation, cold cache "
        f"({b['prompt_tokens']:.0f} prompt tokens, {b['completion_tokens']:.0f} generated):",
        "",
        "| retrieval | prompt build | prefill | first token (total) | decode |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {b['retrieval_s']:.2f} s | {b['prompt_build_s']:.3f} s | {b['prefill_s']:.2f} s | "
        f"{b['first_token_s']:.2f} s | {b['decode_s']:.2f} s ({b['decode_tok_s']:.1f} tok/s) |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
