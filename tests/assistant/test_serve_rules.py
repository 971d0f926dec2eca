"""``serve``'s rules without a server: what a request body means, and where it may listen."""

from __future__ import annotations

import json

import pytest

from assistant.api.chat_request import parse_chat_request
from assistant.api.errors import ApiError
from assistant.api.server import check_binding, is_loopback
from assistant.cli import main
from assistant.errors import UsageError


def body(messages: list[dict[str, object]], **fields: object) -> bytes:
    return json.dumps({"model": "thesis", "messages": messages, **fields}).encode()


def test_the_last_user_message_is_the_question_and_the_rest_its_history() -> None:
    request = parse_chat_request(
        body(
            [
                {"role": "system", "content": "Answer in French."},
                {"role": "user", "content": "What is a trace tree?"},
                {"role": "assistant", "content": [{"type": "text", "text": "A tree of traces."}]},
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "How is it"},
                        {"type": "text", "text": "formed?"},
                    ],
                },
            ],
            stream=True,
            stream_options={"include_usage": True},
            temperature=0.2,
            document="notes/thesis.pdf",
        )
    )
    assert request.collection == "thesis"
    assert request.question == "How is it\nformed?"
    assert request.history == [
        ("user", "What is a trace tree?"),
        ("assistant", "A tree of traces."),
    ]
    assert request.stream and request.include_usage
    assert request.document == "notes/thesis.pdf" and request.allow_general is None


@pytest.mark.parametrize(
    ("raw", "param", "says"),
    [
        (b"", None, "not valid JSON"),
        (b"[]", None, "JSON object"),
        (body([{"role": "user", "content": "  "}]), "messages", "last message"),
        (
            body([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]),
            "messages",
            "last message",
        ),
        (body([{"role": "system", "content": "Only instructions"}]), "messages", "last message"),
        (
            body([{"role": "function", "content": "{}"}, {"role": "user", "content": "Hi"}]),
            "messages[0].role",
            "'function'",
        ),
        (body([{"role": "user", "content": 7}]), "messages[0].content", "string"),
        (body([{"role": "user"}], model=3), "model", "string"),
        (body([{"role": "user", "content": "Hi"}], stream=1), "stream", "boolean"),
        (
            body([{"role": "user", "content": [{"type": "input_audio"}]}]),
            "messages[0].content",
            "only text",
        ),
    ],
)
def test_an_unusable_body_names_its_field(raw: bytes, param: str | None, says: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_chat_request(raw)
    assert raised.value.status == 400 and raised.value.param == param
    assert says in raised.value.message


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("my-laptop.local", False),
    ],
)
def test_only_loopback_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_an_address_beyond_loopback_needs_a_token_of_some_length() -> None:
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", "x" * 16)
    with pytest.raises(UsageError, match="needs a token"):
        check_binding("0.0.0.0", None)
    with pytest.raises(UsageError, match="too short"):
        check_binding("127.0.0.1", "x" * 15)


def test_serve_refuses_to_start_beyond_loopback_without_a_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--host", "0.0.0.0"]) == 1
    assert "needs a token" in capsys.readouterr().err
    assert main(["serve", "--host", "::", "--token", "short"]) == 1
    assert "too short" in capsys.readouterr().err
