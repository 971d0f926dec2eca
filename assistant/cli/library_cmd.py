"""``ingest``, ``docs list|show|rm`` and ``search``: the document library from the shell."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from assistant.cli import embedder_cmd
from assistant.cli.context import CliContext
from assistant.display import plain, terminal_safe, to_json
from assistant.errors import UsageError
from assistant.service import AssistantService
from rag.types import FileStatus, IngestProgress, IngestReport

PASSWORD_ENV = "MINICPM_ASSISTANT_PDF_PASSWORD"
"""Environment variable read for the PDF password when ``--password`` is not given."""

_STATUSES: tuple[FileStatus, ...] = (
    "indexed",
    "unchanged",
    "updated",
    "moved",
    "removed",
    "failed",
    "skipped",
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add this group's sub-commands."""
    ingest = commands.add_parser(
        "ingest", help="index files and folders (PDF, .txt, .md, .docx, .html, .epub)"
    )
    ingest.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    ingest.add_argument(
        "--watch",
        action="store_true",
        help="then keep the collection's folders indexed as files change, until Ctrl-C",
    )
    ingest.add_argument("--collection", default=None, help="collection to index into")
    ingest.add_argument(
        "--retry-failed",
        action="store_true",
        help="parse again files that failed before, even if they have not changed",
    )
    ingest.add_argument(
        "--remove-emptied",
        action="store_true",
        help="remove the documents of folders that now read as empty or as not the drive they "
        "were read from (kept by default: a drive that is not mounted looks like either)",
    )
    ingest.add_argument(
        "--password",
        nargs="?",
        action=_PasswordAction,
        default=os.environ.get(PASSWORD_ENV),
        help=(
            "password for encrypted PDFs; without a value (or with --password-prompt) it is "
            f"asked for, unseen; also read from ${PASSWORD_ENV}. A password typed on the "
            "command line is visible to other users in the process list"
        ),
    )
    ingest.add_argument(
        "--password-prompt",
        nargs=0,
        dest="password",
        action=_PasswordAction,
        help="ask for the password of encrypted PDFs (not echoed)",
    )
    ingest.add_argument("--json", action="store_true", help="print the report as JSON")
    ingest.set_defaults(handler=run_ingest)

    docs = commands.add_parser("docs", help="list, show or remove indexed documents")
    actions = docs.add_subparsers(dest="docs_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="indexed documents")
    folders = actions.add_parser(
        "folders", help="folders ingested (kept current by ingest --watch)"
    )
    show = actions.add_parser("show", help="one document's record")
    show.add_argument("path")
    remove = actions.add_parser(
        "rm", help="remove a document, a folder and its documents, or --all of a collection"
    )
    remove.add_argument("path", nargs="?")
    remove.add_argument("--all", action="store_true", help="remove the whole collection")
    for parser in (listing, folders, show, remove):
        parser.add_argument("--collection", default=None)
        parser.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_docs_list)
    folders.set_defaults(handler=run_docs_folders)
    show.set_defaults(handler=run_docs_show)
    remove.set_defaults(handler=run_docs_rm)
    embedder_cmd.register(actions)

    search = commands.add_parser("search", help="retrieve passages (no model involved)")
    search.add_argument("query")
    search.add_argument("--collection", default=None)
    search.add_argument("--doc", default=None, help="search only this document (path)")
    search.add_argument("-k", type=int, default=None, help="number of passages")
    search.add_argument("--json", action="store_true")
    search.set_defaults(handler=run_search)


