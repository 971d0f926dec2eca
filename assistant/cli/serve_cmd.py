"""``serve``: the grounded chat as an OpenAI-compatible API (see :mod:`assistant.api`)."""

from __future__ import annotations

import argparse
import logging
import sys

from assistant.cli.context import CliContext
from assistant.display import terminal_safe
from assistant.settings import ServeConfig


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve",
        help="answer from your documents over an OpenAI-compatible local API",
        description=(
            "Serve POST /v1/chat/completions (streaming or not) and GET /v1/models: answers "
            "grounded in your library, with the passages in a `sources` field. The model name "
            "a client sends is the collection to search."
        ),
    )
    serve.add_argument(
        "--host", help="address to listen on (default 127.0.0.1); any other needs a token"
    )
    serve.add_argument("--port", type=_port, help="TCP port (default 8765; 0: any free port)")
    serve.add_argument(
        "--token",
        help="bearer token every client must send; other users can see it in the process list, "
        "so prefer [serve] token or MINICPM_ASSISTANT_SERVE__TOKEN",
    )
    serve.set_defaults(handler=run_serve)


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (0-65535)")
    return port


def run_serve(args: argparse.Namespace, context: CliContext) -> int:
    from assistant.api.app import create_app  # the web stack: only for this command
    from assistant.api.server import check_binding, serve

    config = _config(context.settings.serve, args)
    check_binding(config.host, config.token.get_secret_value() if config.token else None)
    logging.getLogger("assistant.api").setLevel(logging.INFO)  # one line per answer, on stderr
    with context.service() as service:
        status = service.load_engine()
        model = terminal_safe(status.name, one_line=True)
        if status.is_demo:
            model += " (the offline demo model, not MiniCPM: answers will be poor)"
        if status.parallel > 1:
            model += f", {status.parallel} at once"

        def ready(url: str) -> None:
            print(f"Serving your library at {url}, answers by {model}. Ctrl-C stops.", flush=True)

        try:
            serve(create_app(service, config), config.host, config.port, ready)
        except KeyboardInterrupt:  # Ctrl-C is how a server stops: answers in progress ended
            print("Stopped.", file=sys.stderr)
    return 0


def _config(configured: ServeConfig, args: argparse.Namespace) -> ServeConfig:
    """The settings' ``[serve]`` with the flags given on the command line."""
    flags = {"host": args.host, "port": args.port, "token": args.token}
    given = {key: value for key, value in flags.items() if value is not None}
    return ServeConfig.model_validate({**configured.model_dump(), **given})
