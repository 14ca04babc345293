"""Export the fitted pipeline to ONNX at packaging time, behind a parity gate.

The ONNX graph (preprocessing included) is only shipped if it scores like the scikit-learn
pipeline it was converted from: on the whole held-out ``adult.test`` plus edge records (every
spelling of a missing value in every feature, absent optional features, unknown and padded
categories, domain-bound and extreme numbers) the labels at the artifact's threshold must be
identical and the largest |ΔP(>50K)| must be at most :data:`PARITY_MAX_ABS_DIFF`. Otherwise the
artifact carries no ``model.onnx`` and its manifest says ``engine: "sklearn"`` and why.

The sklearn side of the comparison is exactly what the sklearn engine runs
(:func:`pipeline.features.to_model_frame` + ``predict_proba``); the ONNX side is exactly what the
ONNX engine runs (:mod:`pipeline.onnx_scoring`). skl2onnx and onnx are packaging-time dependencies
only; serving needs onnxruntime.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np

from pipeline.artifact import ONNX_FILE
from pipeline.features import CATEGORICAL_MISSING, to_model_frame
from pipeline.onnx_scoring import FeedBuilder, open_session, predict_positive
from pipeline.schema import CategoricalFeature, NumericFeature, Schema

PARITY_MAX_ABS_DIFF = 1e-5
"""Largest accepted |P_onnx - P_sklearn| on any parity row (the graph computes in float32)."""
ENGINE_ONNX = "onnx"
ENGINE_SKLEARN = "sklearn"
EXPORT_LIBRARIES = ("skl2onnx", "onnx", "onnxruntime", "protobuf")
EDGE_SEED = 20261126
ONNX_OPSET = 21
ONNX_ML_OPSET = 3


class OnnxExportError(Exception):
    """The pipeline could not be converted to ONNX (the message says which step failed and why)."""


@dataclass(frozen=True)
class ParityReport:
    """How the ONNX graph's scores compare with the sklearn pipeline's on the parity rows."""

    rows: int
    holdout_rows: int
    edge_rows: int
    threshold: float
    label_mismatches: int
    max_abs_diff: float
    mean_abs_diff: float
    worst_row: int
    tolerance: float = PARITY_MAX_ABS_DIFF

    @property
    def passed(self) -> bool:
        return self.label_mismatches == 0 and self.max_abs_diff <= self.tolerance

    def failure_reason(self) -> str | None:
        """A sentence saying why parity failed, or None when it passed."""
        problems = []
        if self.label_mismatches:
            problems.append(
                f"{self.label_mismatches} of {self.rows} labels differ at threshold {self.threshold:.6g}"
            )
        if not self.max_abs_diff <= self.tolerance:
            problems.append(
                f"max |Δprobability| {self.max_abs_diff:.3g} exceeds {self.tolerance:g} "
                f"(parity row {self.worst_row})"
            )
        return "; ".join(problems) or None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for the manifest."""
        return {
            "passed": self.passed,
            "rows": self.rows,
            "holdout_rows": self.holdout_rows,
            "edge_rows": self.edge_rows,
            "threshold": self.threshold,
            "label_mismatches": self.label_mismatches,
            "max_abs_diff": float(f"{self.max_abs_diff:.3g}"),
            "mean_abs_diff": float(f"{self.mean_abs_diff:.3g}"),
            "tolerance": self.tolerance,
        }


@dataclass(frozen=True)
class OnnxExport:
    """The outcome of packaging-time export: which engine the artifact uses, why, and the graph bytes."""

    engine: str
    reason: str
    model_bytes: bytes | None
    details: dict[str, Any] = field(default_factory=dict)

    def manifest_fields(self) -> dict[str, Any]:
        """Fields to merge into ``manifest.json`` (``engine``, ``engine_reason``, ``onnx``)."""
        onnx: dict[str, Any] = dict(self.details)
        if self.model_bytes is not None:
            onnx = {"file": ONNX_FILE, "sha256": hashlib.sha256(self.model_bytes).hexdigest(), **onnx}
        return {"engine": self.engine, "engine_reason": self.reason, "onnx": onnx}


