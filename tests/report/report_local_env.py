"""Environment for an isolated local cloud (own run/secrets dirs, free ports, container on the host)."""

from __future__ import annotations

import socket
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_local_env(base: Path) -> dict[str, str]:
    """LOCAL_* settings that keep a test's local cloud apart from a developer's `make demo`.

    The container runs as the same serve/nginx/gunicorn on the host, so these tests need no image
    build (the container tests cover the Docker path).
    """
    return {
        "LOCAL_RUN_DIR": str(base / "run"),
        "LOCAL_SECRETS_DIR": str(base / "secrets"),
        "LOCAL_GATEWAY_PORT": str(_free_port()),
        "LOCAL_RUNTIME_PORT": str(_free_port()),
        "LOCAL_CONTAINER_PORT": str(_free_port()),
        "LOCAL_CONTAINER_MODE": "host",
    }
