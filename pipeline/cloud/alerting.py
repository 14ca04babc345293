"""Operational alarms and who hears about them: what a team watches the day after go-live.

The blue/green rollback alarms (``alarms.py``) guard an update; these guard the service:

=========================  ===================================================  ========================
alarm                      watches                                              why this threshold
=========================  ===================================================  ========================
``ops-api-5xx-rate``       API Gateway 5XXError / Count over 5 minutes          1 % by default: the proxy
                                                                                answers client mistakes
                                                                                with 4xx, so 5xx is ours
``ops-api-p99-latency``    API Gateway Latency p99 above the SLO, 3 of 5 min    one slow minute is noise
                                                                                (a cold start); three is
                                                                                a trend
``ops-lambda-errors``      Lambda Errors, 5 minutes                             the handler answers every
                                                                                failure itself: an Error
                                                                                is a crash or a timeout
``ops-lambda-throttles``   Lambda Throttles, 5 minutes                          requests refused for the
                                                                                account's concurrency
``ops-at-max-instances``   Invocations / InvocationsPerInstance at              autoscaling has nothing
                           autoscaling_max (real-time only)                     left to add
=========================  ===================================================  ========================

API Gateway counts its own 429s (usage-plan throttle and quota) in 4XXError with the client's
mistakes, so no CloudWatch metric isolates them; the proxy's JSON log does (see ``log_queries``).
Missing data is "not breaching": an idle API is not an incident. With ``alarms.email`` set, every
alarm notifies an SNS topic (email subscription; AWS sends a confirmation mail first).
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.cloud.alarms import describe, differs
from pipeline.cloud.clients import error_code
from pipeline.cloud.config import DeployConfig
from pipeline.cloud.names import VARIANT_NAME, Names
from pipeline.cloud.progress import Progress

FIVE_MINUTES = 300


def _metric(namespace: str, name: str, dimensions: dict[str, str], stat: str, period: int) -> dict[str, Any]:
    return {
        "Metric": {
            "Namespace": namespace,
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        },
        "Period": period,
        "Stat": stat,
    }


def alarm_specs(names: Names, config: DeployConfig, topic_arn: str | None) -> list[dict[str, Any]]:
    """PutMetricAlarm requests for the operational alarms of this configuration."""
    al = config.alarms
    api = {"ApiName": names.api, "Stage": names.stage}
    function = [{"Name": "FunctionName", "Value": names.function}]
    actions = [topic_arn] if topic_arn else []
    common = {
        "ActionsEnabled": bool(actions),
        "AlarmActions": actions,
        "OKActions": actions,
        "TreatMissingData": "notBreaching",
        "Tags": names.tag_list(),
    }
    specs: list[dict[str, Any]] = [
        {
            "AlarmName": names.operational_alarm("api-5xx-rate"),
            "AlarmDescription": f"{names.api}: more than {al.api_5xx_percent:g} % of requests answered 5xx",
            "Metrics": [
                {
                    "Id": "errors",
                    "MetricStat": _metric("AWS/ApiGateway", "5XXError", api, "Sum", FIVE_MINUTES),
                    "ReturnData": False,
                },
                {
                    "Id": "requests",
                    "MetricStat": _metric("AWS/ApiGateway", "Count", api, "Sum", FIVE_MINUTES),
                    "ReturnData": False,
                },
                {
                    "Id": "rate",
                    "Expression": "IF(requests > 0, 100 * errors / requests, 0)",
                    "Label": "5xx % of requests",
                    "ReturnData": True,
                },
            ],
            "EvaluationPeriods": 1,
            "Threshold": float(al.api_5xx_percent),
            "ComparisonOperator": "GreaterThanThreshold",
        },
        {
            "AlarmName": names.operational_alarm("api-p99-latency"),
            "AlarmDescription": f"{names.api}: p99 latency above the {al.p99_latency_ms} ms SLO",
            "Namespace": "AWS/ApiGateway",
            "MetricName": "Latency",
            "Dimensions": [{"Name": k, "Value": v} for k, v in api.items()],
            "ExtendedStatistic": "p99",
            "Period": 60,
            "EvaluationPeriods": 5,
            "DatapointsToAlarm": 3,
            "Threshold": float(al.p99_latency_ms),
            "ComparisonOperator": "GreaterThanThreshold",
        },
        {
            "AlarmName": names.operational_alarm("lambda-errors"),
            "AlarmDescription": f"{names.function}: invocations that crashed or timed out",
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": function,
            "Statistic": "Sum",
            "Period": FIVE_MINUTES,
            "EvaluationPeriods": 1,
            "Threshold": float(al.lambda_errors),
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
        {
            "AlarmName": names.operational_alarm("lambda-throttles"),
            "AlarmDescription": f"{names.function}: invocations refused for concurrency",
            "Namespace": "AWS/Lambda",
            "MetricName": "Throttles",
            "Dimensions": function,
            "Statistic": "Sum",
            "Period": FIVE_MINUTES,
            "EvaluationPeriods": 1,
            "Threshold": float(al.lambda_throttles),
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
    ]
    if not config.endpoint.serverless:
        endpoint = {"EndpointName": names.endpoint, "VariantName": VARIANT_NAME}
        periods = al.at_max_instances_minutes // 5
        specs.append(
            {
                "AlarmName": names.operational_alarm("at-max-instances"),
                "AlarmDescription": (
                    f"{names.endpoint} has run at autoscaling_max ({config.endpoint.autoscaling_max}) "
                    f"instances for {al.at_max_instances_minutes} minutes"
                ),
                "Metrics": [
                    {
                        "Id": "inv",
                        "MetricStat": _metric("AWS/SageMaker", "Invocations", endpoint, "Sum", FIVE_MINUTES),
                        "ReturnData": False,
                    },
                    {
                        "Id": "per",
                        "MetricStat": _metric(
                            "AWS/SageMaker", "InvocationsPerInstance", endpoint, "Sum", FIVE_MINUTES
                        ),
                        "ReturnData": False,
                    },
                    {
                        "Id": "instances",
                        "Expression": "IF(per > 0, inv / per, 0)",
                        "Label": "instances",
                        "ReturnData": True,
                    },
                ],
                "EvaluationPeriods": periods,
                # Invocations / InvocationsPerInstance is the count only up to rounding.
                "Threshold": config.endpoint.autoscaling_max - 0.5,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            }
        )
    return [{**spec, **common} for spec in specs]


def all_names(names: Names) -> list[str]:
    """Every operational alarm name deploy may create, in either mode."""
    return [
        names.operational_alarm(what)
        for what in (
            "api-5xx-rate",
            "api-p99-latency",
            "lambda-errors",
            "lambda-throttles",
            "at-max-instances",
        )
    ]


def ensure_alarms(cloudwatch: Any, names: Names, config: DeployConfig, topic_arn: str | None) -> list[str]:
    """Create or correct the alarms for this configuration, delete any of ours it no longer has.

    Returns the ARNs of the alarms that exist afterwards (the dashboard shows them).
    """
    wanted = {spec["AlarmName"]: spec for spec in alarm_specs(names, config, topic_arn)}
    existing = {a["AlarmName"]: a for a in describe(cloudwatch, all_names(names))}
    for name, spec in wanted.items():
        if name not in existing or differs(existing[name], spec, _COMPARED):
            cloudwatch.put_metric_alarm(**spec)
    stale = [name for name in existing if name not in wanted]  # e.g. at-max-instances after serverless
    if stale:
        cloudwatch.delete_alarms(AlarmNames=stale)
    return [a["AlarmArn"] for a in describe(cloudwatch, list(wanted))]


_COMPARED = (
    "AlarmDescription", "Namespace", "MetricName", "Dimensions", "ExtendedStatistic", "Statistic", "Period",
    "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData",
    "ActionsEnabled", "AlarmActions", "OKActions", "Metrics",
)  # fmt: skip


def states(cloudwatch: Any, names: Names) -> dict[str, str]:
    """Alarm name -> state (OK, ALARM, INSUFFICIENT_DATA) for the operational alarms that exist."""
    return {a["AlarmName"]: a["StateValue"] for a in describe(cloudwatch, all_names(names))}


def delete_alarms(cloudwatch: Any, names: Names) -> list[str]:
    """Delete the operational alarms; returns the names deleted."""
    found = [a["AlarmName"] for a in describe(cloudwatch, all_names(names))]
    if found:
        cloudwatch.delete_alarms(AlarmNames=found)
    return found


# --- the SNS topic ---------------------------------------------------------------------------------


def topic_policy(names: Names) -> dict[str, Any]:
    """Only CloudWatch alarms of this account may publish to the topic."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CloudWatchAlarmsOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": names.alarm_topic_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": names.account_id}},
            }
        ],
    }


