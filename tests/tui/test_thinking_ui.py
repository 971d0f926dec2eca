"""The thinking toggle (Ctrl+T) and the folded thinking block above the answer."""

from __future__ import annotations

from textual.widgets import Collapsible

from tests.tui.fakes import FakeService
from tests.tui.test_chat_ui import ask, chat
from tui.app import MiniCPMApp
from tui.widgets.chat_log import AnswerView, ThinkingBlock
from tui.widgets.status_bar import StatusBar

THOUGHT = ["The passages ", "say [2] ", "\x1b[31mmatters\x1b[0m."]


async def test_ctrl_t_lets_the_model_think_and_shows_it_folded(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    fake_service.thinking_tokens = list(THOUGHT)
    async with fake_app.run_test(size=(120, 36)) as pilot:
        await ask(pilot, fake_app, "without thinking")
        first = fake_app.screen.query(AnswerView).last()
        assert not first.query(ThinkingBlock)

        await pilot.press("ctrl+t")
        assert chat(fake_app).think
        assert "thinking on" in str(fake_app.screen.query_one(StatusBar).render())
        await ask(pilot, fake_app, "with thinking")
        assert fake_service.asked_think == [False, True]

        answer = fake_app.screen.query(AnswerView).last()
        block = answer.query_one(ThinkingBlock)
        assert isinstance(block, Collapsible) and block.collapsed
        assert block.title == "Thought for 3 tokens"
        shown = str(block.query_one(".thinking-body").render())
        assert "The passages say [2]" in shown and "\x1b" not in shown
        assert answer.text == "".join(fake_service.answer_tokens)  # the answer alone
        assert answer.children[0] is block  # above the answer

        await pilot.press("ctrl+t")
        assert not chat(fake_app).think
        assert "thinking on" not in str(fake_app.screen.query_one(StatusBar).render())

        conversation_id = chat(fake_app).conversation_id
        assert conversation_id is not None
        await chat(fake_app).open_conversation(conversation_id)  # reopened from the database
        await pilot.pause()
        answers = list(fake_app.screen.query(AnswerView))
        assert not answers[0].query(ThinkingBlock)
        reopened = answers[1].query_one(ThinkingBlock)
        assert reopened.collapsed and reopened.title == "Thought"
        assert "The passages say [2]" in str(reopened.query_one(".thinking-body").render())
        assert answers[1].text == "".join(fake_service.answer_tokens)
