"""On a real local path: the API key never reaches a log, and every hop enforces its size limit with
a clean error (gateway 10 MB, Lambda and InvokeEndpoint 6 MB, container 6 MB)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from bench.live import RECORD, LocalPath
from docs.openapi.contract import GATEWAY_SPEC, assert_documented_error

MIB = 1024 * 1024


def _padded_json(size: int) -> bytes:
    """A JSON body of exactly ``size`` bytes (one record, padded with whitespace)."""
    body = json.dumps(RECORD).encode()
    return body + b" " * (size - len(body))


def _assert_absent(secret: str, name: str, text: str) -> None:
    found = secret in text
    # Never print the secret or the text around it: only where it was found.
    assert not found, f"the API key value appears in {name}"


def test_api_key_value_never_appears_in_any_log(
    local_path: LocalPath, capfd: pytest.CaptureFixture[str]
) -> None:
    key = local_path.api_key
    wrong = "Z" * 39 + "q"  # a plausible key that is not in the store
    headers = {"x-api-key": key}
    assert requests.post(local_path.predict_url, json=RECORD, headers=headers, timeout=30).status_code == 200
    assert requests.get(local_path.health_url, headers=headers, timeout=30).status_code == 200
    assert requests.post(local_path.predict_url, data=b"{bad", headers=headers, timeout=30).status_code == 400
    assert (
        requests.post(
            local_path.predict_url, data=b"x", headers={**headers, "Content-Type": "text/xml"}, timeout=30
        ).status_code
        == 415
    )
    assert (
        requests.post(
            local_path.predict_url, json=RECORD, headers={"x-api-key": wrong}, timeout=30
        ).status_code
        == 403
    )
    assert requests.post(local_path.predict_url, json=RECORD, timeout=30).status_code == 403
    logs = local_path.log_paths()
    assert {"container", "runtime", "gateway"} <= set(logs), logs
    for name, path in logs.items():
        text = path.read_text(encoding="utf-8", errors="replace")
        _assert_absent(key, f"log {name}", text)
        _assert_absent(wrong, f"log {name}", text)
    # The key store holds only a hash of the value, with owner-only permissions.
    store = local_path.key_store
    _assert_absent(key, "the key store", store.read_text())
    assert store.stat().st_mode & 0o077 == 0
    captured = capfd.readouterr()
    _assert_absent(key, "the test's captured output", captured.out + captured.err)
    # The logs did record the requests (so the check above looked at real content).
    gateway_log = logs["gateway"].read_text(errors="replace")
    assert local_path.api_key_id in gateway_log


def test_gateway_refuses_bodies_over_10_mb_with_its_413(local_path: LocalPath) -> None:
    response = requests.post(
        local_path.predict_url,
        data=_padded_json(10 * MIB + 1),
        headers={"x-api-key": local_path.api_key, "Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413
    assert response.json() == {"message": "Request Too Long"}
    assert_documented_error(response.content, response.headers.get("Content-Type"), GATEWAY_SPEC)


@pytest.mark.parametrize("size", [6 * MIB + 1, 8 * MIB], ids=["6MiB+1", "8MiB"])
def test_lambda_hop_refuses_bodies_over_6_mb_with_a_clean_413(local_path: LocalPath, size: int) -> None:
    response = requests.post(
        local_path.predict_url,
        data=_padded_json(size),
        headers={"x-api-key": local_path.api_key, "Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413, response.text[:300]
    assert_documented_error(response.content, response.headers.get("Content-Type"), GATEWAY_SPEC)


def test_invoke_endpoint_refuses_bodies_over_6_mib_with_a_validation_error(local_path: LocalPath) -> None:
    url = f"{local_path.runtime_url}/endpoints/{local_path.endpoint_name}/invocations"
    response = requests.post(
        url, data=_padded_json(6 * MIB + 1), headers={"Content-Type": "application/json"}, timeout=60
    )
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"].startswith("ValidationError")
    assert "6 MB" in response.json()["message"]
    ok = requests.post(
        url, data=_padded_json(6 * MIB), headers={"Content-Type": "application/json"}, timeout=60
    )
    assert ok.status_code == 200, ok.text[:300]


def test_container_accepts_exactly_6_mib_and_refuses_one_byte_more(local_path: LocalPath) -> None:
    url = f"{local_path.container_url}/invocations"
    ok = requests.post(
        url, data=_padded_json(6 * MIB), headers={"Content-Type": "application/json"}, timeout=60
    )
    assert ok.status_code == 200
    response = requests.post(
        url, data=_padded_json(6 * MIB + 1), headers={"Content-Type": "application/json"}, timeout=60
    )
    assert response.status_code == 413
    error = assert_documented_error(response.content, response.headers.get("Content-Type"))
    assert error["code"] == "payload_too_large" and error["details"][0]["limit_bytes"] == 6 * MIB


def test_no_server_reveals_its_software_version(local_path: LocalPath) -> None:
    for url in (f"{local_path.container_url}/ping", local_path.health_url, local_path.gateway_url + "/nope"):
        server = requests.get(url, timeout=10).headers.get("Server", "")
        assert not any(ch.isdigit() for ch in server), (url, server)
        assert "Python" not in server and "Werkzeug" not in server, (url, server)


def test_key_store_path_is_private(local_path: LocalPath) -> None:
    secrets_dir = Path(local_path.key_store).parent
    assert secrets_dir.stat().st_mode & 0o077 == 0
