"""``models scan`` and ``models rm``: GGUFs other apps downloaded, linked here without a copy."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from assistant.cli.context import CliContext
from assistant.display import plain, terminal_safe, to_json
from assistant.errors import UsageError
from assistant.service import FoundModel


def register(actions: argparse._SubParsersAction) -> None:
    """Add ``scan`` and ``rm`` to the ``models`` actions."""
    finder = actions.add_parser(
        "scan",
        help="find GGUFs of LM Studio, Ollama, GPT4All, llama.cpp and the Hugging Face cache",
    )
    finder.add_argument("--json", action="store_true", help="print JSON instead of a table")
    finder.add_argument(
        "--add",
        nargs="+",
        metavar="N",
        help='add models by their number in the list, "minicpm" or "all" (linked, not copied)',
    )
    finder.set_defaults(handler=run_scan)

    remove = actions.add_parser("rm", help="forget a linked model (its file is kept)")
    remove.add_argument("name")
    remove.set_defaults(handler=run_remove)


def run_scan(args: argparse.Namespace, context: CliContext) -> int:
    with context.service() as service:
        found = service.found_models()
        chosen = _chosen(found, args.add) if args.add else []
        added = {
            model.path: service.add_model(model.path, model.link_name).name for model in chosen
        }
        linked = {model.path.resolve(): model.name for model in service.linked_models()}
    if args.json:
        print(to_json([_json(number, model, linked) for number, model in _numbered(found)]))
        return 0
    if not found:
        print("No GGUF models found in the folders of LM Studio, Ollama, GPT4All, llama.cpp or")
        print("the Hugging Face cache.")
        return 0
    console = Console()
    console.print(_table(found, linked))
    for number, model in _numbered(found):
        where = f"{number}. {model.path}" + (f"  ({model.problem})" if model.problem else "")
        console.print(Text("  ").append_text(plain(where, one_line=True)), soft_wrap=True)
    for path, name in added.items():
        print(
            terminal_safe(f"Added {name} ({path}); use it with: minicpm-assistant --model {name}")
        )
    if not args.add:
        print("Add with: minicpm-assistant models scan --add N [N ...]  (a link, no copy)")
    return 0


def run_remove(args: argparse.Namespace, context: CliContext) -> int:
    with context.service() as service:
        target = service.forget_model(args.name)
    print(terminal_safe(f"Forgot {args.name}; its file stays at {target}"))
    return 0


def _numbered(found: list[FoundModel]) -> list[tuple[int, FoundModel]]:
    return list(enumerate(found, start=1))


def _chosen(found: list[FoundModel], picks: list[str]) -> list[FoundModel]:
    """The models named by ``--add``: numbers of the list, ``minicpm`` or ``all``."""
    usable = [model for model in found if model.problem is None]
    chosen: list[FoundModel] = []
    for pick in picks:
        if pick == "all":
            chosen += usable
        elif pick == "minicpm":
            chosen += [model for model in usable if model.is_minicpm]
        elif pick.isdigit() and 1 <= int(pick) <= len(found):
            model = found[int(pick) - 1]
            if model.problem is not None:
                raise UsageError(f"model {pick} cannot be added: {model.problem}")
            chosen.append(model)
        else:
            raise UsageError(
                f"--add {pick!r}: give numbers from 1 to {len(found)} (see `models scan`), "
                '"minicpm" or "all"'
            )
    return list(dict.fromkeys(chosen))


def _table(found: list[FoundModel], linked: dict[Path, str]) -> Table:
    table = Table(
        title="GGUF models of other apps (MiniCPM first)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("#", "name", "architecture", "params", "quant", "size", "app", "added as"):
        names = column in ("name", "added as")  # folded, never cut: they are typed back
        table.add_column(column, no_wrap=not names, overflow="fold" if names else "ellipsis")
    for number, model in _numbered(found):
        table.add_row(
            str(number),
            plain(model.name, one_line=True),
            plain(model.architecture or "unreadable", one_line=True),
            model.parameters_label,
            plain(model.quantization or "", one_line=True),
            f"{model.size_bytes / 1e9:.2f} GB",
            model.source,
            plain(linked.get(model.path.resolve(), ""), one_line=True),
        )
    return table


def _json(number: int, model: FoundModel, linked: dict[Path, str]) -> dict[str, Any]:
    return {
        "number": number,
        "name": model.name,
        "path": str(model.path),
        "source": model.source,
        "architecture": model.architecture,
        "quantization": model.quantization,
        "parameters": model.parameters,
        "size_bytes": model.size_bytes,
        "is_minicpm": model.is_minicpm,
        "problem": model.problem,
        "added_as": linked.get(model.path.resolve()),
    }
