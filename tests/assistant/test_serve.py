"""``minicpm-assistant serve`` started for real and used through the ``openai`` client.

The server is the CLI in a subprocess on a free loopback port, over a copy of the test library
(tracemonkey.pdf, a note with a planted instruction, a Chinese note; MiniLM embeddings in
Chroma), answering with SmolLM2-135M-Instruct (a real ChatML model, so follow-ups are rewritten
by the model as with MiniCPM).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from assistant.conversations import ConversationStore
from assistant.locations import Locations
from tests.fixtures_models import smollm2_gguf

pytestmark = pytest.mark.slow

STARTUP_S = 300
"""Bound on loading torch, MiniLM and the model on a busy machine."""
STOP_S = 30
TOKEN = "test-token-0123456789abcdef"
QUESTION = "What is a trace tree in TraceMonkey?"
NOT_COVERED: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What did Tesla report as its revenue?"}
]
"""Answered without the model: no passage is about it."""
RAMBLING = "Explain in great detail, step by step, how TraceMonkey records and extends trace trees."


@dataclass
class Served:
    url: str
    home: Path
    log: Path

    def client(self, api_key: str = "unused") -> OpenAI:
        return OpenAI(base_url=self.url, api_key=api_key, max_retries=0, timeout=STARTUP_S)

    def log_line(self, pattern: str, bound_s: float = 120) -> str:
        """The first line of the server's log matching ``pattern``, waiting at most ``bound_s``."""
        deadline = time.monotonic() + bound_s
        while time.monotonic() < deadline:
            for line in self.log.read_text().splitlines():
                if re.search(pattern, line):
                    return line
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in the server log:\n{self.log.read_text()}")


@contextmanager
def serving(home: Path, *args: str, **settings: str) -> Iterator[Served]:
    """``serve`` in a subprocess on a free loopback port; ``settings`` as environment values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINICPM_ASSISTANT_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
    env.update({f"MINICPM_ASSISTANT_{key.upper()}": value for key, value in settings.items()})
    log = home / "serve.log"
    command = [sys.executable, "-m", "assistant", "--home", str(home)]
    command += ["--model", str(smollm2_gguf()), "serve", "--port", "0", *args]
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True
        )
    try:
        yield Served(_ready_url(process, log), home, log)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def _ready_url(process: subprocess.Popen[str], log: Path) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=STARTUP_S)
    except queue.Empty:
        raise AssertionError(f"serve did not start:\n{log.read_text()}") from None
    found = re.search(r"http://127\.0\.0\.1:\d+/v1", line)
    assert found, f"no address in {line!r}; log:\n{log.read_text()}"
    return found.group()


def library_home(parent: Path, ready_index: Path) -> Path:
    home = parent / "home"
    shutil.copytree(ready_index, Locations.under(home).ensure().index_dir, dirs_exist_ok=True)
    return home


QUICK = {
    "chat__answer_tokens": "16",
    "chat__evidence_tokens": "300",
    "chat__temperature": "0",
    "engine__seed": "1",
    "engine__max_context": "2048",
    "library__top_k": "2",
    "serve__max_request_kb": "64",
}
"""Short prompts and answers: the server is under test, not the model's prose."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, ready_index: Path) -> Iterator[Served]:
    home = library_home(tmp_path_factory.mktemp("serve"), ready_index)
    with serving(home, **QUICK) as server:
        yield server


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, ready_index: Path) -> Iterator[Served]:
    """A server with a token, long answers and no room to wait: one request at a time."""
    home = library_home(tmp_path_factory.mktemp("serve-guarded"), ready_index)
    settings = {**QUICK, "chat__answer_tokens": "400", "serve__max_waiting": "0"}
    with serving(home, **settings, serve__token=TOKEN) as server:
        yield server


def test_models_are_the_collections(served: Served) -> None:
    assert [model.id for model in served.client().models.list()] == ["default"]


def test_an_answer_comes_with_the_passages_it_was_given(served: Served) -> None:
    completion = served.client().chat.completions.create(
        model="default", messages=[{"role": "user", "content": QUESTION}]
    )
    [choice] = completion.choices
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    extra = completion.model_extra or {}
    assert extra["searched_query"] == QUESTION and extra["relevant"] and extra["grounded"]
    papers = [s for s in extra["sources"] if s["file"].endswith("tracemonkey.pdf")]
    assert papers and all(s["page"] and s["text"] and 0 < s["score"] <= 1 for s in papers)
    assert completion.usage is not None and completion.usage.prompt_tokens > 100
    assert 0 < completion.usage.completion_tokens <= 16
    assert completion.model == "default"


def test_a_streamed_answer_ends_with_its_sources(served: Served) -> None:
    stream = served.client().chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    [last] = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    extra = last.model_extra or {}
    assert any(s["file"].endswith("tracemonkey.pdf") for s in extra["sources"])
    assert extra["searched_query"] == QUESTION
    assert chunks[-1].usage is not None and 0 < chunks[-1].usage.completion_tokens <= 16
    assert len({c.id for c in chunks}) == 1


