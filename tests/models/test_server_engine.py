"""The OpenAI-compatible engine against a real llama-cpp-python server serving SmolLM2-135M:
discovery, token counts, the server's chat template, streaming, stop strings, cancellation, and
every way a server can fail (down, HTTP errors, a malformed stream; a restart mid-conversation
is in ``tests/assistant/test_server_chat.py``)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from models.config import EngineConfig, ServerConfig
from models.errors import ModelNotFoundError
from models.events import DoneEvent, TokenEvent
from models.runtime import LlamaEngine
from models.sampling import SamplingParams
from models.server_client import ModelServerError
from models.server_engine import (
    UNREPORTED_PARALLEL,
    ServerEngine,
    ServerPrompt,
    ServerTemplate,
    defuse_markers,
    estimate_tokens,
)
from models.templates import ChatMessage
from models.thinking import split_reply
from tests.fixtures_models import smollm2_gguf
from tests.models.conftest import local
from tests.models.model_server import (
    SMOLLM2_ALIAS,
    LlamaCppServer,
    free_port,
    smollm2_server,
)

__all__ = ["smollm2_server"]  # a fixture

pytestmark = pytest.mark.slow

NOTES = Path(__file__).parents[1] / "assistant" / "data"
"""English and Chinese notes the chat tests index."""
GREEDY = SamplingParams(max_tokens=24, temperature=0.0, top_k=1, top_p=1.0, min_p=0.0)
QUESTION = [
    ChatMessage("system", "You answer in one short sentence."),
    ChatMessage("user", "What is the capital of France?"),
]


@pytest.fixture(scope="module")
def engine(smollm2_server: LlamaCppServer) -> Iterator[ServerEngine]:
    engine = ServerEngine.connect(ServerConfig(base_url=smollm2_server.base_url))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def local_engine() -> Iterator[LlamaEngine]:
    """The same GGUF in this process, for comparing token counts."""
    engine = LlamaEngine.load(local(smollm2_gguf()), EngineConfig(max_context=2048))
    yield engine
    engine.close()


def run(
    engine: ServerEngine,
    prompt: str,
    params: SamplingParams = GREEDY,
    cancel: threading.Event | None = None,
) -> tuple[list[str], DoneEvent]:
    events = list(engine.stream(prompt, params, cancel))
    assert all(isinstance(event, TokenEvent) for event in events[:-1])
    done = events[-1]
    assert isinstance(done, DoneEvent)
    return [e.text for e in events[:-1] if isinstance(e, TokenEvent)], done


def test_connect_learns_the_model_its_context_and_tokenizer(
    engine: ServerEngine, smollm2_server: LlamaCppServer
) -> None:
    assert engine.model_id == SMOLLM2_ALIAS
    assert engine.model.name == SMOLLM2_ALIAS and not engine.model.is_demo
    assert engine.facts.tokenizer == "/extras/tokenize"
    # llama-cpp-python's server does not report its context: the default (its own) is assumed
    assert (engine.n_ctx, engine.context_source) == (2048, "default")
    assert engine.offload.backend == "server" and smollm2_server.base_url in engine.offload.reason
    # it runs one request at a time: one answer at once unless configured
    assert (engine.facts.slots, engine.parallel) == (1, 1)
    capped = ServerEngine.connect(
        ServerConfig(base_url=smollm2_server.base_url, context_length=1024, parallel=3)
    )
    assert (capped.n_ctx, capped.context_source) == (1024, "configured")
    assert capped.parallel == 3
    capped.close()


def test_token_counts_are_the_models_own(engine: ServerEngine, local_engine: LlamaEngine) -> None:
    for text in ["hello world", "Trace trees are recorded at loop headers.", "中秋节快乐", ""]:
        assert engine.count_tokens(text) == local_engine.count_tokens(text)


def test_the_server_applies_the_chat_template_that_is_counted(
    engine: ServerEngine, smollm2_server: LlamaCppServer
) -> None:
    """The server's own prompt length for the messages equals the count of our rendering: the
    server templates them as ChatML, the format SmolLM2 and MiniCPM3/4/5 use."""
    prompt = engine.template.render(QUESTION)
    assert isinstance(prompt, ServerPrompt) and prompt.messages == tuple(QUESTION)
    reply = httpx.post(
        f"{smollm2_server.base_url}/chat/completions",
        json={"messages": [vars(m) for m in QUESTION], "max_tokens": 1},
        timeout=60,
    ).json()
    assert reply["usage"]["prompt_tokens"] == engine.count_tokens(prompt)


def test_streams_the_same_answer_the_server_gives_whole(
    engine: ServerEngine, smollm2_server: LlamaCppServer
) -> None:
    pieces, done = run(engine, engine.template.render(QUESTION))
    assert len(pieces) > 2 and "".join(pieces).strip()
    whole = httpx.post(
        f"{smollm2_server.base_url}/chat/completions",
        json={
            "messages": [vars(m) for m in QUESTION],
            "max_tokens": GREEDY.max_tokens,
            "temperature": 0.0,
            "top_k": 1,
            "stop": list(engine.template.stop),
        },
        timeout=60,
    ).json()
    assert "".join(pieces) == whole["choices"][0]["message"]["content"]
    assert done.usage.prompt_tokens == engine.count_tokens(engine.template.render(QUESTION))
    assert 0 < done.usage.completion_tokens <= GREEDY.max_tokens
    assert done.stop_reason in ("stop", "length")
    assert 0 < done.timings.ttft_s <= done.timings.total_s


def test_a_stop_string_ends_the_answer_and_is_never_shown(engine: ServerEngine) -> None:
    prompt = engine.template.render(QUESTION)
    pieces, _ = run(engine, prompt)
    full = "".join(pieces)
    stop = next(p for p in pieces[2:] if p.strip())  # a later piece of the same greedy answer
    cut, done = run(engine, prompt, GREEDY.with_overrides(stop=(stop,)))
    assert "".join(cut) == full[: full.index(stop)]
    assert done.stop_reason == "stop"


def test_a_plain_prompt_is_a_completion_with_its_markers_defused(engine: ServerEngine) -> None:
    pieces, done = run(engine, "The capital of France is", GREEDY.with_overrides(max_tokens=8))
    assert pieces and done.usage.completion_tokens > 0
    assert defuse_markers("a <|im_start|>system b <用户> </s>") == (
        "a <\u200b|im_start|>system b <\u200b用户> <\u200b/s>"
    )


def test_cancel_mid_stream_stops_and_the_server_answers_the_next(engine: ServerEngine) -> None:
    cancel = threading.Event()
    received: list[str] = []
    long_answer = GREEDY.with_overrides(max_tokens=400)
    prompt = engine.template.render([ChatMessage("user", "Write a long story about a ship.")])
    for event in engine.stream(prompt, long_answer, cancel):
        if isinstance(event, TokenEvent):
            received.append(event.text)
            if len(received) == 3:
                cancel.set()
        else:
            done = event
    assert done.stop_reason == "cancelled"
    assert len(received) <= 4 and done.usage.completion_tokens <= 4
    pieces, after = run(engine, engine.template.render(QUESTION))
    assert pieces and after.stop_reason in ("stop", "length")


def test_cancel_while_the_server_reads_the_prompt(engine: ServerEngine) -> None:
    long_question = "Summarise: " + " ".join(["the trace tree grows at each side exit"] * 60)
    cancel = threading.Event()
    timer = threading.Timer(0.2, cancel.set)
    timer.start()
    try:
        _, done = run(
            engine,
            engine.template.render([ChatMessage("user", long_question)]),
            GREEDY.with_overrides(max_tokens=400),
            cancel,
        )
    finally:
        timer.cancel()
    assert done.stop_reason == "cancelled"


def test_a_server_that_is_down_is_one_clear_error_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelServerError, match="cannot reach the model server at " + url):
        ServerEngine.connect(ServerConfig(base_url=url))


def test_an_unknown_model_names_the_ones_served(smollm2_server: LlamaCppServer) -> None:
    config = ServerConfig(base_url=smollm2_server.base_url, model="minicpm4-8b")
    with pytest.raises(ModelNotFoundError, match="'minicpm4-8b'.*serves smollm2"):
        ServerEngine.connect(config)


def test_a_url_without_v1_says_how_to_fix_it(smollm2_server: LlamaCppServer) -> None:
    root = smollm2_server.base_url.removesuffix("/v1")
    with pytest.raises(ModelServerError, match=r"HTTP 404.*ends in /v1"):
        ServerEngine.connect(ServerConfig(base_url=root))


def test_estimates_err_on_the_high_side(local_engine: LlamaEngine) -> None:
    """For a server that cannot count, the estimate must not undercount real text."""
    notes = "\n\n".join(path.read_text() for path in NOTES.glob("*.md"))
    samples = [
        "How does TraceMonkey start a trace tree? It records a loop when it becomes hot.",
        "On 2024-01-15 the invoice INV-20931 totalled $1,482.50 for 37 items.",
        "中秋节是中国的传统节日，人们在这一天赏月、吃月饼。",
        *[paragraph for paragraph in notes.split("\n\n") if paragraph.strip()],
    ]
    for sample in samples:
        assert estimate_tokens(sample) >= local_engine.count_tokens(sample), sample


class _BadServer(http.server.BaseHTTPRequestHandler):
    """Lists a model, then answers generation with whatever ``reply`` the test sets."""

    reply: tuple[int, bytes] = (200, b"")
    key: str | None = None
    """The API key it wants, as llama.cpp's ``--api-key`` does."""
    model_id = "broken"
    bodies: list[dict[str, object]]
    """The JSON bodies posted to it, in order."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.key is not None and self.headers.get("authorization") != f"Bearer {self.key}":
            self._send(401, b'{"error": {"message": "Invalid API Key"}}', "application/json")
            return
        listing = json.dumps({"data": [{"id": self.model_id}]}).encode()
        self._send(200, listing, "application/json")

    def do_POST(self) -> None:  # noqa: N802
        self.bodies.append(json.loads(self.rfile.read(int(self.headers.get("content-length", 0)))))
        status, body = self.reply
        self._send(status, body, "text/event-stream" if status == 200 else "application/json")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def bad_server() -> Iterator[tuple[str, type[_BadServer]]]:
    """A loopback HTTP server that misbehaves on purpose (what a real one only does rarely)."""

    class Handler(_BadServer):
        bodies = []

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", Handler
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            (500, b'{"error": {"message": "CUDA out of memory"}}'),
            r"answered HTTP 500 \(CUDA out of memory\); the server failed",
        ),
        ((401, b'{"detail": "Invalid API key"}'), r"HTTP 401 .*set \[llm\] api_key"),
        ((200, b"data: {not json\n\n"), "sent a malformed stream event"),
        ((200, b'data: {"choices": [{"delta": {"content": "Hi"}}]}\n\n'), r"no \[DONE\]"),
        ((200, b'data: {"error": {"message": "context full"}}\n\n'), "reported an error: context"),
    ],
)
def test_server_failures_are_one_clear_error_naming_the_url(
    bad_server: tuple[str, type[_BadServer]], reply: tuple[int, bytes], message: str
) -> None:
    url, handler = bad_server
    engine = ServerEngine.connect(ServerConfig(base_url=url))
    assert engine.facts.tokenizer == "estimate"  # it has no tokenizer endpoint
    assert engine.parallel == UNREPORTED_PARALLEL  # nor says how many it answers at once
    handler.reply = reply
    with pytest.raises(ModelServerError, match=message) as failure:
        run(engine, engine.template.render(QUESTION))
    assert url in failure.value.message
    engine.close()


@pytest.fixture
def minicpm2_server(model_files: dict[str, Path], tmp_path: Path) -> Iterator[LlamaCppServer]:
    """A MiniCPM-2B-style GGUF (``<用户>``/``<AI>``, no chat template in the file) on the server."""
    server = LlamaCppServer(model_files["q4_k_m"], tmp_path, alias="minicpm-2b-tiny")
    server.start()
    yield server
    server.stop()


def test_a_minicpm_2b_gguf_needs_its_template_rendered_here(
    minicpm2_server: LlamaCppServer, model_files: dict[str, Path]
) -> None:
    """llama-cpp-python's server templates a GGUF without ``tokenizer.chat_template`` as Llama 2
    chat, not MiniCPM's format; ``[llm] template = "minicpm2"`` sends MiniCPM's own prompt."""
    url = minicpm2_server.base_url
    local_engine = LlamaEngine.load(local(model_files["q4_k_m"]), EngineConfig())
    minicpm_prompt = local_engine.template.render(QUESTION)
    minicpm_tokens = local_engine.count_tokens(minicpm_prompt) + 1  # and BOS
    local_engine.close()

    def server_prompt_tokens(path: str, body: dict[str, object]) -> int:
        reply = httpx.post(f"{url}/{path}", json=body | {"max_tokens": 1}, timeout=60)
        return int(reply.json()["usage"]["prompt_tokens"])

    as_served = server_prompt_tokens("chat/completions", {"messages": [vars(m) for m in QUESTION]})
    assert as_served != minicpm_tokens  # the server's fallback format, not MiniCPM's
    assert "fallback chat format: llama-2" in minicpm2_server.log_path.read_text()

    engine = ServerEngine.connect(ServerConfig(base_url=url, template="minicpm2"))
    prompt = engine.template.render(QUESTION)
    assert not isinstance(prompt, ServerPrompt) and prompt == minicpm_prompt
    assert server_prompt_tokens("completions", {"prompt": str(prompt)}) == minicpm_tokens
    assert engine.count_tokens(prompt) + 1 == minicpm_tokens
    _, done = run(engine, prompt, GREEDY.with_overrides(max_tokens=8))
    assert done.usage.completion_tokens > 0
    engine.close()


def test_the_api_key_is_sent_and_a_wrong_one_says_which_setting(
    bad_server: tuple[str, type[_BadServer]],
) -> None:
    url, handler = bad_server
    handler.key = "s3cret"
    with pytest.raises(
        ModelServerError, match=r"HTTP 401 \(Invalid API Key\); set \[llm\] api_key"
    ):
        ServerEngine.connect(ServerConfig(base_url=url, api_key=SecretStr("wrong")))
    engine = ServerEngine.connect(ServerConfig(base_url=url, api_key=SecretStr("s3cret")))
    assert engine.model_id == "broken"
    engine.close()


def _sse(*deltas: dict[str, str], finish: str | None = "stop") -> bytes:
    events: list[dict[str, object]] = [
        {"choices": [{"delta": delta, "finish_reason": None}]} for delta in deltas
    ]
    events.append({"choices": [{"delta": {}, "finish_reason": finish}]})
    lines = [f"data: {json.dumps(event)}\n\n" for event in events] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_thinking_sent_apart_is_split_from_the_answer(
    bad_server: tuple[str, type[_BadServer]], field: str
) -> None:
    """llama.cpp's server and vLLM (``reasoning_content``; vLLM 0.11+ ``reasoning``) parse the
    thinking out of a reply themselves; it comes back as thinking, never as the answer. The
    stand-in sends the stream shape their documentation shows."""
    url, handler = bad_server
    handler.model_id = "openbmb/MiniCPM4.1-8B"  # a thinking model, as vLLM names it
    engine = ServerEngine.connect(ServerConfig(base_url=url))
    thinking = engine.template.with_thinking(True)
    assert engine.template.can_think and thinking.can_think
    handler.reply = (200, _sse({field: "Loops "}, {field: "get hot."}, {"content": "Traces [1]."}))
    pieces, done = run(engine, thinking.render(QUESTION))
    assert split_reply("".join(pieces)) == ("Loops get hot.", "Traces [1].")
    assert handler.bodies[-1]["chat_template_kwargs"] == {"enable_thinking": True}
    assert done.stop_reason == "stop"
    handler.reply = (200, _sse({field: "Still thinking"}, finish="length"))
    pieces, done = run(engine, thinking.render(QUESTION))
    assert split_reply("".join(pieces)) == ("Still thinking", "")  # cut off: no answer
    run(engine, engine.template.render(QUESTION))
    assert handler.bodies[-1]["chat_template_kwargs"] == {"enable_thinking": False}
    engine.close()


def test_a_model_without_a_thinking_switch_is_sent_none(
    bad_server: tuple[str, type[_BadServer]],
) -> None:
    url, handler = bad_server
    engine = ServerEngine.connect(ServerConfig(base_url=url))
    assert not engine.template.can_think
    handler.reply = (200, _sse({"content": "Paris."}))
    pieces, _ = run(engine, engine.template.with_thinking(True).render(QUESTION))
    assert pieces == ["Paris."] and "chat_template_kwargs" not in handler.bodies[-1]
    engine.close()


def test_llama_cpp_pythons_server_takes_the_thinking_switch(engine: ServerEngine) -> None:
    """It ignores ``chat_template_kwargs`` (its templates get their arguments at start-up), but
    a request carrying it is answered as usual."""
    assert isinstance(engine.template, ServerTemplate)
    switched = ServerTemplate(engine.template.local, can_think=True).with_thinking(True)
    prompt = switched.render(QUESTION)
    assert isinstance(prompt, ServerPrompt) and prompt.enable_thinking is True
    pieces, done = run(engine, prompt)
    assert "".join(pieces).strip() and done.stop_reason in ("stop", "length")


def test_a_stream_ended_by_another_request_is_an_error_not_an_answer(
    engine: ServerEngine, smollm2_server: LlamaCppServer
) -> None:
    """llama-cpp-python's server, as started by default, ends the answer streaming when another
    request arrives: ``[DONE]`` without a finish reason, which must not pass for a whole answer."""
    prompt = engine.template.render([ChatMessage("user", "Write a long story about a ship.")])
    events = engine.stream(prompt, GREEDY.with_overrides(max_tokens=400))
    assert isinstance(next(events), TokenEvent)  # streaming now
    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(
            httpx.post,
            f"{smollm2_server.base_url}/chat/completions",
            json={"messages": [vars(m) for m in QUESTION], "max_tokens": 1},
            timeout=120,
        )
        with pytest.raises(ModelServerError, match="--interrupt_requests false") as cut:
            list(events)
        assert other.result().status_code == 200
    assert smollm2_server.base_url in cut.value.message
