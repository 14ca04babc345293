"""Operations against moto: dashboard, alarms, SNS notifications, saved log queries, data capture.

Each is created by deploy, shown by status and removed by teardown. The dashboard's metric names are
checked against the names AWS documents (see pipeline/cloud/dashboard.py for the pages).
"""

from __future__ import annotations

import json
import re

import pytest
from cloud_stack import Stack

from pipeline.cloud.config import ConfigError, load_config
from pipeline.cloud.deploy import DeployOptions, plan
from pipeline.cloud.progress import Progress
from pipeline.cloud.status import gather, render
from pipeline.cloud.teardown import teardown

ACCOUNT = "123456789012"
# (namespace, metric) pairs AWS publishes for these services (API Gateway, Lambda and SageMaker
# developer guides' CloudWatch metrics pages).
DOCUMENTED = {
    "AWS/ApiGateway": {"Count", "4XXError", "5XXError", "Latency", "IntegrationLatency"},
    "AWS/Lambda": {"Invocations", "Errors", "Duration", "Throttles", "ConcurrentExecutions"},
    "AWS/SageMaker": {
        "Invocations",
        "InvocationsPerInstance",
        "ModelLatency",
        "OverheadLatency",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
    },
    "/aws/sagemaker/Endpoints": {"CPUUtilization", "MemoryUtilization", "DiskUtilization"},
}
DIMENSIONS = {
    "AWS/ApiGateway": ["ApiName", "adult-income-api", "Stage", "prod"],
    "AWS/Lambda": ["FunctionName", "adult-income-proxy"],
    "AWS/SageMaker": ["EndpointName", "adult-income", "VariantName", "AllTraffic"],
    "/aws/sagemaker/Endpoints": ["EndpointName", "adult-income", "VariantName", "AllTraffic"],
}


@pytest.fixture
def stack(aws, tmp_path) -> Stack:
    return Stack(tmp_path)


def _dashboard(stack: Stack) -> dict:
    return json.loads(stack.client("cloudwatch").get_dashboard(DashboardName="adult-income")["DashboardBody"])


def _metrics(body: dict) -> list[list]:
    rows = []
    for widget in body["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            if isinstance(metric[0], str):
                rows.append([m for m in metric if not isinstance(m, dict)])
    return rows


def _ops_alarms(stack: Stack) -> dict[str, dict]:
    alarms = stack.client("cloudwatch").describe_alarms(AlarmNamePrefix="adult-income-ops-")["MetricAlarms"]
    return {a["AlarmName"]: a for a in alarms}


def test_dashboard_shows_every_documented_metric_with_its_dimensions(stack: Stack) -> None:
    result = stack.deploy()
    body = _dashboard(stack)
    metrics = _metrics(body)
    for namespace, name, *dimensions in metrics:
        assert name in DOCUMENTED[namespace], (namespace, name)
        assert dimensions == DIMENSIONS[namespace], (namespace, name, dimensions)
    shown = {(m[0], m[1]) for m in metrics}
    wanted = {
        ("AWS/ApiGateway", "Count"),
        ("AWS/ApiGateway", "4XXError"),
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/ApiGateway", "Latency"),
        ("AWS/Lambda", "Invocations"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Duration"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/Lambda", "ConcurrentExecutions"),
        ("AWS/SageMaker", "Invocations"),
        ("AWS/SageMaker", "InvocationsPerInstance"),
        ("AWS/SageMaker", "ModelLatency"),
        ("AWS/SageMaker", "OverheadLatency"),
        ("AWS/SageMaker", "Invocation4XXErrors"),
        ("AWS/SageMaker", "Invocation5XXErrors"),
        ("/aws/sagemaker/Endpoints", "CPUUtilization"),
        ("/aws/sagemaker/Endpoints", "MemoryUtilization"),
    }
    assert wanted <= shown
    latency_stats = {
        m[-1]["stat"]
        for w in body["widgets"]
        for m in w["properties"].get("metrics", [])
        if m[:2] == ["AWS/ApiGateway", "Latency"]
    }
    assert latency_stats == {"p50", "p99"}
    [alarm_widget] = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(
        a["AlarmArn"] for a in _ops_alarms(stack).values()
    )
    assert all(w["x"] + w["width"] <= 24 for w in body["widgets"])  # the console's 24-unit grid
    assert result.dashboard_url == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards:name=adult-income"
    )
    assert f"dashboard:  {result.dashboard_url}" in stack.output.getvalue()


