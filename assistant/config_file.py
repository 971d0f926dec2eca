"""Changing one setting in the user's ``config.toml`` while keeping everything else in it.

The app writes back only what the user picks in the UI (the theme, say). The file stays the
user's: the edit touches one ``key = value`` line of one table (or adds it), so comments, order
and every other setting survive. The result is parsed again and refused unless it holds exactly
the old settings plus the new value, so an unusual layout (dotted keys, inline tables) is never
half-edited; the user is told to set it by hand instead.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import tomllib

from assistant.errors import ConfigError
from rag.permissions import PRIVATE_FILE, private_dir

Scalar = str | bool | int | float

_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_-]+)\s*\]\s*(#.*)?$")


def save_setting(path: Path, section: str, key: str, value: Scalar) -> None:
    """Set ``[section] key = value`` in ``path`` (created if missing), atomically."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    before = _parse(path, text)
    table = before.get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {section!r} is not a table; set {section}.{key} by hand")
    edited = _with_line(text, section, key, f"{key} = {toml_value(value)}\n")
    if _parse(path, edited) != {**before, section: {**table, key: value}}:
        raise ConfigError(f"{path}: cannot set [{section}] {key} in this layout; set it by hand")
    private_dir(path.parent)
    partial = path.with_name(path.name + ".tmp")
    with os.fdopen(
        os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE), "w", encoding="utf-8"
    ) as out:
        out.write(edited)
    os.chmod(partial, PRIVATE_FILE)  # a .tmp left by an earlier, interrupted write keeps its mode
    os.replace(partial, path)


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings in ``path``; empty when there is no file. Unreadable or invalid TOML is a
    :class:`ConfigError` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read ({error})") from None
    return _parse(path, text)


def toml_value(value: Scalar) -> str:
    """A TOML literal; JSON's string escapes are all valid TOML basic-string escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _parse(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None


def _with_line(text: str, section: str, key: str, line: str) -> str:
    """``text`` with ``key``'s line in ``[section]`` replaced by ``line``, or ``line`` added."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    assignment = re.compile(rf"^\s*{re.escape(key)}\s*=")
    current: str | None = None
    header_at: int | None = None
    for index, existing in enumerate(lines):
        if existing.lstrip().startswith("["):
            match = _TABLE.match(existing)
            current = match.group(1) if match else None
            if current == section:
                header_at = index
        elif current == section and assignment.match(existing):
            lines[index] = line
            return "".join(lines)
    if header_at is not None:
        lines.insert(header_at + 1, line)
    else:
        lines.append(("\n" if lines else "") + f"[{section}]\n{line}")
    return "".join(lines)
