"""Thinking in the chat pipeline: shown apart, never the answer, never saved, cited or recalled.

The scripted engine is enough here (the test is about where the pipeline routes the reply; its
tokenizer splits ``<think>`` into ``<``, ``think``, ``>``, so tags always span tokens). The real
model runs the same path in ``test_thinking_real_model.py``.
"""

from __future__ import annotations

from assistant.events import AnswerFinished, ThinkingReceived, TokenReceived
from models.templates import NO_THINKING, ChatMLTemplate
from tests.assistant.fakes import FakeEngine
from tests.assistant.test_service import finished, make_service

THOUGHT = "The passages say loops become traces [2]; cite the first one."
REPLY = f"<think>\n{THOUGHT}\n</think>\n\nHot loops become traces [1]."


def _thinker(reply: str = REPLY) -> FakeEngine:
    return FakeEngine(script=lambda prompt: reply, template=ChatMLTemplate(can_think=True))


def test_thinking_streams_apart_and_only_the_answer_is_kept_and_cited() -> None:
    engine = _thinker()
    service = make_service(engine, answer_tokens=100, thinking_tokens=200)
    events = list(service.ask("How are loops compiled?", think=True))
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingReceived))
    answer_text = "".join(e.text for e in events if isinstance(e, TokenReceived))
    assert thinking.strip() == THOUGHT and "<think>" not in answer_text + thinking
    done = finished(events)
    assert done.answer.strip() == "Hot loops become traces [1]." == answer_text.strip()
    assert done.thinking.strip() == THOUGHT and done.thinking_mode and done.thinking_tokens > 0
    assert [source.number for source in done.sources] == [1]  # [2] was only thought
    assert engine.params[-1].max_tokens == 300  # the answer's reserve plus the thinking's
    assert not engine.prompts[-1].endswith(NO_THINKING)

    stored = service.get_conversation(done.conversation_id).messages[-1]
    assert stored.text == done.answer and THOUGHT not in stored.text
    assert [source.number for source in stored.sources] == [1]
    assert stored.thinking == done.thinking  # kept apart, to be shown folded
    assert service.list_conversations("cite the first one") == []  # not searched
    exported = service.export_conversation(done.conversation_id, "md")
    assert f"<details><summary>Thinking</summary>\n\n{THOUGHT}\n\n</details>" in exported

    list(service.ask("And nested loops?", conversation_id=done.conversation_id))
    assert THOUGHT not in engine.prompts[-1]  # never in the next turn's history
    assert engine.prompts[-1].endswith("<|im_start|>assistant\n" + NO_THINKING)


def test_without_think_the_prompt_says_no_thinking_and_unasked_thinking_is_still_split() -> None:
    engine = _thinker()
    service = make_service(engine, answer_tokens=100, thinking_tokens=200)
    done = finished(service.ask("How are loops compiled?"))
    assert engine.prompts[-1].endswith(NO_THINKING) and engine.params[-1].max_tokens == 100
    assert not done.thinking_mode
    assert done.thinking.strip() == THOUGHT and THOUGHT not in done.answer


def test_a_reply_cut_off_inside_its_thinking_has_no_answer_and_is_incomplete() -> None:
    engine = _thinker("<think>\nfirst I will read every passage and then")
    service = make_service(engine)
    done = finished(service.ask("How are loops compiled?", think=True))
    assert done.answer == "" and done.incomplete and done.thinking.startswith("\nfirst I will")
    stored = service.get_conversation(done.conversation_id).messages[-1]
    assert stored.text == "" and stored.incomplete

    list(service.ask("Try again?", conversation_id=done.conversation_id))
    assert "first I will" not in engine.prompts[-1]


def test_a_model_without_a_thinking_mode_answers_as_before() -> None:
    engine = FakeEngine(script=lambda prompt: "Hot loops become traces [1].")
    service = make_service(engine, answer_tokens=100, thinking_tokens=200)
    done: AnswerFinished = finished(service.ask("How are loops compiled?", think=True))
    assert not done.thinking_mode and done.thinking == ""
    assert engine.params[-1].max_tokens == 100 and NO_THINKING not in engine.prompts[-1]


def test_the_thinking_reserve_is_bounded_and_gives_way_before_the_answer() -> None:
    from assistant.budget import split_context

    roomy = split_context(
        4096,
        answer_tokens=512,
        thinking_tokens=2048,
        evidence_share=0.5,
        fixed_tokens=200,
        use_evidence=True,
    )
    assert (roomy.answer, roomy.thinking, roomy.output) == (512, 1024, 1536)  # a quarter at most
    assert roomy.fixed + roomy.output + roomy.evidence + roomy.history == 4096
    tight = split_context(
        1024,
        answer_tokens=256,
        thinking_tokens=256,
        evidence_share=0.5,
        fixed_tokens=600,
        use_evidence=True,
    )
    assert tight.answer == 256 and tight.thinking == 1024 - 600 - 256
    assert tight.evidence == tight.history == 0
