"""The compiled tree tables must return the ONNX graph's probabilities bit for bit, or not be used."""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import time
from pathlib import Path

import numpy as np
import pytest
from inference.onnx_engine import OnnxEngine

import pipeline.table_scoring as table_scoring
import pipeline.tree_tables as tree_tables
from pipeline.artifact import ONNX_FILE
from pipeline.onnx_export import edge_case_batches
from pipeline.onnx_scoring import FeedBuilder, open_session, predict_positive
from pipeline.table_scoring import TableScorerError, build_table_scorer


@pytest.fixture(params=["released", "quick"])
def model_dir(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(f"{request.param}_model_dir")


def _full_graph(model_dir: Path):
    return open_session((model_dir / ONNX_FILE).read_bytes())


def _holdout_columns(holdout, schema) -> dict[str, list[object]]:
    frame = holdout.frame
    return {name: frame[name].tolist() for name in schema.names}


def test_tables_reproduce_the_graph_bit_for_bit(
    model_dir: Path, holdout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tree_tables, "MAX_TOTAL_CELLS", 1 << 30)  # the quick model's deep trees too
    engine = OnnxEngine.load(model_dir)
    session = _full_graph(model_dir)
    scorer = build_table_scorer((model_dir / ONNX_FILE).read_bytes(), engine.schema, session)
    feeds = FeedBuilder(engine.schema)
    batches = [_holdout_columns(holdout, engine.schema), *edge_case_batches(engine.schema)]
    rows = 0
    for columns in batches:
        expected = predict_positive(session, feeds.build(columns))
        actual = scorer.predict(columns)
        assert actual.dtype == expected.dtype == np.float64
        mismatches = np.flatnonzero(actual != expected)
        first = mismatches[:5]
        assert mismatches.size == 0, f"rows {first} differ: {actual[first]} vs {expected[first]}"
        # and every row alone, through the one-row path
        n_rows = len(expected)
        alone = np.concatenate(
            [scorer.predict({k: v[i : i + 1] for k, v in columns.items()}) for i in range(n_rows)]
        )
        mismatches = np.flatnonzero(alone != expected)
        first = mismatches[:5]
        assert mismatches.size == 0, f"rows {first} alone differ: {alone[first]} vs {expected[first]}"
        rows += n_rows
    assert rows > len(holdout.frame)


def test_the_engine_uses_the_tables_from_the_configured_row_count(released_model_dir: Path, holdout) -> None:
    engine = OnnxEngine.load(released_model_dir, table_min_rows=300)
    assert engine.tables_status.startswith("on for calls of 1 row and of 300+ rows")
    calls: list[int] = []
    real = engine._tables.predict

    def spy(columns):
        calls.append(len(next(iter(columns.values()))))
        return real(columns)

    engine._tables.predict = spy
    columns = _holdout_columns(holdout, engine.schema)
    for n in (1, 299, 300, 5000):
        part = {name: values[:n] for name, values in columns.items()}
        singles = [{k: v[i : i + 1] for k, v in part.items()} for i in range(min(n, 50))]
        alone = [engine.predict_proba(single)[0] for single in singles]
        together = engine.predict_proba(part)
        assert together[: len(alone)].tolist() == alone  # bitwise, whichever path scored the batch
    # every one-row call (1 + 3 x 50 singles) and the calls from 300 rows; never 299 rows
    assert calls == [1, 1, *[1] * 50, *[1] * 50, 300, *[1] * 50, 5000]


def test_a_one_row_call_whose_numbers_are_nan_is_scored_by_the_graph(
    released_model_dir: Path, holdout, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = OnnxEngine.load(released_model_dir, table_min_rows=256)
    scorer = engine._tables
    columns = {k: v[:1] for k, v in _holdout_columns(holdout, engine.schema).items()}
    expected = predict_positive(_full_graph(released_model_dir), FeedBuilder(engine.schema).build(columns))
    cut = scorer._cut
    width = cut.numeric_width
    monkeypatch.setattr(type(cut), "numeric_row", lambda self, feeds, cols: [float("nan")] * width)
    monkeypatch.setattr(
        scorer._tables, "row_probability", lambda *a: pytest.fail("the tables scored a NaN row")
    )
    assert np.array_equal(engine.predict_proba(columns), expected)


def test_tables_are_off_when_min_rows_is_zero(released_model_dir: Path) -> None:
    engine = OnnxEngine.load(released_model_dir, table_min_rows=0)
    assert engine._tables is None and engine.tables_status.startswith("off")


def test_a_wrong_compilation_is_caught_by_the_verification(
    released_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-ULP error in the probability (here: numpy's float32 exp instead of libm's) must not pass."""

    def float32_exp_logistic(margins: np.ndarray) -> np.ndarray:
        x = margins.astype(np.float32)
        v = np.float32(1) / (np.float32(1) + np.exp(-np.abs(x)))
        return np.where(x < 0, np.float32(1) - v, v).astype(np.float64)

    monkeypatch.setattr(tree_tables, "logistic_like_onnxruntime", float32_exp_logistic)
    data = (released_model_dir / ONNX_FILE).read_bytes()
    with pytest.raises(TableScorerError, match=r"differ from the graph on \d+ of \d+ verification rows"):
        build_table_scorer(data, OnnxEngine.load(released_model_dir).schema, _full_graph(released_model_dir))


def test_a_wrong_one_row_path_is_caught_by_the_verification(
    released_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-row path is verified on its own: the same one-ULP error there must not pass either."""

    def float32_exp_logistic_one(margin: float) -> float:
        return float(float32_exp_logistic_of(np.array([margin]))[0])

    monkeypatch.setattr(tree_tables, "logistic_one_like_onnxruntime", float32_exp_logistic_one)
    data = (released_model_dir / ONNX_FILE).read_bytes()
    with pytest.raises(TableScorerError, match=r"differ from the graph on \d+ of 256 verification rows"):
        build_table_scorer(data, OnnxEngine.load(released_model_dir).schema, _full_graph(released_model_dir))


def float32_exp_logistic_of(margins: np.ndarray) -> np.ndarray:
    x = margins.astype(np.float32)
    v = np.float32(1) / (np.float32(1) + np.exp(-np.abs(x)))
    return np.where(x < 0, np.float32(1) - v, v).astype(np.float64)


def test_a_graph_the_tables_do_not_reproduce_is_refused(released_model_dir: Path) -> None:
    import onnx

    model = onnx.load_from_string((released_model_dir / ONNX_FILE).read_bytes())
    trees = next(node for node in model.graph.node if node.op_type == "TreeEnsembleClassifier")
    modes = next(a for a in trees.attribute if a.name == "nodes_modes")
    modes.strings[:] = [b"BRANCH_LT" if m == b"BRANCH_LEQ" else m for m in modes.strings]
    data = model.SerializeToString()
    schema = OnnxEngine.load(released_model_dir).schema
    with pytest.raises(TableScorerError, match="only BRANCH_LEQ is reproduced"):
        build_table_scorer(data, schema, open_session(data))


def test_the_logistic_replica_equals_libm_expf_everywhere() -> None:
    """The probability step, against ONNX Runtime's formula evaluated with the C library's expf."""
    rng = np.random.default_rng(7)
    special = np.array([0.0, -0.0, 1e-8, -1e-8, 1e-30, 88.0, -88.0, 103.9, -104.0, 150.0, -150.0, 1e6, -1e6])
    margins = np.concatenate([special, rng.normal(0, 4, 150_000), rng.uniform(-110, 110, 50_000)])
    library = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    expf = library.expf
    expf.restype, expf.argtypes = ctypes.c_float, [ctypes.c_float]
    x = margins.astype(np.float32)
    e = np.array([expf(float(-abs(v))) for v in x.tolist()], dtype=np.float32)
    v = np.float32(1) / (np.float32(1) + e)
    expected = np.where(x < 0, np.float32(1) - v, v).astype(np.float64)
    actual = tree_tables.logistic_like_onnxruntime(margins)
    assert np.array_equal(actual, expected)
    one = np.array([tree_tables.logistic_one_like_onnxruntime(m) for m in margins[:20_000].tolist()])
    assert np.array_equal(one, expected[:20_000])


def test_verification_rows_cover_every_known_string_in_every_feature(released_model_dir: Path) -> None:
    from pipeline.onnx_graph_cut import UNKNOWN_PROBE, cut_graph

    schema = OnnxEngine.load(released_model_dir).schema
    cut = cut_graph((released_model_dir / ONNX_FILE).read_bytes(), schema)
    columns = table_scoring.verification_columns(schema, cut.probes)
    for name in schema.categorical:
        assert set(cut.probes) <= set(columns[name])
        assert None in columns[name] and UNKNOWN_PROBE in columns[name]
    for name in schema.numeric:
        assert None in columns[name]


def test_columns_from_the_csv_fast_path_score_like_lists(released_model_dir: Path, holdout) -> None:
    """Float arrays with NaN and CodedColumn categories (the columnar CSV path) score bit for bit."""
    from inference.content_types import CSV
    from inference.decoding import decode
    from inference.validation import Validator

    from pipeline.coded_column import CodedColumn

    engine = OnnxEngine.load(released_model_dir, table_min_rows=256)
    validator = Validator(engine.schema)
    columns = _holdout_columns(holdout, engine.schema)
    n_rows = 3000
    lines = [
        ",".join("" if _missing(columns[name][i]) else str(columns[name][i]) for name in engine.schema.names)
        for i in range(n_rows)
    ]
    lines[7] = lines[7].replace("Private", " Private ", 1)  # padded: another text, the same category
    decoded = decode(("\n".join(lines) + "\n").encode(), CSV, validator.names, validator.header_names)
    batch = validator.validate(decoded)
    assert any(isinstance(values, CodedColumn) for values in batch.columns.values())
    as_lists = {name: [None if _missing(v) else v for v in values] for name, values in batch.columns.items()}
    expected = predict_positive(_full_graph(released_model_dir), FeedBuilder(engine.schema).build(as_lists))
    assert np.array_equal(engine.predict_proba(batch.columns), expected)
    assert np.array_equal(engine.predict_proba(as_lists), expected)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def test_keys_are_grouped_within_the_caps(released_model_dir: Path) -> None:
    engine = OnnxEngine.load(released_model_dir, table_min_rows=256)
    tables = engine._tables._tables
    assert all(group.size <= tree_tables.MAX_GROUP_CELLS for group in tables._groups)
    keys = {key for group in tables._groups for key in group.keys}
    assert tables.n_groups < 0.6 * len(keys)  # grouping must save row takes on the released model
    assert sum(rows.size for rows in tables._rows) <= tree_tables.MAX_REMAP_CELLS
    assert "key groups" in engine.tables_status


def test_tables_too_large_in_all_leave_the_graph_scoring(quick_model_dir: Path) -> None:
    """``train --quick``'s deep trees would need ~20 M cells: refused at training before any tree is
    walked, with the reason in the manifest, which the server reports instead of trying again."""
    reason = OnnxEngine.load(quick_model_dir).manifest["scoring_tables"]["reason"]
    assert re.fullmatch(
        rf"not compiled: the tables would need \d+ cells in all \(limit {tree_tables.MAX_TOTAL_CELLS}\)",
        reason,
    )
    started = time.perf_counter()
    engine = OnnxEngine.load(quick_model_dir, table_min_rows=256)
    assert time.perf_counter() - started < 1.0  # it used to try, for seconds, at every start
    assert engine._tables is None
    assert engine.tables_status == f"unavailable: {reason} (at training)"
    with pytest.raises(TableScorerError, match=r"would need \d+ cells in all"):
        build_table_scorer(
            (quick_model_dir / ONNX_FILE).read_bytes(), engine.schema, _full_graph(quick_model_dir)
        )


def test_the_numeric_plan_is_the_numeric_branch_bit_for_bit(released_model_dir: Path, holdout) -> None:
    """One-row calls compute imputation and scaling in Python: equal to the branch's session, every bit."""
    from pipeline.onnx_graph_cut import cut_graph

    schema = OnnxEngine.load(released_model_dir).schema
    cut = cut_graph((released_model_dir / ONNX_FILE).read_bytes(), schema)
    assert cut.numeric_plan is not None and cut.numeric_plan.inputs == tuple(schema.numeric)
    feeds = FeedBuilder(schema)
    columns = _holdout_columns(holdout, schema)
    for name in schema.numeric:  # missing values in every feature, and odd spellings of numbers
        columns[name][:4] = [None, " 12 ", "?", 1e300]
    n_rows = 3000
    expected = cut.numeric_values(feeds, {k: v[:n_rows] for k, v in columns.items()}, n_rows)
    for i in range(n_rows):
        row = cut.numeric_row(feeds, {k: v[i : i + 1] for k, v in columns.items()})
        assert row == expected[i].tolist(), f"row {i}"


def test_a_numeric_branch_of_another_shape_has_no_plan(released_model_dir: Path) -> None:
    import onnx

    from pipeline.onnx_graph_cut import _numeric_plan, _subgraph, cut_graph

    schema = OnnxEngine.load(released_model_dir).schema
    data = (released_model_dir / ONNX_FILE).read_bytes()
    cut = cut_graph(data, schema)
    inferred = onnx.shape_inference.infer_shapes(onnx.load_from_string(data))
    graph = _subgraph(inferred, list(schema.numeric), [cut.numeric_block])
    assert _numeric_plan(graph, cut.numeric_width) is not None
    graph.graph.node[-1].op_type = "Mul"
    assert _numeric_plan(graph, cut.numeric_width) is None
