"""The whole pipeline on real parts: CLI, SQLite, Chroma on disk, MiniLM and llama.cpp models."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.events import AnswerFinished, RetrievalFinished
from assistant.locations import Locations
from assistant.service import AssistantService
from assistant.settings import Settings
from models.config import EngineConfig
from models.runtime import LlamaEngine
from models.store import ModelStore
from rag.library import Library
from tests.assistant.conftest import CHINESE_NOTE, PLANTED

pytestmark = pytest.mark.slow

TRACE_TREE_PAGES = {"4", "5", "4-5", "5-6", "6"}
"""Where tracemonkey.pdf defines and explains trace trees (section 3, pages 4-6)."""


@pytest.fixture
def quick_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short, deterministic answers: the pipeline is under test, not the tiny model's prose."""
    monkeypatch.setenv("MINICPM_ASSISTANT_CHAT__ANSWER_TOKENS", "32")
    monkeypatch.setenv("MINICPM_ASSISTANT_CHAT__TEMPERATURE", "0")
    monkeypatch.setenv("MINICPM_ASSISTANT_ENGINE__SEED", "1")
    monkeypatch.setenv("MINICPM_ASSISTANT_ENGINE__MAX_CONTEXT", "2048")


@contextmanager
def recorded_prompts(engine: LlamaEngine) -> Iterator[list[str]]:
    """Every prompt ``engine`` is given while the block runs."""
    prompts: list[str] = []
    stream = engine.stream

    def recording(prompt: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        prompts.append(prompt)
        return stream(prompt, *args, **kwargs)  # type: ignore[arg-type]

    engine.stream = recording  # type: ignore[method-assign]
    try:
        yield prompts
    finally:
        del engine.stream


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ask_json_answers_from_tracemonkey_with_file_and_page(
    locations: Locations, demo_model: Path, quick_answers: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        ["--model", str(demo_model), "ask", "--json", "What is a trace tree in TraceMonkey?"],
        capsys,
    )
    assert code == 0, err
    assert "demo model" in err and "models pull" in err  # said once, on stderr
    result = json.loads(out)
    assert result["answer"]
    assert result["searched_query"] == "What is a trace tree in TraceMonkey?"
    papers = [s for s in result["sources"] if s["file"].endswith("tracemonkey.pdf")]
    assert len(papers) >= 2  # the planted note is about trace trees too, and may rank in between
    assert papers[0]["page"] in TRACE_TREE_PAGES
    assert all({"file", "page", "score", "text", "cited"} <= set(s) for s in result["sources"])
    assert result["usage"]["prompt_tokens"] > 100
    assert 0 < result["usage"]["completion_tokens"] <= 32
    assert set(result["timings"]) >= {"ttft_s", "prefill_tok_s", "decode_tok_s"}

    code, out, _ = run_cli(["conversations", "show", result["conversation_id"]], capsys)
    assert code == 0
    assert "What is a trace tree in TraceMonkey?" in out and result["answer"][:20] in out


def test_chat_holds_ten_turns_and_resumes_after_restart(
    locations: Locations,
    demo_model: Path,
    quick_answers: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MINICPM_ASSISTANT_LIBRARY__TOP_K", "2")
    monkeypatch.setenv("MINICPM_ASSISTANT_CHAT__ANSWER_TOKENS", "16")
    questions = [
        "What is a trace tree in TraceMonkey?",
        "How is it formed?",
        "What happens at side exits?",
        "Why?",
        "How fast is TraceMonkey on SunSpider?",
        "And on the other benchmarks?",
        "What does the tracing JIT do with type-unstable loops?",
        "Can you explain that again?",
        "What is nested trace tree formation?",
        "What about recursion?",
    ]
    script = "\n".join([*questions[:5], "/id", *questions[5:], "/quit"]) + "\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    code, out, err = run_cli(["--model", str(demo_model), "chat"], capsys)
    assert code == 0, err
    assert err.count("demo model") == 1

    service = AssistantService(Settings(), locations)  # a restart: everything from disk
    [summary] = service.list_conversations()
    assert summary.id in out  # printed by /id
    conversation = service.get_conversation(summary.id)
    assert [m.text for m in conversation.messages if m.role == "user"] == questions
    answers = [m for m in conversation.messages if m.role == "assistant"]
    assert len(answers) == 10 and all(a.text.strip() for a in answers)
    follow_up = conversation.messages[2]  # "How is it formed?" searched with its context
    assert follow_up.searched_query is not None and "trace tree" in follow_up.searched_query
    assert any(source.file.endswith("tracemonkey.pdf") for a in answers for source in a.evidence)

    markdown = service.export_conversation(summary.id, "md")
    assert all(question in markdown for question in questions)
    exported = json.loads(service.export_conversation(summary.id, "json"))
    assert len(exported["messages"]) == 20
    assert service.list_conversations("SunSpider")[0].id == summary.id
    service.close()

    code, out, err = run_cli(
        ["--model", str(demo_model), "ask", "--json", "--conversation", summary.id[:6], "Why?"],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out)["conversation_id"] == summary.id
    assert "What about recursion?" in json.loads(out)["searched_query"]


def test_real_model_ignores_an_instruction_planted_in_a_document(
    locations: Locations, library: Library, demo_engine: LlamaEngine
) -> None:
    settings = Settings.model_validate({"chat": {"answer_tokens": 48, "temperature": 0.0}})
    service = AssistantService(settings, locations, engine=demo_engine, library=library)
    with recorded_prompts(demo_engine) as prompts:
        events = list(service.ask("What do trace trees connect?"))
    answer = next(e for e in events if isinstance(e, AnswerFinished))
    assert str(PLANTED) in [source.file for source in answer.evidence]
    planted_lines = [line for line in prompts[-1].splitlines() if "PWNED" in line]
    assert planted_lines and all(line.startswith("> ") for line in planted_lines)
    assert "PWNED" not in answer.answer.upper()
    assert answer.answer.strip()


def test_tiny_minicpm_reuses_its_kv_cache_from_turn_to_turn(
    locations: Locations, library: Library, tiny_models: dict[str, Path]
) -> None:
    model = ModelStore(locations.models_dir).add(tiny_models["q4_k_m"])
    engine = LlamaEngine.load(model, EngineConfig(seed=3, max_context=2048))
    settings = Settings.model_validate(
        {"chat": {"answer_tokens": 24, "temperature": 0.0, "condense_follow_ups": False}}
    )
    service = AssistantService(settings, locations, engine=engine, library=library)
    assert engine.template.name == "minicpm2" and service.model_status().is_minicpm  # type: ignore[union-attr]
    conversation_id = None
    finished: list[AnswerFinished] = []
    for question in [
        "What is a trace tree in TraceMonkey?",
        "How fast is TraceMonkey on SunSpider?",
        "What are side exits in trace trees?",
    ]:
        events = list(service.ask(question, conversation_id=conversation_id))
        answer = next(e for e in events if isinstance(e, AnswerFinished))
        conversation_id = answer.conversation_id
        finished.append(answer)
    engine.close()
    first, *later = finished
    assert first.usage.prompt_tokens_evaluated == first.usage.prompt_tokens
    for answer in later:
        # The system prompt and earlier turns come from the cache; only the new turn is run.
        assert answer.usage.prompt_tokens_evaluated < answer.usage.prompt_tokens
        reused = answer.usage.prompt_tokens - answer.usage.prompt_tokens_evaluated
        assert reused >= 100


def test_chinese_question_is_answered_from_the_chinese_note(
    locations: Locations, library: Library, tiny_models: dict[str, Path]
) -> None:
    model = ModelStore(locations.models_dir).add(tiny_models["chatml"])
    engine = LlamaEngine.load(model, EngineConfig(seed=3, max_context=2048))
    settings = Settings.model_validate({"chat": {"answer_tokens": 16, "temperature": 0.0}})
    service = AssistantService(settings, locations, engine=engine, library=library)
    with recorded_prompts(engine) as prompts:
        events = list(service.ask("中秋节人们吃什么？"))
    engine.close()
    retrieved = next(e for e in events if isinstance(e, RetrievalFinished))
    assert retrieved.relevant and retrieved.hits[0].file == str(CHINESE_NOTE)
    answer = next(e for e in events if isinstance(e, AnswerFinished))
    assert answer.evidence[0].file == str(CHINESE_NOTE)
    assert "月饼" in prompts[-1] and "用中文回答" in prompts[-1]
