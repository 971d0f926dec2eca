"""``ask --think`` with answers from a model server: the switch goes to the server's template,
and thinking the server sends apart (``reasoning_content``) stays out of the answer, the citations
and the history, as with the local engine (``test_thinking.py``).

The server is a loopback stand-in sending the stream shape llama.cpp's server and vLLM document
(llama-cpp-python's server, the real one the other tests run, has no thinking switch per request);
the pipeline and the client are the real ones.
"""

from __future__ import annotations

import pytest

from assistant.events import ThinkingReceived, TokenReceived
from models.config import ServerConfig
from models.server_engine import ServerEngine
from tests.assistant.test_service import finished, make_service
from tests.models.test_server_engine import _BadServer, _sse, bad_server

__all__ = ["bad_server"]  # a fixture


@pytest.fixture
def thinking_server(bad_server: tuple[str, type[_BadServer]]) -> tuple[str, type[_BadServer]]:
    """The stand-in serving a thinking model (named as llama-server names it) that thinks first."""
    url, handler = bad_server
    handler.model_id = "MiniCPM4.1-8B-Q4_K_M.gguf"
    thought = ({"reasoning_content": "Loops "}, {"reasoning_content": "get hot."})
    handler.reply = (200, _sse(*thought, {"content": "Traces [1]."}))
    return url, handler


def test_thinking_from_a_server_is_kept_apart_from_the_answer(
    thinking_server: tuple[str, type[_BadServer]],
) -> None:
    url, server = thinking_server
    engine = ServerEngine.connect(ServerConfig(base_url=url))
    service = make_service(engine, answer_tokens=64, thinking_tokens=64)
    events = list(service.ask("How are loops compiled?", think=True))
    answer = finished(events)
    assert server.bodies[-1]["chat_template_kwargs"] == {"enable_thinking": True}
    assert answer.thinking_mode and answer.thinking == "Loops get hot."
    assert answer.answer == "Traces [1]." and [s.number for s in answer.sources] == [1]
    thought = "".join(e.text for e in events if isinstance(e, ThinkingReceived))
    said = "".join(e.text for e in events if isinstance(e, TokenReceived))
    assert (thought, said) == ("Loops get hot.", "Traces [1].")
    stored = service.get_conversation(answer.conversation_id).messages[-1]
    assert (stored.text, stored.thinking) == ("Traces [1].", "Loops get hot.")
    server.reply = (200, _sse({"content": "Traces [1]."}))
    follow_up = finished(service.ask("And then?", conversation_id=answer.conversation_id))
    assert server.bodies[-1]["chat_template_kwargs"] == {"enable_thinking": False}
    assert "Loops get hot" not in str(server.bodies[-1]["messages"])  # not in the history
    assert follow_up.answer == "Traces [1]."
    service.close()
    engine.close()
