"""Draft tokens for speculative decoding, copied from where the text so far already appeared.

A grounded answer quotes its passages: once the answer's last few tokens match a stretch of the
prompt, the tokens that followed that stretch are a likely continuation. The decoder checks such a
draft in one batch with the real model and keeps only what the model itself would have produced,
so drafts change the speed, never the answer (see :mod:`models.decoding`).

The idea is llama-cpp-python's ``LlamaPromptLookupDecoding``; this one keeps an n-gram index that
grows with each token instead of rescanning the whole prompt for every draft.
"""

from __future__ import annotations

from collections.abc import Iterable


class PromptLookup:
    """The token history and, for each of its n-grams, where that n-gram was last followed."""

    def __init__(self, tokens: Iterable[int], *, draft_tokens: int, max_ngram: int = 3) -> None:
        self.draft_tokens = draft_tokens
        self._max_ngram = max_ngram
        self._history: list[int] = []
        self._follower: dict[tuple[int, ...], int] = {}
        """n-gram -> index in ``_history`` of the token after its latest occurrence."""
        for token in tokens:
            self.append(token)

    def append(self, token: int) -> None:
        history = self._history
        end = len(history)
        for n in range(1, min(self._max_ngram, end) + 1):
            self._follower[tuple(history[end - n : end])] = end
        history.append(token)

    def draft(self, limit: int) -> list[int]:
        """Up to ``min(limit, draft_tokens)`` tokens that followed the longest matching n-gram."""
        count = min(limit, self.draft_tokens)
        history = self._history
        if count <= 0:
            return []
        for n in range(min(self._max_ngram, len(history)), 0, -1):
            start = self._follower.get(tuple(history[-n:]))
            if start is not None:
                return history[start : start + count]
        return []
