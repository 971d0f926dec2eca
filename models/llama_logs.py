"""llama.cpp's own log lines, routed into Python logging instead of the user's terminal.

They reach the terminal only when ``--debug`` asks for debug logs; recent warnings and errors are
kept so a failed load can say llama.cpp's reason in its one-line error.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import re
from collections import deque

import llama_cpp

llama_log = logging.getLogger("llama.cpp")


class LlamaLogs:
    """Routes llama.cpp's log callback into the ``llama.cpp`` logger, keeping recent problems.

    Installed once per process; the ctypes callback must stay referenced or llama.cpp would call
    freed memory.
    """

    _WARN, _ERROR = 3, 4
    """ggml_log_level values of the bundled ggml (NONE, DEBUG, INFO, WARN, ERROR, CONT)."""

    def __init__(self) -> None:
        self.recent_problems: deque[tuple[int, str]] = deque(maxlen=8)
        self._line = ""
        self._callback = llama_cpp.llama_log_callback(self._on_log)
        llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))

    def _on_log(self, level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        self._line += text.decode("utf-8", errors="replace")
        if not self._line.endswith("\n"):
            return
        line, self._line = self._line.strip(), ""
        if level in (self._WARN, self._ERROR):
            self.recent_problems.append((level, line))
        llama_log.debug("%s", line)

    def last_problem(self) -> str | None:
        """The first error since the last clear (the cause), else the latest warning."""
        errors = [line for level, line in self.recent_problems if level == self._ERROR]
        warnings = [line for _, line in self.recent_problems]
        chosen = errors[0] if errors else warnings[-1] if warnings else None
        if chosen is None:
            return None
        return re.sub(r"^\w+: (error loading model: )?", "", chosen)


@functools.cache
def route_llama_logs() -> LlamaLogs:
    """Send llama.cpp's own log lines to the ``llama.cpp`` logger (debug level) from now on.

    Once per process, because llama.cpp itself has a single, process-wide log callback.
    """
    return LlamaLogs()
