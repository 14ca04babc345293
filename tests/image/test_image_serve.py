"""``docker run IMAGE serve`` with the model mounted read-only at /opt/ml/model, as an endpoint runs it."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import golden_checks  # tests/golden_checks.py (tests/ is on sys.path: rootdir conftest)
import pytest
import requests

from pipeline.schema import SCHEMA

from .conftest import METRICS
from .docker_cli import Container, docker, wait_for_ping

pytestmark = pytest.mark.docker

PING_TIMEOUT_S = 90
RECORDS = [
    {
        "age": 39, "workclass": "State-gov", "education_num": 13, "marital_status": "Never-married",
        "occupation": "Adm-clerical", "relationship": "Not-in-family", "race": "White", "sex": "Male",
        "capital_gain": 2174, "capital_loss": 0, "hours_per_week": 40, "native_country": "United-States",
    },
    {
        "age": 52, "workclass": "Self-emp-inc", "education_num": 14, "marital_status": "Married-civ-spouse",
        "occupation": "Exec-managerial", "relationship": "Husband", "race": "White", "sex": "Male",
        "capital_gain": 15024, "capital_loss": 0, "hours_per_week": 50, "native_country": None,
    },
]  # fmt: skip


@dataclass
class Endpoint:
    container: Container
    url: str
    engine: str


def start_serve(image: str, model_dir: Path | None, *options: str, port: int = 8080) -> Endpoint:
    """``docker run -d -p 127.0.0.1::PORT [-v MODEL:/opt/ml/model:ro] IMAGE serve``; the caller removes it."""
    mount = ("-v", f"{model_dir}:/opt/ml/model:ro") if model_dir is not None else ()
    container = Container(image).run("serve", options=("-p", f"127.0.0.1::{port}", *mount, *options))
    url = f"http://127.0.0.1:{container.host_port(port)}"
    return Endpoint(container, url, "")


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module", params=["auto", "sklearn"])
def endpoint(request: pytest.FixtureRequest, image: str, model_dir: Path) -> Iterator[Endpoint]:
    """A serving container per scoring engine: the manifest's choice (auto) and the sklearn fallback."""
    before = _tree_digest(model_dir)
    ep = start_serve(image, model_dir, "-e", f"MODEL_SERVER_ENGINE={request.param}")
    ep.engine = request.param
    try:
        cold = wait_for_ping(ep.container, f"{ep.url}/ping", PING_TIMEOUT_S)
        METRICS[f"cold start, docker run -> first 200 /ping ({request.param})"] = f"{cold:.2f} s"
        yield ep
        assert _tree_digest(model_dir) == before, "serve wrote into /opt/ml/model"
    finally:
        ep.container.remove()


@pytest.fixture(scope="module", params=["auto", "sklearn"])
def released_endpoint(
    request: pytest.FixtureRequest, image: str, released_model_dir: Path
) -> Iterator[Endpoint]:
    """The committed release served by the image, per engine: its answers are held to the golden file."""
    ep = start_serve(image, released_model_dir, "-e", f"MODEL_SERVER_ENGINE={request.param}")
    ep.engine = request.param
    try:
        wait_for_ping(ep.container, f"{ep.url}/ping", PING_TIMEOUT_S)
        yield ep
    finally:
        ep.container.remove()


@pytest.fixture(scope="module")
def golden(released_endpoint: Endpoint, released_model_dir: Path) -> tuple[list[dict], float, float]:
    """(golden cases, tolerance for the endpoint's engine, threshold) from model/golden_predictions.json."""
    manifest = json.loads((released_model_dir / "manifest.json").read_text(encoding="utf-8"))
    document = golden_checks.golden()
    assert document["model_sha256"] == manifest["artifact_files"]["model.joblib"]
    return (
        document["cases"],
        golden_checks.tolerance(released_endpoint.engine, manifest),
        document["threshold"],
    )


def test_ping_answers_200_quickly(endpoint: Endpoint) -> None:
    response = requests.get(f"{endpoint.url}/ping", timeout=2)
    assert response.status_code == 200
    assert response.elapsed.total_seconds() < 2


