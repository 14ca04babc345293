"""Fixtures that start the real serving stack (``bench/live.py``) and stop it at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.live import LocalPath, ServeRun

SLOW_HOOK_DIR = Path(__file__).resolve().parent / "slow_scoring"
OPENAPI_DIR = Path(__file__).resolve().parents[2] / "docs" / "openapi"


@pytest.fixture
def start_serve(tmp_path: Path) -> Iterator[Callable[..., ServeRun]]:
    """Factory: ``start_serve(model_dir, workers=2, env={...}, start=True)``; all stopped at teardown."""
    started: list[ServeRun] = []

    def start(
        model_dir: Path,
        workers: int = 2,
        env: dict[str, str] | None = None,
        prefix: list[str] | None = None,
        run: bool = True,
    ) -> ServeRun:
        server = ServeRun(model_dir, tmp_path / "logs", workers=workers, env=env, prefix=prefix)
        started.append(server)
        if run:
            server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def start_local_path(tmp_path: Path) -> Iterator[Callable[..., LocalPath]]:
    """Factory for the full local path (gateway -> Lambda -> InvokeEndpoint -> container)."""
    started: list[LocalPath] = []

    def start(model_dir: Path, **kwargs: object) -> LocalPath:
        path = LocalPath(model_dir, tmp_path / f"local-{len(started)}", **kwargs)  # type: ignore[arg-type]
        started.append(path)
        return path.__enter__()

    yield start
    for path in started:
        path.stop()
