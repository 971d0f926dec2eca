"""The chat CLI's commands and output formats, over a scripted model and library."""

from __future__ import annotations

import io
import json

import pytest

from assistant.cli import main
from assistant.service import AssistantService
from tests.assistant.fakes import FakeEngine, FakeLibrary, hit

PASSAGES = [hit(1, "Trace trees record hot loops.", file="/docs/paper.pdf", page=4)]


@pytest.fixture(autouse=True)
def scripted(monkeypatch: pytest.MonkeyPatch) -> FakeLibrary:
    library = FakeLibrary(list(PASSAGES))
    engine = FakeEngine(script=lambda prompt: " Trace trees record loops [1].")
    monkeypatch.setattr(AssistantService, "_load", lambda self, name, progress, config: engine)
    monkeypatch.setattr(AssistantService, "_open_library", lambda self: library)
    return library


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ask_streams_the_answer_then_its_sources(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "ask", "What are trace trees?")
    assert code == 0
    assert out.startswith("Trace trees record loops [1].\n")
    assert "Sources:\n  [1] /docs/paper.pdf, page 4" in out


def test_ask_json_reads_the_question_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("What are trace trees?\n"))
    code, out, _ = cli(capsys, "ask", "--json", "-")
    assert code == 0
    result = json.loads(out)
    assert result["answer"] == "Trace trees record loops [1]."
    assert result["searched_query"] == "What are trace trees?"
    assert result["sources"] == [
        {
            "number": 1,
            "file": "/docs/paper.pdf",
            "page": "4",
            "score": 0.8,
            "text": "Trace trees record hot loops.",
            "cited": True,
            "ocr": False,
        }
    ]
    assert set(result["usage"]) == {
        "prompt_tokens",
        "prompt_tokens_evaluated",
        "completion_tokens",
        "thinking_tokens",
    }
    assert result["thinking"] == "" and result["thinking_mode"] is False
    assert {"ttft_s", "prefill_tok_s", "decode_tok_s"} <= set(result["timings"])


def test_no_rag_does_not_search(capsys: pytest.CaptureFixture[str], scripted: FakeLibrary) -> None:
    code, out, _ = cli(capsys, "ask", "--no-rag", "Hello?")
    assert code == 0 and scripted.queries == []
    assert "Sources" not in out


def test_bad_input_gets_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "ask", "--conversation", "nope", "Hello?")
    assert code == 1 and err.strip().startswith("No such conversation")
    code, _, err = cli(capsys, "ask", "   ")
    assert code == 1 and "empty" in err


