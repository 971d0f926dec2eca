"""Cold start of one-shot commands: ``search`` and ``ask`` against ``--help``, and where ask's
time goes.

Run: ``.venv/bin/python -m benchmarks.cold_start [--rounds 5]``. A home is built once (four PDFs
of ``../shared/pdf-corpus/clean`` ingested, the demo model assembled), then every round runs
``--help``, ``search``, ``ask`` with the demo model and ``ask`` with SmolLM2-135M-Instruct (16
answer tokens, so start-up and prefill are measured rather than decoding) as fresh processes,
interleaved so that a change in the machine's load falls on all alike. Compiled bytecode is kept
(in a cache of this run), as an installed app has it.

CPU seconds are shown beside wall seconds: on a shared machine the wall clock is mostly waiting
for a core, the CPU time is the work a quiet machine would do. The ratios of medians to
``--help`` are the result, once for the whole command and once for ``ask`` less its engine's
prefill and decode (what is not the model's own compute).

``ask`` runs ``assistant.cli.run`` as ``python -m assistant`` does, with a timer around each
stage (:data:`PROBE`): process start, imports, model load (llama-cpp-python's import, the GGUF
header, llama.cpp's load, the system prompt's KV restored), opening the library (Chroma's import
included), search, the engine's prefill and decode (its own timings), and the rest.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.fixtures_models import smollm2_gguf

CLEAN = Path(__file__).resolve().parent.parent.parent / "shared" / "pdf-corpus" / "clean"
PDFS = ("tracemonkey.pdf", "pdflatex-outline.pdf", "crazyones-pdfa.pdf", "google-doc-document.pdf")
QUESTION = "How does TraceMonkey start a trace tree?"
APP = [sys.executable, "-m", "assistant"]

PROBE = r"""
import json, sys, time
started = (time.time(), time.process_time())
stages = {}

def add(name, wall, cpu):
    spent = stages.setdefault(name, [0.0, 0.0])
    spent[0] += time.time() - wall
    spent[1] += time.process_time() - cpu

