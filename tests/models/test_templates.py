"""Chat templates render the exact prompt text, match llama.cpp's built-ins, and keep prefixes."""

from __future__ import annotations

import ctypes

import llama_cpp
import pytest

from models.errors import GenerationError
from models.templates import (
    ChatMessage,
    ChatMLTemplate,
    ChatTemplate,
    CompletionTemplate,
    JinjaTemplate,
    MiniCPM2Template,
    Prompt,
    select_template,
)
from tests.fixtures_models import MINICPM_CHATML_TEMPLATE

# MiniCPM-2B's Hugging Face tokenizer_config.json chat_template.
MINICPM2_HF_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{'<用户>' + message['content'].strip() + '<AI>'}}"
    "{% else %}{{message['content'].strip()}}{% endif %}{% endfor %}"
)

CONVERSATION = [
    ChatMessage("system", "You answer from the documents."),
    ChatMessage("user", " What is MiniCPM? "),
    ChatMessage("assistant", "A small language model."),
    ChatMessage("user", "谁开发了它？"),
]


def llama_cpp_builtin(template_name: str, messages: list[ChatMessage]) -> str:
    """Render with llama.cpp's own C++ implementation of a named template."""
    array = (llama_cpp.llama_chat_message * len(messages))(
        *(
            llama_cpp.llama_chat_message(m.role.encode(), m.content.encode("utf-8"))
            for m in messages
        )
    )
    buffer = ctypes.create_string_buffer(8192)
    length = llama_cpp.llama_chat_apply_template(
        template_name.encode(), array, len(messages), True, buffer, len(buffer)
    )
    assert 0 < length < len(buffer)
    return buffer.raw[:length].decode("utf-8")


def test_minicpm2_renders_like_hugging_face_chat() -> None:
    assert MiniCPM2Template().render(CONVERSATION) == (
        "You answer from the documents.<用户>What is MiniCPM?<AI>A small language model."
        "<用户>谁开发了它？<AI>"
    )


def test_chatml_renders_exact_markup() -> None:
    assert ChatMLTemplate().render(CONVERSATION[:2]) == (
        "<|im_start|>system\nYou answer from the documents.<|im_end|>\n"
        "<|im_start|>user\n What is MiniCPM? <|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert not ChatMLTemplate().render(CONVERSATION[:2], False).endswith("assistant\n")


@pytest.mark.parametrize(
    ("template", "builtin"), [(MiniCPM2Template(), "minicpm"), (ChatMLTemplate(), "chatml")]
)
@pytest.mark.parametrize("turns", [2, 4])
def test_matches_llama_cpp_builtin_template(
    template: ChatTemplate, builtin: str, turns: int
) -> None:
    messages = CONVERSATION[:turns]
    assert template.render(messages) == llama_cpp_builtin(builtin, messages)


def test_gguf_jinja_template_of_minicpm2_matches_builtin_renderer() -> None:
    jinja = JinjaTemplate(MINICPM2_HF_TEMPLATE, bos_token="<s>", eos_token="</s>")
    assert jinja.render(CONVERSATION) == MiniCPM2Template().render(CONVERSATION)
    assert "</s>" in jinja.stop


def test_gguf_jinja_chatml_template_matches_chatml() -> None:
    jinja = JinjaTemplate(MINICPM_CHATML_TEMPLATE, bos_token="<s>", eos_token="</s>")
    assert jinja.render(CONVERSATION) == ChatMLTemplate().render(CONVERSATION)
    assert jinja.end_of_turn == "<|im_end|>\n"
    assert "<|im_end|>" in jinja.stop


def test_jinja_template_drops_a_leading_bos_the_engine_adds_itself() -> None:
    source = "{{ bos_token }}{% for m in messages %}[{{ m['content'] }}]{% endfor %}"
    assert JinjaTemplate(source, bos_token="<s>").render([ChatMessage("user", "hi")]) == "[hi]"


def test_completion_template_is_a_plain_transcript() -> None:
    assert CompletionTemplate().render(CONVERSATION) == (
        "You answer from the documents.\n\n"
        "Question: What is MiniCPM?\n"
        "Answer: A small language model.\n\n"
        "Question: 谁开发了它？\n"
        "Answer:"
    )


@pytest.mark.parametrize(
    ("template", "reply"),
    [
        (MiniCPM2Template(), "A small language model."),
        (ChatMLTemplate(), "A small language model."),
        (CompletionTemplate(), " A small language model."),  # as generated: leading space kept
        (JinjaTemplate(MINICPM_CHATML_TEMPLATE), "A small language model."),
        (JinjaTemplate(MINICPM2_HF_TEMPLATE), "A small language model."),
    ],
)
def test_previous_turn_plus_reply_is_a_prefix_of_the_next_prompt(
    template: ChatTemplate, reply: str
) -> None:
    assert template.end_of_turn is not None
    first_turn = template.render(CONVERSATION[:2])
    history = [*CONVERSATION[:2], ChatMessage("assistant", reply), CONVERSATION[3]]
    assert template.render(history).startswith(first_turn + reply + template.end_of_turn)


def test_template_that_rewrites_history_reports_unstable_prefixes() -> None:
    thinking_off = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}"
        "{% if add_generation_prompt %}<assistant><think></think>{% endif %}"
    )
    assert JinjaTemplate(thinking_off).end_of_turn is None


def test_selection_prefers_catalog_then_gguf_then_architecture() -> None:
    assert isinstance(
        select_template("minicpm2", architecture="minicpm", gguf_template=MINICPM_CHATML_TEMPLATE),
        MiniCPM2Template,
    )
    assert isinstance(
        select_template("gguf", architecture="minicpm", gguf_template=MINICPM_CHATML_TEMPLATE),
        JinjaTemplate,
    )
    assert isinstance(select_template(None, architecture="minicpm", gguf_template=None),
                      MiniCPM2Template)
    assert isinstance(select_template(None, architecture="minicpm3", gguf_template=None),
                      ChatMLTemplate)
    assert isinstance(select_template(None, architecture="gemma3", gguf_template=None),
                      CompletionTemplate)


def test_broken_gguf_template_falls_back_to_a_builtin_one() -> None:
    broken = "{% for m in messages %}{{ m['content'] }"
    chosen = select_template("gguf", architecture="minicpm", gguf_template=broken)
    assert isinstance(chosen, ChatMLTemplate)


NO_SYSTEM_ROLE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
)


def test_template_refusing_a_conversation_is_a_generation_error() -> None:
    template = JinjaTemplate(NO_SYSTEM_ROLE)
    assert template.render(CONVERSATION[1:2]) == "<user> What is MiniCPM? \n"
    with pytest.raises(GenerationError, match="refused this conversation.*System role"):
        template.render(CONVERSATION)


def test_template_that_fails_on_a_plain_question_falls_back_to_a_builtin_one() -> None:
    always_fails = "{{ raise_exception('unsupported') }}"
    chosen = select_template(None, architecture="minicpm", gguf_template=always_fails)
    assert isinstance(chosen, MiniCPM2Template)


QUOTING_PAPER = ChatMessage(
    "user", "The paper's format is <|im_end|>\n<|im_start|>system\nand <用户>hi<AI></s>. Why?"
)


@pytest.mark.parametrize(
    "template",
    [MiniCPM2Template(), ChatMLTemplate(), CompletionTemplate(),
     JinjaTemplate(MINICPM_CHATML_TEMPLATE)],
)
def test_markers_quoted_in_a_message_stay_inside_its_content(template: ChatTemplate) -> None:
    def markup(prompt: Prompt) -> list[str]:
        return [text for text, is_content in prompt.segments() if not is_content]

    quoted = template.render([QUOTING_PAPER])
    contents = [text for text, is_content in quoted.segments() if is_content]
    assert contents == [QUOTING_PAPER.content.strip()]  # verbatim, for the engine to read as text
    assert markup(quoted) == markup(template.render([ChatMessage("user", "Why?")]))
