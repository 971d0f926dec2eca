"""``ask``, ``chat`` and ``conversations``: the chat pipeline on a plain terminal.

The commands only print the events of :meth:`AssistantService.ask`; every decision (retrieval,
budget, citations, persistence) is made in the service, the same one the TUI uses.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict
from typing import Any, TextIO

from assistant.answer_json import retrieval_json, sources_json
from assistant.cli.context import CliContext
from assistant.display import terminal_safe, to_json
from assistant.errors import UsageError
from assistant.events import (
    NO_ANSWER,
    AnswerFailed,
    AnswerFinished,
    ChatEvent,
    RetrievalFinished,
    RetrievalStarted,
    Source,
    ThinkingReceived,
    TokenReceived,
    TurnStarted,
)
from assistant.export import export_conversation, timestamp
from assistant.service import AssistantService
from models.catalog import MINICPM_HINT

CHAT_HELP = """Commands:
  /new            start a new conversation
  /id             show this conversation's id (resume with `chat --conversation ID`)
  /sources        show the passages the last answer was given
  /think          let the model think before it answers (again: stop), if it can
  /retry          ask the last question again
  /quit           leave (Ctrl-D works too)"""


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``ask``, ``chat`` and ``conversations``."""
    ask = commands.add_parser("ask", help="answer one question from your documents")
    ask.add_argument("question", help='the question; "-" reads it from stdin')
    _add_turn_options(ask)
    ask.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    ask.set_defaults(handler=run_ask)

    chat = commands.add_parser("chat", help="a line-based multi-turn chat (no TUI)")
    _add_turn_options(chat)
    chat.set_defaults(handler=run_chat)

    conversations = commands.add_parser("conversations", help="list, show, search, export")
    actions = conversations.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="conversations, newest first")
    listing.set_defaults(handler=run_list)
    search = actions.add_parser("search", help="full-text search over every message")
    search.add_argument("query", nargs="+")
    search.set_defaults(handler=run_list)
    for parser in (listing, search):
        parser.add_argument("--json", action="store_true", help="print a JSON list")
    show = actions.add_parser("show", help="print a conversation with its sources")
    show.add_argument("id", help="conversation id (a unique prefix is enough)")
    show.set_defaults(handler=run_show)
    rename = actions.add_parser("rename", help="give a conversation a new title")
    rename.add_argument("id")
    rename.add_argument("title", nargs="+")
    rename.set_defaults(handler=run_rename)
    remove = actions.add_parser("rm", help="delete a conversation")
    remove.add_argument("id")
    remove.set_defaults(handler=run_remove)
    export = actions.add_parser("export", help="write a conversation as Markdown or JSON")
    export.add_argument("id")
    export.add_argument("--format", choices=("md", "json"), default="md")
    export.set_defaults(handler=run_export)


def _add_turn_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--collection", help="document collection to search")
    parser.add_argument("--doc", metavar="PATH", help="search only this document")
    parser.add_argument(
        "--no-rag",
        dest="use_documents",
        action="store_false",
        default=None,
        help="do not search documents: a plain chat with the model",
    )
    parser.add_argument(
        "--general",
        dest="allow_general",
        action="store_true",
        default=None,
        help="when nothing relevant is found, let the model answer from general knowledge",
    )
    parser.add_argument("--conversation", metavar="ID", help="continue this conversation")
    parser.add_argument(
        "--think",
        action="store_true",
        help="let a model with a thinking mode (MiniCPM4.1, MiniCPM5) think before it answers; "
        "the thinking goes to stderr and is kept apart from the answer",
    )


@contextmanager
def _service(
    context: CliContext, *, with_model: bool, conversation: str | None = None
) -> Iterator[AssistantService]:
    """The service; with ``with_model`` the model is loaded first (checking ``conversation``)."""
    with context.service() as service:
        if with_model:
            conversation_id = service.get_conversation(conversation).id if conversation else None
            status = service.load_engine(conversation_id=conversation_id)
            if status.is_demo:
                print(
                    f"Note: using the offline demo model {status.name}, not MiniCPM; answers "
                    f"will be poor. Get MiniCPM with: {MINICPM_HINT}",
                    file=sys.stderr,
                )
        yield service


def _turn(
    service: AssistantService, question: str, args: argparse.Namespace
) -> Generator[ChatEvent, None, None]:
    return service.ask(
        question,
        conversation_id=args.conversation,
        collection=args.collection,
        document=args.doc,
        use_documents=args.use_documents,
        allow_general=args.allow_general,
        think=args.think,
    )


def run_ask(args: argparse.Namespace, context: CliContext) -> int:
    question = sys.stdin.read() if args.question == "-" else args.question
    if not question.strip():
        raise UsageError("the question is empty")
    with _service(context, with_model=True, conversation=args.conversation) as service:
        with closing(_turn(service, question, args)) as events:
            if args.json:
                return _print_json(events)
            printer = _TurnPrinter(sys.stdout, think=args.think)
            return 0 if printer.show(events, retry="run the same command to try again") else 1