def test_serverless_dashboard_and_alarms_leave_out_instances(stack: Stack) -> None:
    stack.deploy(stack.config(endpoint__mode="serverless"))
    assert "/aws/sagemaker/Endpoints" not in {m[0] for m in _metrics(_dashboard(stack))}
    assert set(_ops_alarms(stack)) == {
        "adult-income-ops-api-5xx-rate",
        "adult-income-ops-api-p99-latency",
        "adult-income-ops-lambda-errors",
        "adult-income-ops-lambda-throttles",
    }


def test_alarms_follow_the_configured_thresholds(stack: Stack) -> None:
    stack.deploy(
        stack.config(
            alarms__api_5xx_percent="2.5",
            alarms__p99_latency_ms="250",
            alarms__at_max_instances_minutes="20",
            endpoint__autoscaling_max="6",
        )
    )
    alarms = _ops_alarms(stack)
    rate = alarms["adult-income-ops-api-5xx-rate"]
    assert rate["Threshold"] == 2.5 and rate["ComparisonOperator"] == "GreaterThanThreshold"
    expression = next(m for m in rate["Metrics"] if m.get("ReturnData"))
    assert expression["Expression"] == "IF(requests > 0, 100 * errors / requests, 0)"
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in rate["Metrics"] if "MetricStat" in m} == {
        "5XXError",
        "Count",
    }
    latency = alarms["adult-income-ops-api-p99-latency"]
    assert (latency["ExtendedStatistic"], latency["Threshold"]) == ("p99", 250.0)
    assert (latency["EvaluationPeriods"], latency["DatapointsToAlarm"]) == (5, 3)
    at_max = alarms["adult-income-ops-at-max-instances"]
    assert at_max["Threshold"] == 5.5 and at_max["EvaluationPeriods"] == 4
    assert {a["TreatMissingData"] for a in alarms.values()} == {"notBreaching"}
    assert {a["ActionsEnabled"] for a in alarms.values()} == {False}  # no email: nobody to notify


def test_an_email_gets_a_topic_only_cloudwatch_may_publish_to(stack: Stack) -> None:
    stack.deploy(stack.config(alarms__email="oncall@example.com"))
    sns = stack.client("sns")
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:adult-income-alarms"
    [subscription] = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "oncall@example.com")
    policy = json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    for alarm in _ops_alarms(stack).values():
        assert alarm["ActionsEnabled"] is True
        assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]

    stack.deploy(stack.config(alarms__email=""))  # notifications off again: topic gone, actions off
    assert sns.list_topics()["Topics"] == []
    assert {a["ActionsEnabled"] for a in _ops_alarms(stack).values()} == {False}


def test_logs_insights_queries_are_saved_for_both_log_groups(stack: Stack) -> None:
    stack.deploy()
    found = stack.client("logs").describe_query_definitions(queryDefinitionNamePrefix="adult-income/")[
        "queryDefinitions"
    ]
    by_name = {q["name"]: q for q in found}
    assert set(by_name) == {
        "adult-income/container-errors-by-code",
        "adult-income/container-p99-latency-per-minute",
        "adult-income/container-top-invalid-fields",
        "adult-income/container-unknown-categories",
        "adult-income/proxy-errors-and-latency",
        "adult-income/proxy-upstream-errors",
    }
    assert by_name["adult-income/container-errors-by-code"]["logGroupNames"] == [
        "/aws/sagemaker/Endpoints/adult-income"
    ]
    assert by_name["adult-income/proxy-upstream-errors"]["logGroupNames"] == [
        "/aws/lambda/adult-income-proxy"
    ]
    # The fields the queries name are the ones the container and the proxy actually log.
    assert "invalid_fields" in by_name["adult-income/container-top-invalid-fields"]["queryString"]
    assert "pct(latency_ms, 99)" in by_name["adult-income/container-p99-latency-per-minute"]["queryString"]
    mark = len(stack.calls)
    stack.deploy()
    assert [c for c in stack.mutating_calls(mark) if c[1] == "PutQueryDefinition"] == []


