"""``download-models``: fetch the embedding and rerank models the settings name, or those given.

The one command that goes online for them; every other command loads them from the local
Hugging Face cache only and says to run this one when a model is missing.
"""

from __future__ import annotations

import argparse

from assistant.cli.context import CliContext


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``download-models``."""
    parser = commands.add_parser(
        "download-models",
        help="download the embedding and rerank models (the one command going online for them)",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="Hugging Face model ids; default: library.embedding_model and library.rerank_model",
    )
    parser.set_defaults(handler=run_download)


def run_download(args: argparse.Namespace, context: CliContext) -> int:
    with context.service() as service:
        for name in args.names or service.library_models():
            print(f"{name}: {service.download_library_model(name)}")
    return 0