class _PasswordAction(argparse.Action):
    """``--password VALUE`` keeps the value; ``--password`` alone or ``--password-prompt`` asks
    for it with :func:`getpass.getpass` (from the terminal, else a line of standard input)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[str] | None,
        option_string: str | None = None,
    ) -> None:
        password = values if isinstance(values, str) else getpass.getpass("PDF password: ")
        setattr(namespace, self.dest, password)


def _collection(args: argparse.Namespace, context: CliContext) -> str:
    return str(args.collection or context.settings.chat.collection)


def run_ingest(args: argparse.Namespace, context: CliContext) -> int:
    if not args.paths and not args.watch:
        raise UsageError("give the files or folders to ingest (or --watch alone)")
    collection = _collection(args, context)
    console = Console(stderr=True)
    with context.service() as service:
        if args.paths:
            if args.json or not console.is_terminal:
                report = _ingest(service, args, collection)
            else:
                report = _ingest_with_bar(service, args, collection, console)
            _show_report(report, args.json, one_line=args.watch)
        if args.watch:
            _watch(service, collection, args.json)
    return 0


def _ingest(
    service: AssistantService,
    args: argparse.Namespace,
    collection: str,
    progress: Callable[[IngestProgress], None] | None = None,
) -> IngestReport:
    return service.ingest(
        args.paths,
        collection,
        progress,
        password=args.password,
        retry_failed=args.retry_failed,
        remove_emptied=args.remove_emptied,
    )


def _show_report(report: IngestReport, as_json: bool, *, one_line: bool = False) -> None:
    """The report as a table, or JSON (``one_line``: one object per line, as a watch prints
    one per update)."""
    if as_json:
        print(to_json(_report_json(report), indent=None if one_line else 2), flush=True)
    else:
        _print_report(report)


def _watch(service: AssistantService, collection: str, as_json: bool) -> None:
    """Keep the collection's folders indexed until Ctrl-C; print each update that changed
    something (``--json``: one report object per line)."""
    folders = service.folders(collection)
    if not folders:
        raise UsageError(
            f"collection {collection!r} has no folders to watch: `ingest --watch FOLDER`"
        )
    names = ", ".join(terminal_safe(folder.path, one_line=True) for folder in folders)
    print(f"Watching {names} (Ctrl-C stops).", file=sys.stderr, flush=True)

    def report(update: IngestReport) -> None:
        if as_json or any(result.status != "unchanged" for result in update.results):
            _show_report(update, as_json, one_line=True)

    try:
        service.watch(
            collection,
            on_report=report,
            on_busy=lambda reason: print(
                f"{reason} (the watch retries by itself)", file=sys.stderr, flush=True
            ),
        )
    except KeyboardInterrupt:  # the way a watch ends; an update cut short resumes next time
        print("Stopped watching.", file=sys.stderr)


def _ingest_with_bar(
    service: AssistantService, args: argparse.Namespace, collection: str, console: Console
) -> IngestReport:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} files"),
        TextColumn("{task.fields[pages]} pages, {task.fields[chunks]} chunks"),
        TextColumn("{task.fields[rate]:.1f} chunks/s"),
        TextColumn("{task.fields[left]}"),  # the library's estimate, not Rich's from files
        TextColumn("{task.fields[reading]}", markup=False),  # a file name is not markup
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("Indexing", total=0, pages=0, chunks=0, rate=0.0, left="", reading="")

        def update(progress: IngestProgress) -> None:
            bar.update(
                task,
                total=progress.files_total,
                completed=progress.files_done,
                pages=progress.pages_done,
                chunks=progress.chunks_done,
                rate=progress.chunks_per_s,
                left=time_left(progress.eta_s),
                reading=reading_now(progress),
            )

        return _ingest(service, args, collection, update)


def reading_now(progress: IngestProgress) -> str:
    """``OCR page 3/40 of scan.pdf`` while a scanned page is recognised (seconds a page), else
    nothing."""
    if progress.ocr_page is None or progress.current_file is None:
        return ""
    name = terminal_safe(Path(progress.current_file).name, one_line=True)
    return f"OCR page {progress.ocr_page}/{progress.file_pages} of {name}"


def time_left(seconds: float | None) -> str:
    """The ingest's estimate in words ("estimating…" until the library has measured a rate)."""
    if seconds is None:
        return "estimating…"
    if seconds < 90:
        return f"about {seconds:.0f} s left"
    return f"about {seconds / 60:.0f} min left"


def _report_json(report: IngestReport) -> dict[str, object]:
    return {
        "collection": report.collection,
        "seconds": round(report.seconds, 3),
        "counts": {status: report.count(status) for status in _STATUSES},
        "files": [asdict(result) for result in report.results],
    }


def _print_report(report: IngestReport) -> None:
    console = Console()
    noteworthy = [result for result in report.results if result.status != "unchanged"]
    if noteworthy:
        table = Table(title=plain(f"Ingest into {report.collection!r}"))
        for column in ("status", "file", "pages", "chunks", "reason"):
            table.add_column(column, overflow="fold")
        for result in noteworthy:
            style = "red" if result.status == "failed" else None
            table.add_row(
                result.status,
                plain(result.path, one_line=True),
                str(result.pages or ""),
                str(result.chunks or ""),
                plain(result.reason or "", one_line=True),
                style=style,
            )
        console.print(table)
    counts = ", ".join(f"{report.count(status)} {status}" for status in _STATUSES)
    console.print(f"{counts} in {report.seconds:.1f} s")