class _ThinkingPrinter:
    """Writes the model's thinking to stderr as a labelled block, dimmed on a terminal: never
    mixed with the answer on stdout, so a pipe gets the answer alone."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.dim = err.isatty()
        self.open = False

    def write(self, text: str) -> None:
        text = terminal_safe(text)
        if not self.open:
            text = text.lstrip()
            if not text:
                return
            self.err.write(("\x1b[2m" if self.dim else "") + "Thinking: ")
            self.open = True
        self.err.write(text)
        self.err.flush()

    def close(self) -> None:
        if self.open:
            self.err.write(("\x1b[0m" if self.dim else "") + "\n(end of thinking)\n")
            self.err.flush()
            self.open = False


def _say_if_it_could_not_think(finished: AnswerFinished | None, asked: bool) -> None:
    if asked and finished is not None and not finished.thinking_mode:
        print("(this model has no thinking mode; it answered directly)", file=sys.stderr)


def _said_no_answer(finished: AnswerFinished | None, retry: str) -> bool:
    """Say so on stderr when the model wrote nothing, with how to ``retry``: an empty line on
    stdout would look like a hang or a bug."""
    if finished is None or not finished.no_answer:
        return False
    print(f"({NO_ANSWER}; {retry})", file=sys.stderr)
    return True


class _AnswerPrinter:
    """Writes streamed text as it comes, without the whitespace a reply often starts with."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = False

    def write(self, text: str) -> None:
        text = terminal_safe(text)
        if not self.started:
            text = text.lstrip()
            self.started = bool(text)
        self.out.write(text)
        self.out.flush()


class _TurnPrinter:
    """Prints one turn for ``ask`` and ``chat`` alike: the answer streams to ``out`` and its
    sources follow; thinking, the "searching for" line and failures go to stderr, so ``out``
    carries the answer alone. Keeps the conversation id and the finished answer for the caller,
    also when Ctrl-C cuts the turn short."""

    def __init__(self, out: TextIO, *, think: bool) -> None:
        self.out = out
        self.think = think
        self.conversation_id: str | None = None
        self.finished: AnswerFinished | None = None

    def show(self, events: Iterator[ChatEvent], *, retry: str) -> bool:
        """Print the turn; False when it failed or the model returned no answer (told how to
        ``retry``)."""
        answer = _AnswerPrinter(self.out)
        thinking = _ThinkingPrinter(sys.stderr)
        for event in events:
            if isinstance(event, TurnStarted):
                self.conversation_id = event.conversation_id
            elif isinstance(event, RetrievalStarted) and event.rewritten:
                searched = terminal_safe(event.query, one_line=True)
                print(f"(searching for: {searched})", file=sys.stderr)
            elif isinstance(event, ThinkingReceived):
                thinking.write(event.text)
            elif isinstance(event, TokenReceived):
                thinking.close()
                answer.write(event.text)
            elif isinstance(event, AnswerFinished):
                self.finished = event
            elif isinstance(event, AnswerFailed):
                thinking.close()
                self.out.write("\n")
                self.out.flush()
                print(terminal_safe(f"{event.title}: {event.message}"), file=sys.stderr)
                return False
        thinking.close()
        self.out.write("\n")
        self.out.flush()
        _say_if_it_could_not_think(self.finished, self.think)
        if _said_no_answer(self.finished, retry):
            return False
        if self.finished is not None:
            _print_sources(self.finished, self.out)
            self.out.flush()
        return True


def _print_sources(finished: AnswerFinished, out: TextIO) -> None:
    if finished.incomplete:
        print("(answer incomplete)", file=out)
    if finished.sources:
        print("\nSources:", file=out)
        for source in finished.sources:
            print(f"  [{source.number}] {_file(source)}, page {source.page}", file=out)
    elif finished.evidence:
        print("\nPassages given to the model (the answer cites none):", file=out)
        for source in finished.evidence:
            print(f"  [{source.number}] {_file(source)}, page {source.page}", file=out)
    elif not finished.grounded and finished.searched_query is not None:
        print("(not based on your documents)", file=out)


def _file(source: Source) -> str:
    return terminal_safe(source.file, one_line=True)


