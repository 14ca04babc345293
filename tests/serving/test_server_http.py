"""The real serving stack (nginx -> gunicorn -> Flask) on loopback: formats, negotiation, errors, limits."""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import golden_checks  # tests/golden_checks.py (tests/ is on sys.path: rootdir conftest)
import orjson
import pytest
import requests

from pipeline.schema import SCHEMA

from .conftest import ENGINES, RECORD, ServeProcess

LIMIT = 6 * 1024 * 1024

OTHER = {
    "age": 52,
    "workclass": "Self-emp-inc",
    "education_num": 14,
    "marital_status": "Married-civ-spouse",
    "occupation": "Exec-managerial",
    "relationship": "Husband",
    "race": "White",
    "sex": "Male",
    "capital_gain": 15024,
    "capital_loss": 0,
    "hours_per_week": 50,
    "native_country": None,
}
RECORDS = [RECORD, OTHER, {**RECORD, "age": 23, "occupation": "?", "native_country": "Atlantis"}]


def csv_rows(records: list[dict], header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(SCHEMA.names)
    for record in records:
        writer.writerow(["" if record[n] is None else record[n] for n in SCHEMA.names])
    return out.getvalue()


def invoke(server: ServeProcess, body: bytes | str, content_type: str | None, accept: str | None = None):
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    data = body.encode() if isinstance(body, str) else body
    return requests.post(f"{server.url}/invocations", data=data, headers=headers, timeout=30)


def predictions(response: requests.Response) -> list[tuple[str, float]]:
    """(label, probability) per record, whatever the response format."""
    assert response.status_code == 200, response.text
    kind = response.headers["Content-Type"]
    if kind == "application/json":
        return [(p["label"], p["probability"]) for p in response.json()["predictions"]]
    if kind == "application/jsonlines":
        return [(p["label"], p["probability"]) for p in map(json.loads, response.text.splitlines())]
    assert kind == "text/csv"
    return [(row[0], float(row[1])) for row in csv.reader(io.StringIO(response.text))]


def probabilities(response: requests.Response) -> list[float]:
    return [p for _, p in predictions(response)]


def labels(response: requests.Response) -> list[str]:
    return [label for label, _ in predictions(response)]


@pytest.fixture(scope="module", params=ENGINES)
def released_server(
    request: pytest.FixtureRequest, released_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """The committed release served by the real stack, once per engine (checked against the golden file)."""
    proc = ServeProcess(released_model_dir, tmp_path_factory.mktemp("serve-logs"), workers=2,
                        MODEL_SERVER_ENGINE=request.param)  # fmt: skip
    try:
        proc.wait_for_ping(200)
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def golden(released_model_dir: Path, released_server: ServeProcess) -> Golden:
    """The golden cases and the tolerance for the engine this server runs."""
    manifest = json.loads((released_model_dir / "manifest.json").read_text(encoding="utf-8"))
    document = golden_checks.golden()
    assert document["model_sha256"] == manifest["artifact_files"]["model.joblib"]
    return Golden(document["cases"], golden_checks.tolerance(released_server.engine, manifest),
                  document["threshold"])  # fmt: skip


@dataclass(frozen=True)
class Golden:
    cases: list[dict]
    tol: float
    threshold: float

    def check(self, response: requests.Response, cases: list[dict] | None = None) -> None:
        """The response's labels and probabilities are the golden ones (for ``cases``, default all)."""
        cases = self.cases if cases is None else cases
        golden_checks.assert_matches_golden(probabilities(response), labels(response), cases, self.tol,
                                            self.threshold)  # fmt: skip


def test_ping_is_200_json(server: ServeProcess) -> None:
    response = requests.get(f"{server.url}/ping", timeout=2)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.elapsed.total_seconds() < 2


@pytest.mark.parametrize(
    ("content_type", "make_body"),
    [
        ("application/json", lambda c: orjson.dumps(golden_checks.records(c))),
        ("application/json; charset=utf-8", lambda c: orjson.dumps({"instances": golden_checks.records(c)})),
        ("text/csv", lambda c: golden_checks.csv_body(c, header=False)),
        ("text/csv; charset=utf-8", lambda c: golden_checks.csv_body(c, header=True)),
        ("application/jsonlines", lambda c: b"\n".join(orjson.dumps(r) for r in golden_checks.records(c))),
        (
            "application/x-jsonlines",
            lambda c: b"\n".join(orjson.dumps(r) for r in golden_checks.records(c)) + b"\n",
        ),
        ("application/json-lines", lambda c: b"\n".join(orjson.dumps(r) for r in golden_checks.records(c))),
    ],
)
def test_every_input_format_gives_the_golden_predictions(
    released_server: ServeProcess, golden: Golden, content_type: str, make_body
) -> None:
    response = invoke(released_server, make_body(golden.cases), content_type)
    assert response.headers["Content-Type"] == "application/json"
    golden.check(response)


def test_each_record_alone_gives_the_golden_prediction(released_server: ServeProcess, golden: Golden) -> None:
    for case in golden.cases:
        golden.check(invoke(released_server, orjson.dumps(case["record"]), "application/json"), [case])


def test_single_records_score_exactly_as_in_a_batch(released_server: ServeProcess, golden: Golden) -> None:
    records = golden_checks.records(golden.cases)
    singles = [
        probabilities(invoke(released_server, orjson.dumps(r), "application/json"))[0] for r in records
    ]
    assert singles == probabilities(invoke(released_server, orjson.dumps(records), "application/json"))


def test_single_csv_row_without_trailing_newline(released_server: ServeProcess, golden: Golden) -> None:
    case = golden.cases[0]
    body = golden_checks.csv_body([case], header=False).rstrip("\n")
    golden.check(invoke(released_server, body, "text/csv"), [case])


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("text/csv", "text/csv"),
        ("application/jsonlines", "application/jsonlines"),
        ("text/csv, application/json", "text/csv"),
        ("application/json;q=0.4, text/csv;q=0.9", "text/csv"),
        ("text/html, application/jsonlines;q=0.5", "application/jsonlines"),
        ("text/csv; charset=utf-8", "text/csv"),
    ],
)
def test_accept_selects_the_output_format(
    released_server: ServeProcess, golden: Golden, accept: str | None, content_type: str
):
    body = orjson.dumps(golden_checks.records(golden.cases))
    response = invoke(released_server, body, "application/json", accept)
    assert response.headers["Content-Type"] == content_type
    golden.check(response)


