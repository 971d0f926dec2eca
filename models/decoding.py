"""Prefill and decode on llama.cpp's low-level API, with prompt-lookup drafts checked in one batch.

``Llama.generate`` spends a measurable share of every token in Python (a fresh batch, a cache trim,
numpy bookkeeping). Here one ``llama_batch`` is reused, the only per-token Python work is filling a
few of its slots, and tokens are picked by :class:`models.sampler_chain.TokenSampler` from the
logits llama.cpp holds. The tokens in the KV cache are tracked so that a new prompt only evaluates
what differs from the last one.

Speculation (prompt lookup): the last token plus a draft go through the model in one batch; the
token the sampler picks after each position is compared with the next draft token, and the first
mismatch ends the step, its picked token standing as the next one. Every emitted token is thus
picked by the same sampler, at the same position, in the same order as without a draft, so
sampled output has the same distribution and, where a batch computes a row's logits exactly as a
single step does, greedy and seeded output are the same tokens (the sampler draws once per emitted
token either way). That holds on llama.cpp's CPU path for the weights tested, not on CUDA, whose
kernels depend on the batch size (``benchmarks/RESULTS.md``). Rejected drafts are removed from the
KV cache before the next step.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import llama_cpp

from models.errors import GenerationError
from models.prompt_lookup import PromptLookup
from models.sampler_chain import TokenSampler


class PrefillCancelled(Exception):
    """The prompt was cancelled; ``evaluated`` of its tokens made it into the KV cache."""

    def __init__(self, evaluated: int) -> None:
        super().__init__(evaluated)
        self.evaluated = evaluated


class _Aborted(Exception):
    """llama.cpp stopped a batch because the abort callback said so."""


class CancelWatch:
    """The running generation's cancel event, for llama.cpp's abort callback to read.

    A separate object so the callback does not reference the engine: that cycle would leave
    freeing its memory to the garbage collector instead of the moment it is dropped.
    """

    def __init__(self) -> None:
        self.event: threading.Event | None = None

    def requested(self, user_data: ctypes.c_void_p | None = None) -> bool:
        return self.event is not None and self.event.is_set()


@dataclass
class DecodeStats:
    """What the last generation's decode steps did (for benchmarks and ``--debug``)."""

    forward_passes: int = 0
    """``llama_decode`` calls after the prompt; without drafts, one per generated token."""
    drafted: int = 0
    """Draft tokens sent to the model."""
    accepted: int = 0
    """Draft tokens that matched the model's own pick."""


