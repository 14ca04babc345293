"""``docker run IMAGE serve`` with the model mounted read-only at /opt/ml/model, as an endpoint runs it."""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


@pytest.fixture(scope="module")
def expected(endpoint: Endpoint, model_dir: Path) -> tuple[list[float], float]:
    """The same artifact scored in-process on the host with the same engine (the lock is shared)."""
    from inference.engine import load_engine

    engine = load_engine(model_dir, endpoint.engine)
    columns = {name: [r.get(name) for r in RECORDS] for name in SCHEMA.names}
    return [float(p) for p in engine.predict_proba(columns)], engine.threshold


def _label(probability: float, threshold: float) -> str:
    return SCHEMA.positive_label if probability >= threshold else SCHEMA.negative_label


def test_ping_answers_200_quickly(endpoint: Endpoint) -> None:
    response = requests.get(f"{endpoint.url}/ping", timeout=2)
    assert response.status_code == 200
    assert response.elapsed.total_seconds() < 2


def test_json_records_get_json_predictions(endpoint: Endpoint, expected) -> None:
    want, threshold = expected
    response = requests.post(
        f"{endpoint.url}/invocations", json=RECORDS, headers={"Accept": "application/json"}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    predictions = response.json()["predictions"]
    assert [p["probability"] for p in predictions] == pytest.approx(want, abs=1e-9)
    assert [p["label"] for p in predictions] == [_label(p, threshold) for p in want]


def test_csv_rows_get_csv_predictions(endpoint: Endpoint, expected) -> None:
    want, threshold = expected
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SCHEMA.names)
    writer.writerows([["" if r.get(n) is None else r[n] for n in SCHEMA.names] for r in RECORDS])
    response = requests.post(
        f"{endpoint.url}/invocations",
        data=out.getvalue().encode(),
        headers={"Content-Type": "text/csv; charset=utf-8", "Accept": "text/csv"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert [row[0] for row in rows] == [_label(p, threshold) for p in want]
    assert [float(row[1]) for row in rows] == pytest.approx(want, abs=1e-9)


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