def run_docs_list(args: argparse.Namespace, context: CliContext) -> int:
    with context.service() as service:
        records = service.documents(args.collection)
    rows = [
        (
            plain(record.collection, one_line=True),
            plain(record.path, one_line=True),
            str(record.pages),
            str(record.chunks),
            _when(record.indexed_at),
            record.status,
        )
        for record in records
    ]
    empty = "No documents indexed yet: run `minicpm-assistant ingest PATH`."
    columns = ("collection", "file", "pages", "chunks", "indexed", "status")
    return _print_listing(records, rows, columns, empty, args.json)


def run_docs_folders(args: argparse.Namespace, context: CliContext) -> int:
    with context.service() as service:
        folders = service.folders(args.collection)
    rows = [
        (
            plain(folder.collection, one_line=True),
            plain(folder.path, one_line=True),
            _when(folder.added_at),
        )
        for folder in folders
    ]
    empty = "No folders ingested yet: run `minicpm-assistant ingest FOLDER`."
    return _print_listing(folders, rows, ("collection", "folder", "added"), empty, args.json)


def _print_listing(
    items: Sequence[Any],
    rows: Sequence[tuple[str | Text, ...]],
    columns: Sequence[str],
    empty: str,
    as_json: bool,
) -> int:
    """A listing as JSON (the dataclasses ``items``), or as a table of ``rows``."""
    if as_json:
        print(to_json([asdict(item) for item in items]))
        return 0
    if not rows:
        print(empty)
        return 0
    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    return 0


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def run_docs_show(args: argparse.Namespace, context: CliContext) -> int:
    with context.service() as service:
        matches = service.documents(args.collection, path=args.path)
    if not matches:
        print(f"{args.path} is not in the library.", file=sys.stderr)
        return 1
    if args.json:
        print(to_json([asdict(record) for record in matches]))
        return 0
    for record in matches:
        for key, value in asdict(record).items():
            print(f"{key:>13}: {terminal_safe(str(value), one_line=True)}")
    return 0


def run_docs_rm(args: argparse.Namespace, context: CliContext) -> int:
    collection = _collection(args, context)
    if args.all == bool(args.path):
        raise UsageError("give either a document PATH or --all (the whole collection)")
    with context.service() as service:
        if args.all:
            service.remove_collection(collection)
            outcome: dict[str, object] = {"collection": collection, "removed": "all"}
        elif (documents := service.remove_folder(args.path, collection)) is not None:
            outcome = {
                "collection": collection,
                "folder": args.path,
                "documents_removed": documents,
            }
        else:
            chunks = service.remove_document(args.path, collection)
            if chunks == 0 and not any(
                record.path in (args.path, str(Path(args.path).absolute()))
                for record in service.documents(collection)
            ):
                print(f"{args.path} was not indexed in {collection!r}.", file=sys.stderr)
            outcome = {"collection": collection, "path": args.path, "chunks_removed": chunks}
    print(json.dumps(outcome) if args.json else _describe_removal(outcome))
    return 0


def _describe_removal(outcome: dict[str, object]) -> str:
    if outcome.get("removed") == "all":
        return f"Removed collection {outcome['collection']!r}."
    if "folder" in outcome:
        return f"Removed folder {outcome['folder']} ({outcome['documents_removed']} documents)."
    return f"Removed {outcome['path']} ({outcome['chunks_removed']} chunks)."


def run_search(args: argparse.Namespace, context: CliContext) -> int:
    with context.service() as service:
        hits, relevance = service.search(
            args.query, collection=_collection(args, context), k=args.k, document=args.doc
        )
    if args.json:
        rows = [
            {
                "file": hit.file,
                "page": hit.page,
                "score": hit.score,
                "text": hit.text,
                "chunk_id": hit.chunk_id,
                "heading": hit.heading,
                "ocr": hit.ocr,
            }
            for hit in hits
        ]
        print(to_json(rows))
        return 0
    if not hits:
        print("No passages found.")
        return 0
    console = Console()
    if not relevance.relevant:
        named = ", ".join(relevance.missing)
        reason = f"they do not mention {named}" if named else "all scores under the threshold"
        console.print(f"No passage looks relevant ({reason}).", style="yellow", markup=False)
    for rank, hit in enumerate(hits, start=1):
        where = f"{rank}. {hit.file}, p. {hit.page}" + (" (OCR)" if hit.ocr else "")
        where += f" — {hit.heading}" if hit.heading else ""
        console.print(
            Text.assemble(plain(where, one_line=True, style="bold"), f"  score {hit.score:.3f}")
        )
        console.print(plain(hit.text[:600]))
        console.print()
    return 0
