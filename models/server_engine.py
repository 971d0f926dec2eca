"""Generation on an OpenAI-compatible model server, behind the same interface as local llama.cpp.

The chat pipeline renders prompts, counts tokens and streams exactly as with
:class:`models.runtime.LlamaEngine`; what differs is hidden here:

* **Chat template.** With ``[llm] template = "server"`` the pipeline's rendered prompt is a
  :class:`ServerPrompt` that still carries its messages; they are sent to
  ``/v1/chat/completions`` and the server applies its own template (the one llama.cpp's
  ``/props`` reports is also used to count tokens here). A named template renders the prompt here
  and sends it to ``/v1/completions``.
* **Context length.** llama.cpp's ``/props`` (``n_ctx``) or vLLM's ``max_model_len`` in
  ``/v1/models``; the configured ``[llm] context_length`` where the server says nothing
  (llama-cpp-python's server, Ollama), else :data:`DEFAULT_CONTEXT`; the smaller when both.
* **Token counts.** The server's tokenizer (llama.cpp and vLLM ``/tokenize``, llama-cpp-python
  ``/extras/tokenize/count``), cached per text; a server without one gets
  :func:`estimate_tokens`, which errs on the high side so prompts still fit.
* **Document text stays data.** Servers read control tokens anywhere in the text they template,
  so token-like markers inside message contents are broken by a zero-width space before sending.
* **Thinking.** A model with a thinking mode gets ``chat_template_kwargs.enable_thinking`` (what
  llama.cpp's server and vLLM read; llama-cpp-python's server ignores it). Thinking a server
  sends apart from the answer (``reasoning_content``, vLLM's newer ``reasoning``) is streamed
  back inside ``<think>`` tags, so the pipeline splits it off exactly as with the local engine.
* **Parallel answers.** :attr:`ServerEngine.parallel` is how many streams the server generates
  at once (llama.cpp's slots, see :func:`_parallel`), so ``serve`` can run that many turns.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import jinja2

from models.catalog import find_entry
from models.config import ServerConfig
from models.engine import OffloadInfo
from models.errors import GenerationError, ModelNotFoundError
from models.events import DoneEvent, GenerationEvent, Timings, TokenEvent, Usage
from models.sampling import SamplingParams
from models.server_client import ModelServerError, ServerClient, StreamCancelled
from models.stops import StopFilter
from models.store import LocalModel
from models.templates import (
    ChatMessage,
    ChatMLTemplate,
    ChatTemplate,
    Content,
    JinjaTemplate,
    Part,
    Prompt,
    build_template,
)
from models.thinking import CLOSE_TAG, OPEN_TAG, prompt_opens_thinking

log = logging.getLogger(__name__)

SERVER_MODEL_PREFIX = "server:"
"""How a server model is named where local model names and paths are also accepted."""

DEFAULT_CONTEXT = 2048
"""Context assumed when neither the server nor the settings say: llama-cpp-python's default."""

UNREPORTED_PARALLEL = 4
"""Answers assumed at once from a server that neither reports its slots nor is known to take one
request at a time (vLLM batches continuously; Ollama queues what it cannot run)."""

COUNT_CACHE_SIZE = 4096
"""Token counts remembered per text: the budget counts the same passages and turns repeatedly."""

_MARKER = re.compile(
    r"<\|[^<>|\s]{1,40}\|>|</?s>|<用户>|<AI>|<(?:start|end)_of_turn>|\[/?INST\]|<</?SYS>>"
)
"""Text servers may read as a control token: ``<|im_start|>``, ``</s>``, MiniCPM's ``<用户>``..."""

_SINGLE_TOKEN = re.compile(r"[0-9]|[!-/:-@\[-`{-~]")
"""ASCII characters an estimate counts as one token each: digits, punctuation and symbols."""


def server_model_name(model_id: str) -> str:
    """The name under which a server's model is switched to (``server:<id>``)."""
    return SERVER_MODEL_PREFIX + model_id


