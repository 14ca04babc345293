"""The real serving stack (nginx -> gunicorn -> Flask) on loopback: formats, negotiation, errors, limits."""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
import requests
from inference.engine import load_engine

from pipeline.schema import SCHEMA

from .conftest import RECORD, ServeProcess

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


def probabilities(response: requests.Response) -> list[float]:
    assert response.status_code == 200, response.text
    kind = response.headers["Content-Type"]
    if kind == "application/json":
        return [p["probability"] for p in response.json()["predictions"]]
    if kind == "application/jsonlines":
        return [json.loads(line)["probability"] for line in response.text.splitlines()]
    assert kind == "text/csv"
    return [float(row[1]) for row in csv.reader(io.StringIO(response.text))]


@pytest.fixture(scope="module")
def expected(quick_model_dir: Path, server: ServeProcess) -> tuple[list[float], float]:
    """In-process probabilities for RECORDS from the same artifact and engine, and its threshold."""
    engine = load_engine(quick_model_dir, server.engine)
    assert engine.name == server.engine
    columns = {name: [r[name] for r in RECORDS] for name in SCHEMA.names}
    return [float(p) for p in engine.predict_proba(columns)], engine.threshold


def test_ping_is_200_json(server: ServeProcess) -> None:
    response = requests.get(f"{server.url}/ping", timeout=2)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.elapsed.total_seconds() < 2


@pytest.mark.parametrize(
    ("content_type", "make_body"),
    [
        ("application/json", lambda: orjson.dumps(RECORDS)),
        ("application/json; charset=utf-8", lambda: orjson.dumps({"instances": RECORDS})),
        ("text/csv", lambda: csv_rows(RECORDS, header=False)),
        ("text/csv; charset=utf-8", lambda: csv_rows(RECORDS, header=True)),
        ("application/jsonlines", lambda: b"\n".join(orjson.dumps(r) for r in RECORDS)),
        ("application/x-jsonlines", lambda: b"\n".join(orjson.dumps(r) for r in RECORDS) + b"\n"),
        ("application/json-lines", lambda: b"\n".join(orjson.dumps(r) for r in RECORDS)),
    ],
)
def test_every_input_format_gives_the_in_process_probabilities(
    server: ServeProcess, expected: tuple[list[float], float], content_type: str, make_body
) -> None:
    want, threshold = expected
    response = invoke(server, make_body(), content_type)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["probability"] for p in predictions] == pytest.approx(want, abs=1e-12)
    assert [p["label"] for p in predictions] == [">50K" if p >= threshold else "<=50K" for p in want]


def test_single_records_score_exactly_as_in_a_batch(server: ServeProcess, expected) -> None:
    want, _ = expected
    singles = [probabilities(invoke(server, orjson.dumps(r), "application/json"))[0] for r in RECORDS]
    batch = probabilities(invoke(server, orjson.dumps(RECORDS), "application/json"))
    assert singles == batch
    assert np.allclose(batch, want, rtol=0, atol=1e-12)


def test_single_csv_row_without_trailing_newline(server: ServeProcess, expected) -> None:
    body = csv_rows([RECORD], header=False).rstrip("\n")
    assert probabilities(invoke(server, body, "text/csv")) == pytest.approx(expected[0][:1], abs=1e-12)


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
    server: ServeProcess, expected, accept: str | None, content_type: str
):
    response = invoke(server, orjson.dumps(RECORDS), "application/json", accept)
    assert response.headers["Content-Type"] == content_type
    assert probabilities(response) == pytest.approx(expected[0], abs=1e-12)


def test_csv_output_has_one_label_probability_line_per_record(server: ServeProcess, expected) -> None:
    response = invoke(server, csv_rows(RECORDS, header=False), "text/csv", "text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    want, threshold = expected
    assert [r[0] for r in rows] == [">50K" if p >= threshold else "<=50K" for p in want]
    assert len(rows) == len(RECORDS)


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
    response = invoke(server, orjson.dumps({**RECORD, "age": 777, "sex": "Zorblax-9"}), "application/json")
    assert response.status_code == 400
    assert "777" in response.text  # the caller is told what was wrong with its own value
    line = next(json.loads(x) for x in server.log_lines() if response.headers["X-Request-Id"] in x)
    assert line["error_code"] == "invalid_records" and line["status"] == 400
    assert "777" not in json.dumps(line) and "Zorblax" not in "\n".join(server.log_lines())


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
    body = csv_rows(RECORDS * 7000, header=False).encode()  # 21,000 rows per request
    done: list[int] = []

    def busy() -> None:
        done.append(invoke(server, body, "text/csv").status_code)

    threads = [threading.Thread(target=busy) for _ in range(6)]
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
