"""A model's thinking through ``serve``: ``reasoning_content`` apart from the answer.

The app runs in-process (Starlette's test client) over a scripted thinking engine: the test is
about where the thinking goes on the wire; ``test_thinking_real_model.py`` runs the pipeline's
thinking on a real model and ``test_serve.py`` the server on one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from assistant.api.app import create_app
from assistant.settings import ServeConfig
from models.templates import NO_THINKING
from tests.assistant.fakes import FakeEngine
from tests.assistant.test_service import make_service
from tests.assistant.test_thinking import THOUGHT, _thinker


@pytest.fixture
def engine() -> FakeEngine:
    return _thinker()


@pytest.fixture
def client(engine: FakeEngine) -> Iterator[TestClient]:
    service = make_service(engine, answer_tokens=100, thinking_tokens=200)
    with TestClient(create_app(service, ServeConfig()), base_url="http://localhost") as client:
        yield client
    service.close()


def ask(think: bool, **fields: Any) -> dict[str, Any]:
    question = {"role": "user", "content": "How are loops compiled?"}
    return {"model": "default", "messages": [question], "think": think, **fields}


def test_thinking_is_reasoning_content_beside_the_answer(client: TestClient) -> None:
    completion = client.post("/v1/chat/completions", json=ask(True)).json()
    message = completion["choices"][0]["message"]
    assert message["reasoning_content"] == THOUGHT
    assert message["content"] == "Hot loops become traces [1]."
    assert [source["number"] for source in completion["sources"] if source["cited"]] == [1]


def test_streamed_thinking_comes_first_in_its_own_deltas(client: TestClient) -> None:
    with client.stream("POST", "/v1/chat/completions", json=ask(True, stream=True)) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    deltas = [json.loads(line[6:])["choices"][0]["delta"] for line in lines[:-1]]
    thinking = "".join(d.get("reasoning_content", "") for d in deltas)
    answer = "".join(d.get("content", "") for d in deltas)
    assert thinking.strip() == THOUGHT and answer == "Hot loops become traces [1]."
    first_answer = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert all("reasoning_content" not in d for d in deltas[first_answer:])


@pytest.mark.parametrize("think", [True, False])
def test_think_asks_the_model_to_think(client: TestClient, engine: FakeEngine, think: bool) -> None:
    assert client.post("/v1/chat/completions", json=ask(think)).status_code == 200
    assert engine.prompts[-1].endswith(NO_THINKING) is not think
