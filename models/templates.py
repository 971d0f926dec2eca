"""Chat templates: turn a conversation into the exact prompt text a model was trained on.

The engine tokenizes the rendered text and adds the BOS token itself when the GGUF asks for one
(as Hugging Face's ``chat()`` does for MiniCPM-2B), so no template writes BOS as text.

A rendered prompt is a :class:`Prompt`: its text, plus where the message contents lie in it. The
engine reads the model's control tokens (``<|im_start|>``, ``<用户>``...) only in the template's
own markup; inside a message they are plain text, so a document quoting them cannot open a turn.

Prefix stability matters for speed: where ``end_of_turn`` is not ``None``,
``render(msgs[:n]) + reply + end_of_turn`` is a byte-identical prefix of ``render(msgs)``
(``msgs[n]`` being the assistant ``reply``), so the next turn reuses the KV cache instead of
re-reading the whole conversation.
"""

from __future__ import annotations

import logging
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

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


class Content(NamedTuple):
    """A message's text inside a prompt: data, never markup."""

    text: str


class Prompt(str):
    """Prompt text that knows which parts of it are message contents.

    It is a ``str`` (it prints, compares and is stored as its text). Built from parts: a ``str``
    part is the template's markup, a :class:`Content` part is message text. The engine reads
    control tokens only outside :attr:`contents`; a plain ``str`` given to the engine counts as
    content throughout, so text of unknown origin never carries control tokens.
    """

    contents: tuple[tuple[int, int], ...]
    """``(start, end)`` character offsets of the message contents."""

    def __new__(cls, parts: Iterable[str | Content]) -> Prompt:
        texts: list[str] = []
        spans: list[tuple[int, int]] = []
        position = 0
        for part in parts:
            text = part.text if isinstance(part, Content) else part
            if isinstance(part, Content) and text:
                spans.append((position, position + len(text)))
            texts.append(text)
            position += len(text)
        prompt = super().__new__(cls, "".join(texts))
        prompt.contents = tuple(spans)
        return prompt

    def __add__(self, other: str) -> Prompt:
        """This prompt followed by ``other``: its contents stay contents, and a plain ``str``
        (a reply, text of unknown origin) is appended as content, never as markup."""
        tail = other.segments() if isinstance(other, Prompt) else [(other, True)]
        return Prompt(
            Content(text) if is_content else text for text, is_content in [*self.segments(), *tail]
        )

    def segments(self) -> list[tuple[str, bool]]:
        """The text in order as ``(text, is_content)`` pieces, empty pieces left out."""
        pieces: list[tuple[str, bool]] = []
        position = 0
        for start, end in self.contents:
            pieces += [(self[position:start], False), (self[start:end], True)]
            position = end
        pieces.append((self[position:], False))
        return [(text, is_content) for text, is_content in pieces if text]


Part = str | Content


class ChatTemplate(ABC):
    """Renders messages to prompt text; ``stop`` lists texts that end the model's turn."""

    name: str
    stop: tuple[str, ...]
    end_of_turn: str | None
    """Text that closes an assistant turn in :meth:`render`; ``None`` if prefixes are unstable."""
    can_think: bool = False
    """The format has a switch for the model's thinking mode (``<think>``, ``enable_thinking``).

    Templates render with thinking off; :meth:`with_thinking` gives the one that lets it think.
    """

    def with_thinking(self, enabled: bool) -> ChatTemplate:
        """This format with the model's thinking on or off (itself when it has no switch)."""
        return self

    def render(
        self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True
    ) -> Prompt:
        """The prompt for ``messages``, ending ready for the assistant when asked."""
        return Prompt(self._render(messages, add_generation_prompt))

    @abstractmethod
    def _render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> list[Part]:
        """The prompt as markup and :class:`Content` parts."""


class MiniCPM2Template(ChatTemplate):
    """MiniCPM-2B / MiniCPM-1B: ``<用户>question<AI>answer``, contents stripped.

    Identical to the model's Hugging Face ``chat_template`` and to llama.cpp's built-in
    ``minicpm`` template: a system message is plain text placed before the first user turn.
    Each user turn already ends with ``<AI>``, which is the generation prompt.
    """

    name = "minicpm2"
    stop = ("<用户>", "</s>")
    end_of_turn = ""

    def _render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> list[Part]:
        parts: list[Part] = []
        for message in messages:
            if message.role == "user":
                parts += ["<用户>", Content(message.content.strip()), "<AI>"]
            else:
                parts.append(Content(message.content.strip()))
        return parts


NO_THINKING = "<think>\n\n</think>\n\n"
"""An empty thinking block: MiniCPM4.1's and MiniCPM5's templates answer with it when thinking
is off (``enable_thinking=False``), so the model goes straight to the answer."""


