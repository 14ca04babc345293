"""Where each number in the report comes from: every numeric value of the report's source files, in
every format the report prints numbers in, and the few fixed constants the prose states with their reason.

``tests/report/test_report_numbers.py`` extracts every number from the PDF's text and requires each to be
one of these, so a number typed by hand, or a stale one, fails the tests.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import paths

NUMBER = re.compile(r"(?<![\w.])[-\u2212]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")
# Not quantities: timestamps (from the clock or a file's own date), checksums and commits, addresses.
NOT_QUANTITIES = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?(?:\+00:00|Z)?)?|\b[0-9a-f]{12,64}\b|127\.0\.0\.1"
    r"|\bSHA-256\b"  # a name, not a quantity
)

JSON_SOURCES = (
    paths.MANIFEST,
    paths.EVALUATION_DIR / "comparison.json",
    paths.ROOT / "bench" / "results" / "engines.json",
    paths.ROOT / "bench" / "results" / "load.json",
    paths.ROOT / "bench" / "results" / "fuzz.json",
    paths.LOCAL_PATH_BENCH,
    paths.ROOT / "docs" / "openapi" / "gateway.json",
)
TOML_SOURCES = (paths.DEPLOY_CONFIG,)
TEXT_SOURCES = (
    paths.EDA_DIR / "summary.md",
    paths.EVALUATION_DIR / "model_card.md",
    paths.REPORT_DIR / "samples" / "record.json",
)

# Numbers the prose states that are facts about the outside world or the design, not measurements.
CONSTANTS: dict[str, str] = {
    "60": "InvokeEndpoint's timeout in seconds (an AWS limit the challenges table names)",
    "0600": "the file mode of a saved API key",
}


def _leaves(value: Any) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(str(k))  # status codes are keys in the OpenAPI document
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, str):
        for match in NUMBER.findall(NOT_QUANTITIES.sub(" ", value)):
            yield from _parse(match)


def _parse(token: str) -> Iterator[float]:
    try:
        yield float(token.replace(",", "").replace("\u2212", "-"))
    except ValueError:
        return


def formats(value: float) -> set[str]:
    """Every way the report prints a number: integers with and without thousands separators, fixed
    decimals (0-4), scientific (1e-5, 8.9e-08), percentages, and sums/ratios are not guessed."""
    out = {f"{value:.0f}", f"{value:,.0f}", f"{value:.1e}", f"{value:.0e}"}
    for digits in range(1, 5):
        out |= {f"{value:.{digits}f}", f"{value:,.{digits}f}"}
    out |= {f"{100 * value:.1f}", f"{value:g}", f"{value:,}"}
    if float(value).is_integer():
        out.add(str(int(value)))
    return out


def numbers_in(text: str) -> list[str]:
    """The numbers a text states, without timestamps, checksums and addresses."""
    return [
        t.replace("\u2212", "-").lstrip("-").rstrip(",")
        for t in NUMBER.findall(NOT_QUANTITIES.sub(" ", text))
    ]


def derived_values() -> list[float]:
    """Numbers the report computes from the sources (costs, ratios, model settings, captured outputs)."""
    from pipeline.models import CANDIDATES

    from . import evidence, facts, operations
    from .capture import load_all
    from .diagram import settings_from_config

    settings = settings_from_config()
    values = list(_leaves(operations.cost_rows(settings)))
    values += list(_leaves(operations.retention()))
    table = evidence.engine_table()
    if table:
        values += list(_leaves([table["speedup"], table["p99_ratio"]]))
    values += list(_leaves([facts.candidate_settings(name) for name in CANDIDATES]))
    for capture in load_all(paths.CAPTURES / "local") + load_all(paths.CAPTURES / "cloud"):
        values += list(_leaves([step.output for step in capture.steps]))
    return values


def price_values() -> list[float]:
    """Every figure of the price table, as pipeline.cloud.cost reads it (not its notes and addresses)."""
    from dataclasses import asdict

    from pipeline.cloud.cost import load_prices

    table = asdict(load_prices())
    return list(_leaves({k: v for k, v in table.items() if k not in ("sources", "unconfirmed")}))


def sourced_numbers(root: Path = paths.ROOT) -> set[str]:
    """Every number the source files hold or the report derives from them, in every printed format."""
    values: list[float] = derived_values() + price_values()
    for path in JSON_SOURCES:
        if path.is_file():
            values += list(_leaves(json.loads(path.read_text())))
    for path in TOML_SOURCES:
        values += list(_leaves(tomllib.loads(path.read_text())))
    for path in TEXT_SOURCES:
        if path.is_file():
            values += list(_leaves(path.read_text()))
    printed: set[str] = set()
    for value in values:
        printed |= formats(value)
    return printed
