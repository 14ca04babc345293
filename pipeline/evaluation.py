"""Evaluation reports: the model comparison table (Markdown + JSON) and the test-set figures.

Figures are drawn on ``matplotlib.figure.Figure`` objects (Agg, no pyplot global state), so the
functions can be reused from a notebook: each ``plot_*`` returns a Figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from pipeline.manifest import json_ready
from pipeline.metrics import METRICS, classification_metrics, group_metrics
from pipeline.model_card import METRIC_LABELS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from pipeline.artifact import Artifact
    from pipeline.data import Dataset
    from pipeline.training import TrainingResult

GROUP_COLUMNS = ("sex", "race")
DPI = 110


def write_training_reports(out_dir: Path, result: TrainingResult, manifest: dict[str, Any]) -> list[Path]:
    """Write comparison.{md,json}, the model card, CV and test figures for a full training run."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    comparison = comparison_data(result, manifest)
    written = [
        _write_text(out_dir / "comparison.json", json.dumps(json_ready(comparison), indent=2) + "\n"),
        _write_text(out_dir / "comparison.md", comparison_markdown(comparison)),
        _write_text(out_dir / "model_card.md", result.model_card),
    ]
    if result.candidates:
        curves = {r.name: r.oof for r in result.candidates}
        if result.chosen is not None and result.chosen.params:
            curves[f"{result.chosen.name} (tuned)"] = result.chosen.oof
        y_train = _train_labels(result)
        written.append(_save(plot_cv_curves(y_train, curves), out_dir / "cv_roc_pr.png"))
    if result.test_proba is not None and result.test_labels is not None:
        written += write_test_figures(out_dir, result.test_labels, result.test_proba, result.threshold)
    return written


def evaluate_artifact(artifact: Artifact, test: Dataset, reports_dir: Path | None = None) -> dict[str, Any]:
    """Score a loaded artifact on ``test``; optionally write the test figures and a metrics JSON."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        proba = artifact.pipeline.predict_proba(test.X)[:, 1]
    report = json_ready(
        {
            "model": artifact.manifest["model"]["name"],
            "threshold": artifact.threshold,
            "rows": len(test.y),
            "test_files": test.sources,
            "at_threshold": classification_metrics(test.y, proba, artifact.threshold),
            "at_0_5": classification_metrics(test.y, proba, 0.5),
            "by_group": {
                column: group_metrics(
                    test.y, proba, test.frame[column].to_numpy(dtype=object), artifact.threshold
                )
                for column in GROUP_COLUMNS
            },
        }
    )
    if reports_dir is not None:
        reports_dir = Path(reports_dir)
        reports_dir.mkdir(parents=True, exist_ok=True)
        _write_text(reports_dir / "test_metrics.json", json.dumps(report, indent=2) + "\n")
        write_test_figures(reports_dir, test.y, proba, artifact.threshold)
    return report


def comparison_data(result: TrainingResult, manifest: dict[str, Any]) -> dict[str, Any]:
    """The comparison table's content: CV per candidate, search, chosen model, test scores."""
    metrics = manifest["metrics"]
    config = manifest["training"]["config"]
    search = manifest["training"].get("search")
    return {
        "cv_folds": config["cv_folds"],
        "random_state": config["random_state"],
        "cv_threshold": 0.5,
        "candidates": [
            {
                "name": r.name,
                "params": r.params,
                "metrics": r.summary(),
                "fit_seconds_per_fold": float(np.mean(r.fit_seconds)),
            }
            for r in result.candidates
        ],
        "search": None
        if search is None
        else {
            **search,
            "configs": [
                {
                    "params": r.params,
                    "metrics": r.summary(),
                    "fit_seconds_per_fold": float(np.mean(r.fit_seconds)),
                }
                for r in (result.search.results if result.search else [])
            ],
        },
        "chosen": {
            "name": manifest["model"]["name"],
            "params": manifest["model"]["searched_params"],
            "threshold": manifest["threshold"],
            "threshold_rule": manifest["threshold_rule"],
            "out_of_fold_at_threshold": (metrics.get("chosen") or {}).get("out_of_fold_at_threshold"),
        },
        "test": {
            "rows": (manifest["training"]["data"].get("test") or {}).get("rows"),
            "at_threshold": metrics.get("test"),
            "at_0_5": metrics.get("test_at_0_5"),
            "by_group": metrics.get("test_by_group"),
        },
    }


