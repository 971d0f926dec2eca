"""The llama.cpp engine: load a GGUF (GPU offload where it fits), stream tokens as typed events.

llama-cpp-python loads the model; tokens are generated on llama.cpp's low-level API by
:class:`models.decoding.TokenLoop`, which keeps the KV cache between calls and evaluates only the
part of a new prompt that differs from the cached tokens. This module counts what was really
evaluated (``Usage.prompt_tokens_evaluated``), makes prefill and decode cancellable, hides stop
strings (including their partial beginnings) from the stream, and keeps the system prompt's KV
state on disk (:mod:`models.prefix_cache`). Prompts are tokenized by
:func:`prompt_tokens`: control tokens only in the template's markup, message contents as text.
Where layers run is decided in :mod:`models.offload`; llama.cpp's log lines go through
:mod:`models.llama_logs`.
"""

from __future__ import annotations

import codecs
import ctypes
import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import llama_cpp

from models.config import EngineConfig
from models.decoding import DecodeStats, PrefillCancelled, TokenLoop
from models.engine import OffloadInfo
from models.errors import GenerationError, ModelLoadError
from models.events import DoneEvent, GenerationEvent, Timings, TokenEvent, Usage
from models.gguf_info import GgufInfo, read_gguf_info
from models.hardware import free_gpu_memory_bytes, gpu_backend, physical_cores
from models.llama_logs import route_llama_logs
from models.offload import check_memory, plan_offload
from models.prefix_cache import PrefixCache, state_key
from models.prompt_lookup import PromptLookup
from models.sampler_chain import TokenSampler
from models.sampling import SamplingParams
from models.stops import StopFilter
from models.store import LocalModel
from models.templates import ChatMessage, ChatTemplate, Content, Prompt, template_for_gguf

log = logging.getLogger(__name__)

LoadProgress = Callable[[float], None]
DRAFT_TOKENS = 4
"""Prompt-lookup draft length per decode step: of 4 and 8, the faster on CUDA
(``benchmarks/prompt_lookup.py``)."""


class _EngineLlama(llama_cpp.Llama):
    """``Llama`` with load progress; generation itself runs on :class:`models.decoding.TokenLoop`.

    ``Llama.__init__`` assigns ``self.model_params`` and then loads; the property setter hooks
    the progress callback into those very params without touching any global state.
    """

    def __init__(self, *args: Any, load_progress: LoadProgress | None = None, **kwargs: Any):
        self._load_progress = load_progress
        self._progress_callback: Any = None
        super().__init__(*args, **kwargs)

    @property
    def model_params(self) -> Any:
        return self._model_params

    @model_params.setter
    def model_params(self, params: Any) -> None:
        self._model_params = params
        if self._load_progress is not None:
            report = self._load_progress

            def on_progress(progress: float, user_data: ctypes.c_void_p) -> bool:
                report(min(max(float(progress), 0.0), 1.0))
                return True

            self._progress_callback = llama_cpp.llama_progress_callback(on_progress)
            params.progress_callback = self._progress_callback