def test_csv_output_has_one_label_probability_line_per_record(
    released_server: ServeProcess, golden: Golden
) -> None:
    response = invoke(
        released_server, golden_checks.csv_body(golden.cases, header=False), "text/csv", "text/csv"
    )
    rows = list(csv.reader(io.StringIO(response.text)))
    assert [len(r) for r in rows] == [2] * len(golden.cases)
    golden.check(response)


def error_of(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.headers["X-Request-Id"]
    assert isinstance(error["details"], list)
    return error


def test_invalid_records_400_names_record_field_and_problem(server: ServeProcess) -> None:
    body = orjson.dumps([RECORD, {**RECORD, "age": 300}, {k: v for k, v in RECORD.items() if k != "sex"}])
    error = error_of(invoke(server, body, "application/json"), 400, "invalid_records")
    assert [(d["record"], d["field"], d["problem"]) for d in error["details"]] == [
        (1, "age", "out_of_range"),
        (2, "sex", "missing_field"),
    ]


def test_wrong_type_and_unknown_field_in_csv_and_json(server: ServeProcess) -> None:
    error = error_of(
        invoke(server, "forty" + csv_rows([RECORD], False)[2:], "text/csv"), 400, "invalid_records"
    )
    assert error["details"][0] == {
        "record": 0,
        "field": "age",
        "problem": "wrong_type",
        "message": "expected a number, got the text 'forty'",
    }
    error = error_of(invoke(server, orjson.dumps({**RECORD, "income": ">50K"}), None), 400, "invalid_records")
    assert error["details"][0]["field"] == "income" and error["details"][0]["problem"] == "unknown_field"


@pytest.mark.parametrize(
    ("body", "content_type", "needle"),
    [(b"{broken", "application/json", "not valid JSON"), (b"", "text/csv", "empty")],
)
def test_malformed_body_400(server: ServeProcess, body: bytes, content_type: str, needle: str) -> None:
    assert needle in error_of(invoke(server, body, content_type), 400, "malformed_body")["message"]


def test_unsupported_content_type_415_names_it(server: ServeProcess) -> None:
    error = error_of(invoke(server, b"<a/>", "application/xml"), 415, "unsupported_media_type")
    assert "'application/xml'" in error["message"]


def test_unsatisfiable_accept_406_names_it(server: ServeProcess) -> None:
    error = error_of(
        invoke(server, orjson.dumps(RECORD), "application/json", "text/html"), 406, "not_acceptable"
    )
    assert "'text/html'" in error["message"]


def test_unknown_path_404_and_wrong_method_405(server: ServeProcess) -> None:
    error_of(requests.get(f"{server.url}/predict", timeout=5), 404, "not_found")
    response = requests.get(f"{server.url}/invocations", timeout=5)
    error_of(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"
    error_of(requests.post(f"{server.url}/ping", timeout=5), 405, "method_not_allowed")


def test_execution_parameters(server: ServeProcess) -> None:
    response = requests.get(f"{server.url}/execution-parameters", timeout=5)
    assert response.json() == {
        "MaxConcurrentTransforms": 2,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


def padded_json(size: int) -> bytes:
    record = orjson.dumps(RECORD)
    return record + b" " * (size - len(record))


def test_body_of_exactly_the_limit_is_accepted(server: ServeProcess) -> None:
    body = padded_json(LIMIT)
    assert len(body) == 6291456
    assert invoke(server, body, "application/json").status_code == 200


def test_body_one_byte_over_the_limit_is_a_json_413_from_nginx(server: ServeProcess) -> None:
    error = error_of(invoke(server, padded_json(LIMIT + 1), "application/json"), 413, "payload_too_large")
    assert error["details"] == [{"limit_bytes": 6291456}]
    assert "6291456 bytes" in error["message"]


def test_chunked_body_over_the_limit_is_413(server: ServeProcess) -> None:
    def chunks():
        for _ in range(7):
            yield b" " * (1024 * 1024)

    response = requests.post(
        f"{server.url}/invocations", data=chunks(), headers={"Content-Type": "application/json"}, timeout=30
    )
    error_of(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"THIS IS NOT HTTP\r\n\r\n", 400, "bad_request"),
        (b"GET /ping HTTP/1.1\r\n\r\n", 400, "bad_request"),  # no Host
        (b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 400, "headers_too_large"),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"TRACE /ping HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed"),
        (b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "not_implemented"),
        (b"GET /ping HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"),
    ],
)
def test_protocol_errors_answered_by_nginx_are_json_not_html(
    server: ServeProcess, raw: bytes, status: int, code: str
) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(raw)
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    text = received.decode(errors="replace")
    head, _, body = text.partition("\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}"), head
    assert "content-type: application/json" in head.lower()
    assert json.loads(body)["error"]["code"] == code
    assert "<html" not in text.lower()