def list_server_models(config: ServerConfig) -> list[str]:
    """The model ids the configured server lists; raises :class:`ModelServerError`."""
    if config.base_url is None:
        raise ModelServerError("no model server is configured; set [llm] base_url")
    client = _client_for(config, config.base_url)
    try:
        return _model_ids(client.get(f"{client.base_url}/models"), client.base_url)
    finally:
        client.close()


def estimate_tokens(text: str) -> int:
    """A conservative token count for a server that cannot count: what the budget uses then.

    A character outside ASCII counts as many tokens as its UTF-8 bytes (a byte-level vocabulary
    needs at most that; MiniCPM's needs far fewer for Chinese), a digit or punctuation mark one
    (vocabularies often split them one by one), the rest one per three characters (real
    vocabularies average about four on English prose).
    """
    wide = sum(len(char.encode("utf-8")) for char in text if not char.isascii())
    single = len(_SINGLE_TOKEN.findall(text))
    rest = sum(1 for char in text if char.isascii()) - single
    return wide + single + math.ceil(rest / 3)


class ServerPrompt(Prompt):
    """A rendered prompt that keeps its messages, for a server that applies its own template."""

    messages: tuple[ChatMessage, ...]
    enable_thinking: bool | None
    """The thinking switch to send the server's template; ``None``: the model has none."""

    def __new__(
        cls,
        rendered: Prompt,
        messages: Sequence[ChatMessage],
        enable_thinking: bool | None = None,
    ) -> ServerPrompt:
        parts = [Content(text) if is_content else text for text, is_content in rendered.segments()]
        prompt = cast(ServerPrompt, super().__new__(cls, parts))
        prompt.messages = tuple(messages)
        prompt.enable_thinking = enable_thinking
        return prompt


class ServerTemplate(ChatTemplate):
    """Leaves the template to the server; the text it renders is only used to count tokens.

    That text comes from the server's own template where the server shows it (llama.cpp), else
    from ChatML, the format of MiniCPM3/4/5 and of most instruct models. ``can_think``: the
    server's template has a thinking switch (it shows one, or the catalog says the model has
    one), sent with each prompt.
    """

    name = "server"

    def __init__(self, local: ChatTemplate, *, can_think: bool, thinking: bool = False) -> None:
        self.local = local
        self.stop = local.stop
        self.end_of_turn = local.end_of_turn
        self.can_think = can_think
        self._thinking = can_think and thinking

    def with_thinking(self, enabled: bool) -> ChatTemplate:
        if not self.can_think or enabled == self._thinking:
            return self
        return ServerTemplate(self.local.with_thinking(enabled), can_think=True, thinking=enabled)

    def render(
        self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True
    ) -> ServerPrompt:
        switch = self._thinking if self.can_think else None
        return ServerPrompt(self.local.render(messages, add_generation_prompt), messages, switch)

    def _render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> list[Part]:
        return self.local._render(messages, add_generation_prompt)


@dataclass(frozen=True)
class ServerFacts:
    """What a server says about itself, found once when connecting."""

    models: tuple[str, ...]
    n_ctx: int | None
    """The context the server runs with, where it reports one."""
    chat_template: str | None
    """The server's chat template source, where it exposes it (llama.cpp's ``/props``)."""
    bos_token: str
    eos_token: str
    tokenizer: Literal["/tokenize", "/extras/tokenize", "estimate"]
    """Who counts tokens: ``/tokenize`` (llama.cpp, vLLM), ``/extras/tokenize``
    (llama-cpp-python), or :func:`estimate_tokens`."""
    slots: int | None = None
    """Answers the server generates at once, where it says (llama.cpp's ``total_slots``)."""


def template_kind(source: str | None) -> str | None:
    """The known format a server's template writes: ``minicpm2``, ``chatml``, else ``gguf``."""
    if not source:
        return None
    if "<用户>" in source:
        return "minicpm2"
    if "<|im_start|>" in source:
        return "chatml"
    return "gguf"