class LlamaEngine:
    """A loaded GGUF behind the :class:`models.engine.TextEngine` interface."""

    def __init__(
        self,
        model: LocalModel,
        llm: _EngineLlama,
        info: GgufInfo,
        template: ChatTemplate,
        offload: OffloadInfo,
        draft_tokens: int = 0,
    ) -> None:
        self.model = model
        self.info = info
        self.template = template
        self.offload = offload
        self.n_ctx = llm.n_ctx()
        sampling = model.entry.sampling if model.entry is not None else SamplingParams()
        self.default_sampling = sampling.with_overrides(stop=template.stop)
        self._llm = llm
        self._markers = markup_user_tokens(llm, template)
        self._vocab = llm._model.vocab
        self._seed = llm._seed
        self._pieces = PieceReader(self._vocab)
        self.draft_tokens = draft_tokens if _can_drop_suffixes(llm) else 0
        """Prompt-lookup draft length per decode step; 0 decodes one token at a time."""
        self._loop = TokenLoop(
            llm._ctx.ctx,
            llama_cpp.llama_get_memory(llm._ctx.ctx),
            n_ctx=self.n_ctx,
            n_batch=llm.n_batch,
            max_draft=self.draft_tokens,
        )
        params = llm.context_params
        self._state_settings = {
            "n_ctx": self.n_ctx,
            "flash_attn": int(params.flash_attn_type),
            "type_k": int(params.type_k),
            "type_v": int(params.type_v),
            "llama_cpp": llama_cpp.__version__,
        }
        """What a saved KV state depends on besides the model file and tokens."""
        self._busy = threading.Lock()
        self._closed = False

    @property
    def decode_stats(self) -> DecodeStats:
        """Forward passes and drafts of the last generation."""
        return self._loop.stats

    @classmethod
    def load(
        cls,
        model: LocalModel,
        config: EngineConfig,
        progress: LoadProgress | None = None,
    ) -> LlamaEngine:
        """Load ``model``; raises :class:`ModelLoadError` naming the file and the reason."""
        info = read_gguf_info(model.path)
        backend = gpu_backend()
        asks_auto = config.n_gpu_layers == "auto" and backend != "CPU"
        offload = plan_offload(
            config.n_gpu_layers,
            layers=info.layers or 0,
            model_bytes=info.size_bytes,
            backend=backend,
            free_gpu_bytes=free_gpu_memory_bytes(backend) if asks_auto else None,
        )
        if offload.n_gpu_layers == 0:
            check_memory(model.path, info.size_bytes)
        threads = config.n_threads or physical_cores()
        settings: dict[str, Any] = {
            "model_path": str(model.path),
            "load_progress": progress,
            "n_gpu_layers": offload.n_gpu_layers,
            "n_ctx": min(info.context_length or config.max_context, config.max_context),
            "n_batch": config.n_batch,
            "n_threads": threads,
            "n_threads_batch": threads,
            "seed": llama_cpp.LLAMA_DEFAULT_SEED if config.seed < 0 else config.seed,
            "verbose": False,
        }
        # chosen before loading: nothing to free if it fails
        template = template_for_gguf(model.entry.template if model.entry else None, info)
        llm = _construct_with_fallback(settings, flash_attn=config.flash_attention)
        if progress is not None:
            progress(1.0)
        draft = DRAFT_TOKENS if config.prompt_lookup == "on" else 0  # "auto": see EngineConfig
        return cls(model, llm, info, template, offload, draft_tokens=draft)

    def prime_system_prompt(self, system: str, cache_dir: Path) -> bool:
        """Put the system turn's KV in the cache: from ``cache_dir`` when saved before, else
        computed now and saved. True when restored from disk.

        Templates that fold the system prompt into the first user turn (no system role) have no
        fixed prefix worth keeping; they are left alone.
        """
        self._refuse_if_closed()
        tokens = self._system_prefix(system)
        if tokens is None:
            return False
        cache = PrefixCache(cache_dir)
        key = state_key(self.model.path, tokens, self._state_settings)
        with self._busy:
            saved = cache.load(key, tokens)
            if saved is not None:
                if self._loop.restore(tokens, saved):
                    return True
                cache.discard(key, "llama.cpp did not accept it")
            self._loop.prefill(tokens, None)
            cache.save(key, tokens, self._loop.snapshot())
        return False

    def _system_prefix(self, system: str) -> list[int] | None:
        """The prompt tokens every turn starts with: through the last special token before the
        first user message (tokens before a special token never depend on what follows it)."""
        try:
            probe = self.template.render([ChatMessage("system", system), ChatMessage("user", "q")])
        except GenerationError:  # a template without a system role
            return None
        segments = probe.segments()
        contents = [index for index, (_, is_content) in enumerate(segments) if is_content]
        if len(contents) < 2 or segments[contents[0]][0] != system:
            return None
        parts = [Content(text) if is_content else text for text, is_content in segments]
        through_system = prompt_tokens(
            self._llm, Prompt(parts[: contents[0] + 1]), markers=self._markers
        )
        tokens = prompt_tokens(self._llm, Prompt(parts[: contents[1]]), markers=self._markers)
        special = [
            index
            for index, token in enumerate(tokens)
            if llama_cpp.llama_vocab_get_attr(self._vocab, token) & _SPECIAL
        ]
        if not special or special[-1] < len(through_system):  # no turn marker after the system
            return None
        return tokens[: special[-1] + 1]

    def count_tokens(self, text: str) -> int:
        self._refuse_if_closed()
        return len(prompt_tokens(self._llm, text, markers=self._markers, add_bos=False))

    def stream(
        self,
        prompt: str,
        params: SamplingParams,
        cancel: threading.Event | None = None,
    ) -> Generator[GenerationEvent, None, None]:
        if not self._busy.acquire(blocking=False):
            raise GenerationError("the model is already generating; wait or cancel it first")
        try:
            self._refuse_if_closed()
            yield from self._generate(prompt, params, cancel)
        finally:
            self._busy.release()
            if self._closed:  # close() was called mid-stream and left the freeing to us
                self.close()

    def close(self) -> None:
        """Free the model; during a stream (another thread switching models), when it ends.

        Freeing llama.cpp's context under a running decode would crash the process.
        """
        self._closed = True
        if self._busy.acquire(blocking=False):
            try:
                self._loop.close()
                self._llm.close()
            finally:
                self._busy.release()

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise GenerationError(f"{self.model.name} was unloaded; load a model again")

    def _generate(
        self, prompt: str, params: SamplingParams, cancel: threading.Event | None
    ) -> Iterator[GenerationEvent]:
        started = time.perf_counter()
        tokens = prompt_tokens(self._llm, prompt, markers=self._markers)
        if not tokens:
            raise GenerationError("the prompt is empty")
        if len(tokens) >= self.n_ctx:
            raise GenerationError(
                f"the prompt has {len(tokens)} tokens but the context holds {self.n_ctx}; "
                "shorten it or raise engine.max_context"
            )
        budget = min(params.max_tokens, self.n_ctx - len(tokens))
        stops = StopFilter(tuple(dict.fromkeys((*params.stop, *self.template.stop))))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        first_token_at = last_token_at = first_text_at = None
        generated = evaluated = 0
        hit_stop = False
        reason: Literal["stop", "length", "cancelled"] = "length"
        sampler = TokenSampler(
            params, seed=self._seed, n_vocab=self._pieces.n_vocab, ends=self._pieces.ends
        )
        sampler.may_end = False  # not before the answer's first word
        lookup = PromptLookup(tokens, draft_tokens=self.draft_tokens) if self.draft_tokens else None
        tokens_out = self._loop.generate(sampler, budget, lookup)
        try:
            evaluated = self._loop.prefill(tokens, cancel)
            for token in tokens_out:
                last_token_at = time.perf_counter()
                first_token_at = first_token_at or last_token_at
                if cancel is not None and cancel.is_set():
                    reason = "cancelled"
                    break
                if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    reason = "stop"
                    break
                generated += 1
                piece = decoder.decode(self._pieces.read(token))
                if piece.strip():
                    sampler.may_end = True
                text, hit_stop = stops.feed(piece)
                if text:
                    first_text_at = first_text_at or time.perf_counter()
                    yield TokenEvent(text)
                if hit_stop:
                    reason = "stop"
                    break
                if generated >= budget:
                    break
        except PrefillCancelled as cancelled:  # cancelled before the first token
            evaluated = cancelled.evaluated
            reason = "cancelled"
        finally:
            tokens_out.close()
            sampler.close()
        if not hit_stop and (rest := stops.flush() + decoder.decode(b"", final=True)):
            first_text_at = first_text_at or time.perf_counter()
            yield TokenEvent(rest)
        finished = time.perf_counter()
        yield DoneEvent(
            usage=Usage(
                prompt_tokens=len(tokens),
                prompt_tokens_evaluated=evaluated,
                completion_tokens=generated,
            ),
            timings=_timings(
                started,
                first_token_at,
                last_token_at,
                first_text_at,
                finished,
                evaluated,
                generated,
            ),
            stop_reason=reason,
        )


