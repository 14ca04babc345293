"""``python -m pipeline status``: what exists, the endpoint's state, and the URL. Read-only calls only."""

from __future__ import annotations

from typing import Any

from pipeline.cloud import (
    alerting,
    apigateway,
    autoscaling,
    dashboard,
    endpoint,
    keys,
    log_groups,
    log_queries,
    resource_group,
    s3,
)
from pipeline.cloud.clients import Clients, error_code
from pipeline.cloud.config import DeployConfig
from pipeline.cloud.names import names_for


def gather(config: DeployConfig, clients: Clients) -> dict[str, Any]:
    """A JSON-friendly description of every resource deploy manages (None where absent)."""
    names = names_for(config, clients.account_id)
    report: dict[str, Any] = {"account": names.account_id, "region": names.region, "prefix": names.prefix}

    report["roles"] = {
        role: _role_exists(clients, role) for role in (names.sagemaker_role, names.lambda_role)
    }
    report["repository"] = _repository(clients, names.repository)
    report["bucket"] = names.bucket if s3.bucket_exists(clients.s3, names.bucket) else None

    described = endpoint.describe_endpoint(clients.sagemaker, names.endpoint)
    if described:
        variants = described.get("ProductionVariants") or [{}]
        report["endpoint"] = {
            "name": names.endpoint,
            "status": described["EndpointStatus"],
            "config": described["EndpointConfigName"],
            "instances": variants[0].get("CurrentInstanceCount"),
            "serverless": variants[0].get("CurrentServerlessConfig"),
            "failure_reason": described.get("FailureReason"),
            "data_capture": _capture(described),
        }
    else:
        report["endpoint"] = None
    target, policy = autoscaling.current(clients.autoscaling, names)
    report["autoscaling"] = (
        {"min": target["MinCapacity"], "max": target["MaxCapacity"], "policy": bool(policy)}
        if target
        else None
    )
    try:
        function = clients.lambda_.get_function(FunctionName=names.function)["Configuration"]
        report["function"] = {
            "name": names.function,
            "state": function.get("State"),
            "timeout": function.get("Timeout"),
            "memory": function.get("MemorySize"),
        }
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        report["function"] = None
    report["log_group"] = bool(log_groups.find(clients.logs, names.function_log_group))

    api = apigateway.find_rest_api(clients.apigateway, names.api)
    report["api"] = {"id": api["id"], "url": names.invoke_url(api["id"]) + "/predict"} if api else None
    plan = apigateway.find_usage_plan(clients.apigateway, names.usage_plan)
    if plan:
        report["usage_plan"] = {
            "id": plan["id"],
            "throttle": plan.get("throttle"),
            "quota": plan.get("quota"),
            "stages": [f"{s['apiId']}:{s['stage']}" for s in plan.get("apiStages", [])],
            "keys": keys.list_keys(clients.apigateway, plan["id"]),
        }
    else:
        report["usage_plan"] = None
    report["resource_group"] = _group(clients, names)
    report["operations"] = {
        "dashboard": dashboard.url(names) if dashboard.exists(clients.cloudwatch, names) else None,
        "alarms": alerting.states(clients.cloudwatch, names),
        "notifications": names.alarm_topic if alerting.topic_exists(clients.sns, names) else None,
        "saved_queries": log_queries.saved(clients.logs, names),
    }
    return report


def _capture(described: dict[str, Any]) -> dict[str, Any] | None:
    capture = described.get("DataCaptureConfig") or {}
    if not capture.get("EnableCapture"):
        return None
    return {
        "destination": capture.get("DestinationS3Uri"),
        "sampling_percentage": capture.get("CurrentSamplingPercentage"),
        "status": capture.get("CaptureStatus"),
    }