def export_with_parity_gate(
    pipeline: Any,
    schema: Schema,
    threshold: float,
    holdout: Mapping[str, Sequence[object]] | Any | None,
    *,
    tolerance: float | None = None,
) -> OnnxExport:
    """Convert ``pipeline`` and gate it; never raises for a conversion or parity failure.

    ``holdout`` is column data (a DataFrame or ``name -> sequence``) of the held-out set; edge
    records from :func:`edge_case_batches` are added to it. Returns an :class:`OnnxExport` with
    ``engine="onnx"`` and the graph bytes when the gate passes, else ``engine="sklearn"``, no bytes
    and the reason.
    """
    tolerance = PARITY_MAX_ABS_DIFF if tolerance is None else tolerance
    details: dict[str, Any] = {"versions": _export_versions()}
    if holdout is None:
        reason = "ONNX export refused: no held-out data was given to check parity on"
        return OnnxExport(ENGINE_SKLEARN, reason, None, details)
    try:
        model_bytes, opsets = convert_pipeline(pipeline, schema)
    except OnnxExportError as exc:
        return OnnxExport(ENGINE_SKLEARN, f"ONNX export refused: {exc}", None, details)
    details["opsets"] = opsets
    details["bytes"] = len(model_bytes)
    try:
        report = check_parity(pipeline, model_bytes, schema, threshold, holdout, tolerance=tolerance)
    except Exception as exc:  # an ONNX graph that cannot even score is a refusal, not a crash
        return OnnxExport(
            ENGINE_SKLEARN,
            f"ONNX export refused: the graph failed to score the parity rows: {type(exc).__name__}: {exc}",
            None,
            details,
        )
    details["parity"] = report.to_dict()
    if not report.passed:
        reason = f"ONNX export refused by the parity gate: {report.failure_reason()}"
        return OnnxExport(ENGINE_SKLEARN, reason, None, details)
    reason = (
        f"ONNX graph passed the parity gate on {report.rows} rows "
        f"(labels identical, max |Δprobability| {report.max_abs_diff:.2g} <= {tolerance:g})"
    )
    return OnnxExport(ENGINE_ONNX, reason, model_bytes, details)


def convert_pipeline(pipeline: Any, schema: Schema) -> tuple[bytes, dict[str, int]]:
    """The serialised ONNX graph of ``pipeline`` (one input per feature) and its opset versions.

    Numbers stay float64 from the graph's inputs to the trees' thresholds, as in scikit-learn: with
    float32 a value that sits exactly on a split point (``education_num`` 12.5 with integer training
    data, for example) can land on the other side of the split, which moved probabilities by up to
    0.4 in our edge records. skl2onnx 1.20 cannot emit that graph directly (its numeric ``Imputer``
    is float-only in ONNX Runtime, and it writes tree thresholds as float32), so
    :func:`_promote_to_float64` rewrites those two parts from the fitted estimators' own float64
    values. Converts a copy whose categorical imputer uses the string sentinel ``""`` as its missing
    value (ONNX's string imputer cannot match NaN). The classifier outputs plain probabilities.
    """
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
    except ImportError as exc:
        raise OnnxExportError(f"skl2onnx is not installed ({exc})") from None
    exportable = copy.deepcopy(pipeline)
    _use_string_missing_sentinel(exportable)
    classifier = exportable.steps[-1][1] if hasattr(exportable, "steps") else exportable
    initial_types = [
        (f.name, DoubleTensorType([None, 1]) if f.kind == "numeric" else StringTensorType([None, 1]))
        for f in schema.features
    ]
    try:
        with _boolean_attribute_fix():
            model = convert_sklearn(
                exportable,
                initial_types=initial_types,
                options={id(classifier): {"zipmap": False}},
                target_opset={"": ONNX_OPSET, "ai.onnx.ml": ONNX_ML_OPSET},
            )
        _promote_to_float64(model, exportable)
        # Reproducible bytes: skl2onnx names the graph with a random uuid and lists the opsets in
        # set order (which changes with Python's per-process string hash seed).
        model.graph.name = "adult_income_pipeline"
        opsets = sorted((o.domain, o.version) for o in model.opset_import)
        del model.opset_import[:]
        for domain, version in opsets:
            model.opset_import.add(domain=domain, version=version)
        import onnx

        onnx.checker.check_model(model)
    except OnnxExportError:
        raise
    except Exception as exc:  # skl2onnx/onnx raise many types for "cannot convert this"
        raise OnnxExportError(
            f"skl2onnx could not convert the pipeline: {type(exc).__name__}: {exc}"
        ) from exc
    opsets = {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import}
    return model.SerializeToString(), opsets


