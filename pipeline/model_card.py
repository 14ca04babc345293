"""The model card (Markdown), rendered from the manifest's stable fields only.

No timestamps or durations go in, so the card, and its checksum in the manifest, is the same for
every run of the same training.
"""

from __future__ import annotations

from typing import Any

CITATION = (
    "Becker, B. and Kohavi, R. (1996). Adult. UCI Machine Learning Repository. "
    "https://doi.org/10.24432/C5XW20 (CC BY 4.0)"
)
METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "log_loss": "log loss",
    "f1": "F1",
    "precision": "precision",
    "recall": "recall",
    "accuracy": "accuracy",
}


def render_model_card(manifest: dict[str, Any]) -> str:
    """Markdown model card: what the model is for, how it was chosen, how well it does, for whom."""
    model = manifest["model"]
    training = manifest["training"]
    metrics = manifest["metrics"]
    data = training["data"]
    schema = manifest["schema"]
    lines = [
        f"# Model card: census income > 50K ({model['name']})",
        "",
        "## Model",
        f"- Estimator: `{model['estimator']}` inside a scikit-learn `Pipeline` "
        f"({' -> '.join(model['pipeline_steps'])}); preprocessing is part of the saved model.",
        f"- Tuned parameters: `{model['searched_params'] or 'library defaults'}`",
        f"- Training mode: **{training['mode']}**"
        + (
            " (single fit, no cross-validation: for tests and smoke runs only)"
            if training["mode"] == "quick"
            else ""
        ),
        f"- Output: P({manifest['positive_label']}); decision threshold **{manifest['threshold']:.4f}** "
        f"({manifest['threshold_rule']}).",
        f"- scikit-learn {manifest['library_versions']['scikit-learn']}, "
        f"Python {manifest['python_version']}.",
        "",
        "## Intended use",
        "Demonstration of a production-style scikit-learn deployment (SageMaker BYOC behind API Gateway).",
        "The score estimates whether a 1994 US census respondent reported income above $50,000. It is a",
        "proxy task: it must not be used to make decisions about real people (credit, hiring, housing,",
        "benefits). The data is 30 years old and reflects the income gaps of its time.",
        "",
        "## Data",
        f"- Source: {CITATION}.",
        f"- Training: {_data_line(data['train'])}",
        f"- Test (held out, never used for fitting or choosing): {_data_line(data['test'])}",
        f"- Features ({len(schema['features'])}): "
        + ", ".join(f"`{f['name']}`" for f in schema["features"])
        + ". Not used: "
        + "; ".join(f"`{k}` ({v})" for k, v in schema["dropped_columns"].items())
        + ".",
        "- Missing values (`?` in the raw files; null, empty string or absent optional key in requests) are",
        "  imputed: numeric by the training median, categorical as their own level `missing`.",
        "",
    ]
    if metrics.get("cv"):
        lines += _cv_section(manifest)
    if metrics.get("test"):
        lines += [
            "## Held-out test metrics",
            f"At the decision threshold {manifest['threshold']:.4f}:",
            "",
            _metric_table({"test": metrics["test"], "test at 0.5": metrics["test_at_0_5"]}),
            "",
        ]
        for column, groups in metrics["test_by_group"].items():
            lines += _group_section(column, groups)
    lines += [
        "## Fairness note",
        "`sex` and `race` are model inputs because they are in the census data; the tables above show",
        "that error rates and selection rates differ between groups. The model reproduces historical",
        "disparities in the data; it has not been debiased. Small groups (e.g. `Other`,",
        "`Amer-Indian-Eskimo`) have wide uncertainty.",
        "",
        "## Limitations",
        "- Categories not seen in training are ignored (encoded as all zeros), not rejected by the model;",
        "  the serving layer validates inputs against the schema.",
        "- Probabilities come from the fitted classifier without separate calibration; see the",
        "  calibration figure in `docs/evaluation/`.",
        "",
    ]
    return "\n".join(lines)


def _data_line(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "none"
    files = ", ".join(f"`{name}` (sha256 `{sha[:12]}…`)" for name, sha in summary["files"].items())
    return f"{summary['rows']} rows, {summary['positive_rate']:.1%} positive; {files}"


def _cv_section(manifest: dict[str, Any]) -> list[str]:
    metrics = manifest["metrics"]
    training = manifest["training"]
    config = training["config"]
    rows = {name: {k: v["mean"] for k, v in summary.items()} for name, summary in metrics["cv"].items()}
    lines = [
        "## Model selection",
        f"Stratified {config['cv_folds']}-fold cross-validation on the training file (seed "
        f"{config['random_state']}); thresholded metrics at 0.5. Mean over folds:",
        "",
        _metric_table(rows),
        "",
    ]
    search = training.get("search")
    if search:
        lines.append(
            f"Hyperparameter search for the leader `{search['family']}`: {search['evaluated']} of "
            f"{search['planned']} seeded random configurations evaluated"
            + (" (time budget reached)" if search["truncated"] else "")
            + "; the best mean CV ROC AUC (defaults included) was kept."
        )
        lines.append("")
    chosen = metrics.get("chosen")
    if chosen:
        lines += [
            "Chosen configuration, out-of-fold predictions at the chosen threshold:",
            "",
            _metric_table({chosen["name"]: chosen["out_of_fold_at_threshold"]}),
            "",
        ]
    return lines


def _group_section(column: str, groups: dict[str, dict[str, float]]) -> list[str]:
    header = "| group | n | base rate | selection rate | TPR | FPR | precision | ROC AUC | accuracy |"
    lines = [f"### Test metrics by `{column}`", "", header, "|" + "---|" * 9]
    for group, g in groups.items():
        lines.append(
            f"| {group} | {g['n']} | {g['positive_rate']:.3f} | {g['selection_rate']:.3f} | "
            f"{g['true_positive_rate']:.3f} | {g['false_positive_rate']:.3f} | {g['precision']:.3f} | "
            f"{_fmt(g['roc_auc'])} | {g['accuracy']:.3f} |"
        )
    return [*lines, ""]


def _metric_table(rows: dict[str, dict[str, float]]) -> str:
    keys = list(METRIC_LABELS)
    out = ["| | " + " | ".join(METRIC_LABELS[k] for k in keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, values in rows.items():
        out.append(f"| {name} | " + " | ".join(_fmt(values.get(k)) for k in keys) + " |")
    return "\n".join(out)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
