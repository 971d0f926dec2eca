"""``docs embedder NAME`` (switch a collection's embedding model) and ``models pull`` of an
embedding model: the multilingual models next to MiniCPM."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from assistant.cli.context import CliContext
from assistant.display import plain
from assistant.embedders import EmbedderRow, display_name, entry_named
from assistant.service import AssistantService
from models.embedders import EMBEDDERS
from rag.types import SwitchProgress, SwitchReport


def register(actions: argparse._SubParsersAction) -> None:
    """Add ``docs embedder`` to the ``docs`` actions."""
    names = ", ".join(entry.name for entry in EMBEDDERS)
    switch = actions.add_parser(
        "embedder",
        help="switch a collection to another embedding model (re-embeds its passages)",
        description=(
            "Re-embed the collection's stored passages with another embedding model, then switch "
            "to it; searches use the old index until the new one is complete, and an interrupted "
            "switch resumes when run again. Without NAME, show the collection's model."
        ),
    )
    switch.add_argument("name", nargs="?", help=f"catalog name: {names}")
    switch.add_argument("--collection", default=None)
    switch.set_defaults(handler=run_switch)


def run_switch(args: argparse.Namespace, context: CliContext) -> int:
    collection = str(args.collection or context.settings.chat.collection)
    with context.service() as service:
        if args.name is None:
            used = service.collection_embedder(collection) or "no such collection"
            print(plain(f"{collection}: {used}"))
            return 0
        report = _switch(service, args.name, collection)
    print(
        plain(
            f"{collection}: now {display_name(report.spec.model)} ({report.passages} passages, "
            f"{report.embedded} embedded in {report.seconds:.1f} s)"
        )
    )
    return 0


def _switch(service: AssistantService, name: str, collection: str) -> SwitchReport:
    """Re-embed with a bar on stderr."""
    console = Console(stderr=True)
    with Progress(
        TextColumn("Re-embedding"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("passages", total=None)

        def update(progress: SwitchProgress) -> None:
            bar.update(task, completed=progress.done, total=progress.total)

        return service.switch_embedder(name, collection, progress=update)


def run_pull(args: argparse.Namespace, context: CliContext) -> int:
    """``models pull NAME`` for an embedding model (``--source`` does not apply: Hugging Face
    or the ``HF_ENDPOINT`` mirror)."""
    entry = entry_named(args.name)
    console = Console(stderr=True)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(entry.title, total=entry.size_bytes)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        with context.service() as service:
            folder = service.pull_embedder(entry.name, progress=update)
    print(plain(f"{entry.name}: {folder}"))
    print(f"Switch a collection to it: minicpm-assistant docs embedder {entry.name}")
    return 0


def embedders_table(rows: list[EmbedderRow]) -> Table:
    """The embedding models for ``models list``."""
    table = Table(
        title="Embedding models, for documents (✓ = usable now)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("", "name", "languages", "dims", "size"):
        table.add_column(column, no_wrap=column != "languages")
    for row in rows:
        entry = row.entry
        table.add_row(
            "[green]✓[/green]" if row.on_disk else "",
            entry.name,
            entry.languages,
            str(entry.dimensions),
            "installed" if entry.bundled else f"{entry.size_bytes / 1024**3:.1f} GB",
        )
    return table


def embedders_json(rows: list[EmbedderRow]) -> list[dict[str, Any]]:
    return [
        {**asdict(row.entry), "on_disk": row.on_disk, "bundled": row.entry.bundled} for row in rows
    ]
