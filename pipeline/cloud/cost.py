"""What the configured stack costs, from the price table in ``config/aws-prices.toml``.

Only arithmetic on list prices: hourly and monthly (730 h) cost of what runs all the time (a
real-time endpoint), the ceiling when autoscaling reaches its maximum, the per-request cost of what
bills per request (API Gateway, Lambda, a serverless endpoint) and one training run at its maximum
runtime. Free tiers, data transfer, storage, logs and taxes are left out, and the estimate says so.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.cloud.config import DeployConfig
from pipeline.cloud.lambda_function import ARCHITECTURE as LAMBDA_ARCHITECTURE

PRICES_PATH = Path(__file__).resolve().parents[2] / "config" / "aws-prices.toml"
# Assumed time one prediction takes, for the per-request lines. The serving container answers a
# single-row request in milliseconds when warm (bench/); 100 ms leaves room for the Lambda's call to
# SageMaker and is a round figure a reader can scale. Cold starts are not included.
ASSUMED_REQUEST_SECONDS = 0.1
MILLION = 1_000_000


class PriceTableError(ValueError):
    """The price table is missing or malformed."""


@dataclass(frozen=True)
class PriceTable:
    """The parsed price table; instance prices are USD per instance-hour."""

    region: str
    taken: str
    hours_per_month: float
    hosting: dict[str, float]
    training: dict[str, float]
    serverless_per_gb_second: float
    lambda_per_million_requests: float
    lambda_per_gb_second: dict[str, float]  # by architecture: x86_64, arm64
    rest_api_per_million_requests: float
    sources: dict[str, str]  # section (dotted, e.g. "lambda.duration.arm64") -> where its prices are from
    unconfirmed: tuple[str, ...]  # sections whose prices could not be checked on an AWS page


def load_prices(path: Path | None = None) -> PriceTable:
    """Read the price table (default ``config/aws-prices.toml``)."""
    path = path or PRICES_PATH
    try:
        doc = tomllib.loads(path.read_text())
        sm, lm, api = doc["sagemaker"], doc["lambda"], doc["apigateway"]
        sections = dict(_sourced_sections(doc))
        return PriceTable(
            region=doc["meta"]["region"],
            taken=doc["meta"]["taken"],
            hours_per_month=float(doc["meta"]["hours_per_month"]),
            hosting={k: float(v) for k, v in sm["hosting"].items()},
            training={k: float(v) for k, v in sm["training"].items()},
            serverless_per_gb_second=float(sm["serverless"]["per_gb_second"]),
            lambda_per_million_requests=float(lm["per_million_requests"]),
            lambda_per_gb_second={arch: float(row["per_gb_second"]) for arch, row in lm["duration"].items()},
            rest_api_per_million_requests=float(api["rest_per_million_requests"]),
            sources={name: section["source"] for name, section in sections.items()},
            unconfirmed=tuple(name for name, section in sections.items() if not section["confirmed"]),
        )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise PriceTableError(f"price table {path} is unreadable: {exc!r}") from None


def _sourced_sections(table: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every table that names a source, by dotted name; each must also say whether it was confirmed."""
    for key, value in table.items():
        if not isinstance(value, dict):
            continue
        name = f"{prefix}{key}"
        if "source" in value:
            if not isinstance(value.get("confirmed"), bool):
                raise KeyError(f"{name}.confirmed (true or false) is missing")
            yield name, value
        yield from _sourced_sections(value, f"{name}.")


@dataclass(frozen=True)
class CostEstimate:
    """The estimate for one configuration; ``None`` where the table has no price."""

    region: str
    price_region: str
    taken: str
    mode: str
    endpoint_instance_type: str
    # Real-time endpoint: what runs all the time, and the ceiling at autoscaling_max.
    endpoint_hourly: float | None
    endpoint_monthly: float | None
    endpoint_ceiling_hourly: float | None
    endpoint_ceiling_monthly: float | None
    # Per million requests, at ASSUMED_REQUEST_SECONDS each; the Lambda at its architecture's price.
    serverless_per_million: float | None
    lambda_architecture: str
    lambda_per_million: float
    api_per_million: float
    # Training: per hour of the configured instances, and one job running its whole max_runtime_seconds.
    training_instance_type: str
    training_hourly: float | None
    training_run: float | None
    assumptions: tuple[str, ...]
    missing: tuple[str, ...] = field(default_factory=tuple)
    unconfirmed: tuple[str, ...] = field(default_factory=tuple)

    @property
    def requests_per_million(self) -> float:
        """What a million predictions cost on top of the always-on part."""
        return self.api_per_million + self.lambda_per_million + (self.serverless_per_million or 0.0)

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["requests_per_million"] = self.requests_per_million
        for key in ("assumptions", "missing", "unconfirmed"):
            data[key] = list(data[key])
        return data


