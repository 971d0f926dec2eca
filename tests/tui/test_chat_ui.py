"""UI behaviour of the chat screen on a scripted service: streaming, stopping, conversations,
the prompt's keys, sources and failures. The same flows run on the real stack in
test_real_stack.py."""

from __future__ import annotations

import threading
from typing import TypeVar

import pytest
from textual.binding import Binding
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Input, Markdown, OptionList

from assistant.events import AnswerFinished, ChatEvent, Source, TokenReceived
from models.errors import GenerationError
from tests.tui.fakes import FakeService
from tests.tui.waiting import wait_until
from tui.app import MiniCPMApp
from tui.commands import AssistantCommands
from tui.screens.chat import ChatScreen
from tui.screens.dialogs import ConfirmDialog, SourceScreen
from tui.screens.help import HelpScreen
from tui.screens.library import LibraryScreen
from tui.screens.models import ModelsScreen
from tui.widgets.chat_log import AnswerView, UserMessage
from tui.widgets.conversation_list import ConversationList
from tui.widgets.prompt import PromptInput
from tui.widgets.sources_panel import SourcesPanel
from tui.widgets.status_bar import StatusBar

E = TypeVar("E", bound=ChatEvent)


def turn_events(seen: list[Message], kind: type[E]) -> list[E]:
    """The core's events of ``kind`` handed to the chat screen, each once (the hook sees a
    message at every node it bubbles through)."""
    messages = {id(m): m for m in seen if isinstance(m, ChatScreen.TurnEvent)}.values()
    return [m.event for m in messages if isinstance(m.event, kind)]


def chat(app: MiniCPMApp) -> ChatScreen:
    assert isinstance(app.screen, ChatScreen)
    return app.screen


async def ask(pilot: Pilot[None], app: MiniCPMApp, question: str) -> None:
    prompt = app.screen.query_one(PromptInput)
    prompt.focus()
    prompt.text = question
    await pilot.press("enter")
    await wait_until(pilot, lambda: not chat(app).generating, what="the answer")


async def test_answer_streams_and_lists_sources(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    seen: list[Message] = []
    async with fake_app.run_test(size=(120, 36), message_hook=seen.append) as pilot:
        await pilot.press(*"what is tracemonkey")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(turn_events(seen, AnswerFinished)))
        await wait_until(pilot, lambda: not chat(fake_app).generating)

        tokens = turn_events(seen, TokenReceived)
        assert len(tokens) == 7, "each token is handed to the UI as it arrives"
        answer = fake_app.screen.query_one(AnswerView)
        assert answer.text == "".join(fake_service.answer_tokens)
        assert "tracemonkey.pdf p.1" in str(answer.query_one(".answer-note").render())
        sources = fake_app.screen.query_one(SourcesPanel).sources
        assert [s.number for s in sources] == [1, 2, 3], "cited first, then the uncited passage"
        status = fake_app.screen.query_one(StatusBar)
        assert status.tokens_per_s == 12.5
        assert status.context_used == 607
        assert "MiniCPM" in str(status.render())


async def test_passages_are_marked_uncited_only_once_the_answer_is_done(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    fake_service.answer_gate = threading.Event()
    async with fake_app.run_test(size=(120, 36)) as pilot:
        await pilot.press(*"what is tracemonkey", "enter")
        panel = fake_app.screen.query_one(SourcesPanel)
        options = panel.query_one(OptionList)

        def labels() -> list[str]:
            return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]

        await wait_until(pilot, lambda: len(panel.sources) == 3, what="the passages")
        assert chat(fake_app).generating
        assert not any("not cited" in label for label in labels()), "not known while writing"
        fake_service.answer_gate.set()
        await wait_until(pilot, lambda: not chat(fake_app).generating, what="the answer")
        assert ["not cited" in label for label in labels()] == [False, False, True]


