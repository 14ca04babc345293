"""The packaging-time ONNX export and its parity gate: what passes, what is refused, and what is recorded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import pipeline.onnx_export as onnx_export
from pipeline.artifact import ONNX_FILE, verify_artifact
from pipeline.features import to_model_frame
from pipeline.onnx_export import (
    PARITY_MAX_ABS_DIFF,
    check_parity,
    convert_pipeline,
    edge_case_batches,
    export_with_parity_gate,
)
from pipeline.onnx_scoring import FeedBuilder, open_session, predict_positive
from pipeline.schema import MISSING_TOKENS, SCHEMA


def test_quick_artifact_ships_onnx_with_its_parity_record(quick_model_dir: Path, holdout) -> None:
    manifest = verify_artifact(quick_model_dir)  # checks model.onnx's SHA-256 too
    assert manifest["engine"] == "onnx", manifest.get("engine_reason")
    onnx = manifest["onnx"]
    data = (quick_model_dir / ONNX_FILE).read_bytes()
    assert onnx["file"] == ONNX_FILE
    assert onnx["sha256"] == hashlib.sha256(data).hexdigest() == manifest["artifact_files"][ONNX_FILE]
    parity = onnx["parity"]
    assert parity["passed"] is True
    assert parity["holdout_rows"] == len(holdout.y) == 16281
    assert parity["edge_rows"] > 2000
    assert parity["label_mismatches"] == 0
    assert parity["max_abs_diff"] <= PARITY_MAX_ABS_DIFF
    assert parity["threshold"] == manifest["threshold"]
    assert "passed the parity gate" in manifest["engine_reason"]
    assert onnx["versions"]["onnxruntime"] and onnx["opsets"]["ai.onnx.ml"] == 3


def test_onnx_matches_sklearn_on_every_heldout_row_and_edge_record(quick_pipeline, holdout) -> None:
    """Recomputed here, not read from the manifest: the gate's own numbers must be true."""
    artifact = quick_pipeline
    data = (artifact.model_dir / ONNX_FILE).read_bytes()
    report = check_parity(artifact.pipeline, data, artifact.schema, artifact.threshold, holdout.frame)
    assert report.passed, report.failure_reason()
    assert report.max_abs_diff < 1e-6  # float64 graph: only the trees' float32 scores differ
    assert report.rows == report.holdout_rows + report.edge_rows


def test_edge_records_cover_every_missing_form_unknowns_and_extremes() -> None:
    batches = edge_case_batches(SCHEMA, random_rows=50)
    values = [v for batch in batches for column in batch.values() for v in column]
    strings = {v for v in values if isinstance(v, str)}
    assert None in values
    assert any(isinstance(v, float) and np.isnan(v) for v in values)
    assert {"", "?", " ? "} <= strings | MISSING_TOKENS
    assert "__never_seen_category__" in strings
    assert any(isinstance(v, float) and v >= 1e12 for v in values)
    absent = [b for b in batches if set(b) != set(SCHEMA.names)]
    assert absent and all(name not in absent[0] for name in ("workclass", "occupation", "native_country"))


def test_exact_split_points_score_the_same_in_both_engines(quick_pipeline) -> None:
    """A value sitting exactly on a tree split (x.5 for integer training data) is where a float32
    graph diverged from scikit-learn by up to 0.4 in probability; the float64 graph must not."""
    artifact = quick_pipeline
    session = open_session((artifact.model_dir / ONNX_FILE).read_bytes())
    base = {name: [v] * 40 for name, v in _typical(artifact.schema).items()}
    columns = dict(base)
    columns["education_num"] = [1.5 + 0.5 * i for i in range(30)] + [12.5] * 10
    columns["age"] = [17.5 + 2 * i for i in range(40)]
    columns["hours_per_week"] = [float(h) + 0.5 for h in range(40)]
    sk = artifact.pipeline.predict_proba(to_model_frame(columns, artifact.schema))[:, 1]
    ort = predict_positive(session, FeedBuilder(artifact.schema).build(columns))
    assert np.max(np.abs(sk - ort)) <= PARITY_MAX_ABS_DIFF


