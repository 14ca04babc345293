"""A clock the test moves by hand, for the usage plan (quota periods and token refills)."""

from __future__ import annotations


class FakeClock:
    """Wall time for quota periods, monotonic time for refills; ``advance`` moves both."""

    def __init__(self, start: float = 1_795_000_000.0) -> None:  # 2026-11-18, mid-day UTC
        self.now = start
        self.mono = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds
