"""Time to first token of a one-shot ``ask``: system prompt KV restored from disk vs recomputed.

Each repeat loads the model twice, as two separate ``ask`` runs would: once computing the whole
prompt, once restoring the system turn's KV state from the cache directory first (the restore is
counted in its time). The prompt is the app's: its system prompt, then a grounded question with
three passages of the pdf-clean gold set (``prompt_lookup.py --write-cases`` makes the file).

    python benchmarks/system_prompt_kv.py --smollm2 --threads 1 --clock cpu
    python benchmarks/system_prompt_kv.py --demo --threads 1 --clock cpu
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import llama_cpp  # noqa: E402, F401  # before numpy: see prompt_lookup.py

from assistant.prompting import PromptStyle, system_prompt  # noqa: E402
from benchmarks.engine import CLOCKS, Clock, machine, today  # noqa: E402
from benchmarks.prompt_lookup import gold_cases, prompt_for  # noqa: E402
from models.config import EngineConfig  # noqa: E402
from models.events import TokenEvent  # noqa: E402
from models.llama_logs import route_llama_logs  # noqa: E402
from models.runtime import LlamaEngine  # noqa: E402
from models.sampling import SamplingParams  # noqa: E402
from models.store import ModelStore  # noqa: E402
from tests.fixtures_models import demo_gguf, smollm2_gguf  # noqa: E402

ONE_TOKEN = SamplingParams(max_tokens=1, temperature=0.0, repeat_penalty=1.0)


def main() -> int:
    args = parse_args()
    route_llama_logs()
    path = smollm2_gguf() if args.smollm2 else demo_gguf(Path(tempfile.mkdtemp()))
    cases = gold_cases(args.repeats)
    cache_dir = Path(tempfile.mkdtemp(prefix="kv-bench-"))
    clock = CLOCKS[args.clock]
    first_token(path, args, cases[0], clock, cache_dir)  # the first ask computes and saves
    recomputed, restored = [], []
    for case in cases:  # both kinds alternate, so machine noise hits them alike
        recomputed.append(first_token(path, args, case, clock, None))
        restored.append(first_token(path, args, case, clock, cache_dir))
        print(f"  recomputed {recomputed[-1]:.3f} s, restored {restored[-1]:.3f} s", flush=True)
    engine = load(path, args)
    style = PromptStyle.for_template(engine.template.name)
    prefix = len(engine._system_prefix(system_prompt(style)) or [])
    engine.close()
    print(
        f"# {path.name} on {machine()}, {today()}; {args.clock} clock, {args.threads} threads; "
        f"system turn {prefix} tokens; {len(cases)} grounded questions"
    )
    print("| TTFT recomputed (median s) | TTFT restored, restore included (median s) | ratio |")
    print("|---|---|---|")
    before, after = statistics.median(recomputed), statistics.median(restored)
    print(f"| {before:.3f} | {after:.3f} | {after / before:.2f} |")
    return 0


def load(path: Path, args: argparse.Namespace) -> LlamaEngine:
    config = EngineConfig(n_threads=args.threads, max_context=4096, seed=1)
    return LlamaEngine.load(ModelStore(path.parent).resolve(str(path)), config)


def first_token(
    path: Path,
    args: argparse.Namespace,
    case: dict[str, object],
    clock: Clock,
    cache_dir: Path | None,
) -> float:
    engine = load(path, args)
    try:
        prompt = prompt_for(engine, case)
        started = clock()
        if cache_dir is not None:
            style = PromptStyle.for_template(engine.template.name)
            engine.prime_system_prompt(system_prompt(style), cache_dir)
        for event in engine.stream(prompt, ONE_TOKEN):
            if isinstance(event, TokenEvent):
                break
        return clock() - started
    finally:
        engine.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--smollm2", action="store_true")
    model.add_argument("--demo", action="store_true")
    parser.add_argument("--repeats", type=int, default=5, help="questions (one load pair each)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