def comparison_markdown(data: dict[str, Any]) -> str:
    """Markdown rendering of :func:`comparison_data`."""
    header = "| model | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " | fit s/fold |"
    rule = "|---" * (len(METRICS) + 2) + "|"
    lines = [
        "# Model comparison",
        "",
        f"Stratified {data['cv_folds']}-fold cross-validation on `adult.data` (seed {data['random_state']}), "
        f"mean ± standard deviation over folds; F1, precision, recall and accuracy at threshold "
        f"{data['cv_threshold']}. The whole pipeline (preprocessing included) is refitted in every fold.",
        "",
        header,
        rule,
    ]
    for c in data["candidates"]:
        lines.append(_cv_row(c["name"], c["metrics"], c["fit_seconds_per_fold"]))
    search = data.get("search")
    if search and search.get("configs"):
        lines += [
            "",
            f"## Hyperparameter search: `{search['family']}`",
            "",
            f"{search['evaluated']} of {search['planned']} seeded random configurations "
            f"(budget {search['budget_seconds']:g} s{', reached' if search['truncated'] else ''}); "
            "same folds.",
            "",
            header,
            rule,
        ]
        for c in search["configs"]:
            params = ", ".join(f"{k}={v}" for k, v in c["params"].items())
            lines.append(_cv_row(f"`{params}`", c["metrics"], c["fit_seconds_per_fold"]))
    chosen = data["chosen"]
    lines += [
        "",
        "## Chosen model",
        "",
        f"`{chosen['name']}` with `{chosen['params'] or 'default parameters'}` (highest mean CV ROC AUC), "
        f"decision threshold **{chosen['threshold']:.4f}**: {chosen['threshold_rule']}.",
        "",
    ]
    test = data["test"]
    if test.get("at_threshold"):
        lines += [
            f"## Held-out test (`adult.test`, {test['rows']} rows, untouched until now)",
            "",
            "| | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " |",
            "|---" * (len(METRICS) + 1) + "|",
        ]
        rows = [("out-of-fold CV at threshold", chosen.get("out_of_fold_at_threshold"))]
        rows += [("test at threshold", test["at_threshold"]), ("test at 0.5", test["at_0_5"])]
        for label, values in rows:
            if values:
                lines.append(f"| {label} | " + " | ".join(f"{values[m]:.4f}" for m in METRICS) + " |")
        lines += [
            "",
            "Figures: `roc_curve.png`, `pr_curve.png`, `confusion_matrix.png`, `calibration.png` (test set), "
            "`cv_roc_pr.png` (out-of-fold curves of every candidate). Per-group metrics: `model_card.md`.",
        ]
    return "\n".join(lines) + "\n"


def _cv_row(label: str, metrics: dict[str, dict[str, float]], seconds: float) -> str:
    cells = [f"{metrics[m]['mean']:.4f} ± {metrics[m]['std']:.4f}" for m in METRICS]
    return f"| {label} | " + " | ".join(cells) + f" | {seconds:.1f} |"


def write_test_figures(out_dir: Path, y: np.ndarray, proba: np.ndarray, threshold: float) -> list[Path]:
    """ROC, PR, confusion matrix and calibration figures for one model on one labelled set."""
    out_dir = Path(out_dir)
    return [
        _save(plot_roc(y, proba, threshold), out_dir / "roc_curve.png"),
        _save(plot_pr(y, proba, threshold), out_dir / "pr_curve.png"),
        _save(plot_confusion(y, proba, threshold), out_dir / "confusion_matrix.png"),
        _save(plot_calibration(y, proba), out_dir / "calibration.png"),
    ]


