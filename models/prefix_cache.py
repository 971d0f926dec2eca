"""The system prompt's KV state on disk, so a one-shot ``ask`` does not prefill it every time.

Every grounded prompt starts with the same system turn; on a 2-core CPU MiniCPM-2B prefills it at
~18 tokens/s, seconds before the first answer token. Its keys and values are saved once per model
file, prompt and engine settings, and restored when a model loads. A file is named by a hash of
all three, so a changed model, system prompt, context size or llama.cpp build simply misses; a
file that is damaged or that llama.cpp refuses is deleted and built again, never trusted.

Format: one JSON header line (the prompt's tokens, the payload's size and SHA-256), then the bytes
of ``llama_state_seq_get_data`` for sequence 0.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

FORMAT = 1


def state_key(model_path: Path, tokens: Sequence[int], settings: Mapping[str, object]) -> str:
    """What a saved state depends on: the model file (path, size, mtime), tokens, settings."""
    stat = model_path.stat()
    identity = {
        "format": FORMAT,
        "model": [str(model_path.resolve()), stat.st_size, stat.st_mtime_ns],
        "tokens": list(tokens),
        "settings": dict(settings),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


class PrefixCache:
    """State files in one directory (the app's cache dir), one per :func:`state_key`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def load(self, key: str, tokens: Sequence[int]) -> bytes | None:
        """The saved state for ``tokens``, or None (missing, damaged or for other tokens)."""
        try:
            with self._path(key).open("rb") as file:
                header = json.loads(file.readline())
                payload = file.read()
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            self.discard(key, f"unreadable ({error})")
            return None
        problem = _problem(header, tokens, payload)
        if problem:
            self.discard(key, problem)
            return None
        return payload

    def save(self, key: str, tokens: Sequence[int], payload: bytes) -> None:
        """Write atomically (a crash leaves the old file or none); a failure only logs."""
        header = {
            "format": FORMAT,
            "tokens": list(tokens),
            "size": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
        path = self._path(key)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            with partial.open("wb") as file:
                file.write(json.dumps(header).encode() + b"\n")
                file.write(payload)
            partial.replace(path)
        except OSError as error:
            log.warning(
                "could not keep the system prompt's KV state in %s (%s)", self.directory, error
            )
            partial.unlink(missing_ok=True)

    def discard(self, key: str, reason: str) -> None:
        """Delete a state file that cannot be used; it is built again on the next load."""
        log.warning("ignoring the saved system prompt state %s: %s", self._path(key), reason)
        self._path(key).unlink(missing_ok=True)

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.kvstate"


def _problem(header: object, tokens: Sequence[int], payload: bytes) -> str | None:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return "not a state file of this version"
    if header.get("tokens") != list(tokens) or header.get("size") != len(payload):
        return "for other tokens, or cut short"
    if header.get("sha256") != hashlib.sha256(payload).hexdigest():
        return "damaged"
    return None
