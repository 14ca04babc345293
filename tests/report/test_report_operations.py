"""The report's cost table, bucket/image/log retention and IAM wording come from the code that sets them."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs.report import narrative, operations, paths
from docs.report.diagram import settings_from_config
from pipeline.cloud import cost
from pipeline.cloud.config import load_config

MARK = operations.UNCONFIRMED_MARK


def test_the_cost_table_is_preflights_estimate_at_the_functions_architecture() -> None:
    table = operations.cost_rows(settings_from_config())
    estimate = cost.estimate(load_config())
    prices = cost.load_prices()
    items = [row["item"] for row in table["rows"]]
    costs = [row["cost"] for row in table["rows"]]
    assert costs[0] == cost.usd(estimate.endpoint_monthly) + MARK
    assert costs[2] == cost.usd(estimate.endpoint_ceiling_monthly) + MARK
    # Two instances: the resilience section's own --set overrides, priced by the same estimate.
    two = cost.estimate(load_config(overrides=operations.TWO_ZONES))
    assert costs[1] == cost.usd(two.endpoint_monthly) + MARK
    assert two.endpoint_monthly == pytest.approx(2 * estimate.endpoint_monthly)
    # Per million requests: API Gateway + the arm64 Lambda, with the one assumed duration.
    memory_gb = load_config().lambda_.memory_mb / 1024
    lambda_per_million = prices.lambda_per_million_requests + (
        memory_gb * cost.ASSUMED_REQUEST_SECONDS * prices.lambda_per_gb_second["arm64"] * 1e6
    )
    assert costs[3] == cost.usd(prices.rest_api_per_million_requests + lambda_per_million) + MARK
    assert f"arm64, {cost.ASSUMED_REQUEST_SECONDS * 1000:.0f} ms billed each" in items[3]
    assert "config/aws-prices.toml" in table["caption"] and prices.taken in table["caption"]
    assert not (paths.REPORT_DIR / "aws_prices.toml").exists()  # one price table


def test_the_report_says_which_prices_are_unconfirmed() -> None:
    table = operations.cost_rows(settings_from_config())
    assert all(row["cost"].endswith(MARK) for row in table["rows"])
    assert "could not be confirmed on an AWS page" in table["caption"]
    assert "sections sagemaker, lambda.duration.arm64" in table["caption"]


def test_a_confirmed_table_carries_no_unconfirmed_mark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    confirmed = tmp_path / "aws-prices.toml"
    confirmed.write_text(cost.PRICES_PATH.read_text().replace("confirmed = false", "confirmed = true"))
    monkeypatch.setattr(cost, "PRICES_PATH", confirmed)
    table = operations.cost_rows(settings_from_config())
    assert not any(MARK in row["cost"] for row in table["rows"])
    assert MARK not in table["caption"] and "confirmed" not in table["caption"]


def test_bucket_image_and_log_retention_are_read_from_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.cloud import ecr, s3

    monkeypatch.setattr(s3, "NONCURRENT_DAYS", 90)
    monkeypatch.setattr(ecr, "_UNTAGGED_DAYS", 3)
    monkeypatch.setenv("ADULT_PROJECT_LOG_RETENTION_DAYS", "30")
    rows = {
        row["name"]: row["role"]
        for row in narrative.services(settings_from_config(), {}, operations.retention())
    }
    assert "versioned; a replaced object version expires after 90 days" in rows["Amazon S3"]
    assert "TLS-only" in rows["Amazon S3"] and "not enabled" not in rows["Amazon S3"]
    assert "Untagged images expire after 3 day(s); tagged ones stay until teardown" in rows["Amazon ECR"]
    assert "with a 30-day retention before anything writes to them" in rows["CloudWatch (logs, alarms)"]


def test_the_iam_point_names_every_action_granted_on_any_resource() -> None:
    unscoped = operations.unscoped_actions()
    assert unscoped == ["cloudwatch:PutMetricData", "ecr:GetAuthorizationToken"]
    points = narrative.security_points(unscoped)
    iam = next(p for p in points if p.startswith("Least-privilege IAM"))
    assert "except cloudwatch:PutMetricData and ecr:GetAuthorizationToken, which AWS cannot" in iam
    assert "aws:SourceAccount" in iam and "aws:SourceArn" in iam
    tls = next(p for p in points if p.startswith("TLS"))
    assert "aws:SecureTransport" in tls


def test_the_built_report_states_the_new_cloud_facts(built_report) -> None:
    text = " ".join(built_report.text.split())
    retention = operations.retention()
    assert "bucket versioning is not enabled" not in text
    assert f"expires after {retention['noncurrent_days']} days" in text
    assert "could not be confirmed on an AWS page" in text
    assert "aws_prices.toml" not in text and "config/aws-prices.toml" in text