def ensure_topic(sns: Any, names: Names, email: str, progress: Progress) -> str | None:
    """The alarm topic with ``email`` subscribed; None (and no topic) when no email is configured."""
    if not email:
        if delete_topic(sns, names):
            progress.detail(f"alarms.email is empty: deleted topic {names.alarm_topic}")
        return None
    # CreateTopic is idempotent for the same name and attributes: it returns the existing topic.
    arn = sns.create_topic(Name=names.alarm_topic, Tags=names.tag_list())["TopicArn"]
    policy = json.dumps(topic_policy(names))
    if sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("Policy") != policy:
        sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=policy)
    subscriptions = _subscriptions(sns, arn)
    if not any(s["Protocol"] == "email" and s["Endpoint"] == email for s in subscriptions):
        sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=email)
        progress.detail(f"subscribed {email} to {names.alarm_topic} (AWS mails a confirmation link first)")
    for old in subscriptions:
        if old["Endpoint"] != email and old["SubscriptionArn"].startswith("arn:"):
            sns.unsubscribe(SubscriptionArn=old["SubscriptionArn"])
    return arn


def _subscriptions(sns: Any, topic_arn: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        found += page.get("Subscriptions", [])
    return found


def topic_exists(sns: Any, names: Names) -> bool:
    try:
        sns.get_topic_attributes(TopicArn=names.alarm_topic_arn)
        return True
    except Exception as exc:
        if error_code(exc) in ("NotFound", "NotFoundException"):
            return False
        raise


def delete_topic(sns: Any, names: Names) -> bool:
    """Delete the topic and with it its subscriptions; False if it did not exist."""
    if not topic_exists(sns, names):
        return False
    sns.delete_topic(TopicArn=names.alarm_topic_arn)
    return True
