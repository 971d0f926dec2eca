"""The grounded chat pipeline with answers from a real model server (llama-cpp-python's server
serving SmolLM2-135M-Instruct): grounded turns with citations, follow-ups, refusals, cancelling,
a server that is down or restarts mid-conversation, and ``doctor`` naming the backend."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator

import pytest

from assistant.cli import main
from assistant.events import (
    AnswerFailed,
    AnswerFinished,
    ChatEvent,
    RetrievalStarted,
    TokenReceived,
)
from assistant.locations import Locations
from assistant.service import AssistantService
from assistant.settings import ChatConfig, Settings
from models.config import ServerConfig
from rag.library import Library
from tests.models.model_server import (
    SMOLLM2_ALIAS,
    LlamaCppServer,
    free_port,
    own_smollm2_server,
    smollm2_server,
)

__all__ = ["own_smollm2_server", "smollm2_server"]  # fixtures

pytestmark = pytest.mark.slow

QUICK = ChatConfig(answer_tokens=24, evidence_tokens=320, temperature=0.0)
"""Short prompts and deterministic answers: the pipeline is under test, not the model's prose."""


def service_for(base_url: str, locations: Locations, library: Library) -> AssistantService:
    settings = Settings(llm=ServerConfig(base_url=base_url), chat=QUICK)
    return AssistantService(settings, locations, library=library)


@pytest.fixture
def service(
    smollm2_server: LlamaCppServer, locations: Locations, library: Library
) -> Iterator[AssistantService]:
    service = service_for(smollm2_server.base_url, locations, library)
    yield service
    service.close()


def finished(events: Iterable[ChatEvent]) -> AnswerFinished:
    done = [event for event in events if isinstance(event, AnswerFinished)]
    assert len(done) == 1, done
    return done[0]


def failed(events: Iterable[ChatEvent]) -> AnswerFailed:
    last = list(events)[-1]
    assert isinstance(last, AnswerFailed), last
    return last


def test_a_grounded_turn_answers_from_the_documents_on_the_server(
    service: AssistantService, smollm2_server: LlamaCppServer
) -> None:
    answer = finished(service.ask("How does TraceMonkey start a trace tree?"))
    assert answer.grounded and answer.answer.strip()
    assert any(source.file.endswith("tracemonkey.pdf") for source in answer.evidence)
    assert {s.number for s in answer.sources} <= {s.number for s in answer.evidence}
    assert answer.usage.prompt_tokens > 100 and 0 < answer.usage.completion_tokens <= 24
    status = service.model_status()
    assert status is not None and status.server_url == smollm2_server.base_url
    assert (status.name, status.backend) == (SMOLLM2_ALIAS, "server")
    question, reply = service.get_conversation(answer.conversation_id).messages
    assert reply.model == SMOLLM2_ALIAS and reply.text == answer.answer
    assert question.prompt_text is not None
    assert answer.evidence[0].text[:80] in question.prompt_text  # the passages were sent


def test_a_follow_up_is_searched_as_a_standalone_question(service: AssistantService) -> None:
    first = finished(service.ask("How does TraceMonkey start a trace tree?"))
    events = list(
        service.ask("And what are its side exits?", conversation_id=first.conversation_id)
    )
    searches = [event for event in events if isinstance(event, RetrievalStarted)]
    assert searches[0].rewritten and searches[0].query != "And what are its side exits?"
    assert finished(events).grounded


def test_a_question_the_documents_do_not_cover_is_refused(service: AssistantService) -> None:
    answer = finished(service.ask("What was Tesla's revenue in 2023?"))
    assert not answer.grounded and answer.answer.startswith("Your documents don't mention")
    assert answer.usage.completion_tokens == 0  # the server was not asked to make it up


def test_cancel_mid_answer_keeps_the_partial_answer(service: AssistantService) -> None:
    cancel = threading.Event()
    events: list[ChatEvent] = []
    for event in service.ask("How does TraceMonkey start a trace tree?", cancel=cancel):
        events.append(event)
        if isinstance(event, TokenReceived) and len(events) > 1:
            cancel.set()
    answer = finished(events)
    assert answer.incomplete
    stored = service.get_conversation(answer.conversation_id).messages[-1]
    assert stored.incomplete and stored.text == answer.answer


def test_a_server_that_is_down_fails_the_turn_and_keeps_the_question(
    locations: Locations, library: Library
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    service = service_for(url, locations, library)
    failure = failed(service.ask("How does TraceMonkey start a trace tree?"))
    assert url in failure.message and "cannot reach" in failure.message
    messages = service.get_conversation(failure.conversation_id).messages
    assert [(m.role, m.text) for m in messages] == [
        ("user", "How does TraceMonkey start a trace tree?")
    ]
    service.close()


def test_a_server_restart_mid_conversation(
    own_smollm2_server: LlamaCppServer, locations: Locations, library: Library
) -> None:
    service = service_for(own_smollm2_server.base_url, locations, library)
    first = finished(service.ask("How does TraceMonkey start a trace tree?"))
    conversation = first.conversation_id
    own_smollm2_server.stop()
    failure = failed(
        service.ask("What is a side exit in TraceMonkey?", conversation_id=conversation)
    )
    assert own_smollm2_server.base_url in failure.message
    own_smollm2_server.start()
    last = finished(
        service.ask("What is a side exit in TraceMonkey?", conversation_id=conversation)
    )
    messages = service.get_conversation(conversation).messages
    assert [m.role for m in messages] == ["user", "assistant", "user", "user", "assistant"]
    assert messages[1].text == first.answer  # the history is as it was
    assert messages[4].text == last.answer and last.answer.strip()
    service.close()


def test_doctor_names_the_model_server_and_what_it_serves(
    smollm2_server: LlamaCppServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MINICPM_ASSISTANT_LLM__BASE_URL", smollm2_server.base_url)
    main(["doctor", "--json"])
    checks = {check["name"]: check for check in json.loads(capsys.readouterr().out)["checks"]}
    answers = checks["Answers from"]
    assert answers["status"] == "ok", answers
    assert answers["data"] | {"models": None} == {
        "backend": "server",
        "base_url": smollm2_server.base_url,
        "model": SMOLLM2_ALIAS,
        "models": None,
        "n_ctx": 2048,
        "context_source": "default",
        "chat_template": None,  # llama-cpp-python's server does not show its template
        "tokenizer": "/extras/tokenize",
        "parallel": 1,  # it answers one request at a time
    }


def test_doctor_fails_when_the_model_server_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv("MINICPM_ASSISTANT_LLM__BASE_URL", url)
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert f"✗ Answers from: cannot reach the model server at {url}" in out
