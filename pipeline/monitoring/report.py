"""The monitor's report: ``report.json`` (everything), ``report.md`` (for people) and PNG charts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
CHARTS = "charts"


def write_report(result: dict[str, Any], out: Path) -> list[Path]:
    """Write the report files into ``out`` (created); returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    (out / CHARTS).mkdir(exist_ok=True)
    written = [out / REPORT_JSON, out / REPORT_MD]
    charts = _charts(result, out / CHARTS)
    (out / REPORT_JSON).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    (out / REPORT_MD).write_text(render_markdown(result, [c.relative_to(out) for c in charts]))
    return written + charts


def render_markdown(result: dict[str, Any], charts: list[Path]) -> str:
    """The Markdown report."""
    lines = [
        "# Drift monitor report",
        "",
        f"- Verdict: **{result['level'].upper()}**",
        f"- Source: `{result['source']}`" + (f" since {result['since']}" if result["since"] else ""),
        f"- Captured events: {result['events']}, records: {result['records']}"
        f" (minimum to judge: {result['thresholds']['min_records']})",
        f"- Traffic window: {result['window']['first']} .. {result['window']['last']}",
        f"- Baseline: {result['baseline']['data']}, {result['baseline']['rows']} rows; predictions from "
        f"{result['baseline']['prediction_source']}",
        "",
    ]
    if result["findings"]:
        lines += ["## Findings", ""] + [f"- {finding}" for finding in result["findings"]] + [""]
    lines += [
        "## Features",
        "",
        "| feature | kind | PSI | missing (training -> traffic) | unknown categories | level |",
        "|---|---|---:|---|---:|---|",
    ]
    for name, f in result["features"].items():
        unknown = "" if f["unknown_rate"] is None else f"{f['unknown_rate']:.2%}"
        missing = f"{f['missing_rate']['baseline']:.2%} -> {f['missing_rate']['observed']:.2%}"
        lines.append(f"| {name} | {f['kind']} | {f['psi']:.4f} | {missing} | {unknown} | {f['level']} |")
    prediction = result["prediction"]
    lines += ["", "## Predictions", ""]
    if prediction:
        rate = prediction["positive_rate"]
        lines += [
            f"- PSI of the probability deciles: {prediction['psi']:.4f} ({prediction['level']})",
            f"- Positive rate at threshold {prediction['threshold']:.4f}: {rate['observed']:.2%} "
            f"(baseline {rate['baseline']:.2%}, {prediction['source']})",
            f"- Predictions compared: {prediction['records']}",
        ]
    else:
        lines.append("- No predictions to compare (no output captured, or no prediction baseline).")
    problems = result["files"]["with_problems"]
    lines += ["", "## Files and events skipped", ""]
    if not problems and not result["undecodable_events"]:
        lines.append(f"- None: all {result['files']['read']} file(s) read cleanly.")
    for p in problems:
        first = p["problems"][0]
        where = f"line {first['line']}: " if first["line"] else ""
        lines.append(f"- `{p['file']}`: {where}{first['problem']} ({p['skipped_lines']} line(s) skipped)")
    for u in result["undecodable_events"][:20]:
        lines.append(f"- `{u['file']}` line {u['line']}: {u['problem']}")
    t = result["thresholds"]
    lines += [
        "",
        "## Thresholds",
        "",
        f"PSI warn {t['psi_warn']}, alert {t['psi_alert']}; "
        f"missing-rate change alert {t['missing_rate_alert']}; "
        f"unknown-category rate alert {t['unknown_rate_alert']}; positive-rate change alert "
        f"{t['positive_rate_alert']}; at least {t['min_records']} records.",
        "",
    ]
    if charts:
        lines += ["## Charts", ""] + [f"![{c.stem}]({c.as_posix()})" for c in charts] + [""]
    return "\n".join(lines)


def _charts(result: dict[str, Any], folder: Path) -> list[Path]:
    """A PSI overview and one training-vs-traffic bar chart per feature and for the predictions.

    matplotlib is a development dependency: without it the report has no charts (and says so).
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        result["charts_note"] = "matplotlib is not installed: no charts"
        return []
    paths = []
    names = list(result["features"])
    if names:
        fig = Figure(figsize=(8, 4))
        ax = fig.subplots()
        values = [result["features"][n]["psi"] for n in names]
        ax.barh(names, values, color=[_color(result["features"][n]["level"]) for n in names])
        t = result["thresholds"]
        ax.axvline(t["psi_warn"], color="orange", linestyle="--", label=f"warn {t['psi_warn']}")
        ax.axvline(t["psi_alert"], color="red", linestyle="--", label=f"alert {t['psi_alert']}")
        ax.set_xlabel("population stability index")
        ax.invert_yaxis()
        ax.legend(loc="lower right")
        ax.set_title("PSI per feature, traffic vs training")
        paths.append(_save(fig, folder / "psi.png"))
    items = dict(result["features"])
    if result["prediction"]:
        items["prediction"] = result["prediction"]
    for name, entry in items.items():
        fig = Figure(figsize=(8, 3.5))
        ax = fig.subplots()
        positions = list(range(len(entry["buckets"])))
        ax.bar([p - 0.2 for p in positions], entry["baseline_shares"], width=0.4, label="training")
        ax.bar([p + 0.2 for p in positions], entry["observed_shares"], width=0.4, label="traffic")
        ax.set_xticks(positions)
        ax.set_xticklabels(entry["buckets"], rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("share")
        ax.set_title(f"{name}: PSI {entry['psi']:.3f} ({entry['level']})")
        ax.legend()
        paths.append(_save(fig, folder / f"{name}.png"))
    return paths


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return path


def _color(level: str) -> str:
    return {"alert": "tab:red", "warn": "tab:orange"}.get(level, "tab:blue")