def _promote_to_float64(model: Any, pipeline: Any) -> None:
    """Rewrite the float32-only parts of a float64-input graph with the estimators' float64 values.

    * every ``ai.onnx.ml.Imputer`` (float-only in ONNX Runtime) becomes ``IsNaN`` + ``Where`` with
      the matching fitted ``SimpleImputer.statistics_`` in float64;
    * a HistGradientBoosting ``TreeEnsembleClassifier`` gets its thresholds, leaf values and base
      value as float64 tensors (``*_as_tensor``, ai.onnx.ml opset 3) read from the fitted trees,
      each checked against the float32 value skl2onnx wrote for the same node.
    Anything else is left alone; the parity gate decides whether the result is good enough.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    statistics = _numeric_imputer_statistics(pipeline)
    for node in [n for n in graph.node if n.op_type == "Imputer" and n.domain == "ai.onnx.ml"]:
        attrs = {a.name: a for a in node.attribute}
        written = np.asarray(attrs["imputed_value_floats"].floats, dtype=np.float32)
        fill = next((s for s in statistics if np.array_equal(s.astype(np.float32), written)), None)
        if fill is None:
            raise OnnxExportError("an ONNX Imputer matches no numeric SimpleImputer of the pipeline")
        position = list(graph.node).index(node)
        fill_name, mask_name = f"{node.output[0]}_fill64", f"{node.output[0]}_isnan"
        graph.initializer.append(numpy_helper.from_array(fill.reshape(1, -1), fill_name))
        replacement = [
            helper.make_node("IsNaN", [node.input[0]], [mask_name], name=mask_name),
            helper.make_node(
                "Where", [mask_name, fill_name, node.input[0]], [node.output[0]], name=f"{mask_name}_where"
            ),
        ]
        graph.node.remove(node)
        for offset, new_node in enumerate(replacement):
            graph.node.insert(position + offset, new_node)

    classifier = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    trees = [n for n in graph.node if n.op_type == "TreeEnsembleClassifier"]
    if not trees or not hasattr(classifier, "_predictors"):
        return
    if len(trees) != 1 or getattr(classifier, "n_trees_per_iteration_", 1) != 1:
        raise OnnxExportError("only binary HistGradientBoosting trees can be promoted to float64")
    node = trees[0]
    attrs = {a.name: a for a in node.attribute}
    predictors = [iteration[0].nodes for iteration in classifier._predictors]

    def node_field(tree_ids: Any, node_ids: Any, name: str, leaf_value: float | None) -> np.ndarray:
        values = []
        for tree, index in zip(tree_ids, node_ids, strict=True):
            record = predictors[tree][index]
            values.append(leaf_value if leaf_value is not None and record["is_leaf"] else record[name])
        return np.asarray(values, dtype=np.float64)

    thresholds = node_field(attrs["nodes_treeids"].ints, attrs["nodes_nodeids"].ints, "num_threshold", 0.0)
    weights = node_field(attrs["class_treeids"].ints, attrs["class_nodeids"].ints, "value", None)
    base = np.asarray(classifier._baseline_prediction, dtype=np.float64).ravel()
    for name, exact in (("nodes_values", thresholds), ("class_weights", weights)):
        if not np.array_equal(exact.astype(np.float32), np.asarray(attrs[name].floats, dtype=np.float32)):
            raise OnnxExportError(
                f"tree attribute {name} does not match the fitted trees; refusing to promote it"
            )
    kept = [a for a in node.attribute if a.name not in ("nodes_values", "class_weights", "base_values")]
    del node.attribute[:]
    node.attribute.extend(kept)
    for name, exact in (("nodes_values", thresholds), ("class_weights", weights), ("base_values", base)):
        node.attribute.append(
            helper.make_attribute(f"{name}_as_tensor", numpy_helper.from_array(exact, name))
        )
    for opset in model.opset_import:
        if opset.domain == "ai.onnx.ml":
            opset.version = max(opset.version, 3)
    # TreeEnsembleClassifier always outputs float32 scores; skl2onnx declared the input's float64.
    for output in graph.output:
        if output.name == node.output[1]:
            output.type.tensor_type.elem_type = TensorProto.FLOAT


def _numeric_imputer_statistics(pipeline: Any) -> list[np.ndarray]:
    from sklearn.impute import SimpleImputer

    found = []
    for estimator in _walk(pipeline):
        if isinstance(estimator, SimpleImputer) and np.asarray(estimator.statistics_).dtype.kind == "f":
            found.append(np.asarray(estimator.statistics_, dtype=np.float64))
    return found


def check_parity(
    pipeline: Any,
    model_bytes: bytes,
    schema: Schema,
    threshold: float,
    holdout: Mapping[str, Sequence[object]] | Any,
    *,
    tolerance: float = PARITY_MAX_ABS_DIFF,
) -> ParityReport:
    """Score the holdout and every edge batch with both engines' code paths and compare."""
    session = open_session(model_bytes)
    feeds = FeedBuilder(schema)
    positive = _positive_column(pipeline, schema)
    batches = [_as_columns(holdout, schema), *edge_case_batches(schema)]
    sk_parts, onnx_parts = [], []
    for columns in batches:
        sk_parts.append(pipeline.predict_proba(to_model_frame(columns, schema))[:, positive])
        onnx_parts.append(predict_positive(session, feeds.build(columns)))
    p_sk = np.concatenate(sk_parts).astype(np.float64)
    p_onnx = np.concatenate(onnx_parts)
    diff = np.abs(p_sk - p_onnx)
    holdout_rows = len(sk_parts[0])
    return ParityReport(
        rows=len(p_sk),
        holdout_rows=holdout_rows,
        edge_rows=len(p_sk) - holdout_rows,
        threshold=float(threshold),
        label_mismatches=int(np.count_nonzero((p_sk >= threshold) != (p_onnx >= threshold))),
        max_abs_diff=float(diff.max()) if len(diff) else 0.0,
        mean_abs_diff=float(diff.mean()) if len(diff) else 0.0,
        worst_row=int(diff.argmax()) if len(diff) else -1,
        tolerance=tolerance,
    )