def test_chat_runs_commands_and_questions_from_a_pipe(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = "What are trace trees?\n/sources\n/new\nWhat about loops?\n/quit\nignored\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    code, out, _ = cli(capsys, "chat")
    assert code == 0
    assert out.count("Trace trees record loops [1].") == 2
    assert "[1] /docs/paper.pdf, page 4: Trace trees record hot loops." in out
    assert "(new conversation)" in out
    code, out, _ = cli(capsys, "conversations", "list")
    assert len(out.strip().splitlines()) == 2  # /new started a second conversation


def test_ask_and_chat_print_the_searched_for_line_on_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """stdout carries the answer alone, in both commands."""
    cli(capsys, "ask", "What are trace trees?")
    conversation_id = cli(capsys, "conversations", "list")[1].split()[0]
    code, out, err = cli(capsys, "ask", "--conversation", conversation_id, "And what about them?")
    assert code == 0 and "(searching for: " in err
    assert "searching for" not in out and out.startswith("Trace trees record loops [1].\n")

    monkeypatch.setattr("sys.stdin", io.StringIO("What are trace trees?\nAnd what about them?\n"))
    code, out, err = cli(capsys, "chat")
    assert code == 0 and err.count("(searching for: ") == 1
    assert "searching for" not in out and out.count("Trace trees record loops [1].") == 2


def test_ctrl_c_stops_the_answer_but_not_the_chat(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(index: int) -> None:
        if index == 3 and not interrupted:
            interrupted.append(index)
            raise KeyboardInterrupt

    interrupted: list[int] = []
    engine = FakeEngine(script=lambda prompt: "Trace trees record loops [1].", on_token=interrupt)
    monkeypatch.setattr(AssistantService, "_load", lambda *args: engine)
    monkeypatch.setattr(
        "sys.stdin",
        io.StringIO("What are trace trees?\nHow does TraceMonkey compile nested loops?\n"),
    )
    code, out, err = cli(capsys, "chat")
    assert code == 0 and "(stopped)" in err
    assert out.count("Trace trees record loops [1].") == 1  # the second question was answered
    conversation_id = cli(capsys, "conversations", "list")[1].split()[0]
    exported = json.loads(
        cli(capsys, "conversations", "export", conversation_id, "--format", "json")[1]
    )
    answers = [m for m in exported["messages"] if m["role"] == "assistant"]
    assert [(m["text"], m["incomplete"]) for m in answers] == [
        ("Trace trees", True),
        ("Trace trees record loops [1].", False),
    ]


def empty_then_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model writes nothing the first time it is asked, then answers."""
    replies = iter(["\n  ", " Trace trees record loops [1]."])
    engine = FakeEngine(script=lambda prompt: next(replies, "Again [1]."))
    monkeypatch.setattr(AssistantService, "_load", lambda *args: engine)


def test_ask_says_when_the_model_returned_no_answer(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_then_answers(monkeypatch)
    code, out, err = cli(capsys, "ask", "What are trace trees?")
    assert code == 1
    assert "the model returned no answer; run the same command to try again" in err
    assert out.strip() == "", "no sources listed under an answer that is not there"


def test_chat_retry_asks_the_last_question_again_after_no_answer(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_then_answers(monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO("/retry\nWhat are trace trees?\n/retry\n"))
    code, out, err = cli(capsys, "chat")
    assert code == 1, "a turn without an answer counts as failed"
    assert out.startswith("(no question to ask again yet)\n")
    assert "the model returned no answer; /retry asks again" in err
    assert "Trace trees record loops [1]." in out
    conversation_id = cli(capsys, "conversations", "list")[1].split()[0]
    exported = json.loads(
        cli(capsys, "conversations", "export", conversation_id, "--format", "json")[1]
    )
    asked = [m["text"] for m in exported["messages"] if m["role"] == "user"]
    assert asked == ["What are trace trees?", "What are trace trees?"]


def test_conversations_commands(capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "ask", "What are trace trees?")
    code, out, _ = cli(capsys, "conversations", "list")
    conversation_id = out.split()[0]
    assert "What are trace trees?" in out

    assert cli(capsys, "conversations", "rename", conversation_id[:5], "Trace", "notes")[0] == 0
    code, out, _ = cli(capsys, "conversations", "search", "hot", "loops")
    assert code == 0 and out == ""  # the passage text is not a message
    code, out, _ = cli(capsys, "conversations", "search", "record loops")
    assert conversation_id in out and "Trace notes" in out

    code, out, _ = cli(capsys, "conversations", "export", conversation_id, "--format", "json")
    exported = json.loads(out)
    assert exported["title"] == "Trace notes" and len(exported["messages"]) == 2
    code, out, _ = cli(capsys, "conversations", "show", conversation_id)
    assert out.startswith("# Trace notes") and "[1] /docs/paper.pdf, page 4" in out

    code, _, err = cli(capsys, "conversations", "rm", conversation_id)
    assert code == 0 and conversation_id in err
    code, _, err = cli(capsys, "conversations", "show", conversation_id)
    assert code == 1 and "No such conversation" in err


def test_conversations_list_and_search_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "conversations", "list", "--json")
    assert code == 0 and json.loads(out) == []
    cli(capsys, "ask", "What are trace trees?")
    code, out, _ = cli(capsys, "conversations", "list", "--json")
    [listed] = json.loads(out)
    assert code == 0 and listed["title"] == "What are trace trees?"
    assert listed["message_count"] == 2 and listed["snippet"] is None
    assert set(listed) == {
        "id",
        "title",
        "created_at",
        "updated_at",
        "model",
        "collection",
        "message_count",
        "snippet",
    }
    code, out, _ = cli(capsys, "conversations", "search", "record loops", "--json")
    [found] = json.loads(out)
    assert found["id"] == listed["id"] and "record loops" in found["snippet"]


def test_doc_limits_the_search_to_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "ask", "--doc", "/docs/paper.pdf", "What are trace trees?")
    assert code == 0 and "[1] /docs/paper.pdf, page 4" in out
    code, out, _ = cli(capsys, "ask", "--doc", "/docs/other.pdf", "What are trace trees?")
    assert code == 0 and "couldn't find anything" in out


def test_an_empty_library_says_how_to_add_documents(
    capsys: pytest.CaptureFixture[str], scripted: FakeLibrary
) -> None:
    scripted.hits = []
    code, _, err = cli(capsys, "ask", "What are trace trees?")
    assert code == 1 and "minicpm-assistant ingest" in err