def estimate(config: DeployConfig, prices: PriceTable | None = None) -> CostEstimate:
    """The cost estimate of ``config`` from ``prices`` (default: the repository's table)."""
    prices = prices or load_prices()
    ep, tr, lm = config.endpoint, config.training, config.lambda_
    hours = prices.hours_per_month
    missing: list[str] = []

    endpoint_hourly = ceiling_hourly = serverless_per_million = None
    if ep.serverless:
        memory_gb = ep.serverless_memory_mb / 1024
        serverless_per_million = (
            memory_gb * ASSUMED_REQUEST_SECONDS * prices.serverless_per_gb_second * MILLION
        )
    else:
        price = prices.hosting.get(ep.instance_type)
        if price is None:
            missing.append(f"{ep.instance_type} (real-time inference)")
        else:
            endpoint_hourly = price * ep.initial_instance_count
            ceiling_hourly = price * ep.autoscaling_max

    training_price = prices.training.get(tr.instance_type)
    training_hourly = training_run = None
    if training_price is None:
        missing.append(f"{tr.instance_type} (training)")
    else:
        training_hourly = training_price * tr.instance_count
        training_run = training_hourly * tr.max_runtime_seconds / 3600

    lambda_gb_second = prices.lambda_per_gb_second.get(LAMBDA_ARCHITECTURE)
    if lambda_gb_second is None:
        raise PriceTableError(f"the price table has no Lambda duration price for {LAMBDA_ARCHITECTURE}")
    lambda_gb_seconds = lm.memory_mb / 1024 * ASSUMED_REQUEST_SECONDS
    lambda_per_million = prices.lambda_per_million_requests + lambda_gb_seconds * lambda_gb_second * MILLION

    assumptions = [
        f"{ASSUMED_REQUEST_SECONDS * 1000:.0f} ms per request in Lambda ({LAMBDA_ARCHITECTURE})"
        + (" and in the serverless endpoint" if ep.serverless else ""),
        "on-demand list prices; free tiers, data transfer, storage, logs and taxes not included",
        f"a month is {hours:g} hours",
    ]
    if ep.serverless:
        assumptions.append("serverless data-processing charges not included")
    return CostEstimate(
        region=config.project.region,
        price_region=prices.region,
        taken=prices.taken,
        mode=ep.mode,
        endpoint_instance_type=ep.instance_type,
        endpoint_hourly=endpoint_hourly,
        endpoint_monthly=None if endpoint_hourly is None else endpoint_hourly * hours,
        endpoint_ceiling_hourly=ceiling_hourly,
        endpoint_ceiling_monthly=None if ceiling_hourly is None else ceiling_hourly * hours,
        serverless_per_million=serverless_per_million,
        lambda_architecture=LAMBDA_ARCHITECTURE,
        lambda_per_million=lambda_per_million,
        api_per_million=prices.rest_api_per_million_requests,
        training_instance_type=tr.instance_type,
        training_hourly=training_hourly,
        training_run=training_run,
        assumptions=tuple(assumptions),
        missing=tuple(missing),
        unconfirmed=prices.unconfirmed,
    )


def hourly_cost(config: DeployConfig, prices: PriceTable | None = None) -> float | None:
    """USD per hour of what runs all the time (the real-time endpoint); 0 for serverless.

    ``None`` when the endpoint's instance type has no price in the table. For deploy's summary line.
    """
    if config.endpoint.serverless:
        return 0.0
    return estimate(config, prices).endpoint_hourly


def usd(value: float | None, digits: int = 2) -> str:
    """``$1,234.56``; small amounts keep enough digits to be non-zero; None -> 'no price in table'."""
    if value is None:
        return "no price in table"
    if 0 < abs(value) < 1 and digits == 2:
        digits = 4
    return f"${value:,.{digits}f}"


def render(cost: CostEstimate) -> list[str]:
    """The estimate as lines for people."""
    lines = []
    if cost.region != cost.price_region:
        lines.append(f"prices are {cost.price_region} list prices; {cost.region} differs (estimate only)")
    if cost.mode == "serverless":
        lines.append(
            "endpoint (serverless): no cost while idle; "
            f"{usd(cost.serverless_per_million)} per million requests"
        )
    elif cost.endpoint_hourly is None:
        lines.append(f"endpoint {cost.endpoint_instance_type}: no price in table")
    else:
        lines.append(
            f"endpoint {cost.endpoint_instance_type}: {usd(cost.endpoint_hourly)}/hour, "
            f"{usd(cost.endpoint_monthly)}/month; "
            f"at autoscaling max {usd(cost.endpoint_ceiling_hourly)}/hour, "
            f"{usd(cost.endpoint_ceiling_monthly)}/month"
        )
    lines.append(
        f"per million requests: API Gateway {usd(cost.api_per_million)} "
        f"+ Lambda {usd(cost.lambda_per_million)}"
        + (f" + endpoint {usd(cost.serverless_per_million)}" if cost.mode == "serverless" else "")
        + f" = {usd(cost.requests_per_million)}"
    )
    training = usd(cost.training_run)
    lines.append(f"one training run at its max runtime ({cost.training_instance_type}): {training}")
    lines.append(f"assumes: {'; '.join(cost.assumptions)}; prices taken {cost.taken}")
    if cost.unconfirmed:
        lines.append(
            f"unconfirmed prices ({', '.join(cost.unconfirmed)}): "
            "see config/aws-prices.toml before relying on them"
        )
    return lines