class _ContextRefused(Exception):
    pass


_SPECIAL = (
    llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
    | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
    | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
)
"""Tokens llama.cpp reads from their text when asked to parse special tokens."""


def prompt_tokens(
    llm: llama_cpp.Llama, prompt: str, *, markers: Collection[str] = (), add_bos: bool = True
) -> list[int]:
    """``prompt``'s tokens: control tokens from the template's markup only, contents as text.

    llama.cpp with ``special=True`` splits the text at every special token and tokenizes the
    pieces between; this does the same, but only outside :attr:`Prompt.contents` (a plain ``str``
    is content throughout), so a benign prompt gets exactly llama.cpp's tokens. Contents are
    tokenized with ``special=False``, which still reads user-defined tokens; ``markers`` (see
    :func:`markup_user_tokens`) are broken by a zero-width space inside contents.
    """
    vocab = llm._model.vocab
    tokens = [llama_cpp.llama_vocab_bos(vocab)] if add_bos and _adds_bos(vocab) else []
    found = _special_tokens_in(llm, prompt)
    if not found:
        return tokens + _plain_tokens(llm, prompt)
    segments = prompt.segments() if isinstance(prompt, Prompt) else [(prompt, True)]
    longest_first = sorted(found, key=len, reverse=True)
    markup = re.compile("|".join(re.escape(piece) for piece in longest_first))
    fragment: list[str] = []
    for piece, is_content in segments:
        if is_content:
            fragment.append(_broken(piece, [marker for marker in markers if marker in found]))
            continue
        position = 0
        for match in markup.finditer(piece):
            fragment.append(piece[position : match.start()])
            tokens += _plain_tokens(llm, "".join(fragment))
            tokens.append(found[match.group()][0])
            fragment, position = [], match.end()
        fragment.append(piece[position:])
    return tokens + _plain_tokens(llm, "".join(fragment))


