"""The ``minicpm-assistant`` command.

No sub-command opens the TUI. Each command group lives in its own module with a ``register``
function that adds its sub-parsers; a handler takes ``(args, context)`` and returns an exit code.
User-facing errors become one line on stderr and a non-zero exit; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.cli.context import CliContext
from assistant.display import terminal_safe
from assistant.errors import USER_ERRORS, describe
from assistant.locations import Locations
from assistant.settings import load_settings


def build_parser() -> argparse.ArgumentParser:
    from assistant.cli import (
        chat_cmd,
        doctor_cmd,
        download_cmd,
        library_cmd,
        models_cmd,
        serve_cmd,
    )

    parser = argparse.ArgumentParser(
        prog="minicpm-assistant",
        description=(
            "Offline document assistant: chat with your PDFs through a local MiniCPM model."
        ),
    )
    _add_global_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (models_cmd, library_cmd, chat_cmd, serve_cmd, doctor_cmd, download_cmd):
        module.register(commands)
    for sub in _leaf_parsers(commands):
        _add_global_options(sub, defaults=False)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options every command takes, before or after its name (``ask -q --model X``).

    Sub-commands get them without defaults so a value given before the command name survives.
    """
    unset: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "--home", type=Path, help="keep config, data, models and index under DIR", **unset
    )
    parser.add_argument("--model", help="catalog name or path of a GGUF to use", **unset)
    parser.add_argument(
        "--n-gpu-layers",
        help='layers to offload to the GPU: "auto" (default), 0 for CPU only, or a number',
        **unset,
    )
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and debug logs", **unset
    )


def _leaf_parsers(commands: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    """Every parser that finally parses a command line (``models list``, ``ask``, ...)."""
    leaves: list[argparse.ArgumentParser] = []
    for sub in dict.fromkeys(commands.choices.values()):
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        leaves.extend(_leaf_parsers(nested[0]) if nested else [sub])
    return leaves


def _engine_overrides(args: argparse.Namespace) -> dict[str, object]:
    layers: object = args.n_gpu_layers
    if isinstance(layers, str) and layers != "auto":
        layers = int(layers)
    return {"model": args.model, "n_gpu_layers": layers}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        locations = Locations.default(args.home).ensure()
        settings = load_settings(locations.config_file, engine=_engine_overrides(args))
        context = CliContext(settings=settings, locations=locations, debug=args.debug)
        handler = getattr(args, "handler", None)
        if handler is None:
            from tui.app import run_app

            return run_app(settings, locations)
        return int(handler(args, context))
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(terminal_safe(describe(error)), file=sys.stderr)  # messages name files, hold text
        return 1
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except ValueError as error:  # bad flag values, e.g. --n-gpu-layers abc
        if args.debug:
            raise
        print(f"Bad value: {error}", file=sys.stderr)
        return 2


def run() -> int:
    """The ``minicpm-assistant`` process: :func:`main`, then exit without the interpreter's last
    garbage collections over every object still alive (0.3-1 s on 2 cores once Chroma and
    pydantic are loaded). Nothing needs them: each command closed what it opened (store,
    library, model), and the rest goes with the process."""
    try:
        return main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    sys.exit(run())
