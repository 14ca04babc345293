"""A small closed-loop HTTP load generator: N requests over C keep-alive connections, counted exactly.

Each connection is one thread with its own ``http.client`` connection (reopened after an error, as a
real client would). Every outcome is recorded: status counts, connection errors (refused, reset,
timeout) and latencies of successful requests. Used by ``bench/load.py`` and the CI load test.
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    """What a load run saw."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    error_samples: list[dict[str, object]] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def failures(self) -> int:
        return self.non_2xx + sum(self.connection_errors.values())

    def percentile_ms(self, q: float) -> float | None:
        """Latency percentile ``q`` (0-100) of successful requests, in milliseconds."""
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
        return ordered[index] * 1000

    def summary(self) -> dict[str, object]:
        """A JSON-ready summary (counts, p50/p90/p99/max, throughput)."""
        return {
            "requests_sent": self.sent,
            "ok_2xx": self.ok,
            "non_2xx": self.non_2xx,
            "connection_errors": sum(self.connection_errors.values()),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "connection_error_kinds": dict(self.connection_errors),
            "elapsed_s": round(self.elapsed_s, 3),
            "throughput_rps": round(self.sent / self.elapsed_s, 1) if self.elapsed_s else None,
            "latency_ms": {
                "p50": _round(self.percentile_ms(50)),
                "p90": _round(self.percentile_ms(90)),
                "p99": _round(self.percentile_ms(99)),
                "max": _round(self.percentile_ms(100)),
                "mean": _round(statistics.fmean(self.latencies_s) * 1000 if self.latencies_s else None),
            },
            "error_samples": self.error_samples[:10],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def run_load(
    url: str,
    body: bytes,
    *,
    requests: int,
    connections: int,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
    max_duration_s: float = 900.0,
    on_progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """POST ``body`` to ``url`` ``requests`` times over ``connections`` concurrent connections.

    Bounded in count and in time: after ``max_duration_s`` no new request starts.
    """
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"load is only ever sent to loopback, not {parts.hostname!r}")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    all_headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
    result = LoadResult()
    lock = threading.Lock()
    remaining = [requests]
    stop_at = time.monotonic() + max_duration_s

    def take() -> bool:
        with lock:
            if remaining[0] <= 0 or time.monotonic() > stop_at:
                return False
            remaining[0] -= 1
            result.sent += 1
            done = result.sent
        if on_progress is not None and done % 5000 == 0:
            on_progress(done)
        return True

    def worker() -> None:
        conn: http.client.HTTPConnection | None = None
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        errors: Counter[str] = Counter()
        samples: list[dict[str, object]] = []
        while take():
            if conn is None:
                conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout_s)
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=all_headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                errors[type(exc).__name__] += 1
                if len(samples) < 5:
                    samples.append({"error": type(exc).__name__, "message": str(exc)[:200]})
                conn.close()
                conn = None
                continue
            statuses[response.status] += 1
            if 200 <= response.status < 300:
                latencies.append(time.perf_counter() - started)
            elif len(samples) < 5:
                samples.append({"status": response.status, "body": payload[:300].decode(errors="replace")})
            if response.will_close:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            result.latencies_s.extend(latencies)
            result.statuses.update(statuses)
            result.connection_errors.update(errors)
            result.error_samples.extend(samples)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max_duration_s + timeout_s + 5)
    result.elapsed_s = time.perf_counter() - started
    return result