def _figure(width: float = 5.5, height: float = 4.5) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def plot_roc(y: np.ndarray, proba: np.ndarray, threshold: float) -> Figure:
    """ROC curve with the operating point of the decision threshold."""
    fpr, tpr, _ = roc_curve(y, proba)
    auc = classification_metrics(y, proba, threshold)["roc_auc"]
    predicted = proba >= threshold
    point = (predicted[y == 0].mean(), predicted[y == 1].mean())
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, label=f"model (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.scatter(*point, color="red", zorder=3, label=f"threshold {threshold:.3f}")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve (test)")
    ax.legend(loc="lower right")
    return fig


def plot_pr(y: np.ndarray, proba: np.ndarray, threshold: float) -> Figure:
    """Precision-recall curve with the base rate and the operating point."""
    precision, recall, _ = precision_recall_curve(y, proba)
    metrics = classification_metrics(y, proba, threshold)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(recall, precision, label=f"model (AP {metrics['pr_auc']:.3f})")
    ax.axhline(float(np.mean(y)), linestyle="--", color="grey", label=f"base rate {np.mean(y):.3f}")
    ax.scatter(
        metrics["recall"], metrics["precision"], color="red", zorder=3, label=f"threshold {threshold:.3f}"
    )
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve (test)", ylim=(0, 1.02))
    ax.legend(loc="lower left")
    return fig


def plot_confusion(y: np.ndarray, proba: np.ndarray, threshold: float) -> Figure:
    """Confusion matrix at the decision threshold, counts and row percentages."""
    matrix = confusion_matrix(y, (proba >= threshold).astype(int), labels=[0, 1])
    fig = _figure(4.8, 4.2)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    labels = ["<=50K", ">50K"]
    ax.set_xticks([0, 1], labels=labels)
    ax.set_yticks([0, 1], labels=labels)
    ax.set(xlabel="predicted", ylabel="actual", title=f"Confusion matrix (test, threshold {threshold:.3f})")
    for i in range(2):
        for j in range(2):
            share = matrix[i, j] / matrix[i].sum()
            color = "white" if matrix[i, j] > matrix.max() / 2 else "black"
            ax.text(j, i, f"{matrix[i, j]}\n({share:.1%})", ha="center", va="center", color=color)
    return fig


def plot_calibration(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> Figure:
    """Reliability diagram (quantile bins) and the histogram of predicted probabilities."""
    observed, predicted = calibration_curve(y, proba, n_bins=bins, strategy="quantile")
    fig = _figure(5.5, 5.5)
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    top.plot(predicted, observed, marker="o", label="model")
    top.set(ylabel="observed share >50K", title="Calibration (test)")
    top.legend(loc="upper left")
    bottom.hist(proba, bins=40, range=(0, 1), color="tab:blue")
    bottom.set(xlabel="predicted P(>50K)", ylabel="rows")
    return fig


def plot_cv_curves(y: np.ndarray, curves: dict[str, np.ndarray]) -> Figure:
    """Out-of-fold ROC and PR curves of each candidate on the training data."""
    fig = _figure(10, 4.5)
    roc_ax, pr_ax = fig.subplots(1, 2)
    for name, proba in curves.items():
        fpr, tpr, _ = roc_curve(y, proba)
        precision, recall, _ = precision_recall_curve(y, proba)
        metrics = classification_metrics(y, proba, 0.5)
        roc_ax.plot(fpr, tpr, label=f"{name} ({metrics['roc_auc']:.3f})")
        pr_ax.plot(recall, precision, label=f"{name} ({metrics['pr_auc']:.3f})")
    roc_ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Out-of-fold ROC (ROC AUC)")
    pr_ax.set(xlabel="recall", ylabel="precision", title="Out-of-fold precision-recall (AP)", ylim=(0, 1.02))
    roc_ax.legend(loc="lower right", fontsize="small")
    pr_ax.legend(loc="lower left", fontsize="small")
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    return path


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _train_labels(result: TrainingResult) -> np.ndarray:
    if result.train_labels is None:
        raise ValueError("the training result carries no training labels")
    return result.train_labels
