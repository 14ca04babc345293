"""Facts for the report's deployment, cost, resilience and API sections.

Quantities come from ``config/deploy.toml`` (through the project's config loader), costs from
``pipeline.cloud.cost`` (preflight's estimate, priced from ``config/aws-prices.toml``, the one place
prices are typed), IAM actions from the policy
documents ``python -m pipeline deploy`` would create, the error table from the gateway's OpenAPI document
and the example request and answer from the recorded captures. Nothing here is measured in AWS: no AWS
deployment was made, and the text says so where it matters (deployment time).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import paths
from .capture import Capture, shown_status
from .diagram import DiagramSettings

GATEWAY_OPENAPI = paths.ROOT / "docs" / "openapi" / "gateway.json"
EXAMPLE_ACCOUNT = "123456789012"

# What each status of POST /predict means and which hop answers it. Every status the gateway's OpenAPI
# document lists must be explained here (build_error_table fails otherwise).
ERROR_MEANINGS: dict[int, tuple[str, str]] = {
    200: ("API Gateway → Lambda → endpoint", "predictions: one {label, probability} per record"),
    400: ("container", "malformed body or invalid records; details name each record, field and problem"),
    403: ("API Gateway", "no x-api-key header, or a key that is unknown, disabled or not on the plan"),
    406: ("container", "no acceptable response type in Accept (JSON, CSV, JSON Lines are offered)"),
    413: ("API Gateway, Lambda or container", "body over the limit of that hop (10 MiB, 6 MiB, 6 MiB)"),
    415: ("container", "Content-Type other than JSON, CSV or JSON Lines"),
    429: ("API Gateway or Lambda", "usage-plan rate, burst or quota exceeded; SageMaker throttling"),
    500: ("Lambda", "an unexpected proxy failure (a JSON body, never a traceback)"),
    502: ("Lambda", "the container failed or the runtime API could not be reached"),
    503: ("Lambda", "endpoint missing, not InService, or the model not ready yet"),
    504: ("Lambda", "the model did not answer within the Lambda's budget (under the gateway's 29 s)"),
}


def deploy_config(overrides: dict[str, object] | None = None) -> Any:
    """The deploy configuration as ``python -m pipeline deploy`` reads it (plus ``--set`` overrides)."""
    from pipeline.cloud.config import load_config

    return load_config(overrides=overrides)


# The two-Availability-Zone setting the resilience section recommends, as --set overrides.
TWO_ZONES = {"endpoint.initial_instance_count": 2, "endpoint.autoscaling_min": 2}
UNCONFIRMED_MARK = "\u2020"


def cost_rows(s: DiagramSettings) -> dict[str, Any]:
    """The cost table: preflight's estimate (pipeline.cloud.cost) of the configured stack, of the same
    stack on two instances, and its price table's date, sources and unconfirmed prices."""
    from pipeline.cloud import cost

    prices = cost.load_prices()
    config = deploy_config()
    default = cost.estimate(config, prices)
    two_zones_config = deploy_config(TWO_ZONES)
    two_zones = cost.estimate(two_zones_config, prices)
    unconfirmed = set(default.unconfirmed)
    sagemaker_mark = UNCONFIRMED_MARK if "sagemaker" in unconfirmed else ""
    lambda_mark = (
        UNCONFIRMED_MARK if unconfirmed & {"lambda", f"lambda.duration.{default.lambda_architecture}"} else ""
    )
    count = config.endpoint.initial_instance_count
    ms = cost.ASSUMED_REQUEST_SECONDS * 1000
    training = config.training
    rows = [
        {
            "item": f"endpoint, {count} x {s.instance_type} all month (the default)",
            "cost": cost.usd(default.endpoint_monthly) + sagemaker_mark,
        },
        {
            "item": f"endpoint, {two_zones_config.endpoint.initial_instance_count} x {s.instance_type} "
            "all month (two Availability Zones)",
            "cost": cost.usd(two_zones.endpoint_monthly) + sagemaker_mark,
        },
        {
            "item": f"endpoint at the autoscaling maximum, {s.autoscaling_max} x {s.instance_type}",
            "cost": cost.usd(default.endpoint_ceiling_monthly) + sagemaker_mark,
        },
        {
            "item": "per million requests: API Gateway REST + Lambda "
            f"({config.lambda_.memory_mb} MB {default.lambda_architecture}, {ms:.0f} ms billed each)",
            "cost": cost.usd(default.api_per_million + default.lambda_per_million) + lambda_mark,
        },
        {
            "item": f"training job, {training.instance_count} x {training.instance_type}, billed per second",
            "cost": f"{cost.usd(default.training_hourly, 3)} per hour{sagemaker_mark}",
        },
        {
            "item": f"one training job running its whole max runtime ({training.max_runtime_seconds} s)",
            "cost": cost.usd(default.training_run) + sagemaker_mark,
        },
    ]
    caption = (
        "Computed by pipeline/cloud/cost.py (the estimate python -m pipeline preflight prints) from "
        f"config/aws-prices.toml ({prices.region} list prices, taken {prices.taken}) and "
        f"config/deploy.toml. Assumes {'; '.join(default.assumptions)}. ECR, S3, CloudWatch logs and "
        "the two alarms add cents to a few dollars a month."
    )
    if unconfirmed:
        caption += (
            f" {UNCONFIRMED_MARK} Uses a price that could not be confirmed on an AWS page when the table "
            f"was taken (config/aws-prices.toml sections {', '.join(default.unconfirmed)}, from "
            "independent pricing summaries): check the AWS pricing pages before relying on it."
        )
    return {"rows": rows, "caption": caption}


