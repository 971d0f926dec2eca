"""Stop strings in a token stream: end the answer at one, and never show part of one."""

from __future__ import annotations

from collections.abc import Sequence


class StopFilter:
    """Holds back text that may be the start of a stop string; reports when one completes."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [stop for stop in stops if stop]
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        self._pending += text
        hits = [index for stop in self._stops if (index := self._pending.find(stop)) >= 0]
        if hits:
            emitted, self._pending = self._pending[: min(hits)], ""
            return emitted, True
        held = max((self._partial_stop_length(stop) for stop in self._stops), default=0)
        cut = len(self._pending) - held
        emitted, self._pending = self._pending[:cut], self._pending[cut:]
        return emitted, False

    def flush(self) -> str:
        emitted, self._pending = self._pending, ""
        return emitted

    def _partial_stop_length(self, stop: str) -> int:
        for length in range(min(len(stop) - 1, len(self._pending)), 0, -1):
            if self._pending.endswith(stop[:length]):
                return length
        return 0
