"""The stack's CloudWatch dashboard: the API, the Lambda proxy and the endpoint on one page.

Metric names and dimensions are the ones AWS publishes (checked against its documentation):

* ``AWS/ApiGateway`` (REST APIs, dimensions ``ApiName`` and ``Stage``): ``Count``, ``4XXError``,
  ``5XXError``, ``Latency`` (ms) - API Gateway developer guide, "Amazon API Gateway dimensions and
  metrics". 429s from usage-plan throttling and quotas are counted in ``4XXError``.
* ``AWS/Lambda`` (dimension ``FunctionName``): ``Invocations``, ``Errors``, ``Duration`` (ms),
  ``Throttles``, ``ConcurrentExecutions`` - Lambda developer guide, "Types of metrics for Lambda".
* ``AWS/SageMaker`` (dimensions ``EndpointName``, ``VariantName``): ``Invocations``,
  ``InvocationsPerInstance``, ``ModelLatency`` and ``OverheadLatency`` (microseconds),
  ``Invocation4XXErrors``, ``Invocation5XXErrors`` - SageMaker developer guide, "Amazon SageMaker AI
  metrics in Amazon CloudWatch".
* ``/aws/sagemaker/Endpoints`` (same dimensions): ``CPUUtilization``, ``MemoryUtilization`` (instances
  only). There is no instance-count metric; it is drawn as ``Invocations / InvocationsPerInstance``.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.cloud.clients import error_code
from pipeline.cloud.config import DeployConfig
from pipeline.cloud.names import VARIANT_NAME, Names

WIDTH, HEIGHT = 8, 6  # a 24-unit wide grid, three widgets a row
# Console host per partition (the dashboard URL that status prints).
CONSOLE = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


def _api(names: Names, metric: str) -> list[Any]:
    return ["AWS/ApiGateway", metric, "ApiName", names.api, "Stage", names.stage]


def _lambda(names: Names, metric: str) -> list[Any]:
    return ["AWS/Lambda", metric, "FunctionName", names.function]


def _endpoint(names: Names, metric: str, namespace: str = "AWS/SageMaker") -> list[Any]:
    return [namespace, metric, "EndpointName", names.endpoint, "VariantName", VARIANT_NAME]


def _metric_widget(names: Names, title: str, metrics: list[list[Any]], stat: str, unit: str = "") -> dict:
    properties: dict[str, Any] = {
        "title": title,
        "region": names.region,
        "metrics": metrics,
        "stat": stat,
        "period": 60,
        "view": "timeSeries",
    }
    if unit:
        properties["yAxis"] = {"left": {"label": unit, "showUnits": False}}
    return {"type": "metric", "properties": properties}


def widgets(names: Names, config: DeployConfig, alarm_arns: list[str]) -> list[dict[str, Any]]:
    """The dashboard's widgets, in reading order (API, Lambda, endpoint, alarms)."""
    p99 = {"stat": "p99"}
    p50 = {"stat": "p50"}
    rows = [
        _metric_widget(
            names,
            "API requests and errors",
            [_api(names, "Count"), _api(names, "4XXError"), _api(names, "5XXError")],
            "Sum",
        ),
        _metric_widget(
            names,
            "API latency p50 / p99 (ms)",
            [[*_api(names, "Latency"), p50], [*_api(names, "Latency"), p99]],
            "p99",
            "ms",
        ),
        _metric_widget(
            names,
            "Lambda invocations, errors, throttles",
            [_lambda(names, "Invocations"), _lambda(names, "Errors"), _lambda(names, "Throttles")],
            "Sum",
        ),
        _metric_widget(names, "Lambda duration p99 (ms)", [[*_lambda(names, "Duration"), p99]], "p99", "ms"),
        _metric_widget(
            names, "Lambda concurrent executions", [_lambda(names, "ConcurrentExecutions")], "Maximum"
        ),
        _metric_widget(
            names,
            "Endpoint invocations and errors",
            [
                _endpoint(names, "Invocations"),
                _endpoint(names, "Invocation4XXErrors"),
                _endpoint(names, "Invocation5XXErrors"),
            ],
            "Sum",
        ),
        _metric_widget(
            names,
            "Model and overhead latency p50 / p99 (microseconds)",
            [
                [*_endpoint(names, "ModelLatency"), p50],
                [*_endpoint(names, "ModelLatency"), p99],
                [*_endpoint(names, "OverheadLatency"), p50],
                [*_endpoint(names, "OverheadLatency"), p99],
            ],
            "p99",
            "microseconds",
        ),
    ]
    if not config.endpoint.serverless:
        rows += [
            _metric_widget(
                names,
                "Invocations per instance, and instances (Invocations / InvocationsPerInstance)",
                [
                    [*_endpoint(names, "Invocations"), {"id": "inv", "visible": False}],
                    [*_endpoint(names, "InvocationsPerInstance"), {"id": "per"}],
                    [{"expression": "IF(per > 0, inv / per, 0)", "label": "instances", "id": "instances"}],
                ],
                "Sum",
            ),
            _metric_widget(
                names,
                "Instance CPU and memory (%)",
                [
                    _endpoint(names, "CPUUtilization", "/aws/sagemaker/Endpoints"),
                    _endpoint(names, "MemoryUtilization", "/aws/sagemaker/Endpoints"),
                ],
                "Average",
                "%",
            ),
        ]
    if alarm_arns:
        rows.append({"type": "alarm", "properties": {"title": "Alarms", "alarms": alarm_arns}})
    for index, widget in enumerate(rows):
        widget.update(x=(index % 3) * WIDTH, y=(index // 3) * HEIGHT, width=WIDTH, height=HEIGHT)
    return rows


def body(names: Names, config: DeployConfig, alarm_arns: list[str]) -> dict[str, Any]:
    """The PutDashboard body."""
    return {"start": "-PT3H", "periodOverride": "inherit", "widgets": widgets(names, config, alarm_arns)}


def ensure(cloudwatch: Any, names: Names, config: DeployConfig, alarm_arns: list[str]) -> str:
    """Create or bring the dashboard up to date; returns 'created', 'updated' or 'unchanged'."""
    wanted = body(names, config, alarm_arns)
    have = _current(cloudwatch, names)
    if have == wanted:
        return "unchanged"
    cloudwatch.put_dashboard(DashboardName=names.dashboard, DashboardBody=json.dumps(wanted))
    return "created" if have is None else "updated"


def _current(cloudwatch: Any, names: Names) -> dict[str, Any] | None:
    try:
        return json.loads(cloudwatch.get_dashboard(DashboardName=names.dashboard)["DashboardBody"])
    except Exception as exc:
        if error_code(exc) in ("ResourceNotFound", "ResourceNotFoundException"):
            return None
        raise


def exists(cloudwatch: Any, names: Names) -> bool:
    return _current(cloudwatch, names) is not None


def delete(cloudwatch: Any, names: Names) -> bool:
    """Delete the dashboard; False if it did not exist."""
    if not exists(cloudwatch, names):
        return False
    cloudwatch.delete_dashboards(DashboardNames=[names.dashboard])
    return True


def url(names: Names) -> str:
    """The dashboard in the CloudWatch console."""
    host = CONSOLE[names.partition]
    return f"https://{names.region}.{host}/cloudwatch/home?region={names.region}#dashboards:name={names.dashboard}"