def resilience(s: DiagramSettings) -> dict[str, str]:
    """What one instance costs in availability, and the change that buys two Availability Zones."""
    config = deploy_config()
    count = config.endpoint.initial_instance_count
    return {
        "count": str(count),
        "minimum": str(s.autoscaling_min),
        "set_line": "python -m pipeline deploy "
        + " ".join(f"--set {key}={value}" for key, value in TWO_ZONES.items()),
        "toml_lines": "\n".join(f"{key.split('.', 1)[1]} = {value}" for key, value in TWO_ZONES.items()),
    }


def retention() -> dict[str, int]:
    """How long deploy keeps what piles up, read from the code and config that set it: log groups'
    retention (project.log_retention_days), replaced S3 object versions, untagged ECR images."""
    from pipeline.cloud.ecr import lifecycle_policy
    from pipeline.cloud.s3 import NONCURRENT_DAYS

    (rule,) = json.loads(lifecycle_policy())["rules"]
    return {
        "log_days": deploy_config().project.log_retention_days,
        "noncurrent_days": NONCURRENT_DAYS,
        "untagged_days": rule["selection"]["countNumber"],
    }


def _policies() -> list[tuple[str, dict[str, Any]]]:
    from pipeline.cloud.iam import lambda_policy, sagemaker_policy
    from pipeline.cloud.names import names_for

    names = names_for(deploy_config(), EXAMPLE_ACCOUNT)
    return [
        ("SageMaker execution role (training job and endpoint)", sagemaker_policy(names)),
        ("Lambda proxy role", lambda_policy(names)),
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def unscoped_actions() -> list[str]:
    """Actions the roles' policies grant on ``*`` (AWS offers no resource-level permission for them)."""
    return sorted(
        {
            action
            for _, document in _policies()
            for statement in document["Statement"]
            if statement["Resource"] == "*"
            for action in _actions(statement)
        }
    )


def iam_actions() -> list[dict[str, str]]:
    """Per role, the actions of the inline policy deploy attaches (from pipeline.cloud.iam)."""
    return [
        {
            "role": role,
            "actions": ", ".join(sorted({a for st in document["Statement"] for a in _actions(st)})),
        }
        for role, document in _policies()
    ]


def error_table(openapi: Path = GATEWAY_OPENAPI) -> list[dict[str, str]]:
    """One row per status ``POST /predict`` can answer, from the gateway's OpenAPI document."""
    spec = json.loads(openapi.read_text())
    statuses = sorted(int(code) for code in spec["paths"]["/predict"]["post"]["responses"])
    unexplained = [code for code in statuses if code not in ERROR_MEANINGS]
    if unexplained:
        raise ValueError(
            f"{openapi} lists statuses {unexplained} for POST /predict that the report does not explain: "
            "add them to docs/report/operations.py ERROR_MEANINGS"
        )
    return [
        {"status": str(code), "who": ERROR_MEANINGS[code][0], "meaning": ERROR_MEANINGS[code][1]}
        for code in statuses
    ]


def api_example(captures: list[Capture]) -> dict[str, str]:
    """The single-record request and its recorded answer, from the predictions capture."""
    predictions = next((c for c in captures if c.name == "02_predictions"), None)
    if predictions is None:
        return {}
    step = next(s for s in predictions.steps if shown_status(s) == 200)
    return {
        "request": (paths.REPORT_DIR / "samples" / "record.json").read_text().strip(),
        "response": step.output.rsplit("  [HTTP", 1)[0].strip(),
        "recorded": f"{predictions.where} run, {predictions.recorded_at}",
    }