def edge_case_batches(schema: Schema, random_rows: int = 2000) -> list[dict[str, list[object]]]:
    """Column batches that probe what held-out data does not: missing forms, unknowns, extremes.

    1. one row per (feature, variant) on a typical base record: every missing spelling (None,
       NaN, "", "?", padded tokens), unknown/padded/case-changed categories, domain bounds,
       fractional and extreme numbers (far outside the domain: parity there costs nothing);
    2. all features missing at once;
    3. the optional features absent as keys;
    4. ``random_rows`` random records (fixed seed) mixing known categories, missing spellings and
       unknown values, so unusual combinations are covered too.
    """
    base = _base_record(schema)
    rows: list[dict[str, object]] = [dict(base)]
    for feature in schema.features:
        for variant in _variants(feature):
            rows.append({**base, feature.name: variant})
    rows.append(dict.fromkeys(schema.names))
    rows.append({name: "?" for name in schema.names})
    batches = [_rows_to_columns(rows, schema.names)]
    present = [f.name for f in schema.features if not f.optional]
    batches.append({name: [base[name], None] for name in present})
    batches.append(_random_columns(schema, random_rows))
    return batches


_MISSING_FORMS: tuple[object, ...] = (None, math.nan, "", "?", " ? ", "   ", " ")


def _variants(feature: NumericFeature | CategoricalFeature) -> list[object]:
    if isinstance(feature, NumericFeature):
        lo, hi = float(feature.minimum), float(feature.maximum)
        return [
            *_MISSING_FORMS,
            lo,
            hi,
            (lo + hi) / 2,
            lo + 0.5,
            hi - 0.25,
            np.nextafter(hi, math.inf),
            -1e12,
            1e12,
            1e30,
            f" {lo + 1:g} ",
        ]
    known = list(feature.categories)
    return [
        *_MISSING_FORMS,
        *known,
        f"  {known[0]} ",
        known[0].upper(),
        "__never_seen_category__",
        "missing",  # the imputer's fill value sent literally: must behave the same in both engines
        "Ünïcødé 東京",
        "x" * 300,
    ]


