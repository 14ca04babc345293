"""CloudWatch log groups: created by deploy with a retention, before anything writes to them.

Lambda and SageMaker create their log groups themselves on first write, without a retention (logs
kept forever). Creating each group first, tagged and with the configured retention, keeps the bill
bounded; for a serverless endpoint it is the only way, since its group appears at the first cold start.
The account-wide /aws/sagemaker/TrainingJobs group is shared with other projects: deploy sets its
retention only when it has none, and teardown leaves it.
"""

from __future__ import annotations

from typing import Any

from pipeline.cloud.clients import error_code
from pipeline.cloud.progress import Progress


def find(logs: Any, name: str) -> dict[str, Any] | None:
    """The log group called ``name``, or None."""
    for group in logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", []):
        if group["logGroupName"] == name:
            return group
    return None


def ensure(logs: Any, name: str, retention_days: int, tags: dict[str, str], progress: Progress) -> None:
    """Create the group (tagged) if missing, and give it the retention."""
    group = find(logs, name)
    if group is None:
        try:
            logs.create_log_group(logGroupName=name, tags=tags)
            progress.detail(f"created log group {name} ({retention_days} days)")
        except Exception as exc:  # the service created it between our look and our create
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
        group = find(logs, name)
    set_retention(logs, name, retention_days, group)


def set_retention(logs: Any, name: str, days: int, group: dict[str, Any] | None = None) -> bool:
    """Set the group's retention unless it already has it; False if the group does not exist."""
    group = group or find(logs, name)
    if group is None:
        return False
    if group.get("retentionInDays") != days:
        logs.put_retention_policy(logGroupName=name, retentionInDays=days)
    return True


def ensure_shared_retention(logs: Any, name: str, days: int, progress: Progress) -> None:
    """Give a group shared with other workloads a retention only if it has none (never shorten one)."""
    group = find(logs, name)
    if group is not None and group.get("retentionInDays") is None:
        logs.put_retention_policy(logGroupName=name, retentionInDays=days)
        progress.detail(f"log group {name} kept logs forever: retention set to {days} days")


def delete(logs: Any, name: str) -> bool:
    """Delete the group; False if it did not exist."""
    try:
        logs.delete_log_group(logGroupName=name)
        return True
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise
