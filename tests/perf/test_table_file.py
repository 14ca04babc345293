"""The tables training ships in the artifact: read back, proven against the graph, or not used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from inference.onnx_engine import OnnxEngine

from pipeline.artifact import MANIFEST_FILE, ONNX_FILE, TABLES_FILE, dump_manifest, read_manifest
from pipeline.checksums import file_sha256
from pipeline.onnx_scoring import FeedBuilder, open_session, predict_positive
from pipeline.table_file import TableFile, TableFileError, dump_table_file, load_table_file
from pipeline.table_scoring import TABLES_FORMAT, export_tables


@pytest.fixture
def model_copy(released_model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(released_model_dir, target)
    return target


def _rewrite_tables(model_dir: Path, change) -> None:
    """Apply ``change`` to the decoded table file, write it back and re-checksum it in the manifest
    (as a writer with another layout or a bug would: the checksum alone cannot tell)."""
    content = load_table_file((model_dir / TABLES_FILE).read_bytes())
    arrays = {name: array.copy() for name, array in content.arrays.items()}
    meta = json.loads(json.dumps(content.meta))
    change(meta, arrays)
    (model_dir / TABLES_FILE).write_bytes(dump_table_file(TableFile(meta, arrays, dict(content.blobs))))
    _rechecksum(model_dir)


def _rechecksum(model_dir: Path) -> None:
    manifest = read_manifest(model_dir)
    manifest["artifact_files"][TABLES_FILE] = file_sha256(model_dir / TABLES_FILE)
    (model_dir / MANIFEST_FILE).write_text(dump_manifest(manifest), encoding="utf-8")


def _columns(holdout, schema, rows: slice = slice(None)) -> dict[str, list[object]]:
    return {name: holdout.frame[name].tolist()[rows] for name in schema.names}


def _assert_scores_like_the_graph(engine: OnnxEngine, model_dir: Path, holdout) -> None:
    session = open_session((model_dir / ONNX_FILE).read_bytes())
    feeds = FeedBuilder(engine.schema)
    columns = _columns(holdout, engine.schema)
    assert np.array_equal(engine.predict_proba(columns), predict_positive(session, feeds.build(columns)))
    for row in range(0, 3000, 97):  # one-row calls: their own path
        one = _columns(holdout, engine.schema, slice(row, row + 1))
        assert np.array_equal(engine.predict_proba(one), predict_positive(session, feeds.build(one)))


def test_the_release_ships_its_tables_and_the_server_reads_them(released_model_dir: Path, holdout) -> None:
    manifest = read_manifest(released_model_dir)
    data = (released_model_dir / TABLES_FILE).read_bytes()
    assert manifest["scoring_tables"] == {"file": TABLES_FILE, "format": TABLES_FORMAT, "bytes": len(data)}
    # Training's export is a pure function of the graph: the same bytes again.
    schema = OnnxEngine.load(released_model_dir).schema
    assert export_tables((released_model_dir / ONNX_FILE).read_bytes(), schema) == data
    engine = OnnxEngine.load(released_model_dir, table_min_rows=256)
    assert engine.tables_status.startswith(
        "on for calls of 1 row and of 256+ rows, read from scoring_tables.bin ("
    )
    _assert_scores_like_the_graph(engine, released_model_dir, holdout)


def test_tables_that_differ_from_the_graph_are_not_used(model_copy: Path, holdout) -> None:
    def scale_the_leaves(meta: dict, arrays: dict) -> None:
        arrays["tables_all_tables"] *= 1.001

    _rewrite_tables(model_copy, scale_the_leaves)
    engine = OnnxEngine.load(model_copy, table_min_rows=256)
    assert "compiled at start-up (scoring_tables.bin not used: the tables differ from the graph on " in (
        engine.tables_status
    )
    _assert_scores_like_the_graph(engine, model_copy, holdout)  # the freshly compiled tables


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda meta, arrays: meta.update(format=TABLES_FORMAT + 1),
            "table format 2; this server reads format 1",
        ),
        (
            lambda meta, arrays: arrays.pop("tables_rows_0"),
            "TreeTablesError: the saved tables are incomplete",
        ),
        (lambda meta, arrays: meta["cut"].pop("indexes"), "GraphCutError: the saved cut is incomplete"),
        (
            lambda meta, arrays: arrays.update(tables_rows_0=arrays["tables_rows_0"][:3]),
            "the saved tables fail to score: IndexError",
        ),
    ],
    ids=["other-format", "missing-array", "missing-field", "short-array"],
)
def test_an_unreadable_table_file_is_compiled_instead(model_copy: Path, change, reason: str) -> None:
    _rewrite_tables(model_copy, change)
    engine = OnnxEngine.load(model_copy, table_min_rows=256)
    assert engine.tables_status.startswith("on for calls of 1 row and of 256+ rows, compiled at start-up (")
    assert reason in engine.tables_status


def test_a_truncated_table_file_is_refused_with_the_reason(model_copy: Path) -> None:
    data = (model_copy / TABLES_FILE).read_bytes()
    with pytest.raises(TableFileError, match="outside the file"):
        load_table_file(data[: len(data) // 2])
    with pytest.raises(TableFileError, match="does not start with"):
        load_table_file(b"PK\x03\x04" + data[4:])
    (model_copy / TABLES_FILE).write_bytes(data[: len(data) // 2])
    _rechecksum(model_copy)
    engine = OnnxEngine.load(model_copy, table_min_rows=256)
    assert (
        "compiled at start-up (scoring_tables.bin not used: the table file is damaged" in engine.tables_status
    )


def test_an_artifact_from_before_shipped_tables_compiles_them_at_start_up(model_copy: Path, holdout) -> None:
    (model_copy / TABLES_FILE).unlink()
    manifest = read_manifest(model_copy)
    del manifest["artifact_files"][TABLES_FILE]
    del manifest["scoring_tables"]
    (model_copy / MANIFEST_FILE).write_text(dump_manifest(manifest), encoding="utf-8")
    engine = OnnxEngine.load(model_copy, table_min_rows=256)
    assert "compiled at start-up (the artifact has no scoring_tables.bin)" in engine.tables_status
    _assert_scores_like_the_graph(engine, model_copy, holdout)


def test_the_file_round_trips_arrays_blobs_and_fields_and_holds_no_pickles() -> None:
    content = TableFile(
        {"name": "x", "values": [1.5, None]},
        {"f": np.arange(5, dtype=np.float64) / 3, "i": np.arange(6, dtype=np.int32).reshape(2, 3)},
        {"blob": b"\x00\x01abc"},
    )
    data = dump_table_file(content)
    assert data == dump_table_file(content)  # deterministic
    back = load_table_file(data)
    assert back.meta == content.meta and back.blobs == content.blobs
    assert set(back.arrays) == {"f", "i"}
    for name, array in content.arrays.items():
        assert back.arrays[name].dtype == array.dtype and np.array_equal(back.arrays[name], array)
    length = int.from_bytes(data[8:16], "little")
    header = json.loads(data[16 : 16 + length])
    header["entries"]["f"]["dtype"] = "|O"  # an object array would need a pickle: refused
    forged = json.dumps(header).encode()
    with pytest.raises(TableFileError, match="damaged"):
        load_table_file(data[:8] + len(forged).to_bytes(8, "little") + forged + data[16 + length :])