class ServerEngine:
    """A model on an OpenAI-compatible server behind the :class:`models.engine.TextEngine`
    interface."""

    def __init__(
        self,
        client: ServerClient,
        model_id: str,
        facts: ServerFacts,
        n_ctx: int,
        template: ChatTemplate,
        context_source: str,
    ) -> None:
        entry = find_entry(model_id.rsplit("/", 1)[-1])
        self.client = client
        self.model_id = model_id
        self.facts = facts
        self.context_source = context_source
        """Where :attr:`n_ctx` came from: "server", "configured" or "default"."""
        self.model = LocalModel(
            name=model_id, path=Path(server_model_name(model_id)), entry=entry, is_demo=False
        )
        self.n_ctx = n_ctx
        self.template = template
        self.parallel = 1
        """Answers the server generates at once, found by :meth:`connect` (:func:`_parallel`)."""
        self.offload = OffloadInfo(
            n_gpu_layers=0,
            total_layers=0,
            backend="server",
            reason=f"generation runs on the model server at {client.base_url}",
        )
        sampling = entry.sampling if entry is not None else SamplingParams()
        self.default_sampling = sampling.with_overrides(stop=template.stop)
        self._counts: dict[str, int] = {}
        self._bos_offset = 0

    @classmethod
    def connect(cls, config: ServerConfig, model_id: str | None = None) -> ServerEngine:
        """Reach the server and learn its model, context and tokenizer.

        Raises :class:`ModelServerError` naming the URL when the server does not answer, and
        :class:`ModelNotFoundError` when it does not serve ``model_id`` (or ``[llm] model``).
        """
        if config.base_url is None:
            raise ModelServerError("no model server is configured; set [llm] base_url")
        client = _client_for(config, config.base_url)
        try:
            wanted = model_id or config.model
            listing = client.get(f"{client.base_url}/models")
            models = _model_ids(listing, client.base_url)
            chosen = wanted or models[0]
            if chosen not in models:
                raise ModelNotFoundError(
                    f"the model server at {client.base_url} has no model {chosen!r}; it serves "
                    f"{', '.join(models)} (set [llm] model to one of them)"
                )
            facts = _discover(client, chosen, models, listing)
        except BaseException:
            client.close()
            raise
        n_ctx, source = _context_length(facts.n_ctx, config.context_length)
        if source == "default":
            log.warning(
                "%s does not report its context length; assuming %d tokens (set [llm] "
                "context_length to the server's)",
                client.base_url,
                n_ctx,
            )
        thinks = _catalog_thinks(chosen)
        engine = cls(client, chosen, facts, n_ctx, _template_for(config, facts, thinks), source)
        engine.parallel = _parallel(facts, config.parallel)
        engine._bos_offset = engine._server_count("") if facts.tokenizer != "estimate" else 0
        return engine

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the server's tokenizer (cached), else :func:`estimate_tokens`."""
        cached = self._counts.get(text)
        if cached is not None:
            return cached
        if self.facts.tokenizer == "estimate":
            count = estimate_tokens(text)
        else:
            count = max(self._server_count(text) - self._bos_offset, 0)
        if len(self._counts) >= COUNT_CACHE_SIZE:
            self._counts.clear()
        self._counts[text] = count
        return count

    def stream(
        self,
        prompt: str,
        params: SamplingParams,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationEvent]:
        started = time.perf_counter()
        prompt_tokens = self.count_tokens(prompt)
        if prompt_tokens >= self.n_ctx:
            raise GenerationError(
                f"the prompt has {prompt_tokens} tokens but the server's context holds "
                f"{self.n_ctx}; shorten it"
            )
        stops = tuple(dict.fromkeys((*params.stop, *self.template.stop)))
        is_chat = isinstance(prompt, ServerPrompt)
        url = f"{self.client.base_url}/{'chat/completions' if is_chat else 'completions'}"
        body = self.request_body(prompt, params, stops, prompt_tokens)
        stop_filter = StopFilter(stops)
        reasoning = _TaggedReasoning(opened_by_prompt=prompt_opens_thinking(prompt))
        first_text_at = last_text_at = None
        pieces = 0
        reason: Literal["stop", "length", "cancelled"] = "length"
        hit_stop = False
        finished_by: str | None = None
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        try:
            for event in self.client.stream(url, body, cancel):
                usage = event.get("usage") or usage
                timings = event.get("timings") or timings
                thought, text, finish = _choice(event, is_chat)
                text = reasoning.text(thought, text)
                if text:
                    pieces += 1
                    last_text_at = time.perf_counter()
                    shown, hit_stop = stop_filter.feed(text)
                    if shown:
                        first_text_at = first_text_at or time.perf_counter()
                        yield TokenEvent(shown)
                    if hit_stop:
                        reason = "stop"
                        break
                if finish is not None:
                    finished_by, reason = finish, "stop" if finish == "stop" else "length"
        except StreamCancelled:
            reason = "cancelled"
        if finished_by is None and not hit_stop and reason != "cancelled":
            raise ModelServerError(
                f"the model server at {self.client.base_url} ended the answer without finishing "
                "it (no finish_reason); llama-cpp-python's server does so when another request "
                "arrives, unless started with --interrupt_requests false (else set [llm] "
                "parallel = 1). Ask again."
            )
        if not hit_stop and (rest := stop_filter.flush()):
            first_text_at = first_text_at or time.perf_counter()
            yield TokenEvent(rest)
        finished = time.perf_counter()
        yield DoneEvent(
            usage=_usage(usage, timings, prompt_tokens, pieces),
            timings=_timings(timings, started, first_text_at, last_text_at, finished, pieces),
            stop_reason=reason,
        )

    def close(self) -> None:
        self.client.close()

    def _server_count(self, text: str) -> int:
        root = self.client.root_url
        if self.facts.tokenizer == "/tokenize":
            reply = self.client.post(f"{root}/tokenize", _tokenize_body(text, self.model_id))
            return len(reply["tokens"])
        reply = self.client.post(
            f"{root}/extras/tokenize/count", {"input": text, "model": self.model_id}
        )
        return int(reply["count"])

    def request_body(
        self, prompt: str, params: SamplingParams, stops: tuple[str, ...], prompt_tokens: int
    ) -> dict[str, Any]:
        """The OpenAI request, with llama.cpp's sampling fields (others ignore what they lack).

        Public so that ``benchmarks/gpu/concurrent_chats.py`` can send the very same body through
        a bare HTTP client, which tells this client's cost from the server's.
        """
        body: dict[str, Any] = {
            "model": self.model_id,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": max(1, min(params.max_tokens, self.n_ctx - prompt_tokens)),
            "temperature": params.temperature,
            "top_p": params.top_p,
            "top_k": params.top_k,
            "min_p": params.min_p,
            "repeat_penalty": params.repeat_penalty,
            "cache_prompt": True,
        }
        if stops:
            body["stop"] = list(stops)
        if isinstance(prompt, ServerPrompt):
            body["messages"] = [
                {"role": m.role, "content": defuse_markers(m.content)} for m in prompt.messages
            ]
            if prompt.enable_thinking is not None:
                body["chat_template_kwargs"] = {"enable_thinking": prompt.enable_thinking}
        else:
            body["prompt"] = _completion_text(prompt)
        return body