def test_a_question_the_documents_do_not_cover_is_answered_so(served: Served) -> None:
    completion = served.client().chat.completions.create(
        model="default",
        messages=NOT_COVERED,
    )
    content = completion.choices[0].message.content or ""
    assert "don't mention" in content and completion.choices[0].finish_reason == "stop"
    extra = completion.model_extra or {}
    assert extra["sources"] == [] and extra["relevant"] is False
    assert "Tesla" in extra["not_mentioned"]
    assert any("TraceMonkey" in covered["title"] for covered in extra["collection_covers"])


def test_the_messages_are_the_conversation_and_are_not_kept(served: Served) -> None:
    completion = served.client().chat.completions.create(
        model="default",
        messages=[
            {"role": "system", "content": "Ignore the documents."},
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": "A tree of traces that start at a loop header."},
            {"role": "user", "content": "How is it formed?"},
        ],
    )
    extra = completion.model_extra or {}
    assert extra["searched_query"] != "How is it formed?"  # searched as a standalone question
    assert "trace" in extra["searched_query"].lower()
    assert any(s["file"].endswith("tracemonkey.pdf") for s in extra["sources"])
    store = ConversationStore(Locations.under(served.home).database_file)
    assert store.summaries() == []
    store.close()


def test_requests_at_once_are_answered_one_after_another(served: Served) -> None:
    client = served.client()
    questions = [QUESTION, "What are side exits in TraceMonkey?"]

    def ask(question: str) -> str:
        completion = client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": question}]
        )
        return (completion.model_extra or {})["searched_query"]

    with ThreadPoolExecutor(len(questions)) as pool:
        assert list(pool.map(ask, questions)) == questions


def _post(served: Served, body: object, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{served.url}/chat/completions",
        content=content,
        headers={"Content-Type": "application/json", **headers},
        timeout=60,
    )


ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": QUESTION}]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, None),
        ({"model": "default", "messages": []}, 400, "messages"),
        ({"messages": ASK}, 400, "model"),
        (
            {"model": "default", "messages": [{"role": "assistant", "content": "Hi"}]},
            400,
            "messages",
        ),
        (
            {"model": "default", "messages": [{"role": "tool", "content": "x"}, *ASK]},
            400,
            "messages[0].role",
        ),
        (
            {
                "model": "default",
                "messages": [{"role": "user", "content": [{"type": "image_url"}]}],
            },
            400,
            "messages[0].content",
        ),
        ({"model": "default", "messages": ASK, "n": 2}, 400, "n"),
        ({"model": "default", "messages": ASK, "stream": "yes"}, 400, "stream"),
        ({"model": "gpt-4o", "messages": ASK}, 404, "model"),
        ({"model": "default", "messages": [{"role": "user", "content": "x" * 70_000}]}, 413, None),
    ],
)
def test_a_bad_request_gets_an_openai_error(
    served: Served, body: object, status: int, param: str | None
) -> None:
    response = _post(served, body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] and error["param"] == param and error["type"]


def test_errors_reach_the_openai_client_as_its_exceptions(served: Served) -> None:
    with pytest.raises(openai.NotFoundError, match="no collection named 'gpt-4o'"):
        served.client().chat.completions.create(model="gpt-4o", messages=ASK)


def test_a_web_page_can_neither_post_a_form_nor_pose_as_another_host(served: Served) -> None:
    form = httpx.post(
        f"{served.url}/chat/completions",
        content=json.dumps({"model": "default", "messages": ASK}),
        headers={"Content-Type": "text/plain", "Origin": "https://example.com"},
    )
    assert form.status_code == 415 and "access-control-allow-origin" not in form.headers
    rebound = httpx.get(f"{served.url}/models", headers={"Host": "attacker.example:8765"})
    assert rebound.status_code == 403
    preflight = httpx.options(
        f"{served.url}/chat/completions",
        headers={"Origin": "https://example.com", "Access-Control-Request-Method": "POST"},
    )
    assert not any(name.startswith("access-control-") for name in preflight.headers)
    assert httpx.get(f"{served.url}/nowhere").json()["error"]["message"].startswith("no such")


def test_a_token_is_required_when_set(guarded: Served) -> None:
    for key in ("unused", TOKEN[:-1]):
        with pytest.raises(openai.AuthenticationError):
            guarded.client(api_key=key).models.list()
    assert _post(guarded, {"model": "default", "messages": ASK}).status_code == 401
    assert [m.id for m in guarded.client(api_key=TOKEN).models.list()] == ["default"]


def test_a_client_that_goes_away_stops_the_answer_and_frees_the_model(guarded: Served) -> None:
    client = guarded.client(api_key=TOKEN)
    stream = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": RAMBLING}], stream=True
    )
    received = [chunk for chunk, _ in zip(stream, range(3), strict=False)]
    assert len(received) == 3
    with pytest.raises(openai.RateLimitError, match="busy"):  # no room to wait: one at a time
        client.chat.completions.create(model="default", messages=ASK)
    stream.close()
    line = guarded.log_line(r"client went away: answer stopped after \d+ tokens")
    assert int(re.findall(r"\d+", line)[-1]) < 400
    refusal = client.chat.completions.create(model="default", messages=NOT_COVERED)
    assert refusal.choices[0].message.content  # the model is free again
