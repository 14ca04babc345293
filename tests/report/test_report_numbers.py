"""Every number in the report's text is traceable to a source file (or is a named constant)."""

from __future__ import annotations

import re

from docs.report import number_sources

BuiltReport = object  # the conftest fixture's dataclass

RUNNING_LINES = re.compile(r"Generated \d{4}-\d{2}-\d{2} .* from commit|page \d+ of \d+")


def unexplained_numbers(text: str) -> list[tuple[str, str]]:
    """(number, line) for each number in ``text`` that no source file holds and no constant explains."""
    sourced = number_sources.sourced_numbers()
    found = []
    for line in text.splitlines():
        if RUNNING_LINES.search(line):
            continue
        for number in number_sources.numbers_in(line):
            if number not in sourced and number not in number_sources.CONSTANTS:
                found.append((number, line.strip()))
    return found


def test_every_number_in_the_report_comes_from_a_source_file(built_report) -> None:
    assert unexplained_numbers(built_report.text) == []


def test_the_committed_report_has_no_number_without_a_source(committed_report) -> None:
    assert unexplained_numbers(committed_report.text) == []


def test_a_number_typed_by_hand_is_caught() -> None:
    # e.g. the old performance note's "100 trees" style of figure, or a stale metric
    text = "The forest has 137 trees and a test ROC AUC of 0.9391 at threshold 0.4025."
    assert [n for n, _ in unexplained_numbers(text)] == ["137", "0.9391", "0.4025"]
    # an algorithm's name is not a figure; a number next to it still is
    assert [n for n, _ in unexplained_numbers("SHA-256 checksums of 48,611 files")] == ["48,611"]


def test_the_report_states_the_manifest_threshold_and_training_time(built_report, manifest) -> None:
    text = " ".join(built_report.text.split())
    assert f"{manifest['threshold']:.4f}" in text
    total = manifest["volatile"]["durations_seconds"]["total"]
    assert f"took {total:.0f} s of compute" in text