def _client_for(config: ServerConfig, base_url: str) -> ServerClient:
    key = config.api_key.get_secret_value() if config.api_key is not None else None
    return ServerClient(base_url, api_key=key, timeout_s=config.timeout_s)


def defuse_markers(text: str) -> str:
    """``text`` with each control-token-like marker broken after its first character."""
    return _MARKER.sub(lambda match: f"{match[0][0]}\u200b{match[0][1:]}", text)


def _completion_text(prompt: str) -> str:
    """The prompt for ``/v1/completions``: markup as rendered, message contents defused."""
    if not isinstance(prompt, Prompt):
        return defuse_markers(prompt)
    return "".join(
        defuse_markers(text) if is_content else text for text, is_content in prompt.segments()
    )


def _model_ids(listing: Any, base_url: str) -> list[str]:
    data = listing.get("data") if isinstance(listing, dict) else None
    models = [str(m["id"]) for m in data or [] if isinstance(m, dict) and m.get("id")]
    if not models:
        raise ModelServerError(
            f"the model server at {base_url} lists no models in /models; start it with a model"
        )
    return models


def _discover(client: ServerClient, model_id: str, models: list[str], listing: Any) -> ServerFacts:
    """Context length, template and tokenizer, from whichever endpoints this server has."""
    props = client.try_get(f"{client.root_url}/props")
    props = props if isinstance(props, dict) else {}
    settings = props.get("default_generation_settings")  # llama.cpp: the context of one slot
    n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
    n_ctx = n_ctx or props.get("n_ctx") or _listed_max_len(listing, model_id)
    if _tokenizes(client.try_post(f"{client.root_url}/tokenize", _tokenize_body("a", model_id))):
        tokenizer: Literal["/tokenize", "/extras/tokenize", "estimate"] = "/tokenize"
    elif client.try_post(f"{client.root_url}/extras/tokenize/count", {"input": "a"}) is not None:
        tokenizer = "/extras/tokenize"
    else:
        tokenizer = "estimate"
    template = props.get("chat_template")
    slots = props.get("total_slots")
    if tokenizer == "/extras/tokenize":  # llama-cpp-python: one model lock for every request
        slots = 1
    return ServerFacts(
        models=tuple(models),
        n_ctx=int(n_ctx) if isinstance(n_ctx, int | float) and n_ctx > 0 else None,
        chat_template=template if isinstance(template, str) and template else None,
        bos_token=str(props.get("bos_token") or ""),
        eos_token=str(props.get("eos_token") or ""),
        tokenizer=tokenizer,
        slots=slots if isinstance(slots, int) and slots > 0 else None,
    )


