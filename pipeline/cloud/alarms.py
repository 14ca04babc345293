"""CloudWatch alarms that SageMaker watches during a blue/green update to roll back automatically."""

from __future__ import annotations

from typing import Any

from pipeline.cloud.names import VARIANT_NAME, Names

# Any server error from the new fleet, or a p99 model latency above 1 s, fails the update.
LATENCY_P99_LIMIT_US = 1_000_000


def alarm_specs(names: Names) -> list[dict[str, Any]]:
    """PutMetricAlarm requests for the rollback alarms."""
    dimensions = [
        {"Name": "EndpointName", "Value": names.endpoint},
        {"Name": "VariantName", "Value": VARIANT_NAME},
    ]
    errors_alarm, latency_alarm = names.rollback_alarms
    common = {
        "Namespace": "AWS/SageMaker",
        "Dimensions": dimensions,
        "Period": 60,
        "TreatMissingData": "notBreaching",
        "ActionsEnabled": False,  # SageMaker reads the alarm state; nothing else should act on it
        "Tags": names.tag_list(),
    }
    return [
        {
            "AlarmName": errors_alarm,
            "AlarmDescription": f"5xx answers from the {names.endpoint} model (blue/green rollback)",
            "MetricName": "Invocation5XXErrors",
            "Statistic": "Sum",
            "EvaluationPeriods": 1,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            **common,
        },
        {
            "AlarmName": latency_alarm,
            "AlarmDescription": f"p99 model latency of {names.endpoint} above 1 s (blue/green rollback)",
            "MetricName": "ModelLatency",
            "ExtendedStatistic": "p99",
            "EvaluationPeriods": 2,
            "Threshold": float(LATENCY_P99_LIMIT_US),
            "ComparisonOperator": "GreaterThanThreshold",
            **common,
        },
    ]


_COMPARED = (
    "Namespace",
    "MetricName",
    "Dimensions",
    "Period",
    "EvaluationPeriods",
    "Threshold",
    "ComparisonOperator",
    "Statistic",
    "ExtendedStatistic",
    "TreatMissingData",
)


def describe(cloudwatch: Any, alarm_names: list[str]) -> list[dict[str, Any]]:
    """DescribeAlarms for these names, every page."""
    found: list[dict[str, Any]] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNames=alarm_names):
        found += page.get("MetricAlarms", [])
    return found


def differs(have: dict[str, Any], want: dict[str, Any], keys: tuple[str, ...]) -> bool:
    """True when an existing alarm's definition differs from a PutMetricAlarm request on ``keys``."""

    # DescribeAlarms answers [] for list fields a request left out (Dimensions of a metric-math alarm).
    def norm(value: Any) -> Any:
        return None if value in (None, [], {}) else value

    return any(norm(have.get(key)) != norm(want.get(key)) for key in keys)


def ensure_alarms(cloudwatch: Any, names: Names) -> list[str]:
    """Create the rollback alarms, or overwrite one whose definition differs; returns their names."""
    current = {a["AlarmName"]: a for a in describe(cloudwatch, list(names.rollback_alarms))}
    for spec in alarm_specs(names):
        have = current.get(spec["AlarmName"])
        if have is None or differs(have, spec, _COMPARED):
            cloudwatch.put_metric_alarm(**spec)
    return list(names.rollback_alarms)


def existing(cloudwatch: Any, names: Names) -> list[str]:
    """Names of the rollback alarms that exist now."""
    return [a["AlarmName"] for a in describe(cloudwatch, list(names.rollback_alarms))]


def delete_alarms(cloudwatch: Any, names: Names) -> list[str]:
    """Delete the rollback alarms; returns the names deleted."""
    found = existing(cloudwatch, names)
    if found:
        cloudwatch.delete_alarms(AlarmNames=found)
    return found
