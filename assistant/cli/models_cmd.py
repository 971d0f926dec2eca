"""``models list|pull|add|info`` (``scan|rm`` in :mod:`scan_cmd`): the MiniCPM catalog and the
GGUFs on this machine."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from assistant.cli import embedder_cmd, scan_cmd
from assistant.cli.context import CliContext
from assistant.display import plain, terminal_safe, to_json
from assistant.service import LocalModel
from models.catalog import (
    CATALOG,
    DEMO_ENTRY,
    MINICPM_HINT,
    CatalogEntry,
    find_entry,
    is_commit,
)
from models.embedders import find_embedder
from models.gguf_info import format_count, read_gguf_info
from models.templates import template_for_gguf


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``models`` with its actions."""
    models = commands.add_parser("models", help="list, download, add and inspect models")
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="the MiniCPM catalog and the models on disk")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(handler=run_list)

    pull = actions.add_parser("pull", help="download a catalog model (resumable)")
    pull.add_argument(
        "name",
        help="catalog name, e.g. minicpm5-1b (see `models list`), or an embedding model: "
        "multilingual-e5-small, bge-m3",
    )
    pull.add_argument(
        "--source",
        choices=("hf", "modelscope"),
        help="Hugging Face or ModelScope (default: the engine.source setting)",
    )
    pull.set_defaults(handler=run_pull)

    add = actions.add_parser("add", help="use a GGUF file you already have (no copy is made)")
    add.add_argument("path", type=Path)
    add.set_defaults(handler=run_add)

    info = actions.add_parser("info", help="what a model is, read from its GGUF header")
    info.add_argument("model", help="catalog or local name, or a path to a .gguf file")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=run_info)
    scan_cmd.register(actions)


def run_list(args: argparse.Namespace, context: CliContext) -> int:
    models_dir = context.locations.models_dir
    with context.service() as service:
        local = service.local_models()
        broken = service.broken_model_links()
        embedders = service.embedders()
    on_disk = {model.entry.name: model for model in local if model.entry is not None}
    extras = [model for model in local if model.entry is None]
    default_is_demo = not any(model.is_minicpm for model in local)
    if args.json:
        print(
            to_json(
                {
                    "catalog": [_entry_json(entry, on_disk.get(entry.name)) for entry in CATALOG],
                    "local": [_local_json(model) for model in extras],
                    "default": _default_name(local),
                    "models_dir": str(models_dir),
                    "broken_references": [
                        {"name": name, "missing_file": str(target)} for name, target in broken
                    ],
                    "embedders": embedder_cmd.embedders_json(embedders),
                }
            )
        )
        return 0
    console = Console()
    table = Table(
        title="Models (✓ = on disk)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    for column in ("", "name", "params", "quant", "size", "ctx", "prompt", "GB RAM/GPU"):
        table.add_column(column, no_wrap=True)
    for entry in CATALOG:
        name = entry.name
        if entry.is_demo:
            name += "\n[yellow]demo, not MiniCPM[/yellow]"
        elif not entry.pullable:
            name += "\n[dim]convert yourself[/dim]"
        elif entry.can_think:
            name += "\n[dim]can think[/dim]"
        table.add_row(
            "[green]✓[/green]" if entry.name in on_disk else "",
            name,
            entry.params,
            entry.quantization,
            _size(entry.size_bytes),
            _context(entry),
            entry.template,
            f"{entry.ram_gb:g}/{entry.vram_gb:g}",
        )
    for model in extras:
        label = plain(model.name, one_line=True)
        table.add_row("[green]✓[/green]", label, "", "", "", "", "", "")
    console.print(table)
    console.print(embedder_cmd.embedders_table(embedders))
    console.print("ctx: trained context (the context OpenBMB's llama.cpp guide runs it with)")
    console.print("Sources", style="bold")
    for entry in CATALOG:
        if not entry.is_demo:
            details = f"{_sources(entry)}\n{_verification(entry)}"
            console.print(f"  {entry.name}\n{details}", highlight=False, soft_wrap=True)
    console.print(plain(f"Models directory: {models_dir}"))
    for name, target in broken:
        console.print(
            plain(
                f"{name}: its file {target} is gone (moved or deleted); `models add` it from "
                f"where it is now, or `models rm {name}`",
                style="yellow",
            )
        )
    if default_is_demo:
        console.print(
            "[yellow]No MiniCPM model on disk: the assistant uses the offline demo model "
            "(Gemma 3 270M base, not MiniCPM; weak answers).[/yellow]\n"
            f"Get MiniCPM: [bold]{MINICPM_HINT}[/bold]  (add --source modelscope in China)"
        )
    return 0


def run_pull(args: argparse.Namespace, context: CliContext) -> int:
    if find_embedder(args.name) is not None:
        return embedder_cmd.run_pull(args, context)
    source = args.source or context.settings.engine.source
    console = Console(stderr=True)
    entry = find_entry(args.name)
    title = entry.title if entry is not None else args.name
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"{title} ({source})", total=None)

        def report(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        with context.service() as service:
            model = service.pull_model(args.name, source, progress=report)
    print(f"{model.name}: {model.path}")
    return 0


def run_add(args: argparse.Namespace, context: CliContext) -> int:
    with context.service() as service:
        model = service.add_model(args.path)
    info = read_gguf_info(model.path)
    print(
        terminal_safe(
            f"Added {model.name}: {info.architecture}, {format_count(info.parameters)} "
            f"parameters, {info.file_type} ({model.path})"
        )
    )
    print(f"Use it with: minicpm-assistant --model {model.name}")
    return 0


def run_info(args: argparse.Namespace, context: CliContext) -> int:
    entry = find_entry(args.model)
    if entry is not None and not entry.is_demo:
        if not (context.locations.models_dir / entry.file_name).exists():
            return _catalog_info(entry, args.json)
    with context.service() as service:
        model = service.resolve_model(args.model)
    info = read_gguf_info(model.path)
    template = template_for_gguf(model.entry.template if model.entry else None, info)
    details: dict[str, Any] = {
        "name": model.name,
        "path": str(model.path),
        "architecture": info.architecture,
        "model_name": info.name,
        "parameters": info.parameters,
        "quantization": info.file_type,
        "context_length": info.context_length,
        "layers": info.layers,
        "vocab_size": info.vocab_size,
        "size_bytes": info.size_bytes,
        "chat_template": info.chat_template,
        "template_used": template.name,
        "can_think": template.can_think,
        "is_minicpm": model.is_minicpm,
        "is_demo": model.is_demo,
    }
    if args.json:
        print(to_json(details))
        return 0
    rows = [
        ("Model", f"{model.name}{' (demo, not MiniCPM)' if model.is_demo else ''}"),
        ("File", str(model.path)),
        ("Architecture", info.architecture),
        ("Parameters", format_count(info.parameters)),
        ("Quantization", info.file_type),
        ("Context length", str(info.context_length or "unknown")),
        ("Layers", str(info.layers or "unknown")),
        ("Size", _size(info.size_bytes)),
        ("Chat template", _template_summary(info.chat_template)),
        ("Prompt format used", template.name),
        ("Thinking mode", "yes (ask --think)" if template.can_think else "no"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {terminal_safe(value, one_line=True)}")
    return 0


def _catalog_info(entry: CatalogEntry, as_json: bool) -> int:
    """What the catalog knows about a model that is not downloaded yet."""
    if as_json:
        print(to_json(_entry_json(entry, None)))
        return 0
    print(f"{entry.title}: not on disk (catalog facts; the GGUF header is read once pulled)")
    print(
        f"Parameters {entry.params}, {entry.quantization}, {_size(entry.size_bytes)}, "
        f"context {_context(entry)}, prompt format {entry.template}"
    )
    print(_sources(entry))
    print(_verification(entry))
    print(entry.notes)
    if entry.pullable:
        print(f"Get it: minicpm-assistant models pull {entry.name}")
    return 0


def _entry_json(entry: CatalogEntry, local: LocalModel | None) -> dict[str, Any]:
    data = asdict(entry)
    data["sampling"] = asdict(entry.sampling)
    data["can_think"] = entry.can_think
    data["pinned"] = entry.pinned
    data["on_disk"] = local is not None
    data["path"] = str(local.path) if local is not None else None
    data["is_minicpm"] = entry.is_minicpm
    data["pullable"] = entry.pullable
    return data


def _local_json(model: LocalModel) -> dict[str, Any]:
    return {"name": model.name, "path": str(model.path), "is_minicpm": model.is_minicpm}


def _default_name(local: list[LocalModel]) -> str:
    return next((model.name for model in local if model.is_minicpm), DEMO_ENTRY.name)


def _sources(entry: CatalogEntry) -> str:
    lines = []
    for hub, repo, file in (
        ("Hugging Face", entry.hf_repo, entry.hf_file),
        ("ModelScope", entry.modelscope_repo, entry.modelscope_file),
    ):
        where = "none" if repo is None else f"{repo}  {file or '(no GGUF published)'}"
        lines.append(f"    {hub + ':':<14}{where}")
    return "\n".join(lines)


def _context(entry: CatalogEntry) -> str:
    """``128K`` or, with the guide's default cap, ``128K (8K)``."""
    trained = f"{entry.trained_context // 1024}K"
    cap = entry.default_context_cap
    return trained if cap is None else f"{trained} ({cap // 1024}K)"


def _verification(entry: CatalogEntry) -> str:
    """Where the entry's facts come from, and which ones no source confirmed."""
    lines = [f"    {'Checked:':<14}{'; '.join(entry.verified_from)}"]
    if entry.unverified:
        lines.append(f"    {'Unverified:':<14}{', '.join(entry.unverified)}")
    if not entry.pullable:
        return "\n".join(lines)
    pins = [f"sha256 {entry.sha256[:12]}…"] if entry.sha256 else []
    for hub, file, revision in (
        ("Hugging Face", entry.hf_file, entry.hf_revision),
        ("ModelScope", entry.modelscope_file, entry.modelscope_revision),
    ):
        if file is not None and is_commit(revision):
            pins.append(f"{hub} commit {revision[:12]}")
    if entry.pinned:
        lines.append(f"    {'Pinned:':<14}{', '.join(pins)}")
    else:
        lines.append(f"    {'Not pinned:':<14}follows the hub's moving revision")
    return "\n".join(lines)


def _size(size_bytes: int) -> str:
    if size_bytes <= 0:
        return "-"
    return f"{size_bytes / 1e9:.2f} GB" if size_bytes >= 1e9 else f"{size_bytes / 1e6:.0f} MB"


def _template_summary(source: str | None) -> str:
    if source is None:
        return "none in the GGUF"
    return f"embedded Jinja template ({len(source)} characters)"