class TokenLoop:
    """One llama.cpp context's sequence 0: its tokens, prefill and decode."""

    def __init__(self, ctx: Any, memory: Any, *, n_ctx: int, n_batch: int, max_draft: int) -> None:
        self._ctx = ctx
        self._memory = memory
        self.n_ctx = n_ctx
        self._n_batch = n_batch
        self._capacity = max(n_batch, max_draft + 1)
        self._batch = llama_cpp.llama_batch_init(self._capacity, 0, 1)
        for slot in range(self._capacity):  # every token belongs to sequence 0, set once
            self._batch.n_seq_id[slot] = 1
            self._batch.seq_id[slot][0] = 0
        self.tokens: list[int] = []
        """The tokens whose keys and values the KV cache holds, by position."""
        self.stats = DecodeStats()
        self.cancel = CancelWatch()
        self._abort = llama_cpp.ggml_abort_callback(self.cancel.requested)

    def prefill(self, tokens: Sequence[int], cancel: threading.Event | None) -> int:
        """Make the KV cache hold ``tokens``, evaluating only the part not already there.

        Returns the number evaluated; raises :class:`PrefillCancelled`. The last token is always
        evaluated: its logits pick the first answer token.
        """
        keep = _common_prefix(self.tokens, tokens)
        keep = self.truncate(min(keep, len(tokens) - 1))
        evaluated = 0
        self.cancel.event = cancel
        if cancel is not None and cancel.is_set():
            raise PrefillCancelled(0)
        self._watch_for_cancel(True)
        try:
            for start in range(keep, len(tokens), self._n_batch):
                if start > keep and self.cancel.requested():
                    raise PrefillCancelled(evaluated)
                chunk = tokens[start : start + self._n_batch]
                try:
                    self._decode(chunk, all_logits=False)
                except _Aborted:
                    raise PrefillCancelled(evaluated) from None
                evaluated += len(chunk)
        finally:
            self._watch_for_cancel(False)
            self.cancel.event = None
        return evaluated

    def generate(
        self, sampler: TokenSampler, limit: int, lookup: PromptLookup | None
    ) -> Generator[int, None, None]:
        """Up to ``limit`` tokens after a :meth:`prefill`; the caller stops when it has enough.

        With ``lookup``, each step sends a draft along and yields every token it confirmed.
        """
        self.stats = DecodeStats()
        token = sampler.pick(self._ctx, -1)
        emitted = 0
        while True:
            emitted += 1
            if lookup is not None:
                lookup.append(token)
            yield token
            room = min(limit - emitted, self.n_ctx - len(self.tokens)) - 1
            if room < 0:
                return
            draft = lookup.draft(room) if lookup is not None else []
            base = len(self.tokens)
            self._decode([token, *draft], all_logits=bool(draft))
            self.stats.forward_passes += 1
            self.stats.drafted += len(draft)
            if not draft:
                token = sampler.pick(self._ctx, -1)
                continue
            confirmed = base + 1
            try:
                for row, guess in enumerate(draft):
                    token = sampler.pick(self._ctx, row)
                    if token != guess:
                        break
                    confirmed += 1
                    self.stats.accepted += 1
                    emitted += 1
                    lookup.append(token)  # type: ignore[union-attr]  # drafts imply a lookup
                    yield token
                else:
                    token = sampler.pick(self._ctx, len(draft))
            finally:  # also when the caller stops mid-draft: unconfirmed keys must go
                self.truncate(confirmed)

    def truncate(self, length: int) -> int:
        """Drop the KV cache beyond ``length`` tokens; returns the length it keeps (0 when the
        model's memory cannot drop a suffix, as with recurrent models)."""
        if length >= len(self.tokens):
            return len(self.tokens)
        if not llama_cpp.llama_memory_seq_rm(self._memory, 0, length, -1):
            llama_cpp.llama_memory_clear(self._memory, True)
            length = 0
        del self.tokens[length:]
        return length

    def snapshot(self) -> bytes:
        """The KV state of the cached tokens (``llama_state_seq_get_data``), for disk."""
        size = llama_cpp.llama_state_seq_get_size(self._ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self._ctx, buffer, size, 0)
        return bytes(buffer)[:written]

    def restore(self, tokens: Sequence[int], state: bytes) -> bool:
        """Load a :meth:`snapshot` of ``tokens``; False (and an empty cache) if llama.cpp
        refuses it, as it does a state of another model or layout."""
        self.reset()
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if not state or llama_cpp.llama_state_seq_set_data(self._ctx, buffer, len(state), 0) == 0:
            self.reset()
            return False
        self.tokens = list(tokens)
        return True

    def reset(self) -> None:
        llama_cpp.llama_memory_clear(self._memory, True)
        self.tokens.clear()

    def close(self) -> None:
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None

    def __del__(self) -> None:
        self.close()

    def _decode(self, tokens: Sequence[int], *, all_logits: bool) -> None:
        batch = self._batch
        position = len(self.tokens)
        for slot, token in enumerate(tokens):
            batch.token[slot] = token
            batch.pos[slot] = position + slot
            batch.logits[slot] = all_logits
        batch.logits[len(tokens) - 1] = True
        batch.n_tokens = len(tokens)
        status = llama_cpp.llama_decode(self._ctx, batch)
        if status != 0:  # whatever of the batch reached the cache goes again
            llama_cpp.llama_memory_seq_rm(self._memory, 0, len(self.tokens), -1)
            if status == 2 and self.cancel.requested():
                raise _Aborted
            raise GenerationError(f"llama.cpp failed while generating (llama_decode {status})")
        self.tokens.extend(tokens)

    def _watch_for_cancel(self, watching: bool) -> None:
        """Let llama.cpp abort a prefill batch mid-way (CPU backend) when cancel is set.

        A 512-token batch takes ~30 s on a 2-core laptop, too long to wait for a cancel. The
        callback runs between graph nodes and takes the GIL, so it is only installed for the
        prompt, never for per-token decoding.
        """
        callback = self._abort if watching else llama_cpp.ggml_abort_callback()
        llama_cpp.llama_set_abort_callback(self._ctx, callback, None)


def _common_prefix(cached: Sequence[int], tokens: Sequence[int]) -> int:
    length = 0
    for old, new in zip(cached, tokens, strict=False):
        if old != new:
            break
        length += 1
    return length
