"""The notebooks run top to bottom in a fresh kernel (03 against a real local cloud) and say what they should.

Each notebook is executed from its place in ``notebooks/`` (as Jupyter would) into a scratch file, so the
committed copies are not touched. Notebook 03 starts the local cloud itself (``local up``) and stops it
(``local down``); the fixture stops it again in any case, in an isolated run directory, secrets directory
and free ports, so it never touches a stack the developer may be running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from report_local_env import isolated_local_env

from docs.report import notebooks, paths


def _text(notebook: nbformat.NotebookNode) -> str:
    """Every text output of the notebook, joined."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output["text"])
            elif "data" in output:
                parts.append(output["data"].get("text/plain", ""))
                parts.append(output["data"].get("text/markdown", ""))
    return "\n".join(parts)


def _images(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", [])
    )


@pytest.fixture(scope="module")
def local_cloud_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An isolated local-cloud environment; whatever notebook 03 leaves running is stopped afterwards."""
    base = tmp_path_factory.mktemp("local-cloud")
    env = {**isolated_local_env(base), "ADULT_NOTEBOOK_TARGET": "local"}
    yield env
    subprocess.run(
        [sys.executable, "-m", "pipeline", "local", "down"],
        cwd=paths.ROOT,
        env={**os.environ, **env},
        capture_output=True,
        timeout=120,
        check=False,
    )


def _run(name: str, tmp_path: Path, env: dict[str, str] | None = None) -> nbformat.NotebookNode:
    out = tmp_path / name
    notebooks.execute(notebooks.NOTEBOOK_DIR / name, out, timeout=300, env=env)
    return nbformat.read(out, as_version=4)


def test_eda_notebook_draws_the_project_figures(tmp_path: Path) -> None:
    nb = _run("01_eda.ipynb", tmp_path)
    text = _text(nb)
    assert _images(nb) >= 5  # class balance, missingness, numeric, categorical, associations
    assert "train: 32,561 rows" in text and "test: 16,281 rows" in text
    assert "Findings and the decisions they drove" in text


def test_model_notebook_reproduces_the_released_numbers(tmp_path: Path) -> None:
    nb = _run("02_model_development.ipynb", tmp_path)
    text = _text(nb)
    assert "live cross-validation reproduces the recorded numbers" in text
    assert "the released artifact reproduces its manifest" in text
    assert _images(nb) >= 5  # CV curves, ROC, PR, confusion, calibration
    assert "Model card" in text


def test_deploy_notebook_predicts_through_the_local_cloud(
    tmp_path: Path, local_cloud_env: dict[str, str]
) -> None:
    nb = _run("03_deploy_and_predict.ipynb", tmp_path, env=local_cloud_env)
    text = _text(nb)
    assert "target: LOCAL" in text
    assert "Dry run: nothing will be created" in text
    assert "the local stack is up" in text
    assert "ModelError - original status 400" in text  # SDK v3 path, invalid record
    assert "'predictions': [{'label':" in text  # SDK v3 JSON and API Gateway JSON answers
    assert "no key     -> 403" in text and "wrong key  -> 403" in text
    assert "429" in text
    assert "stopped: gateway, runtime, container" in text
    key = (Path(local_cloud_env["LOCAL_SECRETS_DIR"]) / "demo.key").read_text().strip()
    assert key and key not in text, "the API key value must never appear in a notebook output"


@pytest.mark.parametrize("name", notebooks.NOTEBOOKS)
def test_committed_notebooks_carry_the_outputs_of_a_clean_run(name: str) -> None:
    nb = nbformat.read(notebooks.NOTEBOOK_DIR / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), f"{name} has cells that were never run"
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{name} was not run top to bottom in one kernel"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{name} was committed with an error output"
    secrets = [p.read_text().strip() for p in (paths.ROOT / ".secrets").glob("*.key")]
    body = (notebooks.NOTEBOOK_DIR / name).read_text()
    assert not [s for s in secrets if s and s in body], f"{name} contains an API key value"
