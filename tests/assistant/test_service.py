"""The chat pipeline with a scripted engine and library: persistence, grounding, KV reuse."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from assistant.budget import CPU_EVIDENCE_TOKENS
from assistant.events import (
    AnswerFailed,
    AnswerFinished,
    ChatEvent,
    RetrievalFinished,
    RetrievalStarted,
    TokenReceived,
    TurnStarted,
)
from assistant.locations import Locations
from assistant.service import AssistantService
from assistant.settings import Settings, load_settings
from models.config import EngineConfig
from models.engine import OffloadInfo, TextEngine
from models.store import LocalModel, ModelStore
from models.templates import ChatMLTemplate, CompletionTemplate, MiniCPM2Template
from rag.types import Relevance
from tests.assistant.fakes import FakeEngine, FakeLibrary, fake_tokens, hit

PASSAGES = [
    hit(1, "TraceMonkey records hot loops as traces. Traces are compiled to machine code.", page=2),
    hit(2, "Trace trees connect a loop's traces. Side exits return to the interpreter.", page=3),
    hit(3, "Nested loops form nested trace trees.", page=5, score=0.4),
]


def make_service(
    engine: TextEngine | None = None, library: FakeLibrary | None = None, **chat: object
) -> AssistantService:
    settings = Settings.model_validate({"chat": chat})
    return AssistantService(
        settings,
        Locations.default(),
        engine=engine or FakeEngine(),
        library=library or FakeLibrary(list(PASSAGES)),  # type: ignore[arg-type]
    )


def finished(events: Iterable[ChatEvent]) -> AnswerFinished:
    done = [e for e in events if isinstance(e, AnswerFinished)]
    assert len(done) == 1
    return done[0]


def test_a_turn_streams_cites_and_persists() -> None:
    engine = FakeEngine(
        script=lambda prompt: "Hot loops become traces [1], linked in trees [2][7]."
    )
    service = make_service(engine)
    events = list(service.ask("How does TraceMonkey compile loops?"))
    kinds = [type(e) for e in events]
    assert kinds[:3] == [TurnStarted, RetrievalStarted, RetrievalFinished]
    assert TokenReceived in kinds
    answer = finished(events)
    assert answer.answer == "Hot loops become traces [1], linked in trees [2][7]."
    assert [(s.number, s.page) for s in answer.sources] == [(1, "2"), (2, "3")]  # [7] dropped
    assert [s.number for s in answer.evidence] == [1, 2, 3]
    assert answer.grounded and not answer.incomplete

    stored = service.get_conversation(answer.conversation_id)
    question, reply = stored.messages
    assert question.text == "How does TraceMonkey compile loops?"
    assert (
        question.prompt_text is not None
        and "> TraceMonkey records hot loops" in question.prompt_text
    )
    assert reply.text == answer.answer
    assert [s.number for s in reply.sources] == [1, 2]
    assert reply.usage == answer.usage and reply.model == "fake-model"
    assert stored.collection == "default"


def test_nothing_relevant_says_so_without_the_model() -> None:
    engine = FakeEngine()
    library = FakeLibrary([hit(1, "Unrelated text.", score=0.05)])
    answer = finished(make_service(engine, library).ask("What is the capital of France?"))
    assert "couldn't find" in answer.answer
    assert not answer.grounded and answer.sources == []
    assert engine.prompts == []


def test_nothing_relevant_in_chinese_is_said_in_chinese() -> None:
    library = FakeLibrary([hit(1, "Unrelated text.", score=0.05)])
    answer = finished(make_service(library=library).ask("法国的首都是哪里？"))
    assert "文档中没有找到" in answer.answer


def test_general_answers_when_allowed() -> None:
    engine = FakeEngine(script=lambda prompt: "Paris.")
    library = FakeLibrary([hit(1, "Unrelated text.", score=0.05)])
    answer = finished(
        make_service(engine, library).ask("What is the capital of France?", allow_general=True)
    )
    assert answer.answer == "Paris." and not answer.grounded
    assert "Nothing relevant was found" in engine.prompts[0]
    assert "Unrelated text" not in engine.prompts[0]


def test_no_rag_skips_the_library() -> None:
    library = FakeLibrary(list(PASSAGES))
    events = list(make_service(library=library).ask("Hello there", use_documents=False))
    assert library.queries == []
    assert not any(isinstance(e, RetrievalStarted) for e in events)
    assert not finished(events).grounded


def test_a_failed_generation_keeps_the_question_and_the_partial_answer() -> None:
    service = make_service(FakeEngine(script=lambda p: "one two three four five six"))
    first = finished(service.ask("How does TraceMonkey compile loops?"))
    service._engine = FakeEngine(script=lambda p: "alpha beta gamma delta", fail_after_tokens=3)
    events = list(service.ask("And side exits?", conversation_id=first.conversation_id))
    failure = events[-1]
    assert isinstance(failure, AnswerFailed)
    assert failure.partial_answer == "alpha beta"
    messages = service.get_conversation(first.conversation_id).messages
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[1].text == "one two three four five six" and not messages[1].incomplete
    assert messages[2].text == "And side exits?"
    assert messages[3].text == "alpha beta" and messages[3].incomplete
    assert [s.number for s in messages[3].evidence] == [1, 2, 3]  # what it was shown is kept


def test_cancel_keeps_the_partial_answer_marked_incomplete() -> None:
    cancel = threading.Event()
    engine = FakeEngine(script=lambda p: "one two three four five")
    engine.on_token = lambda index: cancel.set() if index == 4 else None
    answer = finished(make_service(engine).ask("Question about loops?", cancel=cancel))
    assert answer.incomplete and answer.answer == "one two three"
    stored = make_service().get_conversation(answer.conversation_id).messages[-1]
    assert stored.incomplete and stored.text == "one two three"


def test_abandoning_the_stream_keeps_the_partial_answer() -> None:
    service = make_service(FakeEngine(script=lambda p: "one two three four five"))
    events = service.ask("Question about loops?")
    conversation_id = ""
    for event in events:
        if isinstance(event, TurnStarted):
            conversation_id = event.conversation_id
        if isinstance(event, TokenReceived) and event.text.strip() == "two":
            break
    events.close()
    stored = service.get_conversation(conversation_id).messages[-1]
    assert stored.incomplete and stored.text == "one two"


@pytest.mark.parametrize(
    "template", [ChatMLTemplate(), MiniCPM2Template(), CompletionTemplate()], ids=lambda t: t.name
)
def test_each_prompt_starts_with_the_previous_prompt_and_answer(template: object) -> None:
    # A completion prompt ends with "Answer:", so the model's reply starts with a space.
    space = " " if template.name == "completion" else ""  # type: ignore[attr-defined]
    replies = iter(space + r for r in ["First answer [1].", "Second [2].", "Third [1].", "Fourth."])
    engine = FakeEngine(script=lambda prompt: next(replies), template=template, n_ctx=8192)  # type: ignore[arg-type]
    service = make_service(engine, condense_follow_ups=False)
    conversation_id = None
    answers = []
    for question in ["How are loops compiled?", "What are side exits?", "And nesting?", "Why?"]:
        answer = finished(service.ask(question, conversation_id=conversation_id))
        conversation_id = answer.conversation_id
        answers.append(answer.answer)
    for index, (before, reply) in enumerate(zip(engine.prompts, answers, strict=False)):
        after = engine.prompts[index + 1] if index + 1 < len(engine.prompts) else None
        if after is None:
            break
        assert after.startswith(before + reply)
        # Only what follows the cached prompt and answer is evaluated.
        new_part = after[len(before + reply) :]
        assert engine.evaluated[index + 1] <= engine.count_tokens(new_part) + 1


def test_thirty_turns_on_a_2048_context_never_overflow() -> None:
    long_passage = " ".join(["Trace trees record loops and side exits in detail."] * 30)
    library = FakeLibrary([hit(n, long_passage, page=n) for n in range(1, 6)])
    engine = FakeEngine(
        script=lambda prompt: " ".join(["The", "answer", "is", "long", "[1]."] * 40), n_ctx=2048
    )
    service = make_service(engine, library, answer_tokens=256)
    conversation_id = None
    for turn in range(30):
        events = list(
            service.ask(f"Question {turn}: what about loops?", conversation_id=conversation_id)
        )
        answer = finished(events)  # a GenerationError from overflow would be AnswerFailed
        conversation_id = answer.conversation_id
        assert f"Question {turn}: what about loops?" in engine.prompts[-1]
    assert len(engine.prompts) == 30
    for prompt, params in zip(engine.prompts, engine.params, strict=True):
        assert engine.count_tokens(prompt) + params.max_tokens <= 2048
    assert conversation_id is not None
    messages = service.get_conversation(conversation_id).messages
    assert len(messages) == 60  # nothing lost on disk, only left out of the prompt
    # With a warm cache no later turn evaluates much more than the first did.
    assert max(engine.evaluated[1:]) <= 1.3 * engine.evaluated[0]


def test_follow_up_is_searched_as_a_standalone_query() -> None:
    library = FakeLibrary(list(PASSAGES))
    replies = iter(["Traces of hot loops [1].", "TraceMonkey side exits", "They return [2]."])
    engine = FakeEngine(script=lambda prompt: next(replies))
    service = make_service(engine, library)
    first = finished(service.ask("How does TraceMonkey compile hot loops?"))
    events = list(
        service.ask("And what happens at its side exits?", conversation_id=first.conversation_id)
    )
    started = next(e for e in events if isinstance(e, RetrievalStarted))
    assert started.query == "TraceMonkey side exits" and started.rewritten
    assert library.queries[-1] == "TraceMonkey side exits"
    stored = service.get_conversation(first.conversation_id).messages[2]
    assert stored.searched_query == "TraceMonkey side exits"


def test_resuming_uses_the_conversation_collection() -> None:
    service = make_service()
    first = finished(service.ask("How are loops compiled?", collection="papers"))
    assert service.get_conversation(first.conversation_id).collection == "papers"
    reopened = make_service()
    library = reopened._library
    assert isinstance(library, FakeLibrary)
    calls: list[str] = []
    original = library.search

    def spy(query: str, *, collection: str = "default", **kwargs: object) -> list:
        calls.append(collection)
        return original(query, collection=collection, **kwargs)

    library.search = spy
    finished(
        reopened.ask("What are side exits in trace trees?", conversation_id=first.conversation_id)
    )
    assert calls == ["papers"]


def test_export_markdown_lists_questions_answers_and_sources() -> None:
    engine = FakeEngine(script=lambda prompt: "Hot loops become traces [1].")
    service = make_service(engine)
    answer = finished(service.ask("How does TraceMonkey compile loops?"))
    markdown = service.export_conversation(answer.conversation_id, "md")
    assert "## You" in markdown and "How does TraceMonkey compile loops?" in markdown
    assert "Hot loops become traces [1]." in markdown
    assert "[1] paper.pdf, page 2" in markdown
    assert "Passages given to the model" not in markdown


def test_export_lists_the_passages_an_uncited_answer_was_given() -> None:
    service = make_service(FakeEngine(script=lambda prompt: "Hot loops become traces."))
    answer = finished(service.ask("How does TraceMonkey compile loops?"))
    markdown = service.export_conversation(answer.conversation_id, "md")
    assert "Passages given to the model" in markdown
    assert "- [2] paper.pdf, page 3" in markdown


def test_an_unclear_question_is_searched_again_with_the_conversation_topic() -> None:
    class TopicLibrary(FakeLibrary):
        def judge(self, hits: object, query: str, collection: str = "default") -> Relevance:
            return Relevance("TraceMonkey" in self.queries[-1])

    library = TopicLibrary(list(PASSAGES))
    service = make_service(FakeEngine(), library)
    first = finished(service.ask("How does TraceMonkey compile hot loops?"))
    events = list(service.ask("What happens at side exits?", conversation_id=first.conversation_id))
    searched = [e.query for e in events if isinstance(e, RetrievalStarted)]
    assert searched == [
        "What happens at side exits?",
        "How does TraceMonkey compile hot loops? What happens at side exits?",
    ]
    assert finished(events).grounded
    stored = service.get_conversation(first.conversation_id).messages[2]
    assert stored.searched_query == searched[-1]


def test_a_resumed_conversation_reloads_the_model_it_ran_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded: list[str | None] = []

    def load(
        self: AssistantService, name: str | None, progress: object, config: object
    ) -> FakeEngine:
        loaded.append(name)
        return FakeEngine(model=LocalModel(name or "default", Path(f"{name}.gguf"), None, False))

    monkeypatch.setattr(AssistantService, "_load", load)
    locations = Locations.default().ensure()
    (locations.models_dir / "other-model.gguf").write_bytes(b"")

    def service() -> AssistantService:
        return AssistantService(Settings(), locations, library=FakeLibrary(list(PASSAGES)))  # type: ignore[arg-type]

    first = service()
    first.switch_model("other-model")
    conversation_id = finished(first.ask("How are loops compiled?")).conversation_id
    assert first.get_conversation(conversation_id).model == "other-model"

    finished(service().ask("And side exits?", conversation_id=conversation_id))
    assert loaded[-1] == "other-model"
    finished(service().ask("A new conversation about loops?"))
    assert loaded[-1] is None  # the default model for new conversations


def test_a_question_longer_than_the_context_fails_clearly_and_is_kept() -> None:
    engine = FakeEngine(n_ctx=512)
    service = make_service(engine)
    question = "Why " + "really " * 600 + "?"
    events = list(service.ask(question))
    failure = events[-1]
    assert isinstance(failure, AnswerFailed) and failure.title == "Question too long"
    assert engine.prompts == []
    [stored] = service.get_conversation(failure.conversation_id).messages
    assert stored.text == question.strip()


def test_passages_crowded_out_by_a_long_question_are_not_reported_as_missing() -> None:
    engine = FakeEngine(n_ctx=512)
    service = make_service(engine)
    events = list(service.ask("Why " + "really " * 60 + "?"))
    failure = events[-1]
    assert isinstance(failure, AnswerFailed) and failure.title == "Question too long"
    assert "passages about this were found" in failure.message and engine.prompts == []
    assert not any(isinstance(e, AnswerFinished) for e in events)


def test_a_base_model_stops_before_writing_the_next_answer_itself() -> None:
    engine = FakeEngine(template=CompletionTemplate())
    finished(make_service(engine).ask("How are loops compiled?"))
    assert "\nAnswer:" in engine.params[-1].stop
    assert set(CompletionTemplate.stop) <= set(engine.params[-1].stop)


def test_reloading_the_same_model_frees_it_first_and_takes_a_gpu_override(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[str] = []

    class Engine(FakeEngine):
        def close(self) -> None:
            events.append(f"close {self.model.name}")

    def load(
        self: AssistantService, name: str, progress: object, config: EngineConfig
    ) -> FakeEngine:
        model = ModelStore(locations.models_dir).resolve(name)
        events.append(f"load {model.name} layers={config.n_gpu_layers}")
        return Engine(model=model)

    monkeypatch.setattr(AssistantService, "_load", load)
    locations = Locations.default().ensure()
    for name in ("first", "second"):
        (locations.models_dir / f"{name}.gguf").write_bytes(b"")
    service = AssistantService(Settings(), locations, library=FakeLibrary())  # type: ignore[arg-type]
    service.switch_model("first")
    service.switch_model(str(locations.models_dir / "first.gguf"), n_gpu_layers=0)
    service.switch_model("second")
    assert events == [
        "load first layers=auto",
        "close first",  # the same file: freed before its reload
        "load first layers=0",
        "load second layers=auto",  # another model: loaded before the old one goes
        "close first",
    ]
    assert service.settings.engine.n_gpu_layers == "auto"  # the override was for that reload


def test_a_chosen_theme_is_saved_without_touching_other_settings() -> None:
    locations = Locations.default().ensure()
    locations.config_file.write_text(
        '# my settings\n[engine]\nn_gpu_layers = 0\n\n[ui]\ntheme = "nord"\n'
    )
    service = make_service()
    service.save_ui_theme("gruvbox")
    reread = load_settings(locations.config_file)
    assert reread.ui.theme == "gruvbox" and service.settings.ui.theme == "gruvbox"
    assert reread.engine.n_gpu_layers == 0
    assert locations.config_file.read_text().startswith("# my settings\n")


def test_workers_asking_for_the_library_at_once_open_it_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[FakeLibrary] = []

    def slow_library(locations: Locations, config: object, store: object = None) -> FakeLibrary:
        time.sleep(0.05)
        opened.append(FakeLibrary(list(PASSAGES)))
        return opened[-1]

    monkeypatch.setattr("assistant.service.open_library", slow_library)
    service = AssistantService(Settings(), Locations.default(), engine=FakeEngine())
    workers = [threading.Thread(target=service.collections) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(opened) == 1


@pytest.mark.parametrize(("gpu_layers", "bounded"), [(0, True), (41, False)])
def test_evidence_is_bounded_when_the_model_runs_on_the_cpu(gpu_layers: int, bounded: bool) -> None:
    long_passages = [
        hit(n, " ".join(f"Passage {n} sentence {i} about trace trees." for i in range(40)))
        for n in range(1, 9)
    ]
    engine = FakeEngine(n_ctx=16384)
    engine.offload = OffloadInfo(gpu_layers, 41, "CUDA" if gpu_layers else "CPU", "test")
    service = make_service(engine, FakeLibrary(long_passages))
    answer = finished(service.ask("How are trace trees built?"))
    passage_tokens = sum(len(fake_tokens(source.text)) for source in answer.evidence)
    assert (passage_tokens <= CPU_EVIDENCE_TOKENS) == bounded
