"""The server's own decode step per round, from a ``llama-server`` log: which slots, how far apart.

llama.cpp keeps one KV stream per slot and a batch's attention runs over every stream between the
lowest and the highest slot id in it, busy or not. So 8 chats on slots 0 and 9-15 cost a step of
16, and which slots the server's least-recently-used choice hands out decides the speed of a
round as much as the number of chats. For each group of requests launched together this prints
the slots, their span and the median milliseconds per generated token the server measured.

    python benchmarks/gpu/slot_steps.py /tmp/gpu/server-default.log
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

LAUNCH = re.compile(r"launch_slot_: id +(\d+)")
DECODE = re.compile(r"\|\s+eval time = +([\d.]+) ms / +(\d+) tokens")


@dataclass
class Round:
    slots: list[int] = field(default_factory=list)
    ms_per_token: list[float] = field(default_factory=list)

    def line(self) -> str:
        span = max(self.slots) - min(self.slots) + 1
        step = f"{statistics.median(self.ms_per_token):.1f}" if self.ms_per_token else "—"
        return f"| {len(self.slots)} | {span} | {step} | {' '.join(map(str, self.slots))} |"


def rounds(log: list[str]) -> list[Round]:
    """Requests launched between two reports of finished ones form one round."""
    found: list[Round] = []
    for text in log:
        if launch := LAUNCH.search(text):
            if not found or found[-1].ms_per_token:
                found.append(Round())
            found[-1].slots.append(int(launch[1]))
        elif (decode := DECODE.search(text)) and found and int(decode[2]) > 0:
            found[-1].ms_per_token.append(float(decode[1]) / int(decode[2]))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="llama-server's log (stdout and stderr)")
    args = parser.parse_args()
    print("| requests | slot span | ms per token (median) | slots |")
    print("|---|---|---|---|")
    for found in rounds(args.log.read_text(errors="replace").splitlines()):
        print(found.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