def test_status_prints_the_dashboard_alarm_states_and_queries(stack: Stack) -> None:
    stack.deploy()
    stack.client("cloudwatch").set_alarm_state(
        AlarmName="adult-income-ops-lambda-errors", StateValue="ALARM", StateReason="test"
    )
    report = gather(stack.config(), stack.clients)
    ops = report["operations"]
    assert ops["dashboard"].endswith("#dashboards:name=adult-income")
    assert ops["alarms"]["adult-income-ops-lambda-errors"] == "ALARM"
    assert len(ops["saved_queries"]) == 6
    text = "\n".join(render(report))
    assert "IN ALARM: adult-income-ops-lambda-errors" in text
    assert "notifications: none (alarms.email is empty)" in text


def test_teardown_removes_the_operations_layer(stack: Stack) -> None:
    stack.deploy(stack.config(alarms__email="oncall@example.com"))
    result = teardown(
        stack.config(), stack.clients, Progress(stack.output), lambda found: True, 0, lambda s: None
    )
    assert result.complete, (result.left, result.failures)
    assert stack.client("cloudwatch").list_dashboards()["DashboardEntries"] == []
    assert stack.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert stack.client("sns").list_topics()["Topics"] == []
    assert stack.client("logs").describe_query_definitions()["queryDefinitions"] == []


def test_data_capture_goes_into_the_endpoint_config_and_status(stack: Stack, aws) -> None:
    stack.deploy()
    first = stack.client("sagemaker").describe_endpoint(EndpointName="adult-income")["EndpointConfigName"]
    stack.deploy(stack.config(monitoring__data_capture="true", monitoring__capture_sampling_percentage="20"))
    sm = stack.client("sagemaker")
    current = sm.describe_endpoint(EndpointName="adult-income")["EndpointConfigName"]
    assert current != first  # configs are immutable: capture needs a new one (blue/green update)
    capture = sm.describe_endpoint_config(EndpointConfigName=current)["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 20
    assert capture["DestinationS3Uri"] == f"s3://adult-income-{ACCOUNT}-us-east-1/adult-income/data-capture"
    assert [o["CaptureMode"] for o in capture["CaptureOptions"]] == ["Input", "Output"]
    steps = plan(
        stack.config(monitoring__data_capture="true", monitoring__capture_sampling_percentage="20"),
        DeployOptions(),
    )
    assert any(
        s.startswith("data capture of 20 % of invocations (request and response) to s3://") for s in steps
    )
    report = gather(stack.config(), stack.clients)
    assert report["endpoint"]["data_capture"]["destination"] == capture["DestinationS3Uri"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("alarms.email", "not-an-address", "alarms.email 'not-an-address' is not an email address"),
        ("alarms.api_5xx_percent", "0", "must be a percentage above 0 and at most 100"),
        ("alarms.api_5xx_percent", "150", "must be a percentage above 0 and at most 100"),
        ("alarms.p99_latency_ms", "30000", "alarms.p99_latency_ms (30000) must be between 1 and 29000"),
        ("alarms.at_max_instances_minutes", "7", "must be a multiple of 5"),
        ("alarms.lambda_errors", "0", "alarms.lambda_errors (0) must be between 1 and"),
    ],
)
def test_alarm_settings_out_of_range_are_refused_at_load(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(overrides={key: value})
