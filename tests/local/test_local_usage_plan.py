"""Token bucket and quota arithmetic with an injected clock (HTTP-level checks: test_local_gateway)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from local_clock import FakeClock

from pipeline.local.usage_plan import PlanLimits, QuotaExceeded, Throttled, UsagePlan, period_start


def plan(
    clock: FakeClock, rate: float = 2.0, burst: int = 3, limit: int = 1000, period: str = "DAY"
) -> UsagePlan:
    return UsagePlan(PlanLimits(rate, burst, limit, period), clock)


def test_burst_then_throttle_then_refill_at_the_rate() -> None:
    clock = FakeClock()
    usage = plan(clock, rate=2.0, burst=3)
    for _ in range(3):
        usage.admit("k")
    with pytest.raises(Throttled):
        usage.admit("k")
    clock.advance(0.49)  # 0.98 of a token: still empty
    with pytest.raises(Throttled):
        usage.admit("k")
    clock.advance(0.02)
    usage.admit("k")
    clock.advance(100)  # refill caps at the burst size
    for _ in range(3):
        usage.admit("k")
    with pytest.raises(Throttled):
        usage.admit("k")


def test_buckets_are_per_key() -> None:
    usage = plan(FakeClock(), burst=1)
    usage.admit("a")
    usage.admit("b")
    with pytest.raises(Throttled):
        usage.admit("a")


def test_quota_until_the_period_rolls_and_throttled_requests_do_not_count() -> None:
    clock = FakeClock(datetime(2026, 11, 26, 23, 59, 0, tzinfo=UTC).timestamp())
    usage = plan(clock, rate=1000, burst=2, limit=3)
    usage.admit("k")
    usage.admit("k")
    with pytest.raises(Throttled):
        usage.admit("k")  # not counted
    clock.advance(1)
    usage.admit("k")
    assert usage.remaining_quota("k") == 0
    clock.advance(1)
    with pytest.raises(QuotaExceeded):
        usage.admit("k")
    clock.advance(58)  # 2026-11-27 00:00:00 UTC: a new day
    usage.admit("k")
    assert usage.remaining_quota("k") == 2


@pytest.mark.parametrize(
    ("period", "moment", "start"),
    [
        ("DAY", datetime(2026, 11, 26, 17, 5, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC)),
        ("WEEK", datetime(2026, 11, 26, 17, 5, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)),  # a Monday
        ("MONTH", datetime(2026, 11, 26, 17, 5, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)),
    ],
)
def test_period_starts(period: str, moment: datetime, start: datetime) -> None:
    assert period_start(moment.timestamp(), period) == start


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="YEAR"):
        PlanLimits(1, 1, 1, "YEAR")
    with pytest.raises(ValueError, match="rate"):
        PlanLimits(0, 1, 1, "DAY")
