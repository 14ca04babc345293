"""Classification metrics, the decision-threshold rule, and per-group metrics."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

THRESHOLD_RULE = (
    "maximise F1 of the positive class (>50K) over the out-of-fold cross-validation probabilities "
    "of the chosen model on the training data; predict >50K when P(>50K) >= threshold"
)
QUICK_THRESHOLD_RULE = "fixed 0.5 (quick mode: no cross-validation to choose a threshold on)"
METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "log_loss", "f1", "precision", "recall", "accuracy")


def classification_metrics(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Threshold-free (ROC AUC, PR AUC = average precision, log loss) and thresholded metrics."""
    y = np.asarray(y)
    proba = np.asarray(proba, dtype=np.float64)
    predicted = (proba >= threshold).astype(np.int64)
    both_classes = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, proba)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(y, proba)) if both_classes else float("nan"),
        "log_loss": float(log_loss(y, proba, labels=[0, 1])),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(y, predicted)),
    }


def best_f1_threshold(y: np.ndarray, proba: np.ndarray) -> float:
    """The probability cut-off that maximises F1 (the first one on ties); see :data:`THRESHOLD_RULE`."""
    precision, recall, thresholds = precision_recall_curve(y, proba)
    # The last precision/recall pair has no threshold (recall 0 by convention).
    p, r = precision[:-1], recall[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return float(thresholds[int(np.argmax(f1))])


def group_metrics(
    y: np.ndarray, proba: np.ndarray, groups: np.ndarray, threshold: float
) -> dict[str, dict[str, float]]:
    """Per-group size, base rate, selection rate, TPR/FPR and the usual metrics (fairness view)."""
    out: dict[str, dict[str, float]] = {}
    y = np.asarray(y)
    proba = np.asarray(proba)
    groups = np.asarray(groups, dtype=object)
    for group in sorted({str(g) for g in groups}):
        mask = groups == group
        yg, pg = y[mask], proba[mask]
        predicted = pg >= threshold
        negatives = (yg == 0).sum()
        metrics = classification_metrics(yg, pg, threshold)
        out[group] = {
            "n": int(mask.sum()),
            "positive_rate": float(yg.mean()),
            "selection_rate": float(predicted.mean()),
            "true_positive_rate": metrics["recall"],
            "false_positive_rate": float((predicted & (yg == 0)).sum() / negatives) if negatives else 0.0,
            **{k: metrics[k] for k in ("roc_auc", "precision", "f1", "accuracy")},
        }
    return out
