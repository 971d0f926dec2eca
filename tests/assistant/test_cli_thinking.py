"""``ask --think`` and ``chat``'s ``/think``: the thinking on stderr, the answer alone on stdout."""

from __future__ import annotations

import io
import json

import pytest

from assistant.cli import main
from assistant.service import AssistantService
from models.templates import ChatMLTemplate
from tests.assistant.fakes import FakeEngine, FakeLibrary, hit

THOUGHT = "Passage one answers it \x1b[31mred\x1b[0m."
REPLY = f"<think>{THOUGHT}</think>\n\nTrace trees record loops [1]."


@pytest.fixture(autouse=True)
def thinker(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    """A scripted model with a thinking mode (the test is about the output, not the model)."""
    engine = FakeEngine(script=lambda prompt: REPLY, template=ChatMLTemplate(can_think=True))
    library = FakeLibrary([hit(1, "Trace trees record hot loops.", file="/docs/paper.pdf")])
    monkeypatch.setattr(AssistantService, "_load", lambda self, name, progress, config: engine)
    monkeypatch.setattr(AssistantService, "_open_library", lambda self: library)
    return engine


def test_ask_think_prints_the_thinking_apart_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--think", "What are trace trees?"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("Trace trees record loops [1].\n")
    assert "Passage one" not in captured.out and "think>" not in captured.out
    assert "Thinking: Passage one answers it" in captured.err
    assert "(end of thinking)" in captured.err and "\x1b[31m" not in captured.err


def test_ask_json_has_a_separate_thinking_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--json", "--think", "What are trace trees?"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["answer"] == "Trace trees record loops [1]."
    assert result["thinking"].startswith("Passage one answers it")
    assert result["thinking_mode"] is True and result["usage"]["thinking_tokens"] > 0


def test_chat_think_toggles_for_the_next_questions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, thinker: FakeEngine
) -> None:
    script = "First?\n/think\nSecond?\n/think\nThird?\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    assert main(["chat"]) == 0
    captured = capsys.readouterr()
    assert "(thinking on" in captured.out and "(thinking off)" in captured.out
    assert captured.out.count("Sources:") == 3
    assert "Passage one" not in captured.out
    thinking = [p for p in thinker.prompts if p.endswith("<|im_start|>assistant\n")]
    assert len(thinking) == 1 and "Second?" in thinking[0]  # only it was let to think


def test_think_with_a_model_that_cannot_says_so(
    capsys: pytest.CaptureFixture[str], thinker: FakeEngine
) -> None:
    thinker.template = ChatMLTemplate()
    thinker.script = lambda prompt: "Trace trees record loops [1]."
    assert main(["ask", "--think", "What are trace trees?"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("Trace trees record loops [1].")
    assert "no thinking mode" in captured.err
