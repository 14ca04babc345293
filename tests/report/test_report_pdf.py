"""The generated PDF: pages render, sections present, images embedded, numbers equal the manifest."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from PIL import Image

from docs.report import facts, paths

BuiltReport = Any  # the conftest fixture's dataclass: pdf, html, text, pages

SECTIONS = (
    "Executive Summary",
    "Machine Learning Problem and Data",
    "Model Development",
    "Deployment Architecture",
    "Challenges and how they were solved",
    "Conclusion and future work",
)


def _lines_with(text: str, label: str) -> list[str]:
    return [line for line in text.splitlines() if label in line]


def test_page_count_is_in_a_sane_range(built_report: BuiltReport) -> None:
    # A section per page at least; more than 30 pages would mean figures exploded over pages.
    assert 6 <= built_report.pages <= 30, built_report.pages


def test_every_page_renders_to_a_non_blank_png(built_report: BuiltReport, tmp_path: Path) -> None:
    subprocess.run(
        ["pdftoppm", "-r", "30", "-png", str(built_report.pdf), str(tmp_path / "page")],
        check=True,
        timeout=120,
    )
    pngs = sorted(tmp_path.glob("page-*.png"))
    assert len(pngs) == built_report.pages
    for png in pngs:
        with Image.open(png) as image:
            grey = image.convert("L")
            lo, hi = grey.getextrema()
            assert hi - lo > 100, f"{png.name} looks blank"
            assert image.width < image.height, f"{png.name} is not a portrait A4 page"


def test_section_headings_present_in_order(built_report: BuiltReport) -> None:
    positions = []
    for heading in SECTIONS:
        match = re.search(rf"^\s*{re.escape(heading)}\s*$", built_report.text, flags=re.MULTILINE)
        assert match, f"section heading {heading!r} missing from the PDF text"
        positions.append(match.start())
    assert positions == sorted(positions), "sections out of order"


def test_images_are_embedded_and_large_enough_to_read(built_report: BuiltReport) -> None:
    listing = subprocess.run(
        ["pdfimages", "-list", str(built_report.pdf)], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split() for line in listing.splitlines()[2:] if line.strip()]
    images = [r for r in rows if r[2] == "image"]  # smask rows are the alpha channels of the same images
    expected = (
        len(list(paths.EDA_DIR.glob("*.png")))
        + len(list(paths.EVALUATION_DIR.glob("*.png")))
        + 2  # AWS and local architecture diagrams
        + len(
            list((paths.CAPTURES / "local").glob("*.json")) or list((paths.CAPTURES / "cloud").glob("*.json"))
        )
    )
    assert len(images) >= expected, f"{len(images)} images embedded, expected at least {expected}"
    for row in images:
        width = int(row[3])
        assert width >= 500, f"an embedded image is only {width} px wide: too small to read when printed"


def test_test_metrics_equal_the_manifest(built_report: BuiltReport, manifest: dict) -> None:
    test = manifest["metrics"]["test"]
    at_half = manifest["metrics"]["test_at_0_5"]
    for metric, value in test.items():
        label = facts.METRIC_NAMES[metric]
        rows = [line for line in _lines_with(built_report.text, label) if re.search(r"\d\.\d{4}", line)]
        expected = f"{value:.4f}"
        assert any(expected in row and f"{at_half[metric]:.4f}" in row for row in rows), (
            f"no row for {label} shows the manifest's {expected} (and {at_half[metric]:.4f} at 0.5): {rows}"
        )


def test_threshold_and_data_sizes_equal_the_manifest(built_report: BuiltReport, manifest: dict) -> None:
    text = built_report.text
    assert f"{manifest['threshold']:.4f}" in text
    assert f"{manifest['training']['data']['train']['rows']:,}" in text
    assert f"{manifest['training']['data']['test']['rows']:,}" in text


def test_cross_validation_table_equals_the_manifest(built_report: BuiltReport, manifest: dict) -> None:
    for name, summary in manifest["metrics"]["cv"].items():
        # the label may wrap inside its cell; its first word stays on the row with the numbers
        first_word = facts.MODEL_NAMES[name].split()[0]
        roc, pr = summary["roc_auc"], summary["pr_auc"]
        expected = [f"{roc['mean']:.4f} ± {roc['std']:.4f}", f"{pr['mean']:.4f} ± {pr['std']:.4f}"]
        rows = [line for line in _lines_with(built_report.text, first_word) if expected[0] in line]
        assert rows and expected[1] in rows[0], f"no CV row for {name} showing {expected}"


def test_group_metrics_equal_the_manifest(built_report: BuiltReport, manifest: dict) -> None:
    for groups in manifest["metrics"]["test_by_group"].values():
        for group, values in groups.items():
            rows = [line for line in _lines_with(built_report.text, group) if f"{values['n']:,}" in line]
            assert rows, f"no row for group {group!r} with n={values['n']:,}"
            assert f"{values['roc_auc']:.4f}" in rows[0]


def test_run_is_labelled_with_where_it_happened(built_report: BuiltReport) -> None:
    text = built_report.text
    if list((paths.CAPTURES / "cloud").glob("*.json")):
        assert "recorded against a real AWS deployment" in text
        assert "LOCAL RUN" not in text
        return
    assert "LOCAL RUN" in text
    assert "No AWS deployment was made for this report" in text
    assert "recorded against a real AWS deployment" not in text
    # the running header carries the label on every page after the cover
    assert text.count("LOCAL run: no AWS deployment") >= built_report.pages - 1


def test_no_secret_leaks_into_the_report(built_report: BuiltReport) -> None:
    secrets = [p.read_text().strip() for p in (paths.ROOT / ".secrets").glob("*.key")]
    for secret in filter(None, secrets):
        assert secret not in built_report.text
        assert secret not in built_report.html.read_text()
    for capture in (paths.CAPTURES / "local").glob("*.json"):
        body = capture.read_text()
        for secret in filter(None, secrets):
            assert secret not in body, f"{capture.name} contains an API key value"


def test_committed_report_is_current(committed_report: BuiltReport, manifest: dict) -> None:
    """docs/report.pdf in the repository shows the released model's numbers (it was regenerated)."""
    text = committed_report.text
    assert committed_report.pages >= 6
    for metric, value in manifest["metrics"]["test"].items():
        assert f"{value:.4f}" in text, (
            f"docs/report.pdf is stale: {metric} {value:.4f} not in it; run make report"
        )
    assert f"{manifest['threshold']:.4f}" in text


def test_local_latency_table_equals_the_benchmark_results(built_report: BuiltReport) -> None:
    data = json.loads(paths.LOCAL_PATH_BENCH.read_text())
    for name, result in data["sequential"].items():
        rows = _lines_with(built_report.text, facts.LATENCY_ROWS[name])
        assert rows, f"no latency row for {name}"
        assert f"{result['p50_ms']:.1f}" in rows[0] and f"{result['p99_ms']:.1f}" in rows[0], rows[0]


def test_model_card_limits_are_carried_into_the_report(built_report: BuiltReport) -> None:
    card = (paths.EVALUATION_DIR / "model_card.md").read_text()
    assert "Intended use and limitations (from the model card)" in built_report.text
    # the first sentence of the card's intended-use section, as the PDF lays it out
    intended = card.split("## Intended use", 1)[1].strip().split(".")[0]
    assert " ".join(intended.split()) in " ".join(built_report.text.split())