def markup_user_tokens(llm: llama_cpp.Llama, template: ChatTemplate) -> frozenset[str]:
    """User-defined tokens that ``template`` writes as markup (MiniCPM-2B's ``<用户>``, ``<AI>``).

    llama.cpp reads user-defined tokens even in plain text, so these must be broken inside
    message contents. Other user-defined tokens (Gemma's ``<table>``, whitespace runs) are how
    the model was trained to read that text and stay as they are.
    """
    turns = [ChatMessage("user", "q"), ChatMessage("assistant", "a"), ChatMessage("user", "q")]
    try:
        probe = template.render([ChatMessage("system", "s"), *turns])
    except GenerationError:  # a template without a system role
        probe = template.render(turns)
    markup = "".join(text for text, is_content in probe.segments() if not is_content)
    return frozenset(
        piece
        for piece, (_, attr) in _special_tokens_in(llm, markup).items()
        if attr & llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED and piece.strip()
    )


def _adds_bos(vocab: Any) -> bool:
    return bool(llama_cpp.llama_vocab_get_add_bos(vocab))


def _special_tokens_in(llm: llama_cpp.Llama, text: str) -> dict[str, tuple[int, int]]:
    """The special tokens llama.cpp finds in ``text``: their text, id and attributes."""
    vocab = llm._model.vocab
    found: dict[str, tuple[int, int]] = {}
    for token in llm.tokenize(text.encode("utf-8"), add_bos=False, special=True):
        attr = llama_cpp.llama_vocab_get_attr(vocab, token)
        if attr & _SPECIAL:
            found[llama_cpp.llama_vocab_get_text(vocab, token).decode("utf-8", "replace")] = (
                token,
                attr,
            )
    return found


def _plain_tokens(llm: llama_cpp.Llama, text: str) -> list[int]:
    if not text:
        return []
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)


def _broken(text: str, pieces: Sequence[str]) -> str:
    """``text`` with each of ``pieces`` broken after its first character by a zero-width space."""
    for piece in pieces:
        text = text.replace(piece, f"{piece[0]}\u200b{piece[1:]}")
    return text


SHOWN_CONTROL_TOKENS = ("<think>", "</think>")
"""Control tokens whose text an answer's reader must see (``models.thinking`` splits on them)."""


