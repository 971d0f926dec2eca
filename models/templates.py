"""Chat templates: turn a conversation into the exact prompt text a model was trained on.

The engine tokenizes the rendered text and adds the BOS token itself when the GGUF asks for one
(as Hugging Face's ``chat()`` does for MiniCPM-2B), so no template writes BOS as text.

Prefix stability matters for speed: where ``end_of_turn`` is not ``None``,
``render(msgs[:n]) + reply + end_of_turn`` is a byte-identical prefix of ``render(msgs)``
(``msgs[n]`` being the assistant ``reply``), so the next turn reuses the KV cache instead of
re-reading the whole conversation.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from models.errors import GenerationError
from models.gguf_info import GgufInfo

log = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


class ChatTemplate(ABC):
    """Renders messages to prompt text; ``stop`` lists texts that end the model's turn."""

    name: str
    stop: tuple[str, ...]
    end_of_turn: str | None
    """Text that closes an assistant turn in :meth:`render`; ``None`` if prefixes are unstable."""

    def render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> str:
        """The prompt text for ``messages``, ending ready for the assistant when asked.

        The engine tokenizes prompts with special tokens on, so a chat marker quoted inside a
        message (papers about LLMs quote ``<|im_start|>``) would become a real turn boundary;
        such markers are broken with a zero-width space first.
        """
        quoted = [ChatMessage(m.role, _inert(m.content)) for m in messages]
        return self._render(quoted, add_generation_prompt)

    @abstractmethod
    def _render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> str:
        """The prompt text, from messages whose contents hold no chat markers."""


class MiniCPM2Template(ChatTemplate):
    """MiniCPM-2B / MiniCPM-1B: ``<用户>question<AI>answer``, contents stripped.

    Identical to the model's Hugging Face ``chat_template`` and to llama.cpp's built-in
    ``minicpm`` template: a system message is plain text placed before the first user turn.
    Each user turn already ends with ``<AI>``, which is the generation prompt.
    """

    name = "minicpm2"
    stop = ("<用户>", "</s>")
    end_of_turn = ""

    def _render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> str:
        parts = []
        for message in messages:
            if message.role == "user":
                parts.append(f"<用户>{message.content.strip()}<AI>")
            else:
                parts.append(message.content.strip())
        return "".join(parts)


class ChatMLTemplate(ChatTemplate):
    """ChatML, used by MiniCPM-2B-128k, MiniCPM3, MiniCPM4/4.1 and MiniCPM5."""

    name = "chatml"
    stop = ("<|im_end|>", "<|im_start|>")
    end_of_turn = "<|im_end|>\n"

    def _render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> str:
        text = "".join(
            f"<|im_start|>{message.role}\n{message.content}<|im_end|>\n" for message in messages
        )
        if add_generation_prompt:
            text += "<|im_start|>assistant\n"
        return text


class CompletionTemplate(ChatTemplate):
    """A plain-text transcript for base models that have no chat format (the demo model).

    A system message becomes a preamble; each exchange is ``Question: ...\\nAnswer: ...``.
    The prompt ends with ``Answer:`` so the model's first token carries its own leading space;
    prefixes are stable when the stored reply keeps that space.
    """

    name = "completion"
    stop = ("\n\n", "\nQuestion:", "\nAnswer:")
    end_of_turn = "\n\n"

    def _render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> str:
        parts = []
        for message in messages:
            content = message.content.strip()
            if message.role == "system":
                parts.append(f"{content}\n\n")
            elif message.role == "user":
                parts.append(f"Question: {content}\n")
            else:
                parts.append(f"Answer: {content}\n\n")
        if add_generation_prompt and messages and messages[-1].role == "user":
            parts.append("Answer:")
        return "".join(parts)


_KNOWN_END_MARKERS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end|>",
    "</s>",
)


