"""nginx hides its version and sets security headers on every answer; gunicorn workers drop root where
the platform allows; the local gateway compares API keys in constant time."""

from __future__ import annotations

import ast
import hmac
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.live import RECORD, ServeRun, cmdline
from pipeline.local import keys

REPO_ROOT = Path(__file__).resolve().parents[2]
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}


@pytest.fixture(scope="module")
def server(quick_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeRun]:
    with ServeRun(quick_model_dir, tmp_path_factory.mktemp("hardening"), workers=2) as running:
        yield running


def test_nginx_config_turns_server_tokens_off() -> None:
    assert "server_tokens off;" in (REPO_ROOT / "container" / "nginx.conf").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/ping", None, 200),  # answered by nginx from the ready file
        ("POST", "/invocations", json.dumps(RECORD).encode(), 200),  # the app
        ("POST", "/invocations", b"{bad", 400),  # the app's error
        ("GET", "/nope", None, 404),
        ("POST", "/invocations", b" " * (6 * 1024 * 1024 + 1), 413),  # nginx's own error
    ],
)
def test_every_answer_has_the_security_headers_and_no_version(
    server: ServeRun, method: str, path: str, body: bytes | None, status: int
) -> None:
    response = requests.request(method, server.url + path, data=body, timeout=30)
    assert response.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)
    assert response.headers["Server"] == "nginx"  # no version
    assert len(response.headers["X-Request-Id"].split(",")) == 1


def _uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def _python_readable_by_anyone() -> bool:
    import flask

    def readable(path: str) -> bool:
        current = os.path.realpath(path)
        while True:
            if os.stat(current).st_mode & 0o005 != 0o005:
                return False
            if os.path.dirname(current) == current:
                return True
            current = os.path.dirname(current)

    return readable(os.path.dirname(os.__file__)) and readable(
        os.path.dirname(os.path.dirname(flask.__file__))
    )


def test_gunicorn_workers_drop_root_where_the_platform_allows(server: ServeRun) -> None:
    if os.geteuid() != 0:
        assert all(_uid(p) == os.geteuid() for p in server.gunicorn_workers())
        return
    workers = server.gunicorn_workers()
    master = server.gunicorn_master()
    nginx_workers = [p for p in server.tree() if "nginx: worker" in cmdline(p)]
    assert nginx_workers and all(_uid(p) != 0 for p in nginx_workers)
    assert _uid(master) == 0  # SageMaker runs the container as root; the master loaded the model
    if _python_readable_by_anyone():
        assert workers and all(_uid(p) != 0 for p in workers), [(_uid(p), p) for p in workers]
    else:
        # Here Python lives under a private directory (e.g. pyenv in /root): a worker without root could
        # not import the modules it loads lazily, so serve keeps root and says so.
        events = [json.loads(line) for line in server.stdout().splitlines() if line.startswith("{")]
        assert any(e.get("event") == "workers_keep_root" for e in events)


def test_local_gateway_compares_key_hashes_with_compare_digest_only() -> None:
    tree = ast.parse(Path(keys.__file__).read_text(encoding="utf-8"))
    match = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "match_key")
    calls = [ast.unparse(n.func) for n in ast.walk(match) if isinstance(n, ast.Call)]
    assert "hmac.compare_digest" in calls
    comparisons = [ast.unparse(n) for n in ast.walk(match) if isinstance(n, ast.Compare)]
    assert not [c for c in comparisons if "sha256" in c or "digest" in c], comparisons
    # The gateway authorises through the store view, which uses match_key.
    gateway_source = (REPO_ROOT / "pipeline" / "local" / "gateway.py").read_text(encoding="utf-8")
    assert "self.keys.lookup(api_key)" in gateway_source
    store_source = ast.unparse(
        next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "lookup")
    )
    assert "match_key(" in store_source


def test_key_matching_compares_every_record_whether_or_not_it_matches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = [keys.KeyRecord(f"id{i}", f"k{i}", keys.hash_key(f"value-{i}"), "2026-01-01") for i in range(5)]
    counted: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def counting(a: str, b: str) -> bool:
        counted.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", counting)
    for presented, expected in (("value-0", "id0"), ("value-4", "id4"), ("nope", None)):
        counted.clear()
        found = keys.match_key(presented, records)
        assert (found.id if found else None) == expected
        assert len(counted) == len(records)  # no early exit that would time which record matched