def timed(name, function):
    def run(*args, **kwargs):
        wall, cpu = time.time(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            add(name, wall, cpu)
    return run

def timed_stream(name, function):
    def run(*args, **kwargs):
        events = function(*args, **kwargs)
        while True:
            wall, cpu = time.time(), time.process_time()
            try:
                event = next(events)
            except StopIteration:
                return
            finally:
                add(name, wall, cpu)
            yield event
    return run

from assistant import service

def load_model(self, *args, **kwargs):  # times the parts once models.runtime is imported
    wall, cpu = time.time(), time.process_time()
    import models.runtime as runtime
    add("import llama_cpp", wall, cpu)
    runtime.read_gguf_info = timed("GGUF header", runtime.read_gguf_info)
    runtime._construct_with_fallback = timed("llama.cpp load", runtime._construct_with_fallback)
    engine = runtime.LlamaEngine
    engine.prime_system_prompt = timed("system prompt KV", engine.prime_system_prompt)
    engine.stream = timed_stream("engine", engine.stream)
    return load(self, *args, **kwargs)

def open_library(*args, **kwargs):
    library = opened(*args, **kwargs)
    library.search = timed("search", library.search)
    library.judge = timed("search", library.judge)
    return library

load, opened = service.AssistantService._load, service.open_library
service.AssistantService._load = timed("model load", load_model)
service.open_library = timed("open library (imports Chroma)", open_library)
from assistant.cli import run
add("imports", *started)
report = sys.argv.pop(1)
code = run()
with open(report, "w") as file:
    json.dump({"started": started[0], "ended": time.time(), "stages": stages}, file)
sys.exit(code)
"""
"""``ask`` with timers around its stages; writes them to the file named by its first argument."""

MODEL_PARTS = ("import llama_cpp", "GGUF header", "llama.cpp load", "system prompt KV")


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Spawn time, wall and CPU seconds of ``command`` in a fresh process, and its stdout."""
    spawned, started, cpu = time.time(), time.monotonic(), _cpu_of_children()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed, cpu = time.monotonic() - started, _cpu_of_children() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return spawned, elapsed, cpu, done.stdout


Stages = dict[str, tuple[float, float]]
"""Stage name -> (wall, CPU) seconds of one run."""


def _ask_stages(spawned: float, wall: float, cpu: float, out: str, report: Path) -> Stages:
    """The stages of one probed ``ask``. The engine's time is split into prefill and decode by
    its own time to first token (its CPU in the same shares); the untimed CPU includes the
    process's start and exit, which only have a wall time."""
    probe = json.loads(report.read_text())
    timed: Stages = {name: (spent[0], spent[1]) for name, spent in probe["stages"].items()}
    model = timed.pop("model load")
    parts = [timed[name] for name in MODEL_PARTS if name in timed]
    timed["engine setup (tokens, template)"] = (
        model[0] - sum(part[0] for part in parts),
        model[1] - sum(part[1] for part in parts),
    )
    timings = json.loads(out)["timings"]
    engine = timed.pop("engine")
    prefill = float(timings["ttft_s"])
    stages: Stages = {
        **timed,
        "engine prefill (to first token)": (prefill, engine[1] * prefill / engine[0]),
        "engine decode": (engine[0] - prefill, engine[1] * (1 - prefill / engine[0])),
        "process start": (probe["started"] - spawned, float("nan")),
        "exit": (spawned + wall - probe["ended"], float("nan")),
    }
    untimed = (
        wall - sum(value[0] for value in stages.values()),
        cpu - sum(value[1] for value in timed.values()) - engine[1],
    )
    stages["untimed: settings, conversation, output"] = untimed
    stages["total"] = (wall, cpu)
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--before",
        type=Path,
        help="a checkout of an earlier version: its --help, search and ask run in the same rounds",
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="cold-start-bench-"))
    report = home / "stages.json"
    env = {
        **os.environ,
        "MINICPM_ASSISTANT_CHAT__ANSWER_TOKENS": "16",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPYCACHEPREFIX": str(home / "pycache"),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    _run([*APP, "--home", str(home), "ingest", *(str(CLEAN / name) for name in PDFS)], env)
    probe = [sys.executable, "-c", PROBE, str(report), "--home", str(home)]
    ask = ["ask", QUESTION, "--json"]
    commands = {
        "--help": [*APP, "--help"],
        "search": [*APP, "--home", str(home), "search", QUESTION, "--json"],
        "ask (demo model)": [*probe, *ask],
        "ask (SmolLM2)": [*probe, "--model", str(smollm2_gguf()), *ask],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    if args.before is not None:  # run from that folder, its packages come first on sys.path
        before = ["env", "-C", str(args.before.resolve()), *APP, "--home", str(home)]
        commands["--help (before)"] = [*before, "--help"]
        commands["search (before)"] = [*before, "search", QUESTION, "--json"]
        commands["ask (demo model, before)"] = [*before, *ask]
    for command in commands.values():  # warm the page cache, write bytecode, save KV states
        _run(command, env)
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu_times: dict[str, list[float]] = {name: [] for name in commands}
    stages: dict[str, list[Stages]] = {}
    for _ in range(args.rounds):
        for name, command in commands.items():
            spawned, elapsed, cpu, out = _run(command, env)
            times[name].append(elapsed)
            cpu_times[name].append(cpu)
            if name.startswith("ask") and "before" not in name:
                stages.setdefault(name, []).append(_ask_stages(spawned, elapsed, cpu, out, report))
    load_after = os.getloadavg()
    shutil.rmtree(home)

    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f}")
    for label, measured in (("wall", times), ("CPU (user + system)", cpu_times)):
        print(f"{args.rounds} rounds, {label} seconds: median (min-max), ratio to --help's median")
        help_median = statistics.median(measured["--help"])
        for name, values in measured.items():
            median = statistics.median(values)
            print(
                f"  {name:30s} {median:6.2f} ({min(values):.2f}-{max(values):.2f})  "
                f"{median / help_median:5.2f}x"
            )
    for name, runs in stages.items():
        help_wall, help_cpu = (statistics.median(m["--help"]) for m in (times, cpu_times))
        _print_stages(name, runs, help_wall, help_cpu)


def _print_stages(name: str, runs: list[Stages], help_wall: float, help_cpu: float) -> None:
    print(f"{name}: median seconds per stage, wall / CPU (CPU: the process, all its threads)")
    for stage in runs[0]:
        wall = statistics.median(run[stage][0] for run in runs)
        cpu = statistics.median(run[stage][1] for run in runs)
        print(f"  {stage:45s} {wall:6.2f} / " + ("     -" if math.isnan(cpu) else f"{cpu:6.2f}"))
    wall = statistics.median(run["total"][0] - _engine(run)[0] for run in runs)
    cpu = statistics.median(run["total"][1] - _engine(run)[1] for run in runs)
    print(
        f"  ask less the engine's prefill and decode: wall {wall:.2f} s = {wall / help_wall:.2f}x "
        f"--help, CPU {cpu:.2f} s = {cpu / help_cpu:.2f}x"
    )


def _engine(run: Stages) -> tuple[float, float]:
    prefill, decode = run["engine prefill (to first token)"], run["engine decode"]
    return prefill[0] + decode[0], prefill[1] + decode[1]


if __name__ == "__main__":
    main()