class PieceReader:
    """Token bytes through one reused buffer, grown when a piece does not fit.

    ``Llama.detokenize`` uses a 32-byte buffer and silently drops longer pieces (hundreds of
    Gemma's and MiniCPM's multi-character words), which would cut real text out of answers.
    Control tokens read as nothing, except the thinking tags (:data:`SHOWN_CONTROL_TOKENS`): a
    GGUF that marks ``<think>`` as a control token would otherwise hand its thinking over as
    the answer, with no tag left for ``models.thinking`` to split on.
    """

    def __init__(self, vocab: Any) -> None:
        self._vocab = vocab
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(vocab))
        self._buffer = ctypes.create_string_buffer(64)
        self._shown = frozenset(
            token
            for text in SHOWN_CONTROL_TOKENS
            if (token := _single_special_token(vocab, text)) is not None
        )

    @functools.cached_property
    def ends(self) -> list[int]:
        """The end-of-generation tokens (read once: a 262k vocabulary takes 0.2 s)."""
        return [t for t in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(self._vocab, t)]

    def read(self, token: int) -> bytes:
        special = token in self._shown
        while True:
            size = len(self._buffer)
            length = llama_cpp.llama_token_to_piece(
                self._vocab, token, self._buffer, size, 0, special
            )
            if length >= 0:
                return self._buffer.raw[:length]
            self._buffer = ctypes.create_string_buffer(-length)


def _single_special_token(vocab: Any, text: str) -> int | None:
    """The token id a special text is as one token (None if the vocabulary spells it out)."""
    encoded = text.encode()
    tokens = (llama_cpp.llama_token * 4)()
    count = llama_cpp.llama_tokenize(vocab, encoded, len(encoded), tokens, 4, False, True)
    return int(tokens[0]) if count == 1 else None


def _can_drop_suffixes(llm: llama_cpp.Llama) -> bool:
    """Rejected drafts are removed from the cache: recurrent models' memory cannot do that."""
    model = llm._model.model
    return not (llama_cpp.llama_model_is_recurrent(model) or llama_cpp.llama_model_is_hybrid(model))


def _construct_with_fallback(settings: dict[str, Any], *, flash_attn: bool) -> _EngineLlama:
    """Load with flash attention when asked, else (or when the context refuses it) without.

    The retry happens outside the ``except`` block: inside it, the refused attempt's traceback
    would keep its weights (in GPU memory too) alive while the second copy loads.
    """
    if flash_attn:
        try:
            return _construct(settings, flash_attn=True)
        except _ContextRefused:  # this model/backend pair cannot do flash attention
            pass
        log.warning(
            "%s: flash attention unsupported here; loading without it", settings["model_path"]
        )
    return _construct(settings, flash_attn=False)


def _construct(settings: dict[str, Any], *, flash_attn: bool) -> _EngineLlama:
    """One load attempt; llama.cpp's own reason goes into the :class:`ModelLoadError`."""
    logs = route_llama_logs()
    logs.recent_problems.clear()
    try:
        return _EngineLlama(**settings, flash_attn=flash_attn)
    except (ValueError, RuntimeError, OSError) as error:
        if flash_attn and "llama_context" in str(error):
            raise _ContextRefused from None
        reason = logs.last_problem() or str(error)
        path = settings["model_path"]
        raise ModelLoadError(f"{path}: llama.cpp could not load it ({reason})") from None


def _timings(
    started: float,
    first_token_at: float | None,
    last_token_at: float | None,
    first_text_at: float | None,
    finished: float,
    evaluated: int,
    generated: int,
) -> Timings:
    prefill_s = (first_token_at or finished) - started
    decode_s = (last_token_at or finished) - (first_token_at or finished)
    return Timings(
        ttft_s=(first_text_at or finished) - started,
        prefill_tok_s=evaluated / prefill_s if prefill_s > 0 and evaluated else 0.0,
        decode_tok_s=(generated - 1) / decode_s if decode_s > 0 and generated > 1 else 0.0,
        total_s=finished - started,
    )
