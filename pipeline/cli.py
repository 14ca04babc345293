"""The ``python -m pipeline`` command line.

Each area registers its own subcommands from ``pipeline/commands/<area>.py`` (a ``register`` function
that adds subparsers and sets ``func``). Registration must stay cheap: handlers import heavy
libraries (scikit-learn, boto3) only when they run.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

COMMAND_MODULES = ("model", "cloud", "local", "preflight", "evidence", "capacity", "monitor", "batch")


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every area's subcommands."""
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"pipeline.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"pipeline.commands.{name}":
                raise
            continue  # an area not built yet
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