def test_a_too_strict_tolerance_is_refused_with_the_reason(quick_pipeline, holdout) -> None:
    artifact = quick_pipeline
    result = export_with_parity_gate(
        artifact.pipeline, artifact.schema, artifact.threshold, holdout.frame, tolerance=0.0
    )
    assert result.engine == "sklearn"
    assert result.model_bytes is None
    assert "parity gate" in result.reason and "exceeds 0" in result.reason
    fields = result.manifest_fields()
    assert fields["engine"] == "sklearn" and fields["engine_reason"] == result.reason
    assert fields["onnx"]["parity"]["passed"] is False
    assert "sha256" not in fields["onnx"]


def test_a_label_flip_at_the_threshold_is_refused(quick_pipeline, holdout) -> None:
    """Put the threshold between the two engines' probabilities for one real row."""
    artifact = quick_pipeline
    data, _ = convert_pipeline(artifact.pipeline, artifact.schema)
    columns = {name: holdout.frame[name].tolist()[:500] for name in artifact.schema.names}
    sk = artifact.pipeline.predict_proba(to_model_frame(columns, artifact.schema))[:, 1]
    ort = predict_positive(open_session(data), FeedBuilder(artifact.schema).build(columns))
    row = int(np.argmax(np.abs(sk - ort)))
    assert sk[row] != ort[row]
    threshold = max(sk[row], ort[row])  # exactly one engine reaches it
    report = check_parity(artifact.pipeline, data, artifact.schema, threshold, columns, tolerance=1.0)
    assert report.label_mismatches >= 1 and not report.passed
    assert "labels differ at threshold" in report.failure_reason()


def test_an_unconvertible_pipeline_is_refused_not_raised(holdout) -> None:
    from sklearn.dummy import DummyClassifier

    from pipeline.preprocessing import build_pipeline

    fitted = build_pipeline(DummyClassifier()).fit(holdout.X.iloc[:200], holdout.y[:200])
    result = export_with_parity_gate(fitted, SCHEMA, 0.5, holdout.frame)
    assert result.engine == "sklearn" and result.model_bytes is None
    assert result.reason.startswith("ONNX export refused: skl2onnx could not convert the pipeline")


def test_no_heldout_data_means_no_onnx(quick_pipeline) -> None:
    artifact = quick_pipeline
    result = export_with_parity_gate(artifact.pipeline, artifact.schema, artifact.threshold, None)
    assert result.engine == "sklearn"
    assert "no held-out data" in result.reason


def test_packaging_records_a_refusal_and_leaves_no_graph(
    tmp_path: Path, quick_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Force the gate to fail inside the real training+packaging path, over an artifact that had a
    graph: the new artifact must say sklearn, say why, and carry no stale model.onnx."""
    from pipeline.data import TEST_FILE, TRAIN_FILE
    from pipeline.training import TrainingConfig, train_to_directory

    target = tmp_path / "model"
    import shutil

    shutil.copytree(quick_model_dir, target)
    assert (target / ONNX_FILE).exists()
    monkeypatch.setattr(onnx_export, "PARITY_MAX_ABS_DIFF", 0.0)
    _, manifest = train_to_directory(
        [TRAIN_FILE], [TEST_FILE], TrainingConfig(quick=True), target, overwrite=True
    )
    assert manifest["engine"] == "sklearn"
    assert manifest["engine_reason"].startswith("ONNX export refused by the parity gate")
    assert ONNX_FILE not in manifest["artifact_files"]
    assert not (target / ONNX_FILE).exists()
    on_disk = json.loads((target / "manifest.json").read_text())
    assert on_disk["engine"] == "sklearn" and on_disk["onnx"]["parity"]["passed"] is False
    verify_artifact(target)


def _typical(schema) -> dict[str, object]:
    values: dict[str, object] = {}
    for feature in schema.features:
        if feature.kind == "numeric":
            values[feature.name] = float(feature.minimum + (feature.maximum - feature.minimum) / 4)
        else:
            values[feature.name] = feature.categories[0]
    return values


def test_a_logistic_regression_pipeline_passes_too(holdout) -> None:
    """The float64 rewrite is not HGB-specific: the other model family the training may pick converts
    and passes (its graph is float64 end to end, so the differences are rounding noise)."""
    from sklearn.linear_model import LogisticRegression

    from pipeline.data import load_train
    from pipeline.preprocessing import build_pipeline

    train = load_train()
    fitted = build_pipeline(LogisticRegression(max_iter=500)).fit(train.X.iloc[:5000], train.y[:5000])
    result = export_with_parity_gate(fitted, SCHEMA, 0.5, holdout.frame)
    assert result.engine == "onnx", result.reason
    assert result.details["parity"]["max_abs_diff"] < 1e-9
