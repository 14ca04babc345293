"""Helpers the local-cloud tests share (a module of its own: test modules must not import conftest)."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.local.settings import LocalSettings, load_local_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = Path(__file__).resolve().parent


def isolated_settings(root: Path, **extra: str) -> LocalSettings:
    """Local-cloud settings with their own run and secrets folders under ``root`` and free ports
    (``extra``: more LOCAL_* settings)."""
    return load_local_settings(
        {
            "LOCAL_RUN_DIR": str(root / "run"),
            "LOCAL_SECRETS_DIR": str(root / "secrets"),
            "LOCAL_GATEWAY_PORT": "0",
            "LOCAL_RUNTIME_PORT": "0",
            "LOCAL_CONTAINER_PORT": "0",
            "LOCAL_CONTAINER_MODE": "host",
            **extra,
        }
    )


def fixture_handler_env() -> dict[str, str]:
    """Lambda environment additions that let the workers import ``local_lambda_fixtures``."""
    return {"PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{TESTS_DIR}"}
