"""A small load run in CI: zero errors is the assertion, not timing (the machine is shared).

The full-size run (100,000 + 20,000 requests) is ``bench/load.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.live import RECORD, LocalPath
from bench.loadgen import run_load

BODY = json.dumps(RECORD).encode()
# A usage plan that lets one key send the whole run (the default plan throttles at 50 req/s).
LOAD_PLAN = {"api.throttle_rate": 10000.0, "api.throttle_burst": 5000, "api.quota_limit": 1_000_000}


def test_2000_requests_at_16_connections_straight_to_the_container(
    start_serve, quick_model_dir: Path
) -> None:
    server = start_serve(quick_model_dir, workers=2)
    result = run_load(f"{server.url}/invocations", BODY, requests=2000, connections=16, max_duration_s=240)
    summary = result.summary()
    assert result.sent == 2000, summary
    assert result.ok == 2000, summary
    assert result.failures == 0, summary


def test_500_requests_through_the_local_gateway_path(start_local_path, quick_model_dir: Path) -> None:
    path: LocalPath = start_local_path(quick_model_dir, overrides=LOAD_PLAN)
    result = run_load(
        path.predict_url,
        BODY,
        requests=500,
        connections=16,
        headers={"x-api-key": path.api_key},
        max_duration_s=240,
    )
    summary = result.summary()
    assert result.sent == 500, summary
    assert result.ok == 500, summary
    assert result.failures == 0, summary
