"""Token choice on llama.cpp's own sampler chain, reading the logits where llama.cpp left them.

The chain is the one llama-cpp-python's ``Llama.generate`` builds (penalties, top-k, top-p, min-p,
temperature, seeded draw), so a seed gives the same answer as before. Greedy decoding without a
repeat penalty skips the chain: the chain first copies every logit into a candidate array (120k
entries for MiniCPM, each token), while an argmax over llama.cpp's own logits buffer reads them
once and picks the same token (the first of equal maxima, as llama.cpp's greedy sampler does).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import llama_cpp
import numpy as np

from models.errors import GenerationError
from models.sampling import SamplingParams

PENALTY_LAST_N = 64
"""Tokens a repeat penalty looks back over (llama-cpp-python's ``last_n_tokens_size``)."""


class TokenSampler:
    """Picks the next token from one output row of the last ``llama_decode``; one per stream.

    Rows must be read in the order they were decoded (llama.cpp's rule for a chain that samples
    several outputs of one batch): the chain keeps the accepted tokens for its penalties.

    While ``may_end`` is false the ``ends`` tokens (end of generation) are not picked: a model
    can end an answer before its first word (the demo model does in about one turn of twelve),
    which would leave the user an empty answer.
    """

    def __init__(
        self, params: SamplingParams, *, seed: int, n_vocab: int, ends: Sequence[int] = ()
    ) -> None:
        self.greedy = params.temperature == 0.0
        self.may_end = True
        self._ends = np.asarray(ends, dtype=np.intp)
        self._logits = ctypes.c_float * n_vocab
        self._chain: Any = None
        if self.greedy and params.repeat_penalty == 1.0:
            return
        self._chain = llama_cpp.llama_sampler_chain_init(
            llama_cpp.llama_sampler_chain_default_params()
        )
        stages = []
        if params.repeat_penalty != 1.0:
            stages.append(
                llama_cpp.llama_sampler_init_penalties(
                    n_vocab, PENALTY_LAST_N, params.repeat_penalty, 0.0, 0.0
                )
            )
        if self.greedy:
            stages.append(llama_cpp.llama_sampler_init_greedy())
        elif params.temperature < 0.0:  # llama-cpp-python's meaning: draw from the raw logits
            stages.append(llama_cpp.llama_sampler_init_dist(seed))
        else:
            stages += [
                llama_cpp.llama_sampler_init_top_k(params.top_k),
                llama_cpp.llama_sampler_init_top_p(params.top_p, 1),
                llama_cpp.llama_sampler_init_min_p(params.min_p, 1),
                llama_cpp.llama_sampler_init_temp(params.temperature),
                llama_cpp.llama_sampler_init_dist(seed),
            ]
        for stage in stages:
            llama_cpp.llama_sampler_chain_add(self._chain, stage)  # the chain owns it now

    def pick(self, ctx: Any, row: int) -> int:
        """The token for output ``row`` of the last decode (-1: its last output)."""
        if self._chain is not None and self.may_end:
            return int(llama_cpp.llama_sampler_sample(self._chain, ctx, row))
        logits = self._row(ctx, row)
        if not self.may_end:
            logits[self._ends] = -np.inf  # llama.cpp's own buffer: the chain reads it next
        if self._chain is not None:
            return int(llama_cpp.llama_sampler_sample(self._chain, ctx, row))
        return int(logits.argmax())

    def _row(self, ctx: Any, row: int) -> np.ndarray:
        """Output ``row``'s logits as a writable view of llama.cpp's buffer."""
        pointer = llama_cpp.llama_get_logits_ith(ctx, row)
        address = ctypes.cast(pointer, ctypes.c_void_p).value
        if not address:
            raise GenerationError(f"llama.cpp has no logits for output {row}")
        return np.frombuffer(memoryview(self._logits.from_address(address)), dtype=np.float32)

    def close(self) -> None:
        if self._chain is not None:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None

    def __del__(self) -> None:
        self.close()
