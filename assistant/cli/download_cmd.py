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
    from rag.embedder import download_model  # NumPy: not for every command's start

    library = context.settings.library
    names = args.names or [name for name in (library.embedding_model, library.rerank_model) if name]
    for name in names:
        print(f"{name}: {download_model(name)}")
    return 0
