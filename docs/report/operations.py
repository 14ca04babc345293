"""Facts for the report's deployment, cost, resilience and API sections.

Quantities come from ``config/deploy.toml`` (through the project's config loader), prices from
``aws_prices.toml`` (cited list prices, the one place they are typed), IAM actions from the policy
documents ``python -m pipeline deploy`` would create, the error table from the gateway's OpenAPI document
and the example request and answer from the recorded captures. Nothing here is measured in AWS: no AWS
deployment was made, and the text says so where it matters (deployment time).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from . import paths
from .capture import Capture, shown_status
from .diagram import DiagramSettings

PRICES = paths.REPORT_DIR / "aws_prices.toml"
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


def _prices(path: Path = PRICES) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


def deploy_config() -> Any:
    """The deploy configuration as ``python -m pipeline deploy`` reads it."""
    from pipeline.cloud.config import load_config

    return load_config()


def cost_rows(s: DiagramSettings, prices: dict[str, Any] | None = None) -> dict[str, Any]:
    """Monthly endpoint cost at the configured floor, at two instances and at the autoscaling maximum."""
    prices = prices or _prices()
    config = deploy_config()
    hourly = prices["sagemaker"][s.instance_type]["hosting_per_hour"]
    training_hourly = prices["sagemaker"][config.training.instance_type]["training_per_hour"]
    month = prices["hours_per_month"]
    lam = prices["lambda"]
    memory_gb = config.lambda_.memory_mb / 1024
    lambda_per_million = lam["per_million_requests"] + (
        1_000_000 * lam["assumed_call_seconds"] * memory_gb * lam["arm64_per_gb_second"]
    )
    gateway_per_million = prices["api_gateway"]["rest_per_million_requests"]

    def endpoint(count: int) -> str:
        return f"${hourly * month * count:,.2f}"

    rows = [
        {
            "item": f"endpoint, {s.autoscaling_min} x {s.instance_type} all month (the default floor)",
            "cost": endpoint(s.autoscaling_min),
        },
        {"item": f"endpoint, 2 x {s.instance_type} (two Availability Zones)", "cost": endpoint(2)},
        {
            "item": f"endpoint at the autoscaling maximum, {s.autoscaling_max} x {s.instance_type}",
            "cost": endpoint(s.autoscaling_max),
        },
        {
            "item": "per million requests: API Gateway REST + Lambda "
            f"({config.lambda_.memory_mb} MB arm64, {lam['assumed_call_seconds'] * 1000:.0f} ms billed)",
            "cost": f"${gateway_per_million + lambda_per_million:,.2f}",
        },
        {
            "item": f"training job, {config.training.instance_type}, billed per second",
            "cost": f"${training_hourly:.3f} per hour",
        },
    ]
    return {
        "rows": rows,
        "caption": f"Computed from docs/report/aws_prices.toml ({prices['region']} on-demand list prices, "
        f"checked {prices['checked']}, {month} hours a month) and config/deploy.toml. ECR, S3, CloudWatch "
        "logs and the two alarms add cents to a few dollars a month.",
    }


def resilience(s: DiagramSettings) -> dict[str, str]:
    """What one instance costs in availability, and the change that buys two Availability Zones."""
    config = deploy_config()
    count = config.endpoint.initial_instance_count
    return {
        "count": str(count),
        "minimum": str(s.autoscaling_min),
        "set_line": "python -m pipeline deploy --set endpoint.initial_instance_count=2 "
        "--set endpoint.autoscaling_min=2",
        "toml_lines": "initial_instance_count = 2\nautoscaling_min = 2",
    }


def iam_actions() -> list[dict[str, str]]:
    """Per role, the actions and resources of the inline policy deploy attaches (from pipeline.cloud.iam)."""
    from pipeline.cloud.iam import lambda_policy, sagemaker_policy
    from pipeline.cloud.names import names_for

    names = names_for(deploy_config(), EXAMPLE_ACCOUNT)
    roles = []
    for role, document in (
        ("SageMaker execution role (training job and endpoint)", sagemaker_policy(names)),
        ("Lambda proxy role", lambda_policy(names)),
    ):
        actions = []
        for statement in document["Statement"]:
            acts = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            actions.extend(acts)
        roles.append({"role": role, "actions": ", ".join(sorted(set(actions)))})
    return roles


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