def _parallel(facts: ServerFacts, configured: int | None) -> int:
    """``[llm] parallel``, else the server's slots, else :data:`UNREPORTED_PARALLEL`.

    llama-cpp-python's server (known by its ``/extras`` tokenizer) counts as one slot: it runs
    one request at a time, and by default a request arriving meanwhile ends the one streaming.
    """
    return configured or facts.slots or UNREPORTED_PARALLEL


def _tokenize_body(text: str, model_id: str) -> dict[str, Any]:
    """One ``/tokenize`` body both llama.cpp (``content``) and vLLM (``prompt``) read."""
    return {
        "content": text,
        "prompt": text,
        "model": model_id,
        "add_special": False,
        "add_special_tokens": False,
    }


def _tokenizes(reply: Any) -> bool:
    return isinstance(reply, dict) and isinstance(reply.get("tokens"), list)


def _listed_max_len(listing: Any, model_id: str) -> int | None:
    """vLLM's ``max_model_len`` for ``model_id`` in its ``/v1/models`` listing."""
    for model in listing.get("data") or []:
        if isinstance(model, dict) and model.get("id") == model_id:
            value = model.get("max_model_len")
            return int(value) if isinstance(value, int) else None
    return None


def _context_length(reported: int | None, configured: int | None) -> tuple[int, str]:
    if reported and configured:
        return min(reported, configured), "server" if reported <= configured else "configured"
    if reported:
        return reported, "server"
    if configured:
        return configured, "configured"
    return DEFAULT_CONTEXT, "default"


def _catalog_thinks(model_id: str) -> bool:
    """The catalog knows the model (by its file or repo name) and it has a thinking mode."""
    entry = find_entry(model_id.rsplit("/", 1)[-1])
    return entry is not None and entry.thinking_sampling is not None