def _base_record(schema: Schema) -> dict[str, object]:
    record: dict[str, object] = {}
    for feature in schema.features:
        if isinstance(feature, NumericFeature):
            record[feature.name] = float(feature.minimum + (feature.maximum - feature.minimum) / 4)
        else:
            record[feature.name] = feature.categories[len(feature.categories) // 2]
    return record


def _random_columns(schema: Schema, n_rows: int) -> dict[str, list[object]]:
    rng = np.random.default_rng(EDGE_SEED)
    columns: dict[str, list[object]] = {}
    for feature in schema.features:
        kind = rng.random(n_rows)
        values: list[object] = []
        for i in range(n_rows):
            if kind[i] < 0.08:
                values.append(_MISSING_FORMS[int(rng.integers(len(_MISSING_FORMS)))])
            elif isinstance(feature, NumericFeature):
                lo, hi = float(feature.minimum), float(feature.maximum)
                # Mostly small values (where the data lives), sometimes anywhere in the domain.
                span = hi - lo if kind[i] > 0.9 else min(hi - lo, 100.0)
                values.append(float(round(lo + rng.random() * span, int(rng.integers(0, 3)))))
            elif kind[i] < 0.12:
                values.append("__unknown_" + str(int(rng.integers(5))))
            else:
                values.append(feature.categories[int(rng.integers(len(feature.categories)))])
        columns[feature.name] = values
    return columns


def _rows_to_columns(rows: list[dict[str, object]], names: list[str]) -> dict[str, list[object]]:
    return {name: [row.get(name) for row in rows] for name in names}


def _as_columns(data: Mapping[str, Sequence[object]] | Any, schema: Schema) -> dict[str, list[object]]:
    """Column lists of the schema's features from a DataFrame or a mapping (extra columns dropped)."""
    columns: dict[str, list[object]] = {}
    for name in schema.names:
        if name not in data:
            continue
        values = data[name]
        # A DataFrame hands missing categories back as NaN: one more missing form both paths must agree on.
        columns[name] = values.tolist() if hasattr(values, "tolist") else list(values)
    return columns


def _positive_column(pipeline: Any, schema: Schema) -> int:
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(pipeline, "classes_", [0, 1])]
    for candidate in (schema.positive_label, 1):
        if candidate in classes:
            return classes.index(candidate)
    raise OnnxExportError(f"cannot tell which class is {schema.positive_label!r} among {classes!r}")


def _use_string_missing_sentinel(pipeline: Any) -> None:
    """Set every string SimpleImputer that matches NaN to match ``""`` instead (ONNX needs a string)."""
    from sklearn.impute import SimpleImputer

    for estimator in _walk(pipeline):
        if isinstance(estimator, SimpleImputer) and estimator.strategy == "constant":
            missing = estimator.missing_values
            if isinstance(estimator.fill_value, str) and isinstance(missing, float) and math.isnan(missing):
                estimator.missing_values = CATEGORICAL_MISSING


def _walk(estimator: Any) -> Iterator[Any]:
    yield estimator
    for attr in ("steps", "transformers_"):
        for item in getattr(estimator, attr, None) or []:
            child = item[1]
            if hasattr(child, "get_params"):
                yield from _walk(child)


@contextlib.contextmanager
def _boolean_attribute_fix() -> Iterator[None]:
    """Let skl2onnx 1.20's HistGradientBoosting converter run with protobuf >= 7.

    skl2onnx passes ``nodes_missing_value_tracks_true`` for leaves as a Python bool; protobuf 7
    refuses a bool in a repeated int field ("Expected an int, got a boolean"). The pinned
    protobuf 6.x accepts it, so this is a no-op there; the wrapper casts the flag to int for the
    duration of one conversion and restores the original function afterwards.
    """
    try:
        from skl2onnx.common import tree_ensemble
    except ImportError:
        yield
        return
    original = tree_ensemble.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def _export_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in EXPORT_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
