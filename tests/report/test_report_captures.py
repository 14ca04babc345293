"""Recording the report's terminal sessions from a real local cloud (isolated run dir, secrets and ports)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from report_local_env import isolated_local_env

from docs.report import capture, local_session, paths


@pytest.fixture
def isolated_local_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    env = isolated_local_env(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield tmp_path
    subprocess.run(
        [sys.executable, "-m", "pipeline", "local", "down"],
        cwd=paths.ROOT,
        env={**os.environ, **env},
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_local_sessions_show_keys_refusals_and_throttling(isolated_local_cloud: Path) -> None:
    saved = local_session.record(isolated_local_cloud / "captures")
    names = [p.stem for p in saved]
    assert names == ["00_deploy_plan", "01_local_up", "02_predictions", "03_refusals", "04_throttling"]
    sessions = {p.stem: capture.Capture.from_file(p) for p in saved}
    outputs = {name: "\n".join(s.output for s in c.steps) for name, c in sessions.items()}

    assert "no AWS calls are made" in outputs["00_deploy_plan"]
    assert outputs["02_predictions"].count("[HTTP 200]") == 2
    assert '"probability"' in outputs["02_predictions"]
    assert outputs["03_refusals"].count("[HTTP 403]") == 2
    assert "[HTTP 400]" in outputs["03_refusals"] and "out_of_range" in outputs["03_refusals"]
    counts = dict(
        reversed(line.split())
        for line in outputs["04_throttling"].splitlines()
        if re.fullmatch(r"\s*\d+ \d{3}", line)
    )
    assert int(counts.get("429", 0)) > 0 and int(counts.get("200", 0)) > 0, counts
    assert all(c.where == "LOCAL" for c in sessions.values())

    key = (isolated_local_cloud / "secrets" / "demo.key").read_text().strip()
    for path in saved:
        assert key not in path.read_text(), f"{path.name} contains the API key value"
    # the stack was stopped at the end
    status = subprocess.run(
        [sys.executable, "-m", "pipeline", "local", "status"], cwd=paths.ROOT, capture_output=True, text=True
    )
    assert "not running" in status.stdout
