"""The thinking splitter on streamed text (tags split across tokens, unclosed blocks, quotes)
and the templates' thinking switch."""

from __future__ import annotations

from pathlib import Path

import llama_cpp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.runtime import PieceReader
from models.templates import (
    NO_THINKING,
    ChatMessage,
    ChatMLTemplate,
    JinjaTemplate,
    select_template,
)
from models.thinking import ThinkingSplitter, prompt_opens_thinking, split_reply
from tests.fixtures_models import CHATML_PIECES, build_minicpm_gguf


def _streamed(chunks: list[str], *, inside: bool = False) -> tuple[str, str]:
    splitter = ThinkingSplitter(inside=inside)
    pieces = [piece for chunk in chunks for piece in splitter.feed(chunk)] + splitter.finish()
    thinking = "".join(piece.text for piece in pieces if piece.thinking)
    answer = "".join(piece.text for piece in pieces if not piece.thinking)
    return thinking, answer


def _cut(text: str, cuts: list[int]) -> list[str]:
    bounds = sorted({0, len(text), *(cut % (len(text) + 1) for cut in cuts)})
    return [text[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]


REPLIES = [
    # (reply, inside, thinking, answer)
    (
        "<think>\nThe user asks for Paris.\n</think>\n\nParis [1].",
        False,
        "\nThe user asks for Paris.\n",
        "Paris [1].",
    ),
    ("  <think>plan</think>Answer", False, "plan", "Answer"),
    ("Plain answer, no thinking.", False, "", "Plain answer, no thinking."),
    (
        "The tag <think> inside an answer stays text.",
        False,
        "",
        "The tag <think> inside an answer stays text.",
    ),
    (
        "<think>never closed because the budget ran out",
        False,
        "never closed because the budget ran out",
        "",
    ),
    ("continued thought</think>\nThe answer.", True, "continued thought", "The answer."),
    ("<think></think>\n\nEmpty block first.", False, "", "Empty block first."),
    ("<thinking about it", False, "", "<thinking about it"),
    (
        "<think>a < b and </thin k> are not the end</think>done",
        False,
        "a < b and </thin k> are not the end",
        "done",
    ),
]


@pytest.mark.parametrize(("reply", "inside", "thinking", "answer"), REPLIES)
def test_every_chunking_of_a_reply_splits_it_the_same(
    reply: str, inside: bool, thinking: str, answer: str
) -> None:
    assert split_reply(reply, inside=inside) == (thinking, answer)
    assert _streamed(list(reply), inside=inside) == (thinking, answer)  # one character a token
    for cut in range(len(reply) + 1):  # every place a tag can be split between two tokens
        assert _streamed([reply[:cut], reply[cut:]], inside=inside) == (thinking, answer)


@settings(max_examples=25, deadline=None)
@given(
    thought=st.text(alphabet="ab <>/\n", max_size=30).filter(lambda t: "</think>" not in t),
    answer=st.text(alphabet="xy <>/\n", min_size=1, max_size=30).filter(lambda a: a.strip()),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_arbitrary_token_boundaries_never_move_text_between_the_sides(
    thought: str, answer: str, cuts: list[int]
) -> None:
    reply = f"<think>{thought}</think>\n{answer}"
    got_thinking, got_answer = _streamed(_cut(reply, cuts))
    assert got_thinking == thought
    assert got_answer == answer.lstrip()


def test_thinking_streams_while_a_possible_closing_tag_is_held_back() -> None:
    splitter = ThinkingSplitter()
    assert splitter.feed("<thi") == []  # may still be the opening tag
    assert [(p.text, p.thinking) for p in splitter.feed("nk>step one")] == [("step one", True)]
    assert splitter.thinking
    assert [(p.text, p.thinking) for p in splitter.feed(" </thi")] == [(" ", True)]
    assert [(p.text, p.thinking) for p in splitter.feed("nk>\n\nOK")] == [("OK", False)]
    assert not splitter.thinking and splitter.finish() == []


def test_a_prompt_that_opened_the_block_is_recognised() -> None:
    assert prompt_opens_thinking("<|im_start|>assistant\n<think>\n")
    assert not prompt_opens_thinking("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert not prompt_opens_thinking("<|im_start|>assistant\n")


THINKING_JINJA = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)
"""The shape of MiniCPM4.1's and MiniCPM5's switch: an empty block when thinking is off."""


def test_templates_switch_thinking_only_where_the_model_has_a_mode() -> None:
    question = [ChatMessage("user", "Where is Paris?")]
    jinja = JinjaTemplate(THINKING_JINJA)
    assert jinja.can_think and jinja.render(question).endswith("assistant\n" + NO_THINKING)
    assert jinja.with_thinking(True).render(question).endswith("<|im_start|>assistant\n")
    assert jinja.with_thinking(False) is jinja

    builtin = ChatMLTemplate(can_think=True)
    assert builtin.render(question) == jinja.render(question)
    assert builtin.with_thinking(True).render(question) == jinja.with_thinking(True).render(
        question
    )
    plain = ChatMLTemplate()
    assert not plain.can_think and plain.with_thinking(True) is plain
    assert NO_THINKING not in plain.render(question)
    fallback = select_template("gguf", architecture="minicpm", gguf_template="{% broken")
    assert not fallback.can_think


def test_a_thinking_capable_chatml_prompt_keeps_its_prefix_from_turn_to_turn() -> None:
    template = ChatMLTemplate(can_think=True)
    first = [ChatMessage("user", "q1")]
    both = [*first, ChatMessage("assistant", "a1"), ChatMessage("user", "q2")]
    assert template.end_of_turn is not None
    assert template.render(both).startswith(template.render(first) + "a1" + template.end_of_turn)


def test_thinking_tags_marked_as_control_tokens_are_read_as_text(tmp_path: Path) -> None:
    """A GGUF may mark ``<think>`` as a control token, which llama.cpp renders as nothing when
    control tokens are hidden: the engine must still see the tag, or thinking becomes answer."""
    path = build_minicpm_gguf(
        tmp_path / "think-control.gguf",
        control_pieces=(*CHATML_PIECES, "<think>", "</think>"),
        controls=("<think>", "</think>"),
    )
    vocab_only = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    try:
        vocab = vocab_only._model.vocab
        reader = PieceReader(vocab)
        think, end, im_start = (
            vocab_only.tokenize(text.encode(), add_bos=False, special=True)
            for text in ("<think>", "</think>", "<|im_start|>")
        )
        assert len(think) == len(end) == len(im_start) == 1
        assert llama_cpp.llama_vocab_get_attr(vocab, think[0]) & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
        assert reader.read(think[0]) == b"<think>" and reader.read(end[0]) == b"</think>"
        assert reader.read(im_start[0]) == b""  # other control tokens stay hidden
    finally:
        vocab_only.close()
