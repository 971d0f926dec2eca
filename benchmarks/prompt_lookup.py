"""Prompt-lookup speculative decoding on grounded answers: speed-up and proof of identical output.

Each question of the pdf-clean gold set (``benchmarks/gold/pdf-clean.json``) gets the app's own
grounded prompt (system prompt, numbered quoted passages, the question) with its gold page of
``../shared/pdf-corpus/clean`` cut into passages, and is answered twice by ``LlamaEngine``: drafts
off and on, same settings, interleaved (who goes first alternates). Reported: tokens per forward
pass, accepted share of the drafted tokens, decode speed-up (plain decode time over speculative
decode time, summed over questions), and whether the answers are identical (greedy; with
``--sampled`` also seeded sampling at the model's recommended settings).

    python benchmarks/prompt_lookup.py --smollm2 --threads 1 --clock cpu     # CPU, real model
    python benchmarks/prompt_lookup.py --synthesize-minicpm-2b --batch-cost  # GPU machine

``--batch-cost`` also times one decode step of 1, 2, 4, 8 and 16 tokens after a prompt: what a
draft costs on this hardware, the other half of the speed-up (random weights do not quote).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import llama_cpp  # noqa: E402, F401  # before numpy: on the H200 machine the other order crashes

from assistant.events import Source  # noqa: E402
from assistant.prompting import PromptStyle, TurnMode, build_messages, user_turn  # noqa: E402
from benchmarks.engine import CLOCKS, Clock, machine, resolve_model, today  # noqa: E402
from benchmarks.engine import SAMPLING as GREEDY  # noqa: E402
from models.config import EngineConfig  # noqa: E402
from models.events import DoneEvent, TokenEvent  # noqa: E402
from models.hardware import physical_cores  # noqa: E402
from models.llama_logs import route_llama_logs  # noqa: E402
from models.runtime import LlamaEngine, prompt_tokens  # noqa: E402
from models.sampling import SamplingParams  # noqa: E402
from models.store import ModelStore  # noqa: E402
from rag.loaders import load_document  # noqa: E402
from tests.fixtures_models import smollm2_gguf  # noqa: E402

GOLD = REPO_ROOT / "benchmarks" / "gold" / "pdf-clean.json"


@dataclass(frozen=True)
class Answer:
    text: str
    tokens: int
    decode_s: float
    passes: int
    drafted: int
    accepted: int


def main() -> int:
    args = parse_args()
    if args.write_cases:  # for a machine without the PDF corpus (the GPU machine)
        Path(args.write_cases).write_text(json.dumps(gold_cases(args.questions), indent=1))
        return 0
    cases = (
        json.loads(Path(args.cases).read_text()) if args.cases else gold_cases(args.questions)
    )[: args.questions]
    route_llama_logs()
    path = smollm2_gguf() if args.smollm2 else resolve_model(args)
    clock = CLOCKS[args.clock]
    plain, speculative = (load(path, args, lookup) for lookup in ("off", "on"))
    if args.draft_tokens:  # within the batch the engine allocated (n_batch tokens)
        speculative.draft_tokens = args.draft_tokens
    print(
        f"# {path.name} on {machine()}, {today()}; {args.clock} clock, "
        f"{args.threads or physical_cores()} threads, offload {describe(plain)}, "
        f"{speculative.draft_tokens} draft tokens, {args.gen_tokens} tokens per answer"
    )
    if args.batch_cost:
        print_batch_cost(plain, clock, prompt_for(plain, cases[0]))
    settings = [("greedy", GREEDY)]
    if args.sampled:
        settings.append(("sampled", plain.default_sampling.with_overrides(stop=())))
    for name, sampling in settings:
        params = sampling.with_overrides(max_tokens=args.gen_tokens)
        rows = [
            answer_twice(
                plain,
                speculative,
                prompt_for(plain, case, args.gen_tokens + 32),
                params,
                clock,
                turn,
            )
            for turn, case in enumerate(cases)
        ]
        report(name, rows)
    plain.close()
    speculative.close()
    return 0


def load(path: Path, args: argparse.Namespace, lookup: str) -> LlamaEngine:
    config = EngineConfig(
        n_gpu_layers="auto" if args.n_gpu_layers < 0 else args.n_gpu_layers,
        max_context=args.ctx,
        n_threads=args.threads,
        seed=11,
        prompt_lookup=lookup,  # type: ignore[arg-type]
    )
    return LlamaEngine.load(ModelStore(path.parent).resolve(str(path)), config)


def describe(engine: LlamaEngine) -> str:
    offload = engine.offload
    return f"{offload.n_gpu_layers}/{offload.total_layers} {offload.backend}"


def gold_cases(count: int) -> list[dict[str, object]]:
    """The first ``count`` answerable gold questions, each with its gold page in three passages."""
    cases = []
    for question in json.loads(GOLD.read_text())["answerable"][:count]:
        file, page = str(question["file"]), int(str(question["page"]))
        document = load_document(REPO_ROOT.parent / "shared" / "pdf-corpus" / "clean" / file)
        text = " ".join(document.pages[page - 1].text.split())
        third = -(-len(text) // 3)
        passages = [text[n * third : (n + 1) * third] for n in range(3)]
        cases.append(
            {"question": question["question"], "file": file, "page": page, "passages": passages}
        )
    return cases


def prompt_for(engine: LlamaEngine, case: dict[str, object], room: int = 160) -> str:
    """The app's grounded prompt: system prompt, the numbered quoted passages, the question;
    passages shortened until ``room`` tokens are left for the answer (a synthetic model's
    byte-level vocabulary makes a page several times as many tokens)."""
    file, page = str(case["file"]), str(case["page"])
    passages = [str(text) for text in case["passages"]]  # type: ignore[attr-defined]
    style = PromptStyle.for_template(engine.template.name)
    while True:
        sources = [
            Source(
                number=n + 1,
                file=file,
                page=page,
                score=0.6,
                text=text,
                chunk_id=f"{file}:{page}:{n}",
            )
            for n, text in enumerate(passages)
        ]
        turn = user_turn(str(case["question"]), sources, TurnMode.DOCUMENTS, style)
        prompt = engine.template.render(build_messages(style, [], turn))
        if engine.count_tokens(prompt) + room < engine.n_ctx:
            return prompt
        passages = [text[: len(text) * 3 // 4] for text in passages]


def answer_twice(
    plain: LlamaEngine,
    speculative: LlamaEngine,
    prompt: str,
    params: SamplingParams,
    clock: Clock,
    turn: int,
) -> tuple[Answer, Answer]:
    if turn % 2:
        fast = answer(speculative, prompt, params, clock)
        return answer(plain, prompt, params, clock), fast
    slow = answer(plain, prompt, params, clock)
    return slow, answer(speculative, prompt, params, clock)


def answer(engine: LlamaEngine, prompt: str, params: SamplingParams, clock: Clock) -> Answer:
    """Decode time runs from the first streamed token to the end, as in ``engine.py``."""
    pieces: list[str] = []
    first_at = 0.0
    done = None
    for event in engine.stream(prompt, params):
        if isinstance(event, TokenEvent):
            first_at = first_at or clock()
            pieces.append(event.text)
        else:
            done = event
    finished = clock()
    assert isinstance(done, DoneEvent)
    stats = engine.decode_stats
    return Answer(
        "".join(pieces),
        done.usage.completion_tokens,
        finished - first_at,
        stats.forward_passes,
        stats.drafted,
        stats.accepted,
    )


def report(name: str, rows: list[tuple[Answer, Answer]]) -> None:
    plain = [row[0] for row in rows]
    fast = [row[1] for row in rows]
    identical = sum(a.text == b.text and a.tokens == b.tokens for a, b in rows)
    generated = sum(a.tokens for a in fast)
    passes = sum(a.passes for a in fast)
    drafted = sum(a.drafted for a in fast)
    accepted = sum(a.accepted for a in fast)
    speedups = [a.decode_s / b.decode_s for a, b in rows if b.decode_s > 0]
    print(f"\n## {name}: {len(rows)} grounded answers, {generated} tokens")
    print(
        "| identical answers | tokens per forward pass | accepted draft share | "
        "decode speed-up (total) | per answer, median (min-max) |"
    )
    print("|---|---|---|---|---|")
    total = sum(a.decode_s for a in plain) / max(sum(a.decode_s for a in fast), 1e-9)
    print(
        f"| {identical}/{len(rows)} | {(generated - len(rows)) / max(passes, 1):.2f} | "
        f"{accepted / max(drafted, 1):.1%} | {total:.2f}x | "
        f"{statistics.median(speedups):.2f}x ({min(speedups):.2f}-{max(speedups):.2f}) |"
    )
    for a, b in rows:
        if a.text != b.text:
            print(f"  DIFFERENT: {a.text[:80]!r} vs {b.text[:80]!r}")


def print_batch_cost(engine: LlamaEngine, clock: Clock, prompt: str) -> None:
    """One decode step of k tokens after ``prompt``, relative to k = 1 (median of 20)."""
    loop = engine._loop
    tokens = prompt_tokens(engine._llm, prompt)
    loop.reset()
    loop.prefill(tokens[:-16], None)
    depth = len(loop.tokens)
    costs: dict[int, float] = {}
    for size in (1, 2, 4, 8, 16):
        times = []
        for _ in range(20):
            started = clock()
            loop._decode(tokens[depth : depth + size], all_logits=True)
            times.append(clock() - started)
            loop.truncate(depth)
        costs[size] = statistics.median(times)
    print(
        f"| draft + 1 tokens per step (after {depth}) | 1 | 2 | 4 | 8 | 16 |\n"
        "|---|---|---|---|---|---|"
    )
    print(
        "| cost vs one token | "
        + " | ".join(f"{costs[k] / costs[1]:.2f}" for k in costs)
        + f" |  (one token: {costs[1] * 1e3:.2f} ms)"
    )
    loop.reset()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--smollm2", action="store_true", help="SmolLM2-135M-Instruct (real)")
    source.add_argument("--model", help="path to a GGUF")
    source.add_argument("--demo", action="store_true", help="the Gemma 3 270M demo model")
    source.add_argument("--synthesize-small", action="store_true")
    source.add_argument("--synthesize-minicpm-2b", action="store_true")
    source.add_argument("--synthesize-minicpm4-8b", action="store_true")
    parser.add_argument("--out", help="directory for built models (default: a temp dir)")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--gen-tokens", type=int, default=128)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--n-gpu-layers", type=int, default=-1, help="-1: auto (all if it fits)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument(
        "--sampled",
        action="store_true",
        help="also seeded sampling at the model's recommended settings",
    )
    parser.add_argument("--draft-tokens", type=int, help="draft length (default: the engine's)")
    parser.add_argument("--cases", help="questions with passages from --write-cases (no PDFs)")
    parser.add_argument(
        "--write-cases",
        metavar="PATH",
        help="write the questions with their passages as JSON, and stop",
    )
    parser.add_argument(
        "--batch-cost",
        action="store_true",
        help="time decode steps of 1-16 tokens (what a draft costs here)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
