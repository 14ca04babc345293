"""Collect every fact the report states from the project's artifacts into the template's context.

Sources: ``model/manifest.json`` (model, threshold, data sizes, CV and test metrics), ``docs/evaluation``
(figures and JSON outputs), ``docs/eda`` (figures and summary), the schema inside the manifest, the deploy
configuration, and the recorded terminal captures. Numbers are formatted here, in one place
(:func:`fmt_metric`), so the tests can check that the PDF shows exactly the manifest's values.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import evidence, narrative, operations, paths
from .capture import Capture, load_all
from .diagram import DiagramSettings
from .terminal import render_session

METRIC_NAMES = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC (average precision)",
    "log_loss": "log loss",
    "f1": "F1 (>50K)",
    "precision": "precision (>50K)",
    "recall": "recall (>50K)",
    "accuracy": "accuracy",
}
SHORT_METRIC_NAMES = {**METRIC_NAMES, "pr_auc": "PR AUC", "f1": "F1"}
MODEL_NAMES = {
    "logistic_regression": "logistic regression",
    "random_forest": "random forest",
    "hist_gradient_boosting": "histogram gradient boosting",
}
HEADLINE = ("roc_auc", "pr_auc", "f1", "accuracy")
CV_COLUMNS = ("roc_auc", "pr_auc", "log_loss", "f1")  # all seven are in docs/evaluation/comparison.md
GROUP_COLUMNS = (
    ("n", "rows"),
    ("positive_rate", "base rate"),
    ("selection_rate", "predicted >50K"),
    ("true_positive_rate", "TPR"),
    ("false_positive_rate", "FPR"),
    ("roc_auc", "ROC AUC"),
)


class ReportInputError(RuntimeError):
    """An input the report needs is missing or malformed (the message says which and how to make it)."""


@dataclass(frozen=True)
class Figure:
    """An image file and its caption."""

    path: Path
    caption: str

    @property
    def layout(self) -> str:
        """``full`` for wide, detailed figures (readable only at page width), else ``half``.

        A print-resolution figure (see :attr:`print_width_mm`) is ``half`` only when it fits half the
        text width at its own size; older screen-resolution figures go by pixel width.
        """
        printed = self.print_width_mm
        if printed is not None:
            return "half" if printed <= HALF_WIDTH_MM else "full"
        from PIL import Image

        with Image.open(self.path) as image:
            return "full" if image.width >= 800 else "half"

    @property
    def print_width_mm(self) -> float | None:
        """The figure's own printed width for print-resolution PNGs (≥ 150 dpi), capped at the text width.

        Such figures are drawn at the size they should print at (fonts of at least 8 pt), so the report
        prints them at that size instead of stretching them to a column or page width.
        """
        from PIL import Image

        with Image.open(self.path) as image:
            dpi = (image.info.get("dpi") or (0, 0))[0]
            width = image.width
        if dpi < PRINT_DPI:
            return None
        return round(min(TEXT_WIDTH_MM, width / dpi * 25.4), 1)


TEXT_WIDTH_MM = 178.0  # A4 less the 16 mm side margins of report.css
HALF_WIDTH_MM = 86.0
PRINT_DPI = 150


def fmt_metric(value: float | None) -> str:
    """How every metric appears in the report: four decimals (``n/a`` for a missing value)."""
    return "n/a" if value is None else f"{value:.4f}"


def fmt_count(value: int) -> str:
    """Row counts with thousands separators."""
    return f"{value:,}"


def fmt_percent(value: float) -> str:
    """Rates as percentages with one decimal."""
    return f"{100 * value:.1f}%"


def read_manifest(path: Path = paths.MANIFEST) -> dict[str, Any]:
    """The released model's manifest; a clear error when it has not been produced yet."""
    if not path.is_file():
        raise ReportInputError(f"{path} does not exist: run 'make train' to produce the released model first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"{path} is not valid JSON: {exc}") from exc


def _require(mapping: dict[str, Any], *keys: str) -> Any:
    value: Any = mapping
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise ReportInputError(
                f"manifest.json has no '{'.'.join(keys[: depth + 1])}' (is the artifact complete?)"
            )
        value = value[key]
    return value


def model_facts(manifest: dict[str, Any]) -> dict[str, Any]:
    """Name, estimator, threshold and provenance of the released model."""
    model = _require(manifest, "model")
    name = model["name"]
    params = model.get("searched_params") or {}
    estimator = MODEL_NAMES.get(name, name.replace("_", " "))
    estimator += " with tuned hyperparameters" if params else " with default hyperparameters"
    volatile = manifest.get("volatile", {})
    sha = (manifest.get("artifact_files") or {}).get("model.joblib", "")
    return {
        "name": name,
        "display_name": MODEL_NAMES.get(name, name),
        "estimator_text": estimator,
        "estimator_class": model.get("estimator", ""),
        "threshold": fmt_metric(_require(manifest, "threshold")),
        "threshold_rule": manifest.get("threshold_rule", ""),
        "mode": _require(manifest, "training", "mode"),
        "cv_folds": _require(manifest, "training", "config", "cv_folds"),
        "trained_at": volatile.get("created_utc", "unknown time"),
        "sha256_short": sha[:12] or "n/a",
        "sklearn_version": manifest.get("library_versions", {}).get("scikit-learn", "?"),
        "steps": model.get("pipeline_steps", []),
    }


def data_facts(manifest: dict[str, Any]) -> dict[str, Any]:
    """Sizes and class balance of the training and test splits, from the manifest."""
    data = _require(manifest, "training", "data")
    schema = _require(manifest, "schema")
    train, test = data["train"], data.get("test") or {"rows": 0, "positive_rate": 0.0}
    optional = [f["name"] for f in schema["features"] if f.get("optional")]
    return {
        "train_rows_text": fmt_count(train["rows"]),
        "test_rows_text": fmt_count(test["rows"]),
        "positive_rate_text": fmt_percent(train["positive_rate"]),
        "test_positive_rate_text": fmt_percent(test["positive_rate"]),
        "positive_label": schema["positive_label"],
        "negative_label": schema["negative_label"],
        "missing_columns_text": ", ".join(optional) or "no column",
    }


def feature_rows(manifest: dict[str, Any]) -> list[dict[str, str]]:
    """One row per model input feature (from the schema stored in the manifest)."""
    rows = []
    for f in _require(manifest, "schema", "features"):
        if f["kind"] == "numeric":
            domain = f"{f['minimum']:,.0f} to {f['maximum']:,.0f}"
        else:
            cats = f["categories"]
            shown = ", ".join(cats[:4]) + (", ..." if len(cats) > 4 else "")
            domain = f"{len(cats)} categories ({shown})"
        rows.append(
            {
                "name": f["name"],
                "kind": f["kind"],
                "description": f["description"],
                "domain": domain,
                "optional": "yes" if f.get("optional") else "no",
            }
        )
    return rows


def candidate_tables(
    manifest: dict[str, Any], comparison: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """CV results (from the manifest) with fit times and the search (``docs/evaluation/comparison.json``)."""
    cv = _require(manifest, "metrics", "cv")
    chosen = manifest["metrics"].get("chosen")
    if not cv:  # a quick run has no model selection to show
        return []
    comparison = comparison or {}
    seconds = {c["name"]: c.get("fit_seconds_per_fold") for c in comparison.get("candidates", [])}
    timed = bool(seconds)
    rows = []
    for name, summary in cv.items():
        cells = [_mean_std(summary[m]) for m in CV_COLUMNS]
        if timed:
            cells.append(_seconds(seconds.get(name)))
        rows.append(
            {
                "label": f"{MODEL_NAMES.get(name, name)} ({candidate_settings(name)})",
                "cells": cells,
                "selected": bool(chosen and chosen["name"] == name and not chosen["params"]),
            }
        )
    if chosen and chosen["params"]:
        params = ", ".join(f"{k}={v}" for k, v in sorted(chosen["params"].items()))
        rows.append(
            {
                "label": f"{MODEL_NAMES.get(chosen['name'], chosen['name'])}, tuned ({params})",
                "cells": [_mean_std(chosen["cv"][m]) for m in CV_COLUMNS]
                + ([_seconds(_search_seconds(comparison, chosen["params"]))] if timed else []),
                "selected": True,
            }
        )
    folds = _require(manifest, "training", "config", "cv_folds")
    tables = [
        {
            "corner": f"candidate ({folds}-fold CV, mean ± sd)",
            "columns": [SHORT_METRIC_NAMES[m] for m in CV_COLUMNS] + (["fit s/fold"] if timed else []),
            "rows": rows,
            "caption": "Cross-validated on the training split only, the same seeded stratified folds for "
            "every candidate, preprocessing refitted inside each fold; F1 at threshold 0.5 "
            "(all seven metrics: docs/evaluation/comparison.md). "
            "Highlighted: the configuration released.",
        }
    ]
    search = comparison.get("search") or {}
    if search.get("configs"):
        chosen_params = (chosen or {}).get("params") or {}
        tables.append(
            {
                "corner": f"search: {MODEL_NAMES.get(search['family'], search['family'])}",
                "columns": [SHORT_METRIC_NAMES[m] for m in CV_COLUMNS] + ["fit s/fold"],
                "rows": [
                    {
                        "label": ", ".join(f"{k}={v}" for k, v in sorted(c["params"].items())),
                        "cells": [_mean_std(c["metrics"][m]) for m in CV_COLUMNS]
                        + [_seconds(c.get("fit_seconds_per_fold"))],
                        "selected": bool(chosen_params) and c["params"] == chosen_params,
                    }
                    for c in search["configs"]
                ],
                "caption": "Seeded random search of the leader: "
                f"{search['evaluated']} of {search['planned']} "
                f"configurations evaluated within the {search['budget_seconds']:g} s budget"
                + (" (budget reached)" if search.get("truncated") else "")
                + "; a configuration replaces the defaults only if its mean CV ROC AUC is higher. "
                "Fit times are from the training run on a shared 2-core machine and are noisy.",
            }
        )
    return tables


# Settings every estimator is built with that say nothing about the model itself.
PLUMBING_PARAMS = frozenset({"random_state", "n_jobs", "verbose"})


def candidate_settings(name: str) -> str:
    """The hyperparameters a candidate is built with where they differ from scikit-learn's defaults.

    Read from the factory training uses (``pipeline.models``), so the table cannot call a configured
    model "defaults" (the random forest is built with max_depth=20, min_samples_leaf=2).
    """
    from pipeline.models import FACTORIES

    estimator = FACTORIES[name](0)
    defaults = type(estimator)().get_params()
    changed = {
        k: v for k, v in estimator.get_params().items() if k not in PLUMBING_PARAMS and defaults.get(k) != v
    }
    return ", ".join(f"{k}={v}" for k, v in sorted(changed.items())) or "library defaults"


def _search_seconds(comparison: dict[str, Any], params: dict[str, Any]) -> float | None:
    """Fit time per fold of the searched configuration with ``params``."""
    configs = (comparison.get("search") or {}).get("configs") or []
    return next((c.get("fit_seconds_per_fold") for c in configs if c["params"] == params), None)


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _mean_std(entry: dict[str, float]) -> str:
    return f"{fmt_metric(entry['mean'])} ± {fmt_metric(entry['std'])}"


def test_tables(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Held-out test metrics at the chosen threshold and at 0.5, plus per-group metrics."""
    metrics = _require(manifest, "metrics")
    test = metrics.get("test")
    if not test:
        raise ReportInputError(
            "manifest.json has no test metrics: the released model must be scored on adult.test"
        )
    threshold = fmt_metric(manifest["threshold"])
    at_half = metrics.get("test_at_0_5") or {}
    columns = [f"at threshold {threshold}"] + (["at 0.5"] if at_half else [])
    rows = [
        {
            "label": METRIC_NAMES.get(m, m),
            "cells": [fmt_metric(test[m])] + ([fmt_metric(at_half.get(m))] if at_half else []),
            "selected": False,
        }
        for m in test
    ]
    tables = [
        {
            "corner": "test metric",
            "columns": columns,
            "rows": rows,
            "caption": "Scored once on adult.test (never used for fitting, selection or the threshold). "
            "ROC AUC, PR AUC and log loss do not depend on the threshold.",
        }
    ]
    for column, groups in (metrics.get("test_by_group") or {}).items():
        tables.append(
            {
                "corner": f"by {column}",
                "columns": [label for _, label in GROUP_COLUMNS],
                "rows": [
                    {
                        "label": group,
                        "cells": [
                            fmt_count(int(values[k])) if k == "n" else fmt_metric(values.get(k))
                            for k, _ in GROUP_COLUMNS
                        ],
                        "selected": False,
                    }
                    for group, values in groups.items()
                ],
                "caption": f"Test metrics per {column} group at threshold {threshold} (a fairness view: the "
                "model is not adjusted per group).",
            }
        )
    return tables


def headline(manifest: dict[str, Any]) -> list[dict[str, str]]:
    """The executive summary's key numbers."""
    test = manifest["metrics"]["test"]
    kpis = [{"name": f"test {METRIC_NAMES[m]}", "value": fmt_metric(test[m])} for m in HEADLINE]
    kpis.append({"name": "decision threshold", "value": fmt_metric(manifest["threshold"])})
    return kpis


LATENCY_ROWS = {
    "container": "container /invocations, called directly",
    "runtime": "local InvokeEndpoint (plain HTTP)",
    "runtime_boto3": "local InvokeEndpoint through boto3 (as the Lambda calls it)",
    "gateway_health": "API Gateway + Lambda, GET /health (no model)",
    "gateway": "API Gateway + Lambda + InvokeEndpoint + container, POST /predict",
}


def latency_table(path: Path = paths.LOCAL_PATH_BENCH) -> dict[str, Any] | None:
    """Sequential single-record latency at each hop of the local path (``bench/results/local_path.json``)."""
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    meta = data.get("meta", {})
    rows = [
        {
            "label": LATENCY_ROWS.get(name, name),
            "cells": [
                fmt_count(r["requests"]),
                f"{r['p50_ms']:.1f}",
                f"{r['p90_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
            ],
            "selected": False,
        }
        for name, r in data.get("sequential", {}).items()
    ]
    load = meta.get("load_average_at_start") or []
    busy = bool(load) and load[0] > 1.0
    return {
        "corner": "one record at a time, entry point",
        "columns": ["requests", "p50 ms", "p90 ms", "p99 ms"],
        "rows": rows,
        "caption": f"From bench/results/local_path.json ({meta.get('created_utc', '?')}, LOCAL, "
        f"{meta.get('container_mode', '?')} container, {meta.get('model_engine', '?')} engine, "
        f"{meta.get('cpu_count', '?')} CPUs, load average {load[0] if load else '?'} at start"
        + (
            f": a busy machine, {load[0]} on {meta.get('cpu_count', '?')} cores, so these are upper bounds "
            "rather than quiet-machine latencies"
            if busy
            else ""
        )
        + "). Client and services share the cores; in AWS the network adds to these numbers.",
    }


def glance(
    manifest: dict[str, Any], model: dict[str, Any], s: DiagramSettings, where: str
) -> list[dict[str, str]]:
    """The executive summary's facts table."""
    data = manifest["training"]["data"]
    features = manifest["schema"]["features"]
    params = manifest["model"].get("searched_params") or {}
    tuned = ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "library defaults"
    return [
        {
            "name": "data",
            "value": f"UCI Adult: {fmt_count(data['train']['rows'])} training rows, "
            f"{fmt_count(data['test']['rows'])} held-out test rows, {len(features)} features",
        },
        {
            "name": "model",
            "value": f"{model['display_name']} ({tuned}); decision threshold {model['threshold']}",
        },
        {
            "name": "artifact",
            "value": f"model.tar.gz = {narrative.artifact_contents(manifest)}; "
            f"scikit-learn {model['sklearn_version']}; served by the {manifest.get('engine', 'sklearn')} "
            f"engine; model.joblib SHA-256 {model['sha256_short']}...",
        },
        {
            "name": "serving",
            "value": f"one container image (nginx, gunicorn, Flask) on a SageMaker real-time endpoint, "
            f"{s.instance_type}, autoscaling {s.autoscaling_min} to {s.autoscaling_max} instances",
        },
        {
            "name": "API",
            "value": f"API Gateway REST API, stage '{s.stage}', API key and usage plan "
            f"({s.throttle_rate:g} req/s, burst {s.throttle_burst}, {s.quota}), Lambda proxy",
        },
        {
            "name": "evidence",
            "value": "recorded against the AWS deployment"
            if where == "AWS"
            else "LOCAL run on the local cloud (one machine); no AWS deployment was made",
        },
    ]


def figures(directory: Path, captions: dict[str, str]) -> list[Figure]:
    """Every PNG in ``directory``, in the order of ``captions`` first, then by name."""
    found = {p.stem: p for p in sorted(directory.glob("*.png"))}
    order = [s for s in captions if s in found] + [s for s in found if s not in captions]
    return [Figure(found[s], captions.get(s, s.replace("_", " ").replace("-", " "))) for s in order]


def evaluation_json(directory: Path = paths.EVALUATION_DIR) -> dict[str, Any]:
    """All JSON outputs of the evaluation, keyed by file stem."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def eda_findings_html(directory: Path = paths.EDA_DIR) -> str:
    """The "findings and decisions" list of ``docs/eda/summary.md`` as HTML ("" before the EDA has run).

    The summary's numbers are computed by ``pipeline/eda.py``; the report only converts its Markdown.
    """
    import markdown

    summary = directory / "summary.md"
    if not summary.is_file():
        return ""
    text = summary.read_text(encoding="utf-8")
    start = text.find("## Findings")
    if start < 0:
        return ""
    body = text[start:].split("\n", 1)[1]
    end = body.find("\n## ")
    return markdown.markdown(body if end < 0 else body[:end])


MODEL_CARD_SECTIONS = ("Intended use", "Fairness note", "Limitations")


def model_card_html(directory: Path = paths.EVALUATION_DIR) -> str:
    """The model card's intended use, fairness note and limitations as HTML ("" if there is no card)."""
    import markdown

    card = directory / "model_card.md"
    if not card.is_file():
        return ""
    sections = {}
    for block in card.read_text(encoding="utf-8").split("\n## ")[1:]:
        title, _, body = block.partition("\n")
        sections[title.strip()] = body.strip()
    parts = [f"<h4>{t}</h4>" + markdown.markdown(sections[t]) for t in MODEL_CARD_SECTIONS if t in sections]
    return "\n".join(parts)


def select_captures(captures_root: Path) -> tuple[str, list[Capture]]:
    """The captures to show: an AWS run's (``cloud/``) when there is one, else the local run's."""
    cloud = load_all(captures_root / "cloud")
    if cloud:
        return "AWS", cloud
    local = load_all(captures_root / "local")
    if not local:
        raise ReportInputError(
            f"no terminal captures in {captures_root}/local: run 'make report' (it records them from a real "
            "local run) instead of passing --no-capture"
        )
    return "LOCAL", local


def screenshots(captures: list[Capture], where: str, directory: Path) -> list[dict[str, Any]]:
    """Render each capture to a PNG and describe it for the template."""
    shots = []
    for c in captures:
        c.check()  # a caption must match what the capture shows: a mismatch fails the build
        title = f"{where} run · {c.title} · {c.recorded_at}"
        png = render_session(c.steps, title, directory / f"{where.lower()}-{c.name}.png")
        caption = f"{c.title}. Real output recorded {c.recorded_at} on {c.host} ({where} run)."
        if c.notes:
            caption += " " + c.notes
        shots.append({"png": png, "title": c.title, "caption": caption})
    return shots


def git_commit() -> str:
    """The short commit the report was generated from (``+dirty`` if tracked files differ)."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(paths.ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha


def collect(
    *,
    settings: DiagramSettings,
    captures_root: Path,
    architecture_png: Path,
    local_architecture_png: Path,
    screenshot_dir: Path,
    manifest_path: Path = paths.MANIFEST,
    evaluation_dir: Path = paths.EVALUATION_DIR,
    eda_dir: Path = paths.EDA_DIR,
) -> dict[str, Any]:
    """The complete template context."""
    manifest = read_manifest(manifest_path)
    evaluation = evaluation_json(evaluation_dir)
    evaluation_figures = figures(evaluation_dir, narrative.EVALUATION_CAPTIONS)
    where, captures = select_captures(captures_root)
    model = model_facts(manifest)
    cv = manifest["metrics"].get("cv") or {}
    shots = screenshots(captures, where, screenshot_dir)
    resilience = operations.resilience(settings)
    return {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "css": paths.TEMPLATES / "report.css",
        "model": model,
        "data": data_facts(manifest),
        "candidates": {"count": len(cv)},
        "headline": headline(manifest),
        "glance": glance(manifest, model, settings, where),
        "features": feature_rows(manifest),
        "dropped": _require(manifest, "schema").get("dropped_columns", {}),
        "tables": {
            "candidates": candidate_tables(manifest, evaluation.get("comparison")),
            "test": test_tables(manifest),
        },
        "eda": {"findings": eda_findings_html(eda_dir), "figures": figures(eda_dir, narrative.EDA_CAPTIONS)},
        "evaluation": {
            "cv_figures": [f for f in evaluation_figures if f.path.stem.startswith("cv_")],
            "test_figures": [f for f in evaluation_figures if not f.path.stem.startswith("cv_")],
            "json": evaluation,
            "model_card": model_card_html(evaluation_dir),
        },
        "architecture": {
            "aws": Figure(architecture_png, narrative.AWS_DIAGRAM_CAPTION),
            "local": Figure(local_architecture_png, narrative.LOCAL_DIAGRAM_CAPTION),
        },
        "settings": {
            "throttle_rate": f"{settings.throttle_rate:g}",
            "throttle_burst": settings.throttle_burst,
            "quota": settings.quota,
            "stage": settings.stage,
        },
        "services": narrative.services(settings, manifest, operations.retention()),
        "latency": latency_table(),
        "captures": shots,
        "deployment": {
            "prerequisites": narrative.PREREQUISITES,
            "commands": narrative.DEPLOY_COMMANDS,
            "time_text": narrative.deployment_time_text(manifest),
            "costs": operations.cost_rows(settings),
            "resilience": resilience,
            "resilience_text": narrative.resilience_text(settings, resilience["count"]),
        },
        "api": {
            "url": f"https://<api id>.execute-api.<region>.amazonaws.com/{settings.stage}/predict",
            "text": narrative.API_TEXT,
            "example": operations.api_example(captures),
            "errors": operations.error_table(),
            "security": narrative.security_points(operations.unscoped_actions()),
            "iam": operations.iam_actions(),
        },
        "engine": {
            "text": narrative.ENGINE_TEXT,
            "parity": evidence.parity(manifest),
            "table": evidence.engine_table(),
        },
        "reliability": evidence.reliability(),
        "faults": evidence.FAULTS,
        "run": narrative.run_label(where),
        "preprocessing_text": narrative.preprocessing_text(manifest),
        "training_text": narrative.training_text(manifest),
        "local_text": narrative.LOCAL_TEXT,
        "challenges": narrative.CHALLENGES,
        "conclusion_text": narrative.conclusion_text(manifest, where),
        "future_work": narrative.FUTURE_WORK,
    }
