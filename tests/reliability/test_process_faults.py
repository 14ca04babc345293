"""Faults inside the container under load: a worker killed, a graceful stop, nginx or gunicorn dying.

Every test runs the real ``container/serve`` (nginx + gunicorn) on loopback and sends real HTTP.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from bench.live import RECORD, ServeRun, cmdline
from bench.loadgen import run_load
from docs.openapi.contract import assert_documented_error

BODY = json.dumps(RECORD).encode()


def _wait_for_replacement(server: ServeRun, victim: int, expected: int, limit_s: float) -> float:
    """Seconds until ``expected`` workers run again without ``victim`` (fails past ``limit_s``)."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s + 2:
        workers = server.gunicorn_workers()
        if victim not in workers and len(workers) == expected:
            return time.monotonic() - started
        time.sleep(0.005)
    pytest.fail(f"worker {victim} was not replaced within {limit_s + 2:g} s")


def test_kill_9_of_workers_under_load_fails_only_in_flight_requests(
    start_serve, quick_model_dir: Path
) -> None:
    server = start_serve(quick_model_dir, workers=2)
    outcome = {}
    load = threading.Thread(
        target=lambda: outcome.setdefault(
            "result",
            run_load(
                f"{server.url}/invocations",
                BODY,
                requests=2500,
                connections=8,
                timeout_s=15,
                max_duration_s=120,
            ),
        )
    )
    load.start()
    kills, replaced_in = 0, []
    try:
        for _ in range(3):
            time.sleep(0.4)
            victim = server.gunicorn_workers()[0]
            os.kill(victim, signal.SIGKILL)
            kills += 1
            replaced_in.append(_wait_for_replacement(server, victim, expected=2, limit_s=1.0))
    finally:
        load.join(180)
    result = outcome["result"]
    assert not load.is_alive(), "the load run hung"
    assert result.sent == 2500
    # A sync worker handles one request at a time: each kill may fail at most the one it was serving.
    assert result.failures <= kills, result.summary()
    # That request gets nginx's JSON 502, unless the kill landed after the worker had written the
    # response headers (gunicorn writes headers and body separately): then nginx has already relayed
    # the status line and can only close the connection, which the client sees as a body shorter
    # than its Content-Length. Either way it is detectable and nothing hangs.
    assert set(result.connection_errors) <= {"IncompleteRead"}, result.summary()
    for sample in result.error_samples:
        if "status" in sample:
            assert sample["status"] == 502, sample
            assert assert_documented_error(str(sample["body"]))["code"] == "model_server_unavailable"
    assert max(replaced_in) < 1.0, f"replacement took {replaced_in} s"
    # The replacements serve.
    for _ in range(20):
        assert requests.post(f"{server.url}/invocations", data=BODY, timeout=10).status_code == 200


def _post_batch(url: str, records: int, out: list[tuple[int, int]]) -> None:
    body = json.dumps([RECORD] * records)
    response = requests.post(f"{url}/invocations", data=body, timeout=60)
    out.append((response.status_code, len(response.json().get("predictions", []))))


def _trickle(url: str, stop: threading.Event, outcomes: list[tuple[float, str]]) -> None:
    """One new connection per request, until ``stop``: (start time, outcome) for each."""
    host, port = url.removeprefix("http://").split(":")
    while not stop.is_set():
        started = time.monotonic()
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("POST", "/invocations", body=BODY, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            outcomes.append((started, str(response.status)))
        except ConnectionRefusedError:
            outcomes.append((started, "refused"))
            time.sleep(0.01)
        except (OSError, http.client.HTTPException) as exc:
            outcomes.append((started, type(exc).__name__))
        finally:
            conn.close()


def test_sigterm_under_load_finishes_every_accepted_request_and_exits_0(
    start_serve, quick_model_dir: Path
) -> None:
    server = start_serve(quick_model_dir, workers=2, env={"SERVE_SHUTDOWN_GRACE": "20"})
    batches: list[tuple[int, int]] = []
    outcomes: list[tuple[float, str]] = []
    stop = threading.Event()
    batch_threads = [threading.Thread(target=_post_batch, args=(server.url, 8000, batches)) for _ in range(6)]
    tricklers = [threading.Thread(target=_trickle, args=(server.url, stop, outcomes)) for _ in range(4)]
    for thread in [*batch_threads, *tricklers]:
        thread.start()
    time.sleep(0.5)  # the batches are being read, validated or scored; single requests keep arriving
    sigterm_at = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    exit_code = server.wait(30)
    stop.set()
    for thread in [*batch_threads, *tricklers]:
        thread.join(60)
    assert exit_code == 0, server.stderr()[-2000:]
    assert batches == [(200, 8000)] * 6, batches
    before = Counter(outcome for started, outcome in outcomes if started < sigterm_at)
    after = Counter(outcome for started, outcome in outcomes if started >= sigterm_at)
    assert before and set(before) == {"200"}, before
    # Once nginx stops listening a new connection is refused (the platform has stopped routing);
    # no request that reached the server gets an error status.
    assert set(after) <= {"200", "refused", "ConnectionResetError"}, after
    assert "serve_stopped" in server.stdout()


@pytest.mark.parametrize("victim", ["gunicorn", "nginx"])
def test_serve_exits_non_zero_when_nginx_or_gunicorn_dies(
    start_serve, quick_model_dir: Path, victim: str
) -> None:
    server = start_serve(quick_model_dir, workers=2)
    tree = server.tree()
    pid = server.gunicorn_master() if victim == "gunicorn" else server.nginx_master()
    os.kill(pid, signal.SIGKILL)
    exit_code = server.wait(15)
    assert exit_code not in (None, 0), f"serve exit code {exit_code} after {victim} died"
    time.sleep(0.5)
    survivors = [p for p in tree if cmdline(p) and ("gunicorn" in cmdline(p) or "nginx" in cmdline(p))]
    assert survivors == [], f"left running after serve exited: {survivors}"
    events = [json.loads(line) for line in server.stdout().splitlines() if line.startswith("{")]
    exited = [e for e in events if e.get("event") == "serve_child_exited"]
    assert exited and exited[0]["child"] == victim, exited
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/ping", timeout=2)