class ChatMLTemplate(ChatTemplate):
    """ChatML, used by MiniCPM-2B-128k, MiniCPM3, MiniCPM4/4.1 and MiniCPM5.

    With ``can_think`` (a model with a thinking mode), thinking off puts :data:`NO_THINKING`
    after the generation prompt. Earlier assistant turns carry the same empty block, whatever
    was thought then: thinking never enters the history, and the prefix stays stable.
    """

    name = "chatml"
    stop = ("<|im_end|>", "<|im_start|>")
    end_of_turn = "<|im_end|>\n"

    def __init__(self, *, can_think: bool = False, thinking: bool = False) -> None:
        self.can_think = can_think
        self._thinking = can_think and thinking

    def with_thinking(self, enabled: bool) -> ChatTemplate:
        if not self.can_think:
            return self
        return ChatMLTemplate(can_think=True, thinking=enabled)

    def _render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> list[Part]:
        empty_block = NO_THINKING if self.can_think else ""
        parts: list[Part] = []
        for message in messages:
            opening = f"<|im_start|>{message.role}\n"
            if message.role == "assistant":
                opening += empty_block
            parts += [opening, Content(message.content), "<|im_end|>\n"]
        if add_generation_prompt:
            parts.append("<|im_start|>assistant\n" + ("" if self._thinking else empty_block))
        return parts


class CompletionTemplate(ChatTemplate):
    """A plain-text transcript for base models that have no chat format (the demo model).

    A system message becomes a preamble; each exchange is ``Question: ...\\nAnswer: ...``.
    The prompt ends with ``Answer:`` so the model's first token carries its own leading space;
    prefixes are stable when the stored reply keeps that space.
    """

    name = "completion"
    stop = ("\n\n", "\nQuestion:", "\nAnswer:")
    end_of_turn = "\n\n"

    def _render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> list[Part]:
        parts: list[Part] = []
        for message in messages:
            content = Content(message.content.strip())
            if message.role == "system":
                parts += [content, "\n\n"]
            elif message.role == "user":
                parts += ["Question: ", content, "\n"]
            else:
                parts += ["Answer: ", content, "\n\n"]
        if add_generation_prompt and messages and messages[-1].role == "user":
            parts.append("Answer:")
        return parts


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

    Thinking is off (``enable_thinking=False``) unless asked for with :meth:`with_thinking`:
    a thinking trace is shown apart from the answer, and only when the user wants one.
    """

    name = "gguf"

    def __init__(
        self, source: str, *, bos_token: str = "", eos_token: str = "", thinking: bool = False
    ) -> None:
        self._source = source
        self.can_think = "enable_thinking" in source
        self._thinking = self.can_think and thinking
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

    def with_thinking(self, enabled: bool) -> ChatTemplate:
        if not self.can_think or enabled == self._thinking:
            return self
        return JinjaTemplate(
            self._source, bos_token=self._bos_token, eos_token=self._eos_token, thinking=enabled
        )

    def _render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> list[Part]:
        """The template's text, split into its markup and the message contents.

        Rendered twice: once as is, once with each content replaced by a unique mark, which
        shows where contents go. Each mark is then matched with the real text (the content as
        given or stripped, as templates often ``trim`` it). A template that rewrites contents
        otherwise gets the contents as given in place of the marks; one that mangles the marks
        themselves is refused (:class:`GenerationError`).
        """
        nonce = str(secrets.randbelow(10**12)).zfill(12)  # digits: unchanged by upper(), trim
        marked = [ChatMessage(m.role, f"\x00{nonce}:{i}\x00") for i, m in enumerate(messages)]
        pieces = re.split(f"\x00{nonce}:(\\d+)\x00", self._apply(marked, add_generation_prompt))
        if any("\x00" in piece or nonce in piece for piece in pieces[::2]):  # a mark was cut
            raise GenerationError(
                "the model's own chat template rewrites message text beyond trimming it, so "
                "where a document's text goes cannot be told apart from the template's markup"
            )
        contents = [message.content for message in messages]
        parts = _align(self._apply(messages, add_generation_prompt), pieces, contents)
        if parts is None:
            log.debug("the GGUF's chat template rewrites message text; using it as given")
            parts = [
                Content(contents[int(piece)]) if index % 2 else piece
                for index, piece in enumerate(pieces)
            ]
        return parts

    def _apply(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> str:
        """The template's text; raises :class:`GenerationError` when the template refuses the
        conversation (some raise on a system message or on roles that do not alternate)."""
        try:
            text = self._template.render(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=self._bos_token,
                eos_token=self._eos_token,
                enable_thinking=self._thinking,
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


def _align(text: str, pieces: Sequence[str], contents: Sequence[str]) -> list[Part] | None:
    """``text`` as markup and contents, following ``pieces`` (markup, content index, markup...).

    ``None`` when ``text`` is not the pieces with each content, as given or stripped, in place.
    """
    parts: list[Part] = []
    position = 0
    for index in range(0, len(pieces) - 1, 2):
        markup, following = pieces[index], pieces[index + 2]
        content = contents[int(pieces[index + 1])]
        if not text.startswith(markup, position):
            return None
        position += len(markup)
        variants = (content, content.strip(), content.lstrip(), content.rstrip())
        for variant in dict.fromkeys(variants):
            if text.startswith(variant + following, position):
                break
        else:
            return None
        parts += [markup, Content(variant)]
        position += len(variant)
    if text[position:] != pieces[-1]:
        return None
    return [*parts, pieces[-1]]


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
    chatml = ChatMLTemplate(can_think=bool(gguf_template and "enable_thinking" in gguf_template))
    if architecture == "minicpm":
        return MiniCPM2Template() if kind is None else chatml
    if architecture == "minicpm3" or kind == "gguf":
        return chatml
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
