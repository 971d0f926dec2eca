"""The llama.cpp engine: load a GGUF (GPU offload where it fits), stream tokens as typed events.

llama-cpp-python's ``Llama.generate`` already keeps the KV cache between calls and evaluates only
the part of a new prompt that differs from the cached tokens; this module counts what it really
evaluated (``Usage.prompt_tokens_evaluated``), makes prefill and decode cancellable, and hides
stop strings (including their partial beginnings) from the stream. Prompts are tokenized by
:func:`prompt_tokens`: control tokens only in the template's markup, message contents as text.
Where layers run is decided in :mod:`models.offload`; llama.cpp's log lines go through
:mod:`models.llama_logs`.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, Literal

import llama_cpp

from models.config import EngineConfig
from models.engine import OffloadInfo
from models.errors import GenerationError, ModelLoadError
from models.events import DoneEvent, GenerationEvent, Timings, TokenEvent, Usage
from models.gguf_info import GgufInfo, read_gguf_info
from models.hardware import free_gpu_memory_bytes, gpu_backend, physical_cores
from models.llama_logs import route_llama_logs
from models.offload import check_memory, plan_offload
from models.sampling import SamplingParams
from models.stops import StopFilter
from models.store import LocalModel
from models.templates import ChatMessage, ChatTemplate, Prompt, template_for_gguf

log = logging.getLogger(__name__)

LoadProgress = Callable[[float], None]


class _PrefillCancelled(Exception):
    pass


class _CancelWatch:
    """The running generation's cancel event, for llama.cpp's abort callback to read.

    A separate object so the callback does not reference the ``Llama``: that cycle would leave
    freeing its memory to the garbage collector instead of the moment it is dropped.
    """

    def __init__(self) -> None:
        self.event: threading.Event | None = None

    def requested(self, user_data: ctypes.c_void_p | None = None) -> bool:
        return self.event is not None and self.event.is_set()


class _EngineLlama(llama_cpp.Llama):
    """``Llama`` with load progress, a count of evaluated prompt tokens, and prefill cancellation.

    ``Llama.__init__`` assigns ``self.model_params`` and then loads; the property setter hooks
    the progress callback into those very params without touching any global state.
    """

    def __init__(self, *args: Any, load_progress: LoadProgress | None = None, **kwargs: Any):
        self._load_progress = load_progress
        self._progress_callback: Any = None
        self.prompt_evaluated: int | None = None
        self.cancel = _CancelWatch()
        self._abort_callback = llama_cpp.ggml_abort_callback(self.cancel.requested)
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

    def eval(self, tokens: Sequence[int]) -> None:
        if self.prompt_evaluated is not None:  # decoding: one token, no need to abort within it
            super().eval(tokens)
            return
        self.prompt_evaluated = 0  # a generate()'s first eval is the prompt (or its new suffix)
        self._watch_for_cancel(True)
        try:
            for start in range(0, max(len(tokens), 1), self.n_batch):
                if self.cancel.requested():
                    raise _PrefillCancelled
                batch = tokens[start : start + self.n_batch]
                try:
                    super().eval(batch)
                except RuntimeError:
                    if self.cancel.requested():  # llama_decode aborted: batch not kept
                        raise _PrefillCancelled from None
                    raise
                self.prompt_evaluated += len(batch)
        finally:
            self._watch_for_cancel(False)

    def _watch_for_cancel(self, watching: bool) -> None:
        """Let llama.cpp abort a prefill batch mid-way (CPU backend) when cancel is set.

        A 512-token batch takes ~30 s on a 2-core laptop, too long to wait for a cancel. The
        callback runs between graph nodes and takes the GIL, so it is only installed for the
        prompt, never for per-token decoding.
        """
        callback = self._abort_callback if watching else llama_cpp.ggml_abort_callback()
        llama_cpp.llama_set_abort_callback(self._ctx.ctx, callback, None)


class LlamaEngine:
    """A loaded GGUF behind the :class:`models.engine.TextEngine` interface."""

    def __init__(
        self,
        model: LocalModel,
        llm: _EngineLlama,
        info: GgufInfo,
        template: ChatTemplate,
        offload: OffloadInfo,
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
        self._busy = threading.Lock()
        self._closed = False

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
        return cls(model, llm, info, template, offload)

    def count_tokens(self, text: str) -> int:
        self._refuse_if_closed()
        return len(prompt_tokens(self._llm, text, markers=self._markers, add_bos=False))

    def stream(
        self,
        prompt: str,
        params: SamplingParams,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationEvent]:
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
        if len(tokens) >= self.n_ctx:
            raise GenerationError(
                f"the prompt has {len(tokens)} tokens but the context holds {self.n_ctx}; "
                "shorten it or raise engine.max_context"
            )
        budget = min(params.max_tokens, self.n_ctx - len(tokens))
        stops = StopFilter(tuple(dict.fromkeys((*params.stop, *self.template.stop))))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        vocab = self._llm._model.vocab
        self._llm.prompt_evaluated = None
        self._llm.cancel.event = cancel
        first_token_at = last_token_at = first_text_at = None
        generated = 0
        hit_stop = False
        reason: Literal["stop", "length", "cancelled"] = "length"
        tokens_out = self._llm.generate(
            tokens,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=params.min_p,
            temp=params.temperature,
            repeat_penalty=params.repeat_penalty,
        )
        try:
            for token in tokens_out:
                last_token_at = time.perf_counter()
                first_token_at = first_token_at or last_token_at
                if cancel is not None and cancel.is_set():
                    reason = "cancelled"
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    reason = "stop"
                    break
                generated += 1
                text, hit_stop = stops.feed(decoder.decode(token_piece(vocab, token)))
                if text:
                    first_text_at = first_text_at or time.perf_counter()
                    yield TokenEvent(text)
                if hit_stop:
                    reason = "stop"
                    break
                if generated >= budget:
                    break
        except _PrefillCancelled:  # cancelled before the first token
            reason = "cancelled"
        except RuntimeError as error:
            raise GenerationError(f"llama.cpp failed while generating ({error})") from None
        finally:
            tokens_out.close()
            self._llm.cancel.event = None
        if not hit_stop and (rest := stops.flush() + decoder.decode(b"", final=True)):
            first_text_at = first_text_at or time.perf_counter()
            yield TokenEvent(rest)
        finished = time.perf_counter()
        evaluated = self._llm.prompt_evaluated or 0
        yield DoneEvent(
            usage=Usage(
                prompt_tokens=len(tokens),
                prompt_tokens_evaluated=evaluated,
                completion_tokens=generated,
            ),
            timings=_timings(started, first_token_at, last_token_at, first_text_at, finished,
                             evaluated, generated),
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
                token, attr
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


def token_piece(vocab: Any, token: int) -> bytes:
    """The bytes of one generated token, however long.

    ``Llama.detokenize`` uses a 32-byte buffer and silently drops longer pieces (hundreds of
    Gemma's and MiniCPM's multi-character words), which would cut real text out of answers.
    """
    size = 64
    while True:
        buffer = ctypes.create_string_buffer(size)
        length = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, False)
        if length >= 0:
            return buffer.raw[:length]
        size = -length


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
        log.warning("%s: flash attention unsupported here; loading without it",
                    settings["model_path"])
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
