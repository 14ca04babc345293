"""Fixtures for the report tests: one fresh build of the report into a scratch directory per session."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from docs.report import build, paths


@dataclass(frozen=True)
class BuiltReport:
    """A report built from the repository's current artifacts, and its text as pdftotext extracts it."""

    pdf: Path
    html: Path
    text: str
    pages: int


def pdf_text(pdf: Path) -> str:
    """The PDF's text with the physical layout kept (table rows stay on one line)."""
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def pdf_pages(pdf: Path) -> int:
    """Page count from pdfinfo."""
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


@pytest.fixture(scope="session")
def manifest() -> dict:
    """The released model's manifest: the numbers the report must show."""
    return json.loads(paths.MANIFEST.read_text())


@pytest.fixture(scope="session")
def committed_report() -> BuiltReport:
    """The docs/report.pdf committed in the repository."""
    pdf = paths.REPORT_PDF
    return BuiltReport(pdf=pdf, html=paths.REPORT_HTML, text=pdf_text(pdf), pages=pdf_pages(pdf))


@pytest.fixture(scope="session")
def built_report(tmp_path_factory: pytest.TempPathFactory) -> BuiltReport:
    """Build the report with the saved captures, writing nothing inside the repository."""
    out = tmp_path_factory.mktemp("report")
    html = out / "report.html"
    pdf = build.build(
        capture=False,
        pdf_path=out / "report.pdf",
        html_path=html,
        architecture_png=out / "architecture.png",
    )
    return BuiltReport(pdf=pdf, html=html, text=pdf_text(pdf), pages=pdf_pages(pdf))
