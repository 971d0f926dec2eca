"""Cold start of one-shot commands: wall time of ``search`` and ``ask`` against ``--help``.

Run: ``.venv/bin/python -m benchmarks.cold_start [--rounds 7]``. A home is built once (four PDFs
of ``../shared/pdf-corpus/clean`` ingested, the demo model assembled), then every round runs
``--help``, ``search`` and ``ask`` (demo model, 16 answer tokens, so start-up and prefill are
measured rather than decoding) as fresh processes, interleaved so that a change in the machine's
load falls on all three alike. CPU seconds are shown beside wall seconds: on a shared machine the
wall clock is mostly waiting for a core, the CPU time is the work a quiet machine would do. The
ratios of medians to ``--help`` are the result. A last row times ``import sentence_transformers``,
which every search paid before queries were embedded in NumPy (rag/numpy_encoder.py); ask's wall
time less its own prefill and decode is shown too (start-up, retrieval and model load).
"""

from __future__ import annotations

import argparse
import json
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

CLEAN = Path(__file__).resolve().parent.parent.parent / "shared" / "pdf-corpus" / "clean"
PDFS = ("tracemonkey.pdf", "pdflatex-outline.pdf", "crazyones-pdfa.pdf", "google-doc-document.pdf")
QUESTION = "How does TraceMonkey start a trace tree?"
APP = [sys.executable, "-m", "assistant"]


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of ``command`` in a fresh process, and what it printed."""
    started, cpu = time.monotonic(), _cpu_of_children()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed, cpu = time.monotonic() - started, _cpu_of_children() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return elapsed, cpu, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="cold-start-bench-"))
    env = {**os.environ, "MINICPM_ASSISTANT_CHAT__ANSWER_TOKENS": "16", "HF_HUB_OFFLINE": "1"}
    _run([*APP, "--home", str(home), "ingest", *(str(CLEAN / name) for name in PDFS)], env)
    commands = {
        "--help": [*APP, "--help"],
        "search": [*APP, "--home", str(home), "search", QUESTION, "--json"],
        "ask": [*APP, "--home", str(home), "ask", QUESTION, "--json"],
        "import sentence_transformers": [sys.executable, "-c", "import sentence_transformers"],
    }
    for command in commands.values():  # warm the page cache (and assemble the demo model)
        _run(command, env)
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu_times: dict[str, list[float]] = {name: [] for name in commands}
    first_token: list[float] = []
    ask_outside_generation: list[float] = []
    for _ in range(args.rounds):
        for name, command in commands.items():
            elapsed, cpu, out = _run(command, env)
            times[name].append(elapsed)
            cpu_times[name].append(cpu)
            if name == "ask":
                timings = json.loads(out)["timings"]
                first_token.append(float(timings["ttft_s"]))
                ask_outside_generation.append(elapsed - float(timings["total_s"]))
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
    print(f"  ask's time to first token (in-process): {statistics.median(first_token):.2f} s")
    outside = statistics.median(ask_outside_generation)
    print(f"  ask outside generation (wall - prefill - decode): {outside:.2f} s")


if __name__ == "__main__":
    main()