async def test_enter_sends_ctrl_j_adds_a_line_and_up_recalls(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    async with fake_app.run_test(size=(100, 30)) as pilot:
        prompt = fake_app.screen.query_one(PromptInput)
        await pilot.press(*"first", "ctrl+j", *"line")
        assert prompt.text == "first\nline"
        await pilot.press("enter")
        await wait_until(pilot, lambda: fake_service.asked == ["first\nline"])
        await wait_until(pilot, lambda: not chat(fake_app).generating)
        assert prompt.text == ""
        await pilot.press("up")
        assert prompt.text == "first\nline"
        await pilot.press("down")
        assert prompt.text == ""


async def test_escape_stops_and_keeps_the_partial_answer(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    fake_service.answer_tokens = [f"word{i} " for i in range(400)]
    fake_service.answer_gate = threading.Event()
    async with fake_app.run_test(size=(100, 30)) as pilot:
        prompt = fake_app.screen.query_one(PromptInput)
        prompt.text = "tell me everything"
        await pilot.press("enter")
        answer = await _answer_view(pilot, fake_app)
        await wait_until(pilot, lambda: bool(answer.text), what="the first token")
        await pilot.press("escape")
        note = answer.query_one(".answer-note")
        await wait_until(pilot, lambda: "stopping" in str(note.render()), what="the stop")
        fake_service.answer_gate.set()
        await wait_until(pilot, lambda: not chat(fake_app).generating, what="the stop")

        assert 0 < len(answer.text.split()) < 400
        assert "stopped" in str(answer.query_one(".answer-note").render())
        stored = fake_service.get_conversation(chat(fake_app).conversation_id or "")
        assert stored.messages[-1].incomplete
        assert stored.messages[-1].text == answer.text


async def _answer_view(pilot: Pilot[None], app: MiniCPMApp) -> AnswerView:
    await wait_until(pilot, lambda: bool(app.screen.query(AnswerView)), what="an answer view")
    return app.screen.query(AnswerView).last()


async def source_shown(pilot: Pilot[None], app: MiniCPMApp) -> Source:
    """The passage the source screen opened on shows."""
    await wait_until(pilot, lambda: isinstance(app.screen, SourceScreen))
    screen = app.screen
    assert isinstance(screen, SourceScreen)
    return screen.source


async def test_switching_conversations_shows_their_messages(fake_app: MiniCPMApp) -> None:
    async with fake_app.run_test(size=(120, 36)) as pilot:
        await ask(pilot, fake_app, "first question")
        first_id = chat(fake_app).conversation_id
        await pilot.press("ctrl+n")
        assert not fake_app.screen.query(UserMessage)
        await ask(pilot, fake_app, "second question")
        assert chat(fake_app).conversation_id != first_id

        options = fake_app.screen.query_one("#conversation-options", OptionList)
        assert options.option_count == 2
        options.focus()
        options.highlighted = options.get_option_index(first_id or "")
        await pilot.press("enter")
        await wait_until(pilot, lambda: chat(fake_app).conversation_id == first_id)
        questions = [str(m.render()) for m in fake_app.screen.query(UserMessage)]
        assert questions == ["first question"]
        sources = fake_app.screen.query_one(SourcesPanel).sources
        assert [s.number for s in sources] == [1, 2, 3], "its cited passages, then the others"


async def test_enter_in_the_conversation_list_opens_one_right_away(fake_app: MiniCPMApp) -> None:
    async with fake_app.run_test(size=(120, 36)) as pilot:
        await ask(pilot, fake_app, "first question")
        first_id = chat(fake_app).conversation_id
        await pilot.press("ctrl+n")
        await pilot.press("ctrl+f", "tab")
        options = fake_app.screen.query_one("#conversation-options", OptionList)
        await wait_until(pilot, lambda: options.has_focus)
        await pilot.press("enter")
        await wait_until(pilot, lambda: chat(fake_app).conversation_id == first_id)


async def test_rename_search_and_delete_conversations(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    async with fake_app.run_test(size=(120, 36)) as pilot:
        await ask(pilot, fake_app, "about trace trees")
        await pilot.press("ctrl+n")
        await ask(pilot, fake_app, "about bananas")
        conversation_id = chat(fake_app).conversation_id or ""

        await fake_app.screen.run_action("rename")
        await wait_until(pilot, lambda: bool(fake_app.screen.query("TextPrompt Input")))
        fake_app.screen.query_one(Input).value = "Fruit"
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: fake_service.get_conversation(conversation_id).title == "Fruit"
        )

        await pilot.press("ctrl+f")
        await pilot.press(*"bananas")
        options = fake_app.screen.query_one("#conversation-options", OptionList)
        await wait_until(pilot, lambda: options.option_count == 1, what="search results")

        await fake_app.screen.run_action("delete")
        await wait_until(pilot, lambda: isinstance(fake_app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: len(fake_service.list_conversations()) == 1)
        assert chat(fake_app).conversation_id is None


@pytest.mark.parametrize(
    "error",
    [GenerationError("llama.cpp ran out of memory"), RuntimeError("bug: ran out of memory")],
    ids=["model error", "unexpected bug"],
)
async def test_failed_answer_notifies_and_gives_the_question_back(
    fake_app: MiniCPMApp, error: Exception, fake_service: FakeService
) -> None:
    fake_service.fail_with = error
    async with fake_app.run_test(size=(100, 30)) as pilot:
        await ask(pilot, fake_app, "a question")
        assert fake_app.is_running
        assert fake_app.screen.query_one(PromptInput).text == "a question"
        messages = [n.message for n in fake_app._notifications]
        assert any("ran out of memory" in m and "try again" in m for m in messages)
        assert "failed" in str(fake_app.screen.query_one(".answer-note").render())


async def test_empty_answer_says_so_and_offers_a_retry(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    tokens = fake_service.answer_tokens
    fake_service.answer_tokens = ["\n", "  "]
    async with fake_app.run_test(size=(100, 30)) as pilot:
        await ask(pilot, fake_app, "a question")
        note = str(fake_app.screen.query_one(".answer-note").render())
        assert "the model returned no answer" in note and "cites no passage" not in note
        assert any(n.title == "No answer" for n in fake_app._notifications)
        prompt = fake_app.screen.query_one(PromptInput)
        assert prompt.text == "a question", "given back to ask again"

        fake_service.answer_tokens = tokens
        prompt.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(fake_service.asked) == 2, what="the retry")
        await wait_until(pilot, lambda: not chat(fake_app).generating, what="the answer")
        assert fake_service.asked == ["a question", "a question"]
        assert "TraceMonkey" in fake_app.screen.query(AnswerView).last().text

        conversation_id = chat(fake_app).conversation_id or ""
        await pilot.press("ctrl+n")
        await chat(fake_app).open_conversation(conversation_id)
        notes = [str(n.render()) for n in fake_app.screen.query(".answer-note")]
        assert "the model returned no answer" in notes[0], "also when reopened"
        assert "the model returned no answer" not in notes[1]


async def test_source_shows_full_text_and_open_is_guarded_when_headless(
    fake_app: MiniCPMApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    async with fake_app.run_test(size=(120, 36)) as pilot:
        await ask(pilot, fake_app, "what is tracemonkey")
        options = fake_app.screen.query_one("#source-options", OptionList)
        options.focus()
        await pilot.press("enter")
        assert (await source_shown(pilot, fake_app)).number == 1
        await pilot.press("escape")
        await wait_until(pilot, lambda: options.has_focus)
        options.highlighted = 1
        await pilot.press("enter")
        source = await source_shown(pilot, fake_app)
        assert source.page == "3-4"
        await pilot.press("o")
        await wait_until(pilot, lambda: bool(fake_app._notifications))
        assert any(
            "no longer exists" in n.message or "headless" in n.message
            for n in fake_app._notifications
        )
        await pilot.press("escape")
        assert isinstance(fake_app.screen, ChatScreen)


async def test_narrow_terminal_hides_conversations_until_asked(fake_app: MiniCPMApp) -> None:
    async with fake_app.run_test(size=(80, 24)) as pilot:
        listing = fake_app.screen.query_one(ConversationList)
        assert not listing.display
        await pilot.press("ctrl+b")
        assert listing.display
        assert fake_app.screen.query_one(SourcesPanel).display
        await pilot.press("ctrl+o")
        assert not fake_app.screen.query_one(SourcesPanel).display


async def test_help_and_palette_reach_every_screen_action(fake_app: MiniCPMApp) -> None:
    async with fake_app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f1")
        assert isinstance(fake_app.screen, HelpScreen)
        await pilot.press("escape")
        provider = AssistantCommands(fake_app.screen)
        titles = {hit.text async for hit in provider.discover()}
        assert {c.title for c in (*ChatScreen.ACTIONS, *MiniCPMApp.ACTIONS) if c.title} <= titles

    app_actions = {c.action for c in MiniCPMApp.ACTIONS if c.title}
    for screen in (ChatScreen, LibraryScreen, ModelsScreen):
        reachable = {c.action for c in screen.ACTIONS if c.title} | app_actions
        for binding in screen.BINDINGS:
            assert isinstance(binding, Binding)
            assert binding.action.removeprefix("app.") in reachable, binding


async def test_long_answer_is_frozen_in_paragraph_segments(fake_app: MiniCPMApp) -> None:
    from tui.widgets.chat_log import ChatLog, FrozenMarkdown

    paragraphs = ["word " * 20 + "\n\n"] * 200
    fence = ["```\n", "code line\n\n" * 200, "```\n\n"]
    fragments = [*paragraphs, *fence, "The end [1]."]
    async with fake_app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        answer = await fake_app.screen.query_one(ChatLog).start_answer()
        for fragment in fragments:
            await answer.append(fragment)
        await answer.flush()
        frozen = list(answer.query(FrozenMarkdown))
        live = answer.query_one(Markdown)
        assert len(frozen) > 3
        assert "".join(part.source for part in frozen) + live.source == "".join(fragments)
        fenced = [part.source for part in frozen if "```" in part.source]
        assert len(fenced) == 1 and fenced[0].count("```") == 2, "a code block is never split"

        await answer.finish("done")
        assert [part.source for part in answer.query(FrozenMarkdown)] == ["".join(fragments)]
        assert not answer.query(Markdown)


async def test_switching_collection_is_used_for_the_next_question(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    async with fake_app.run_test(size=(120, 36)) as pilot:
        await fake_app.run_action("collection")
        await wait_until(pilot, lambda: bool(fake_app.screen.query("TextPrompt Input")))
        fake_app.screen.query_one(Input).value = "papers"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(fake_app.screen, ChatScreen))
        assert "docs: papers" in str(fake_app.screen.query_one(StatusBar).render())
        await ask(pilot, fake_app, "anything")
        assert fake_service.asked_collections == ["papers"]
