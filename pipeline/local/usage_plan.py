"""API Gateway usage-plan enforcement: a token bucket per key (rate, burst) and a quota per period.

As in API Gateway, the bucket holds ``burst`` tokens, refills at ``rate`` tokens per second and each
admitted request takes one; an empty bucket means 429 "Too Many Requests". The quota counts admitted
requests per key per calendar period (DAY, WEEK or MONTH, in UTC; the week starts on Monday) and
answers 429 "Limit Exceeded" once ``limit`` is used up, until the next period starts. A throttled
request does not count against the quota.

Time comes from an injectable :class:`Clock`, so tests can roll a quota period without sleeping.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

PERIODS = ("DAY", "WEEK", "MONTH")


class Clock(Protocol):
    """Where the usage plan reads time: wall time for quota periods, a monotonic clock for refills."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clocks."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class Throttled(Exception):
    """The key's token bucket is empty."""


class QuotaExceeded(Exception):
    """The key has used its quota for the current period."""


@dataclass(frozen=True)
class PlanLimits:
    """The usage plan's numbers (from ``[api]`` in the deploy configuration)."""

    rate: float
    burst: int
    quota_limit: int
    quota_period: str

    def __post_init__(self) -> None:
        if self.quota_period not in PERIODS:
            raise ValueError(f"quota period {self.quota_period!r} must be one of {', '.join(PERIODS)}")
        if self.rate <= 0 or self.burst < 1 or self.quota_limit < 1:
            raise ValueError("rate must be > 0, burst >= 1 and quota_limit >= 1")


def period_start(epoch_seconds: float, period: str) -> datetime:
    """The UTC start of the quota period containing ``epoch_seconds``."""
    now = datetime.fromtimestamp(epoch_seconds, UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "DAY":
        return day
    if period == "WEEK":
        return day - timedelta(days=day.weekday())
    if period == "MONTH":
        return day.replace(day=1)
    raise ValueError(f"unknown quota period {period!r}")


class _Bucket:
    def __init__(self, burst: int, now: float) -> None:
        self.tokens = float(burst)
        self.updated = now


class UsagePlan:
    """Admits or refuses requests per API key id; safe to call from many request threads."""

    def __init__(self, limits: PlanLimits, clock: Clock | None = None) -> None:
        self.limits = limits
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._usage: dict[str, tuple[datetime, int]] = {}

    def admit(self, key_id: str) -> None:
        """Take one token and one unit of quota for ``key_id``; raises Throttled or QuotaExceeded."""
        with self._lock:
            now = self.clock.monotonic()
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(self.limits.burst, now)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.limits.burst), bucket.tokens + elapsed * self.limits.rate)
            bucket.updated = now
            if bucket.tokens < 1.0:
                raise Throttled(key_id)

            start = period_start(self.clock.time(), self.limits.quota_period)
            period, used = self._usage.get(key_id, (start, 0))
            if period != start:
                used = 0  # a new period: the quota starts again
            if used >= self.limits.quota_limit:
                raise QuotaExceeded(key_id)
            bucket.tokens -= 1.0
            self._usage[key_id] = (start, used + 1)

    def remaining_quota(self, key_id: str) -> int:
        """Requests ``key_id`` may still make in the current period (what GetUsage would report)."""
        with self._lock:
            start = period_start(self.clock.time(), self.limits.quota_period)
            period, used = self._usage.get(key_id, (start, 0))
            return self.limits.quota_limit - (used if period == start else 0)
