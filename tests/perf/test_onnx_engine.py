"""The ONNX engine behind the serving Engine interface, and how an engine is chosen."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from inference.engine import EngineError, SklearnEngine, load_engine, self_check
from inference.onnx_engine import OnnxEngine, choose_engine
from inference.settings import SettingsError, load_settings

from pipeline.artifact import ONNX_FILE, ArtifactError, ChecksumMismatchError

REPO_ROOT = Path(__file__).resolve().parents[2]


def _columns(holdout, n: int) -> dict[str, list[object]]:
    frame = holdout.frame.iloc[:n]
    # Validated columns: float|None for numbers, str|None for categories (what the app hands over).
    return {
        name: [None if (isinstance(v, float) and v != v) else v for v in frame[name].tolist()]
        for name in holdout.X.columns
    }


def test_manifest_chooses_onnx_and_it_scores_like_sklearn(quick_model_dir: Path, holdout) -> None:
    onnx = load_engine(quick_model_dir, "auto")
    sklearn = load_engine(quick_model_dir, "sklearn")
    assert isinstance(onnx, OnnxEngine) and isinstance(sklearn, SklearnEngine)
    assert onnx.threshold == sklearn.threshold and onnx.schema == sklearn.schema
    columns = _columns(holdout, 3000)
    p_onnx, p_sk = onnx.predict_proba(columns), sklearn.predict_proba(columns)
    assert p_onnx.dtype == np.float64 and p_onnx.shape == (3000,)
    assert np.max(np.abs(p_onnx - p_sk)) <= 1e-5
    assert np.array_equal(p_onnx >= onnx.threshold, p_sk >= sklearn.threshold)
    self_check(onnx)


def test_single_rows_score_exactly_as_in_a_batch(quick_model_dir: Path, holdout) -> None:
    engine = load_engine(quick_model_dir, "onnx")
    columns = _columns(holdout, 25)
    batch = engine.predict_proba(columns)
    alone = [engine.predict_proba({k: v[i : i + 1] for k, v in columns.items()})[0] for i in range(25)]
    assert batch.tolist() == alone


def test_absent_optional_features_and_missing_forms_match_sklearn(quick_model_dir: Path) -> None:
    onnx, sklearn = load_engine(quick_model_dir, "onnx"), load_engine(quick_model_dir, "sklearn")
    columns = {
        "age": [39.0, None, 120.0],
        "education_num": [13.0, 9.0, None],
        "marital_status": ["Never-married", None, "Married-civ-spouse"],
        "relationship": ["Not-in-family", "Husband", None],
        "race": ["White", "Klingon", "Black"],
        "sex": ["Male", None, "Female"],
        "capital_gain": [0.0, 1_000_000.0, None],
        "capital_loss": [0.0, None, 0.0],
        "hours_per_week": [40.0, 0.0, 168.0],
    }
    assert np.max(np.abs(onnx.predict_proba(columns) - sklearn.predict_proba(columns))) <= 1e-5


def test_environment_forces_the_engine(quick_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_SERVER_ENGINE", "sklearn")
    assert load_engine(quick_model_dir).name == "sklearn"
    monkeypatch.setenv("MODEL_SERVER_ENGINE", "ONNX")
    assert load_engine(quick_model_dir).name == "onnx"
    monkeypatch.setenv("MODEL_SERVER_ENGINE", "tensorrt")
    with pytest.raises(
        SettingsError, match="MODEL_SERVER_ENGINE='tensorrt' must be one of auto, sklearn, onnx"
    ):
        load_settings()


def test_choose_engine_rule() -> None:
    assert choose_engine({"engine": "onnx"}, None) == "onnx"
    assert choose_engine({"engine": "onnx"}, "auto") == "onnx"
    assert choose_engine({"engine": "onnx"}, "sklearn") == "sklearn"
    assert choose_engine({"engine": "sklearn"}, "auto") == "sklearn"
    assert choose_engine({}, "onnx") == "onnx"


def _without_graph(model_dir: Path, engine_in_manifest: str) -> None:
    """Make ``model_dir`` an artifact packaged without model.onnx (as after a refused gate)."""
    (model_dir / ONNX_FILE).unlink()
    manifest = json.loads((model_dir / "manifest.json").read_text())
    del manifest["artifact_files"][ONNX_FILE]
    manifest["engine"] = engine_in_manifest
    manifest["engine_reason"] = "ONNX export refused by the parity gate: test"
    (model_dir / "manifest.json").write_text(json.dumps(manifest))


def test_forcing_onnx_without_a_graph_fails_with_the_packaging_reason(
    quick_model_dir: Path, tmp_path: Path
) -> None:
    model_dir = Path(shutil.copytree(quick_model_dir, tmp_path / "model"))
    _without_graph(model_dir, "sklearn")
    assert load_engine(model_dir, "auto").name == "sklearn"
    with pytest.raises(
        EngineError, match=r"MODEL_SERVER_ENGINE=onnx, but .* has no model\.onnx: ONNX export refused"
    ):
        load_engine(model_dir, "onnx")


def test_manifest_onnx_without_a_usable_graph_falls_back_to_sklearn(
    quick_model_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    model_dir = Path(shutil.copytree(quick_model_dir, tmp_path / "model"))
    _without_graph(model_dir, "onnx")
    assert load_engine(model_dir, "auto").name == "sklearn"
    assert "onnx_engine_fallback" in capfd.readouterr().out


def test_a_corrupt_graph_is_refused_before_onnx_runtime_sees_it(
    quick_model_dir: Path, tmp_path: Path
) -> None:
    model_dir = Path(shutil.copytree(quick_model_dir, tmp_path / "model"))
    data = bytearray((model_dir / ONNX_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model_dir / ONNX_FILE).write_bytes(bytes(data))
    for engine in ("auto", "onnx", "sklearn"):  # every file of the artifact is verified either way
        with pytest.raises(ChecksumMismatchError, match=r"model\.onnx"):
            load_engine(model_dir, engine)
    assert issubclass(ChecksumMismatchError, ArtifactError)


def test_session_threads_are_pinned(quick_model_dir: Path) -> None:
    engine = load_engine(quick_model_dir, "onnx")
    options = engine._session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


@pytest.mark.parametrize("model", ["quick", "released"])
@pytest.mark.parametrize("min_rows", ["0", "256"])
def test_onnx_worker_never_imports_pandas_or_sklearn(
    request: pytest.FixtureRequest, model: str, min_rows: str
) -> None:
    """Nor the ``onnx`` graph library: the released model's tables are read from the artifact, and
    the quick model's were refused at training (the server does not try again)."""
    model_dir = request.getfixturevalue(f"{model}_model_dir")
    code = (
        "import sys; from inference.engine import load_engine\n"
        f"e = load_engine({str(model_dir)!r}, 'onnx')\n"
        "p = e.predict_proba({n: [None] for n in e.schema.names})\n"
        "assert 0 < p[0] < 1, p\n"
        "heavy = sorted(m for m in ('pandas', 'sklearn', 'scipy', 'skl2onnx', 'onnx') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={
            "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'container'}",
            "PATH": "/usr/bin:/bin",
            "SERVE_TABLE_SCORING_MIN_ROWS": min_rows,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