def _print_json(events: Iterator[ChatEvent]) -> int:
    result: dict[str, Any] = {"answer": "", "conversation_id": None, "searched_query": None}
    code = 0
    for event in events:
        if isinstance(event, TurnStarted):
            result["conversation_id"] = event.conversation_id
        elif isinstance(event, RetrievalFinished):
            result.update(retrieval_json(event))
        elif isinstance(event, AnswerFinished):
            result.update(
                answer=event.answer.strip(),
                sources=sources_json(event),
                usage={
                    "prompt_tokens": event.usage.prompt_tokens,
                    "prompt_tokens_evaluated": event.usage.prompt_tokens_evaluated,
                    "completion_tokens": event.usage.completion_tokens,
                },
                timings={key: round(value, 4) for key, value in asdict(event.timings).items()},
                grounded=event.grounded,
                incomplete=event.incomplete,
                thinking=event.thinking.strip(),
                thinking_mode=event.thinking_mode,
            )
            result["usage"]["thinking_tokens"] = event.thinking_tokens
        elif isinstance(event, AnswerFailed):
            result.update(
                answer=event.partial_answer.strip(),
                error={"title": event.title, "message": event.message},
            )
            code = 1
    print(to_json(result))
    return code


def run_chat(args: argparse.Namespace, context: CliContext) -> int:
    """Read questions line by line; works the same with a terminal or piped stdin."""
    interactive = sys.stdin.isatty()
    with _service(context, with_model=True, conversation=args.conversation) as service:
        if interactive:
            print("Type a question; /help for commands, /quit to leave.", file=sys.stderr)
        last: AnswerFinished | None = None
        question: str | None = None
        code = 0
        while True:
            line = _read_line(interactive)
            if line is None:
                break
            text = line.strip()
            if not text:
                continue
            if text == "/retry":
                if question is None:
                    print("(no question to ask again yet)")
                    continue
                text = question
            elif text.startswith("/"):
                if text in ("/quit", "/exit", "/q"):
                    break
                last = _chat_command(text, args, last)
                continue
            question = text
            printer = _TurnPrinter(sys.stdout, think=args.think)
            try:
                with closing(_turn(service, text, args)) as events:
                    answered = printer.show(events, retry="/retry asks again")
            except KeyboardInterrupt:  # Ctrl-C stops this answer (kept, incomplete), not the chat
                print("\n(stopped)", file=sys.stderr)
                continue
            finally:
                args.conversation = printer.conversation_id or args.conversation
            last = printer.finished
            code = code if answered else 1
    return code


def _read_line(interactive: bool) -> str | None:
    """The next line, None at the end; a terminal gets a prompt and line editing."""
    if not interactive:
        return sys.stdin.readline() or None
    import readline  # noqa: F401  (gives input() history and editing)

    try:
        return input("\n> ")
    except EOFError:
        print(file=sys.stderr)
        return None


def _chat_command(
    command: str, args: argparse.Namespace, last: AnswerFinished | None
) -> AnswerFinished | None:
    if command == "/new":
        args.conversation = None
        print("(new conversation)")
        return None
    if command == "/think":
        args.think = not args.think
        print(
            "(thinking on: the model thinks before it answers)" if args.think else "(thinking off)"
        )
    elif command == "/id":
        print(args.conversation or "(no conversation yet)")
    elif command == "/sources":
        for source in last.evidence if last else []:
            text = terminal_safe(source.text, one_line=True)
            print(f"[{source.number}] {_file(source)}, page {source.page}: {text[:200]}")
    else:
        print(CHAT_HELP)
    return last


def run_list(args: argparse.Namespace, context: CliContext) -> int:
    query = " ".join(args.query) if getattr(args, "query", None) else None
    with _service(context, with_model=False) as service:
        summaries = service.list_conversations(query)
    if args.json:
        print(to_json([asdict(summary) for summary in summaries]))
        return 0
    if not summaries:
        print("No conversations found." if query else "No conversations yet.", file=sys.stderr)
        return 0
    for summary in summaries:
        print(
            f"{summary.id}  {timestamp(summary.updated_at)}  {summary.message_count:>3} msgs  "
            f"{terminal_safe(summary.title, one_line=True)}"
        )
        if summary.snippet:
            print(f"    {terminal_safe(summary.snippet, one_line=True)}")
    return 0


def run_show(args: argparse.Namespace, context: CliContext) -> int:
    with _service(context, with_model=False) as service:
        print(service.export_conversation(args.id, "md"), end="")
    return 0


def run_rename(args: argparse.Namespace, context: CliContext) -> int:
    with _service(context, with_model=False) as service:
        service.rename_conversation(args.id, " ".join(args.title))
    return 0


def run_remove(args: argparse.Namespace, context: CliContext) -> int:
    with _service(context, with_model=False) as service:
        conversation = service.get_conversation(args.id)
        service.delete_conversation(conversation.id)
    title = terminal_safe(conversation.title, one_line=True)
    print(f"Deleted {conversation.id} ({title}).", file=sys.stderr)
    return 0


def run_export(args: argparse.Namespace, context: CliContext) -> int:
    with _service(context, with_model=False) as service:
        print(export_conversation(service.get_conversation(args.id), args.format), end="")
    return 0
