"""A live local path (gateway -> Lambda -> InvokeEndpoint -> container) shared by a test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.live import LocalPath


@pytest.fixture(scope="module")
def local_path(quick_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPath]:
    with LocalPath(quick_model_dir, tmp_path_factory.mktemp("security-local")) as path:
        yield path
