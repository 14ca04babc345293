"""The deploy configuration on the command line, for every command that reads it.

``--config PATH`` picks the TOML file (default ``config/deploy.toml``) and ``--set section.key=value``
overrides one key (repeatable; environment variables ``ADULT_<SECTION>_<KEY>`` sit between the two).
Commands add :func:`options` as a parent parser and call :func:`load` when they run.
"""

from __future__ import annotations

import argparse
from typing import Any


def options(example: str = "endpoint.mode=serverless") -> argparse.ArgumentParser:
    """A parent parser with ``--config`` and ``--set``; ``example`` shows one override in the help."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", metavar="PATH", help="deploy configuration (default: config/deploy.toml)")
    parent.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help=f"override one setting, e.g. --set {example} (repeatable)",
    )
    return parent


def load(args: argparse.Namespace) -> Any:
    """The validated configuration the arguments name (raises ConfigError listing every problem)."""
    from pipeline.cloud.config import load_config, parse_override

    overrides = dict(parse_override(text) for text in args.overrides)
    return load_config(args.config, overrides)
