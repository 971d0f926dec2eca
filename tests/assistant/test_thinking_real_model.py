"""Thinking through real llama.cpp with a real instruct model (SmolLM2-135M-Instruct, ChatML).

SmolLM2 has no thinking mode of its own, so it gets a thinking template of the kind some
reasoners ship: thinking on opens ``<think>`` in the prompt (a scripted prefix the model then
continues), thinking off answers after MiniCPM's empty block. What it writes inside the block is
its own; the tests check where the pipeline puts it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.events import ThinkingReceived, TokenReceived
from models.config import EngineConfig
from models.runtime import LlamaEngine
from models.store import ModelStore
from models.templates import NO_THINKING, JinjaTemplate
from tests.assistant.test_service import finished, make_service
from tests.fixtures_models import smollm2_gguf

OPENS_THINKING = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking %}<think>\n{% else %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaEngine]:
    path = smollm2_gguf()
    model = ModelStore(Path(tmp_path_factory.mktemp("models"))).resolve(str(path))
    engine = LlamaEngine.load(model, EngineConfig(seed=11, max_context=2048))
    engine.template = JinjaTemplate(OPENS_THINKING, eos_token="<|im_end|>")
    yield engine
    engine.close()


@pytest.fixture
def prompts(smollm2: LlamaEngine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The prompts the real engine is given (it still generates them itself)."""
    seen: list[str] = []
    stream = smollm2.stream

    def recording(prompt: str, *args: object, **kwargs: object) -> Iterator[object]:
        seen.append(str(prompt))
        return stream(prompt, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(smollm2, "stream", recording)
    return seen


def test_real_thinking_is_routed_apart_and_kept_out_of_answer_and_history(
    smollm2: LlamaEngine, prompts: list[str]
) -> None:
    service = make_service(
        smollm2,
        use_documents=False,
        condense_follow_ups=False,
        temperature=0.0,
        answer_tokens=24,
        thinking_tokens=24,
    )
    events = list(service.ask("What is the capital of France?", think=True))
    done = finished(events)
    assert prompts[-1].endswith("<|im_start|>assistant\n<think>\n")
    thought = "".join(e.text for e in events if isinstance(e, ThinkingReceived))
    shown = "".join(e.text for e in events if isinstance(e, TokenReceived))
    assert thought.strip() and thought == done.thinking
    assert shown == done.answer and "<think>" not in shown and "</think>" not in shown
    assert 0 < done.thinking_tokens <= done.usage.completion_tokens <= 48
    if not done.answer.strip():  # the model used the whole reserve thinking: no answer yet
        assert done.incomplete

    stored = service.get_conversation(done.conversation_id).messages[-1]
    assert stored.text == done.answer and done.thinking.strip() not in stored.text

    list(service.ask("And of Italy?", conversation_id=done.conversation_id))
    assert done.thinking.strip() not in prompts[-1]
    assert prompts[-1].endswith(NO_THINKING)


def test_with_thinking_off_the_real_model_answers_after_the_empty_block(
    smollm2: LlamaEngine, prompts: list[str]
) -> None:
    service = make_service(smollm2, use_documents=False, temperature=0.0, answer_tokens=16)
    done = finished(service.ask("What is the capital of France?"))
    assert prompts[-1].endswith("<|im_start|>assistant\n" + NO_THINKING)
    assert done.answer.strip() and not done.thinking_mode
    assert "<think>" not in done.answer