def test_one_log_line_per_request_without_payload_values(server: ServeProcess) -> None:
    marker = {**RECORD, "native_country": "Holand-Netherlands", "capital_gain": 98765}
    response = invoke(server, orjson.dumps([marker, {**marker, "race": "Martian"}]), "application/json")
    request_id = response.headers["X-Request-Id"]
    lines = [json.loads(line) for line in server.log_lines() if request_id in line]
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "request" and line["status"] == 200 and line["records"] == 2
    assert line["unknown_categories"] == {"race": 1}
    assert line["latency_ms"] > 0
    assert 0 <= line["queue_ms"] < 10_000  # nginx's X-Request-Start reached the app
    log_text = "\n".join(server.log_lines())
    assert "Holand-Netherlands" not in log_text and "98765" not in log_text


def test_rejected_values_reach_the_client_but_not_the_log(server: ServeProcess) -> None:
    # Eight digits: a random request id or timestamp in the log holds them by chance almost never.
    response = invoke(
        server, orjson.dumps({**RECORD, "age": 98765432, "sex": "Zorblax-9"}), "application/json"
    )
    assert response.status_code == 400
    assert "98765432" in response.text  # the caller is told what was wrong with its own value
    line = next(json.loads(x) for x in server.log_lines() if response.headers["X-Request-Id"] in x)
    assert line["error_code"] == "invalid_records" and line["status"] == 400
    # The field names the client was told about, and only names: what the operators' log query ranks.
    told = sorted({d["field"] for d in response.json()["error"]["details"]})
    assert "age" in told and line["invalid_fields"] == ",".join(told)
    assert "98765432" not in json.dumps(line) and "Zorblax" not in "\n".join(server.log_lines())


