"""A link in an answer opens in the browser only after the user has seen its URL and said yes."""

from __future__ import annotations

from rich.console import Console
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Markdown
from textual.widgets._markdown import MarkdownParagraph

from tests.tui.waiting import wait_until
from tui.widgets.chat_log import AnswerView, FrozenMarkdown
from tui.widgets.safe_markdown import OpenLinkDialog

URL = "https://attacker.example/x?secret=1"


class AnswerApp(App[None]):
    """One streamed answer; the browser is the one outside part, so opened URLs are recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []

    def compose(self) -> ComposeResult:
        yield AnswerView()

    def open_url(self, url: str, *, new_tab: bool = True) -> None:
        self.opened.append(url)


async def _click_the_link(app: AnswerApp, pilot: Pilot[None]) -> None:
    answer = app.query_one(AnswerView)
    await answer.append(f"[here]({URL}) is more")
    await answer.flush()
    await wait_until(
        pilot,
        lambda: any(paragraph.region.width for paragraph in app.query(MarkdownParagraph)),
        what="the paragraph on screen",
    )
    await pilot.pause()
    await pilot.click(MarkdownParagraph, offset=(1, 0))
    await wait_until(pilot, lambda: isinstance(app.screen, OpenLinkDialog), what="the dialog")


async def test_a_clicked_link_shows_its_url_and_waits_for_a_yes() -> None:
    app = AnswerApp()
    async with app.run_test() as pilot:
        await _click_the_link(app, pilot)
        assert app.opened == []
        assert str(app.screen.query_one("#link-url").render()) == URL
        await pilot.click("#open")
        await wait_until(pilot, lambda: app.opened == [URL], what="the browser")
        assert not isinstance(app.screen, OpenLinkDialog)


async def test_cancel_or_escape_opens_nothing() -> None:
    app = AnswerApp()
    async with app.run_test() as pilot:
        await _click_the_link(app, pilot)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, OpenLinkDialog), what="close")
        await _click_the_link(app, pilot)
        await pilot.click("#cancel")
        await pilot.pause()
        assert app.opened == []
        assert app.query_one(AnswerView).query_one(Markdown)  # the answer is still there


def test_a_finished_answer_shows_links_as_text_not_terminal_hyperlinks() -> None:
    console = Console(force_terminal=True, color_system="truecolor", width=80, record=False)
    with console.capture() as captured:
        console.print(FrozenMarkdown(f"see [here]({URL})").content)
    output = captured.get()
    assert URL in output  # the user sees where it leads
    assert "\x1b]8;" not in output  # and the terminal gets no OSC 8 link to open on a click