def _template_for(config: ServerConfig, facts: ServerFacts, catalog_thinks: bool) -> ChatTemplate:
    if config.template != "server":
        return build_template(config.template)
    local: ChatTemplate = ChatMLTemplate()
    if facts.chat_template:
        try:
            local = JinjaTemplate(
                facts.chat_template, bos_token=facts.bos_token, eos_token=facts.eos_token
            )
        except (jinja2.TemplateError, GenerationError) as error:
            log.info(
                "cannot render the server's chat template here (%s); counting as ChatML", error
            )
    return ServerTemplate(local, can_think=local.can_think or catalog_thinks)


def _choice(event: dict[str, Any], is_chat: bool) -> tuple[str, str, str | None]:
    """The new thinking, the new answer text and the finish reason of one stream event
    (usage-only events have none)."""
    choices = event.get("choices")
    if not isinstance(choices, list) or not choices:
        return "", "", None
    choice = choices[0] if isinstance(choices[0], dict) else {}
    thought = None
    if is_chat:
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        text = delta.get("content")
        thought = delta.get("reasoning_content") or delta.get("reasoning")
    else:
        text = choice.get("text")
    finish = choice.get("finish_reason")
    return (
        thought if isinstance(thought, str) else "",
        text if isinstance(text, str) else "",
        finish if isinstance(finish, str) else None,
    )


class _TaggedReasoning:
    """Thinking that a server parsed out of the reply, put back in ``<think>`` tags.

    The pipeline tells thinking from answer by those tags (``models.thinking``); a server that
    sends thinking apart would otherwise have it dropped, or, were it joined as plain text, shown
    as the answer. Thinking arriving after the answer began is dropped: it is never the answer.
    """

    def __init__(self, *, opened_by_prompt: bool) -> None:
        self._opened_by_prompt = opened_by_prompt
        self._inside = False
        self._closed = False

    def text(self, thought: str, answer: str) -> str:
        """The reply text for one event's thinking and answer pieces."""
        text = ""
        if thought and not self._closed:
            if not self._inside and not self._opened_by_prompt:
                text = OPEN_TAG
            self._inside = True
            text += thought
        if answer and self._inside:
            text += CLOSE_TAG
            self._inside, self._closed = False, True
        elif answer:
            self._closed = True
        return text + answer


def _usage(
    usage: dict[str, Any], timings: dict[str, Any], prompt_tokens: int, pieces: int
) -> Usage:
    """The server's usage where it sends one; else our prompt count and the pieces received
    (these servers send one token per stream event)."""
    prompt = int(usage.get("prompt_tokens") or prompt_tokens)
    completion = int(usage.get("completion_tokens") or timings.get("predicted_n") or pieces)
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if isinstance(timings.get("prompt_n"), int):
        evaluated = int(timings["prompt_n"])
    elif isinstance(cached, int):
        evaluated = prompt - cached
    else:
        evaluated = prompt
    return Usage(
        prompt_tokens=prompt, prompt_tokens_evaluated=evaluated, completion_tokens=completion
    )


def _timings(
    server: dict[str, Any],
    started: float,
    first_text_at: float | None,
    last_text_at: float | None,
    finished: float,
    pieces: int,
) -> Timings:
    """Time to first token and total as the user saw them; speeds from the server where it
    measures them (llama.cpp's ``timings``), else from when the pieces arrived."""
    decode_s = (last_text_at or finished) - (first_text_at or finished)
    decode = (pieces - 1) / decode_s if decode_s > 0 and pieces > 1 else 0.0
    return Timings(
        ttft_s=(first_text_at or finished) - started,
        prefill_tok_s=float(server.get("prompt_per_second") or 0.0),
        decode_tok_s=float(server.get("predicted_per_second") or decode),
        total_s=finished - started,
    )