class JinjaTemplate(ChatTemplate):
    """The GGUF's own ``tokenizer.chat_template``, rendered like ``transformers`` does.

    Thinking is switched off (``enable_thinking=False``) where a template supports it, because
    answers are shown as they stream and reasoning traces would bury them.
    """

    name = "gguf"

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "") -> None:
        environment = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
        )
        environment.globals["raise_exception"] = _raise_template_error
        environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        self._template = environment.from_string(source)
        self._bos_token = bos_token
        self._eos_token = eos_token
        markers = [marker for marker in _KNOWN_END_MARKERS if marker in source]
        if eos_token and eos_token not in markers:
            markers.append(eos_token)
        self.stop = tuple(markers)
        self.end_of_turn = self._probe_end_of_turn()

    def _render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> str:
        """The template's text; raises :class:`GenerationError` when the template refuses the
        conversation (some raise on a system message or on roles that do not alternate)."""
        try:
            text = self._template.render(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=self._bos_token,
                eos_token=self._eos_token,
                enable_thinking=False,
            )
        except (jinja2.TemplateError, TypeError, ValueError) as error:
            raise GenerationError(
                f"the model's own chat template refused this conversation ({error})"
            ) from None
        if self._bos_token and text.startswith(self._bos_token):
            text = text[len(self._bos_token) :]
        return text

    def _probe_end_of_turn(self) -> str | None:
        question = [ChatMessage("user", "ping")]
        prompt = self.render(question)
        answered = self.render([*question, ChatMessage("assistant", "pong")], False)
        if answered.startswith(prompt + "pong"):
            return answered[len(prompt) + len("pong") :]
        return None


_CHAT_MARKERS = (
    "<用户>", "<AI>", "<s>", "</s>",  # MiniCPM-2B/1B
    "<|im_start|>", "<|im_end|>", "<|endoftext|>",  # ChatML (MiniCPM3/4/5), Qwen
    "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>",  # Gemma
    "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",  # Llama 3
    "<|user|>", "<|assistant|>", "<|system|>", "<|end|>",  # Phi, GLM
)


def _inert(text: str) -> str:
    """``text`` with each chat marker broken after its first character by a zero-width space."""
    for marker in _CHAT_MARKERS:
        if marker in text:
            text = text.replace(marker, f"{marker[0]}\u200b{marker[1:]}")
    return text


def _raise_template_error(message: str) -> None:
    raise jinja2.TemplateError(message)


def build_template(kind: str) -> ChatTemplate:
    """One of the fixed templates by name: ``minicpm2``, ``chatml`` or ``completion``."""
    templates: dict[str, type[ChatTemplate]] = {
        "minicpm2": MiniCPM2Template,
        "chatml": ChatMLTemplate,
        "completion": CompletionTemplate,
    }
    if kind not in templates:
        raise ValueError(f"unknown chat template {kind!r}")
    return templates[kind]()


def select_template(
    kind: str | None,
    *,
    architecture: str,
    gguf_template: str | None,
    bos_token: str = "",
    eos_token: str = "",
) -> ChatTemplate:
    """The template for a model: the catalog's choice, else the GGUF's own, else by architecture.

    ``kind`` "gguf" (or ``None``) uses the GGUF's Jinja template when it has a usable one; a
    missing or broken template falls back to the architecture's usual format.
    """
    if kind not in (None, "gguf"):
        return build_template(kind)
    if gguf_template:
        try:
            return JinjaTemplate(gguf_template, bos_token=bos_token, eos_token=eos_token)
        except (jinja2.TemplateError, GenerationError) as error:
            log.warning("the GGUF's chat template is broken (%s); using a built-in one", error)
    if architecture == "minicpm":
        return MiniCPM2Template() if kind is None else ChatMLTemplate()
    if architecture == "minicpm3" or kind == "gguf":
        return ChatMLTemplate()
    return CompletionTemplate()


def template_for_gguf(kind: str | None, info: GgufInfo) -> ChatTemplate:
    """:func:`select_template` with the facts read from the model's GGUF header."""
    return select_template(
        kind,
        architecture=info.architecture,
        gguf_template=info.chat_template,
        bos_token=info.bos_token,
        eos_token=info.eos_token,
    )
