"""The cloud subcommands through ``python -m pipeline``'s parser: keys, status, deploy --dry-run, teardown."""

from __future__ import annotations

import dataclasses
import json
import stat
import sys
import types

import pytest
from cloud_stack import Stack
from secret_checks import assert_absent, assert_same_secret, assert_shown_once

from pipeline.cli import main


@pytest.fixture
def deployed(aws, tmp_path, monkeypatch) -> Stack:
    stack = Stack(tmp_path)
    stack.deploy()
    return stack


def test_keys_create_list_revoke(deployed: Stack, tmp_path, capsys) -> None:
    assert main(["keys", "create", "alice"]) == 0
    out = capsys.readouterr().out
    apigw = deployed.client("apigateway")
    [key] = [k for k in apigw.get_api_keys(includeValues=True)["items"] if k["name"] == "adult-income-alice"]
    assert_absent(key["value"], out)
    path = tmp_path / "secrets" / "adult-income-alice.key"
    assert_same_secret(path.read_text().strip(), key["value"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key["id"] in out and str(path) in out

    assert main(["keys", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {row["name"] for row in listed} == {"adult-income-default", "adult-income-alice"}
    assert all(set(row) == {"id", "name", "enabled", "created"} for row in listed)
    assert_absent(key["value"], json.dumps(listed))

    assert main(["keys", "revoke", key["id"]]) == 0
    assert "403" in capsys.readouterr().out
    [plan] = apigw.get_usage_plans()["items"]
    assert [k["name"] for k in apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]] == [
        "adult-income-default"
    ]
    assert key["id"] not in [k["id"] for k in apigw.get_api_keys()["items"]]

    assert main(["keys", "revoke", key["id"]]) == 1
    assert "no key" in capsys.readouterr().err


def test_keys_create_refuses_a_duplicate_name(deployed: Stack, capsys) -> None:
    assert main(["keys", "create", "default"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_keys_before_deploy_say_so(aws, capsys) -> None:
    assert main(["keys", "list"]) == 1
    assert "run `python -m pipeline deploy` first" in capsys.readouterr().err


def test_keys_show_prints_the_value_once_and_writes_no_file(deployed: Stack, tmp_path, capsys) -> None:
    assert main(["keys", "create", "bob", "--show"]) == 0
    out = capsys.readouterr().out
    [key] = [
        k
        for k in deployed.client("apigateway").get_api_keys(includeValues=True)["items"]
        if k["name"] == "adult-income-bob"
    ]
    assert_shown_once(key["value"], out)
    assert not (tmp_path / "secrets" / "adult-income-bob.key").exists()


def test_keys_local_delegates_to_the_local_gateway(monkeypatch, tmp_path, capsys) -> None:
    calls: list[tuple[str, object]] = []
    fake = types.ModuleType("pipeline.local.keys")
    fake.create_key = lambda name: (calls.append(("create", name)), ("lk-1", "local-secret-value-123"))[1]

    @dataclasses.dataclass(frozen=True)
    class Record:  # the local store's record: a dataclass with a hash that must not be printed
        id: str
        name: str
        sha256: str
        created_at: str
        enabled: bool = True

    class KeyStoreError(Exception):
        pass

    def revoke(key_id: str) -> None:
        calls.append(("revoke", key_id))
        if key_id != "lk-1":
            raise KeyStoreError(f"no API key with id {key_id!r}")

    fake.KeyStoreError = KeyStoreError
    fake.list_keys = lambda: (
        calls.append(("list", None)),
        [Record("lk-1", "carol", "ab" * 32, "2026-11-26")],
    )[1]
    fake.revoke_key = revoke
    if "pipeline.local" not in sys.modules:
        try:
            import pipeline.local  # noqa: F401
        except ImportError:
            monkeypatch.setitem(sys.modules, "pipeline.local", types.ModuleType("pipeline.local"))
    monkeypatch.setitem(sys.modules, "pipeline.local.keys", fake)
    monkeypatch.setattr(sys.modules["pipeline.local"], "keys", fake, raising=False)

    assert main(["keys", "create", "carol", "--local"]) == 0
    out = capsys.readouterr().out
    assert_absent("local-secret-value-123", out)
    assert_same_secret(
        (tmp_path / "secrets" / "local-carol.key").read_text().strip(), "local-secret-value-123"
    )
    assert main(["keys", "list", "--local", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"id": "lk-1", "name": "carol", "enabled": True, "created": "2026-11-26"}
    ]
    assert main(["keys", "revoke", "lk-1", "--local"]) == 0
    assert main(["keys", "revoke", "nope", "--local"]) == 1
    assert "no API key with id 'nope'" in capsys.readouterr().err
    assert calls == [("create", "carol"), ("list", None), ("revoke", "lk-1"), ("revoke", "nope")]


def test_status_reports_what_exists(deployed: Stack, capsys) -> None:
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "adult-income: InService" in out
    assert ".execute-api.us-east-1.amazonaws.com/prod/predict" in out
    assert "1-4 instances" in out and "adult-income-default" in out
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["endpoint"]["status"] == "InService"
    assert report["usage_plan"]["stages"] == [f"{report['api']['id']}:prod"]


def test_status_before_deploy_shows_absent(aws, capsys) -> None:
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "endpoint       absent" in out and "api            absent" in out


def test_deploy_dry_run_and_config_errors(aws, capsys) -> None:
    assert main(["deploy", "--dry-run", "--set", "endpoint.mode=serverless"]) == 0
    out = capsys.readouterr().out
    assert "serverless 2048 MB" in out and "no instance autoscaling" in out
    assert main(["deploy", "--dry-run", "--set", "endpoint.mode=gpu", "--set", "api.quota_period=YEAR"]) == 2
    err = capsys.readouterr().err
    assert "endpoint.mode 'gpu' must be 'realtime' or 'serverless'" in err
    assert "api.quota_period 'YEAR' must be DAY, WEEK or MONTH" in err
    assert main(["deploy", "--dry-run", "--set", "nonsense"]) == 2
    assert "section.key=value" in capsys.readouterr().err


def test_teardown_needs_confirmation_when_not_interactive(deployed: Stack, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(isatty=lambda: False))
    assert main(["teardown", "--poll-seconds", "0"]) == 1
    assert "pass --yes" in capsys.readouterr().err
    assert deployed.client("sagemaker").list_endpoints()["Endpoints"]
    assert main(["teardown", "--yes", "--poll-seconds", "0"]) == 0
    assert deployed.client("sagemaker").list_endpoints()["Endpoints"] == []


def test_missing_credentials_give_a_clear_message(monkeypatch, capsys) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing may leave loopback anyway
    assert main(["status"]) == 1
    assert "no AWS credentials found" in capsys.readouterr().err
