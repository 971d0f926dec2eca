"""Follow-up detection and standalone queries, by rule and with a scripted model."""

from __future__ import annotations

import threading

import pytest

from assistant.condense import heuristic_query, looks_like_follow_up, standalone_query
from assistant.prompting import PromptStyle, build_messages
from models.errors import GenerationError
from models.templates import ChatMessage
from tests.assistant.fakes import FakeEngine

HISTORY = [
    ChatMessage("user", "How does TraceMonkey record hot loops?"),
    ChatMessage("assistant", "It records traces of hot loops [1]."),
]


@pytest.mark.parametrize(
    "question",
    [
        "And what about the second one?",
        "Why?",
        "How is it compiled?",
        "What happens to those traces later on?",
        "那第二个呢？",
        "它是怎么编译的？",
        "为什么？",
    ],
)
def test_follow_ups_are_recognised(question: str) -> None:
    assert looks_like_follow_up(question)


@pytest.mark.parametrize(
    "question",
    [
        "How does TraceMonkey compile loops with type-unstable variables?",
        "What is the speedup of TraceMonkey on the SunSpider benchmarks?",
        "TraceMonkey 在 SunSpider 基准测试上的加速比是多少？",
    ],
)
def test_standalone_questions_are_left_alone(question: str) -> None:
    assert not looks_like_follow_up(question)
    assert heuristic_query(question, "previous search") == question


def test_heuristic_joins_the_previous_search_and_stays_short() -> None:
    assert heuristic_query("Why?", "trace trees") == "trace trees Why?"
    chained = "x " * 300
    joined = heuristic_query("And it?", chained)
    assert joined.endswith("And it?") and len(joined) < 200


@pytest.mark.parametrize(
    "reply",
    [
        "Sure, here is the query:\n\nTraceMonkey trace compilation",
        "查询：\n“TraceMonkey trace compilation”",
    ],
)
def test_a_preamble_before_the_query_is_skipped(reply: str) -> None:
    engine = FakeEngine(script=lambda prompt: reply)
    query = standalone_query("Why?", engine=engine, history=HISTORY, previous_query="hot loops")
    assert query == "TraceMonkey trace compilation"


def test_the_model_rewrite_is_used_and_shares_the_chat_prefix() -> None:
    engine = FakeEngine(script=lambda prompt: "Query: TraceMonkey trace compilation\nextra")
    query = standalone_query(
        "How is it compiled?", engine=engine, history=HISTORY, previous_query="hot loops"
    )
    assert query == "TraceMonkey trace compilation"
    chat_so_far = build_messages(PromptStyle.CHAT, HISTORY, "next question")[:-1]
    assert engine.prompts[0].startswith(
        engine.template.render(chat_so_far, add_generation_prompt=False)
    )
    assert engine.params[0].temperature == 0.0 and engine.params[0].max_tokens <= 40


@pytest.mark.parametrize("reply", ["", "   \n", "x" * 2000])
def test_unusable_rewrites_fall_back_to_the_rule(reply: str) -> None:
    engine = FakeEngine(script=lambda prompt: reply)
    query = standalone_query("Why?", engine=engine, history=HISTORY, previous_query="hot loops")
    assert query == "hot loops Why?"


def test_a_failing_model_falls_back_to_the_rule() -> None:
    def broken(prompt: str) -> str:
        raise GenerationError("boom")

    engine = FakeEngine(script=broken)
    query = standalone_query("Why?", engine=engine, history=HISTORY, previous_query="hot loops")
    assert query == "hot loops Why?"


def test_first_questions_and_disabled_models_do_not_call_the_model() -> None:
    engine = FakeEngine()
    assert standalone_query("Why?", engine=engine, history=[], previous_query=None) == "Why?"
    assert engine.prompts == []
    assert standalone_query("Why?", engine=None, history=HISTORY, previous_query="loops") == (
        "loops Why?"
    )


def test_the_rewrite_request_names_the_new_question_not_the_last_one_in_history() -> None:
    engine = FakeEngine(script=lambda prompt: "新问题：TraceMonkey 的编译方式")
    query = standalone_query(
        "它是怎么编译的？", engine=engine, history=HISTORY, previous_query="hot loops"
    )
    assert query == "TraceMonkey 的编译方式"
    assert engine.prompts[0].rstrip().endswith("它是怎么编译的？<|im_end|>\n<|im_start|>assistant")


def test_a_cancelled_rewrite_is_not_searched() -> None:
    cancel = threading.Event()
    engine = FakeEngine(script=lambda prompt: "TraceMonkey trace compilation in detail")
    engine.on_token = lambda index: cancel.set() if index == 2 else None
    query = standalone_query(
        "How is it compiled?",
        engine=engine,
        history=HISTORY,
        previous_query="hot loops",
        cancel=cancel,
    )
    assert query == "hot loops How is it compiled?"


def test_a_follow_up_keeps_its_topic_when_no_history_fits_the_prompt() -> None:
    engine = FakeEngine()
    query = standalone_query("Why?", engine=engine, history=[], previous_query="trace trees")
    assert query == "trace trees Why?" and engine.prompts == []
