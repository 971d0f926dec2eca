"""chromadb without the checks its classes run on themselves while they are defined.

chromadb marks its methods with the ``overrides`` package's decorator, which compares every
method's signature with its base class's as the class is defined: on two cores about 0.15 s of
chromadb's import and more when a client is created (which imports its API's modules then), paid
by every command that opens a library (``search``, ``ask``) for a check of chromadb's own code
that chromadb's tests already make. Inside :func:`unchecked_overrides` the decorator only marks
the method as overriding (what the real one leaves behind, and what ``overrides.EnforceOverrides``
looks for); the real decorator is put back on leaving, so any other code using ``overrides`` is
still checked. Every module of ours imports chromadb from here, so this import is the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import overrides


def _mark_only(method: Any = None, **_checks: Any) -> Any:
    """``@override`` / ``@override(check_signature=...)`` without the check."""
    if method is None:
        return _mark_only
    method.__override__ = True
    return method


_CHECKED = (overrides.override, overrides.overrides)
"""The real decorators, put back on leaving (also when two threads were inside at once)."""


@contextmanager
def unchecked_overrides() -> Iterator[None]:
    """chromadb's classes defined meanwhile (its import; a client's creation) are not checked."""
    overrides.override = overrides.overrides = _mark_only
    try:
        yield
    finally:
        overrides.override, overrides.overrides = _CHECKED


with unchecked_overrides():
    import chromadb
    from chromadb.config import Settings
    from chromadb.errors import ChromaError, NotFoundError

__all__ = ["ChromaError", "NotFoundError", "Settings", "chromadb", "unchecked_overrides"]