def test_nginx_answered_errors_are_logged_as_json(server: ServeProcess) -> None:
    response = invoke(server, padded_json(LIMIT + 1), "application/json")
    request_id = response.headers["X-Request-Id"]
    deadline = time.monotonic() + 5  # nginx logs once the connection is closed
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in server.log_lines() if request_id in line]
        if lines:
            break
        time.sleep(0.1)
    assert [(line["source"], line["status"], line["request"]) for line in lines] == [
        ("nginx", 413, "POST /invocations HTTP/1.1")
    ]


def test_native_thread_pools_are_pinned_to_one_thread_per_worker(server: ServeProcess) -> None:
    body = csv_rows(RECORDS * 400, header=False)
    for _ in range(4):  # reach both workers
        assert invoke(server, body, "text/csv").status_code == 200
    for pid in server.workers():
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
        assert threads == 1, f"worker {pid} runs {threads} threads"


def test_ping_is_200_even_for_conditional_and_range_requests(server: ServeProcess) -> None:
    first = requests.get(f"{server.url}/ping", timeout=2)
    headers = {"If-Modified-Since": first.headers.get("Last-Modified", "Thu, 01 Jan 2099 00:00:00 GMT")}
    headers["If-None-Match"] = "*"
    headers["Range"] = "bytes=0-3"
    again = requests.get(f"{server.url}/ping", headers=headers, timeout=2)
    assert (again.status_code, again.json()) == (200, {"status": "ok"})


def test_ping_stays_fast_while_every_worker_is_busy(server: ServeProcess) -> None:
    """nginx answers /ping from the ready file, so a queue of big requests cannot break the 2 s rule."""
    body = csv_rows(RECORDS * 20_000, header=False).encode()  # 60,000 rows (~5 MB) per request
    done: list[int] = []

    def busy() -> None:
        done.append(invoke(server, body, "text/csv").status_code)

    threads = [threading.Thread(target=busy) for _ in range(10)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    timings = []
    for _ in range(5):
        started = time.monotonic()
        response = requests.get(f"{server.url}/ping", timeout=2)
        timings.append(time.monotonic() - started)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        assert response.headers["Content-Type"] == "application/json"
    busy_while_pinging = len(done) < len(threads)
    for thread in threads:
        thread.join(timeout=60)
    assert done == [200] * len(threads)
    assert busy_while_pinging, "the workers were not busy during the pings"
    assert max(timings) < 0.5, timings
    request_id = response.headers["X-Request-Id"]
    lines = [json.loads(line) for line in server.log_lines() if request_id in line]
    assert [(line["source"], line["status"], line["level"]) for line in lines] == [("nginx", 200, "info")]
