"""The capacity plan's typed errors; ``pipeline/commands/capacity.py`` maps them to exit statuses."""

from __future__ import annotations


class CapacityError(ValueError):
    """A plan cannot be made; the message says why and what to change."""


class BenchResultError(CapacityError):
    """The benchmark result file is missing, unreadable or lacks what the plan needs."""


class NoPointWithinP99(CapacityError):
    """No measured load point has a p99 latency within the requested target."""


class InstanceTableError(CapacityError):
    """The instance-type table is missing or malformed."""


class UnknownInstanceType(CapacityError):
    """The configured instance type has no row in the instance-type table."""