def _group(clients: Clients, names: Any) -> dict[str, Any]:
    """The resource group and what carries the project tag, each member named or flagged unknown."""
    members = [
        {"arn": arn, "kind": resource_group.classify(arn, names)}
        for arn in resource_group.members(clients.tagging, names)
    ]
    return {
        "name": names.resource_group,
        "exists": resource_group.find(clients.resource_groups, names) is not None,
        "members": members,
        "unknown": [m["arn"] for m in members if m["kind"] is None],
    }


def _role_exists(clients: Clients, role: str) -> bool:
    try:
        clients.iam.get_role(RoleName=role)
        return True
    except Exception as exc:
        if error_code(exc) == "NoSuchEntity":
            return False
        raise


def _repository(clients: Clients, name: str) -> dict[str, Any] | None:
    try:
        repo = clients.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    except Exception as exc:
        if error_code(exc) == "RepositoryNotFoundException":
            return None
        raise
    images = clients.ecr.describe_images(repositoryName=name).get("imageDetails", [])
    return {"uri": repo["repositoryUri"], "images": len(images)}


def render(report: dict[str, Any]) -> list[str]:
    """Human-readable lines for ``report``."""
    lines = [f"account {report['account']}, region {report['region']}, prefix {report['prefix']}"]

    def row(label: str, value: object) -> None:
        lines.append(f"  {label:<14} {value if value not in (None, False) else 'absent'}")

    row("roles", ", ".join(f"{r} ({'ok' if ok else 'absent'})" for r, ok in report["roles"].items()))
    repo = report["repository"]
    row("repository", repo and f"{repo['uri']} ({repo['images']} images)")
    row("bucket", report["bucket"])
    ep = report["endpoint"]
    if ep:
        size = f"serverless {ep['serverless']}" if ep["serverless"] else f"{ep['instances']} instance(s)"
        detail = f"{ep['name']}: {ep['status']}, {ep['config']}, {size}"
        if ep["failure_reason"]:
            detail += f" - {ep['failure_reason']}"
        row("endpoint", detail)
        capture = ep.get("data_capture")
        if capture:
            row(
                "data capture",
                f"{capture['sampling_percentage']} % to {capture['destination']} ({capture['status']})",
            )
    else:
        row("endpoint", None)
    scaling = report["autoscaling"]
    row("autoscaling", scaling and f"{scaling['min']}-{scaling['max']} instances")
    fn = report["function"]
    row("lambda", fn and f"{fn['name']}: {fn['state']}, {fn['timeout']} s, {fn['memory']} MB")
    row("api", report["api"] and report["api"]["url"])
    plan = report["usage_plan"]
    if plan:
        throttle, quota = plan["throttle"] or {}, plan["quota"] or {}
        row(
            "usage plan",
            f"{throttle.get('rateLimit')} req/s burst {throttle.get('burstLimit')}, "
            f"{quota.get('limit')}/{str(quota.get('period', '')).lower()}, "
            f"stages {', '.join(plan['stages'])}",
        )
        row("api keys", ", ".join(f"{k['name']} ({k['id']})" for k in plan["keys"]) or "none")
    else:
        row("usage plan", None)
    ops = report["operations"]
    row("dashboard", ops["dashboard"])
    if ops["alarms"]:
        firing = sorted(name for name, state in ops["alarms"].items() if state == "ALARM")
        row(
            "alarms",
            f"{len(ops['alarms'])}, "
            + (f"IN ALARM: {', '.join(firing)}" if firing else "none in alarm")
            + f"; notifications: {ops['notifications'] or 'none (alarms.email is empty)'}",
        )
    else:
        row("alarms", None)
    row("log queries", ", ".join(ops["saved_queries"]) or None)
    group = report["resource_group"]
    kinds: dict[str, int] = {}
    for member in group["members"]:
        if member["kind"]:
            kinds[member["kind"]] = kinds.get(member["kind"], 0) + 1
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "no tagged members"
    row("resource group", f"{group['name']}: {summary}" if group["exists"] else None)
    for arn in group["unknown"]:
        lines.append(f"  {'':<14} tagged project={report['prefix']} but not created by deploy: {arn}")
    return lines