def test_json_records_get_the_golden_predictions(released_endpoint: Endpoint, golden) -> None:
    cases, tol, threshold = golden
    response = requests.post(
        f"{released_endpoint.url}/invocations",
        json=golden_checks.records(cases),
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    predictions = response.json()["predictions"]
    golden_checks.assert_matches_golden(
        [p["probability"] for p in predictions], [p["label"] for p in predictions], cases, tol, threshold
    )


def test_csv_rows_get_the_golden_predictions(released_endpoint: Endpoint, golden) -> None:
    cases, tol, threshold = golden
    response = requests.post(
        f"{released_endpoint.url}/invocations",
        data=golden_checks.csv_body(cases, header=True).encode(),
        headers={"Content-Type": "text/csv; charset=utf-8", "Accept": "text/csv"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    golden_checks.assert_matches_golden(
        [float(r[1]) for r in rows], [r[0] for r in rows], cases, tol, threshold
    )


def test_the_image_trained_model_serves_both_formats(endpoint: Endpoint) -> None:
    """The model the image's own ``train`` wrote is servable (its values are the release tests' job)."""
    response = requests.post(f"{endpoint.url}/invocations", json=RECORDS, timeout=30)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == len(RECORDS)
    assert all(0.0 <= p["probability"] <= 1.0 and p["label"] in (">50K", "<=50K") for p in predictions)
    body = "\n".join(",".join("" if r[n] is None else str(r[n]) for n in SCHEMA.names) for r in RECORDS)
    response = requests.post(
        f"{endpoint.url}/invocations", data=body, headers={"Content-Type": "text/csv"}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert [p["probability"] for p in response.json()["predictions"]] == [
        p["probability"] for p in predictions
    ]


def test_an_invalid_record_gets_a_400_json_naming_the_field(endpoint: Endpoint) -> None:
    bad = dict(RECORDS[0], age="forty")
    response = requests.post(f"{endpoint.url}/invocations", json=[RECORDS[1], bad], timeout=30)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    details = response.json()["error"]["details"]
    assert any(d.get("record") == 1 and d.get("field") == "age" for d in details), details


def test_the_model_is_mounted_read_only(endpoint: Endpoint) -> None:
    mounts = docker("inspect", "-f", "{{json .Mounts}}", endpoint.container.name).stdout
    assert '"Destination":"/opt/ml/model"' in mounts and '"RW":false' in mounts, mounts


def test_serve_listens_on_sagemaker_bind_to_port(image: str, model_dir: Path) -> None:
    """Inference pipelines move the port (the image declares accept-bind-to-port)."""
    ep = start_serve(image, model_dir, "-e", "SAGEMAKER_BIND_TO_PORT=9123", port=9123)
    try:
        wait_for_ping(ep.container, f"{ep.url}/ping", PING_TIMEOUT_S)
    finally:
        ep.container.remove()


def test_serve_writes_nothing_outside_tmp(image: str, model_dir: Path) -> None:
    """A read-only root filesystem (only /tmp writable) still serves: no stray state in the image."""
    ep = start_serve(image, model_dir, "--read-only", "--tmpfs", "/tmp")
    try:
        wait_for_ping(ep.container, f"{ep.url}/ping", PING_TIMEOUT_S)
        response = requests.post(f"{ep.url}/invocations", json=RECORDS, timeout=30)
        assert response.status_code == 200, response.text
    finally:
        ep.container.remove()


def test_without_a_model_ping_explains_and_the_container_stays_up(image: str) -> None:
    """No crash loop: /ping gives a non-200 JSON reason within SageMaker's 2 s ping timeout."""
    ep = start_serve(image, None)
    try:
        deadline, response = time.monotonic() + PING_TIMEOUT_S, None
        while response is None and time.monotonic() < deadline:
            try:
                response = requests.get(f"{ep.url}/ping", timeout=2)
            except requests.RequestException:
                assert ep.container.state()["Running"], ep.container.logs()
                time.sleep(0.1)
        assert response is not None, ep.container.logs()
        assert response.status_code != 200
        assert response.headers["Content-Type"] == "application/json"
        assert "model" in response.text
        assert response.elapsed.total_seconds() < 2
        assert ep.container.state()["Running"]
    finally:
        ep.container.remove()


def test_docker_stop_drains_and_exits_0(image: str, model_dir: Path) -> None:
    """SageMaker scale-in: SIGTERM, SIGKILL 30 s later. serve (PID 1) must exit 0 well before that."""
    ep = start_serve(image, model_dir)
    try:
        wait_for_ping(ep.container, f"{ep.url}/ping", PING_TIMEOUT_S)
        assert requests.post(f"{ep.url}/invocations", json=RECORDS, timeout=30).status_code == 200
        started = time.monotonic()
        docker("stop", "-t", "30", ep.container.name, timeout=60)
        stop_seconds = time.monotonic() - started
        state = ep.container.state()
        assert state["ExitCode"] == 0, ep.container.logs()[-3000:]
        assert not state["OOMKilled"]
        assert stop_seconds < 15, f"stop took {stop_seconds:.1f} s"
        METRICS["docker stop (serve, SIGTERM drain)"] = f"{stop_seconds:.2f} s, exit 0"
    finally:
        ep.container.remove()
