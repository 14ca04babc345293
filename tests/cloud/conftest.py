"""Fixtures for the cloud tests: fake AWS credentials only, moto, and the fake SageMaker runtime."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_aws_env import FAKE_ENV


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Never let a test see real credentials, profiles or endpoint overrides from the machine.

    Key files go to the test's own tmp directory, never to the repository's .secrets/.
    """
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
        "AWS_ENDPOINT_URL_SAGEMAKER",
        "ENDPOINT_NAME",
        "MAX_PAYLOAD_MB",
        "ALLOWED_CONTENT_TYPES",
        "INVOKE_CONNECT_TIMEOUT_S",
        "INVOKE_READ_TIMEOUT_S",
        "INVOKE_MAX_ATTEMPTS",
    ):
        monkeypatch.delenv(name, raising=False)
    for name in list(__import__("os").environ):
        if name.startswith("ADULT_"):
            monkeypatch.delenv(name)
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path / "secrets"))


@pytest.fixture(scope="session")
def fake_runtime_server() -> Iterator[object]:
    """One loopback fake InvokeEndpoint server for the session (stopped at the end)."""
    from fake_sagemaker_runtime import start

    server, runtime = start()
    try:
        yield runtime
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """moto in-process (Lambda without Docker), plus the shims in moto_shims; yields the shims."""
    from moto import mock_aws
    from moto_shims import install

    shims = install(monkeypatch)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield shims
