"""The capacity plan: measured throughput -> instances, autoscaling target, throttle, concurrency, cost.

The arithmetic, in order (every factor is a named constant below, with its reason):

1. per-vCPU throughput = requests/s of the chosen load point / CPUs of the machine it ran on. The point
   is the highest-throughput one whose p99 is within ``--p99-ms`` (any point without a target).
2. one instance's ceiling = per-vCPU throughput x the instance type's vCPUs. The serving stack runs one
   worker per vCPU, so throughput scales with vCPUs while each worker's latency stays what was measured.
3. sustainable per instance = ceiling x ``UTILISATION``; instances for the peak = ceil(peak / that).
4. autoscaling target = floor(60 x sustainable x ``SCALE_OUT_HEADROOM``) invocations per instance per
   minute (``SageMakerVariantInvocationsPerInstance`` is a per-minute metric). The product of the two
   factors, 0.49, is AWS's recommended starting ``SAFETY_FACTOR`` of 0.5 in its load-testing guidance
   ("SageMakerVariantInvocationsPerInstance = (MAX_RPS * SAFETY_FACTOR) * 60"), rounded down.
5. API Gateway usage-plan rate = the peak, burst = ``BURST_SECONDS`` x the rate; Lambda concurrency by
   Little's law = requests/s x seconds per request.
6. monthly cost with the peak sustained for a whole month (an upper bound), from
   ``config/aws-prices.toml`` through ``pipeline.cloud.cost``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from pipeline.capacity.instances import InstanceType, load_instance_types, lookup
from pipeline.capacity.measurement import LoadPoint, Measurement, read_measurement
from pipeline.cloud import cost
from pipeline.cloud.config import DeployConfig, EndpointConfig

# Plan on 70 % of the measured ceiling: the ceiling was measured with every CPU busy, where queueing
# grows fast (at 32 connections the same stack served no more but its p99 was 5x that at 8); 70 %
# keeps an instance in the region where p99 stays near the measured point, and leaves room for what
# the loopback benchmark did not see (TLS-free loopback, noisy shared machine, a different CPU model).
UTILISATION = 0.7
# Target tracking acts on one-minute metrics and a new SageMaker instance takes minutes to come into
# service; scaling must start while instances still have headroom for the traffic that arrives
# meanwhile: 70 % of the sustainable rate, i.e. a 43 % rise in traffic can be absorbed during a scale-out.
SCALE_OUT_HEADROOM = 0.7
# SageMaker spreads an endpoint's instances across Availability Zones and "strongly" recommends more
# than one instance per production endpoint; one instance is a single point of failure.
AVAILABILITY_MIN_INSTANCES = 2
# The usage plan's bucket holds this many seconds of the planned rate (the shipped defaults, 50/s with a
# burst of 100, have the same 2:1 ratio): a client's short spike passes and the fleet's headroom absorbs it.
BURST_SECONDS = 2.0
# Account-level defaults the plan is checked against (each raisable through Service Quotas).
API_ACCOUNT_RATE_RPS = 10_000  # API Gateway requests/s per account and region
API_ACCOUNT_BURST = 5_000
LAMBDA_ACCOUNT_CONCURRENCY = 1_000  # concurrent executions per region
LAMBDA_UNRESERVED_MINIMUM = 100  # Lambda keeps this many unreserved: reservations stop 100 below the limit
SERVERLESS_MAX_CONCURRENCY = 200  # MaxConcurrency of one serverless endpoint
SECONDS_PER_MINUTE = 60

SOURCES = {
    "autoscaling target formula and safety factor 0.5": (
        "https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-loadtest.html"
    ),
    "multiple instances across Availability Zones": (
        "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-best-practices.html"
    ),
    "API Gateway account throttle 10,000/s, burst 5,000": (
        "https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-throttling.html"
    ),
    "Lambda concurrent executions 1,000 per region": "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html",
    "serverless MaxConcurrency 1-200": "https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html",
}
# Tolerance for float noise before rounding (60 x 1400.0 x 0.7 is 58800.000000000007, not 58800).
_EPSILON = 1e-9


@dataclass(frozen=True)
class Throttle:
    """An API Gateway token bucket: ``rate`` requests/s refill, ``burst`` requests capacity."""

    rate: float
    burst: int


@dataclass(frozen=True)
class MonthlyCost:
    """USD per month; ``endpoint`` is None when the price table has no price for it."""

    endpoint: float | None
    gateway_and_lambda: float

    @property
    def total(self) -> float | None:
        return None if self.endpoint is None else self.endpoint + self.gateway_and_lambda


@dataclass(frozen=True)
class CapacityPlan:
    """Everything ``python -m pipeline capacity`` prints; see the module docstring for the arithmetic."""

    peak_rps: float
    p99_target_ms: float | None
    measurement: Measurement
    point: LoadPoint
    instance: InstanceType
    per_vcpu_rps: float
    instance_ceiling_rps: float
    sustainable_rps: float
    instances_for_peak: int
    recommended_instances: int
    target_per_minute: int
    instances_at_target: int
    configured_target: int
    configured_min: int
    configured_max: int
    throttle: Throttle
    configured_throttle: Throttle
    request_seconds: float
    lambda_concurrency: int
    lambda_reserved: int
    serverless_memory_mb: int
    serverless_concurrency: int
    configured_serverless_concurrency: int
    hours_per_month: float
    requests_per_month: float
    hourly_price: float | None
    realtime: MonthlyCost
    serverless: MonthlyCost
    price_region: str
    price_taken: str
    region: str
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def serverless_feasible(self) -> bool:
        """One serverless endpoint can hold the concurrency the peak needs."""
        return self.serverless_concurrency <= SERVERLESS_MAX_CONCURRENCY

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (``--json``)."""
        data = dataclasses.asdict(self)
        data["measurement"]["points"] = [dataclasses.asdict(p) for p in self.measurement.points]
        data["realtime"]["total"] = self.realtime.total
        data["serverless"]["total"] = self.serverless.total
        data["serverless_feasible"] = self.serverless_feasible
        data["warnings"] = list(self.warnings)
        data["factors"] = {
            "utilisation": UTILISATION,
            "scale_out_headroom": SCALE_OUT_HEADROOM,
            "availability_min_instances": AVAILABILITY_MIN_INSTANCES,
            "burst_seconds": BURST_SECONDS,
        }
        data["sources"] = dict(SOURCES)
        return data


def _floor(value: float) -> int:
    return math.floor(value + _EPSILON)


def _ceil(value: float) -> int:
    return math.ceil(value - _EPSILON)


def sustainable_rps(measurement: Measurement, point: LoadPoint, instance: InstanceType) -> float:
    """Requests/s one ``instance`` sustains at ``UTILISATION`` of its measured-and-scaled ceiling."""
    return point.rps / measurement.cpus * instance.vcpus * UTILISATION


def autoscaling_target(sustainable: float) -> int:
    """``SageMakerVariantInvocationsPerInstance`` target (per minute) for a sustainable rate (per second)."""
    return max(1, _floor(SECONDS_PER_MINUTE * sustainable * SCALE_OUT_HEADROOM))


def derived_default_target(
    measurement: Measurement | None = None, instance_types: dict[str, InstanceType] | None = None
) -> int:
    """The target for the default endpoint instance type at the highest measured throughput.

    ``config/deploy.toml`` and ``EndpointConfig`` carry this value; a test keeps them equal.
    """
    measurement = measurement or read_measurement()
    instance = lookup(EndpointConfig().instance_type, instance_types or load_instance_types())
    return autoscaling_target(sustainable_rps(measurement, measurement.choose(None), instance))


def make_plan(
    peak_rps: float,
    config: DeployConfig,
    *,
    p99_ms: float | None = None,
    measurement: Measurement | None = None,
    instance_types: dict[str, InstanceType] | None = None,
    prices: cost.PriceTable | None = None,
) -> CapacityPlan:
    """The plan for ``peak_rps`` requests/s on ``config``'s endpoint instance type."""
    if not (math.isfinite(peak_rps) and peak_rps > 0):
        raise ValueError(f"peak_rps must be a positive number of requests per second, got {peak_rps!r}")
    measurement = measurement or read_measurement()
    instance = lookup(config.endpoint.instance_type, instance_types or load_instance_types())
    prices = prices or cost.load_prices()
    point = measurement.choose(p99_ms)
    ep, api = config.endpoint, config.api

    per_vcpu = point.rps / measurement.cpus
    sustainable = sustainable_rps(measurement, point, instance)
    target = autoscaling_target(sustainable)
    instances_for_peak = max(1, _ceil(peak_rps / sustainable))
    recommended = max(AVAILABILITY_MIN_INSTANCES, instances_for_peak)
    at_target = max(recommended, _ceil(peak_rps * SECONDS_PER_MINUTE / target))

    rate = float(_ceil(peak_rps))
    throttle = Throttle(rate=rate, burst=min(API_ACCOUNT_BURST, _ceil(rate * BURST_SECONDS)))
    seconds = cost.ASSUMED_REQUEST_SECONDS
    concurrency = max(1, _ceil(peak_rps * seconds))
    reserved = max(1, _ceil(peak_rps * BURST_SECONDS * seconds))

    hours = prices.hours_per_month
    requests = peak_rps * 3600 * hours
    realtime_estimate = cost.estimate(
        config.replace(endpoint=dataclasses.replace(ep, mode="realtime")), prices
    )
    serverless_estimate = cost.estimate(
        config.replace(endpoint=dataclasses.replace(ep, mode="serverless")), prices
    )
    per_request = (realtime_estimate.api_per_million + realtime_estimate.lambda_per_million) / cost.MILLION
    hourly = prices.hosting.get(instance.name)
    realtime = MonthlyCost(
        endpoint=None if hourly is None else hourly * at_target * hours,
        gateway_and_lambda=requests * per_request,
    )
    serverless = MonthlyCost(
        endpoint=requests * (serverless_estimate.serverless_per_million or 0.0) / cost.MILLION,
        gateway_and_lambda=requests * per_request,
    )
    plan = CapacityPlan(
        peak_rps=peak_rps,
        p99_target_ms=p99_ms,
        measurement=measurement,
        point=point,
        instance=instance,
        per_vcpu_rps=per_vcpu,
        instance_ceiling_rps=per_vcpu * instance.vcpus,
        sustainable_rps=sustainable,
        instances_for_peak=instances_for_peak,
        recommended_instances=recommended,
        target_per_minute=target,
        instances_at_target=at_target,
        configured_target=ep.autoscaling_target_invocations,
        configured_min=ep.autoscaling_min,
        configured_max=ep.autoscaling_max,
        throttle=throttle,
        configured_throttle=Throttle(rate=api.throttle_rate, burst=api.throttle_burst),
        request_seconds=seconds,
        lambda_concurrency=concurrency,
        lambda_reserved=reserved,
        serverless_memory_mb=ep.serverless_memory_mb,
        serverless_concurrency=concurrency,
        configured_serverless_concurrency=ep.serverless_max_concurrency,
        hours_per_month=hours,
        requests_per_month=requests,
        hourly_price=hourly,
        realtime=realtime,
        serverless=serverless,
        price_region=prices.region,
        price_taken=prices.taken,
        region=config.project.region,
    )
    return dataclasses.replace(plan, warnings=tuple(_warnings(plan, prices)))


def _warnings(plan: CapacityPlan, prices: cost.PriceTable) -> list[str]:
    """What in the plan or the current configuration needs attention, one line each."""
    out = []
    if plan.instance.burstable:
        out.append(
            f"{plan.instance.name} is burstable: it sustains full CPU only while it has CPU credits, so "
            "these figures are an upper bound; use a non-burstable type (m5, c5, c6i) for steady load"
        )
    if plan.configured_target > plan.target_per_minute:
        out.append(
            f"endpoint.autoscaling_target_invocations is {plan.configured_target:,}: above this plan's "
            f"{plan.target_per_minute:,}, scale-out would start too late for the planned p99; set "
            f"{plan.target_per_minute}"
        )
    elif plan.configured_target < plan.target_per_minute:
        out.append(
            f"endpoint.autoscaling_target_invocations is {plan.configured_target:,}: below this plan's "
            f"{plan.target_per_minute:,}, the fleet scales out earlier (and costs more) than needed; set "
            f"{plan.target_per_minute}"
        )
    if plan.configured_max < plan.instances_at_target:
        out.append(
            f"endpoint.autoscaling_max is {plan.configured_max}: target tracking would need "
            f"{plan.instances_at_target} at this peak"
        )
    if plan.configured_min < AVAILABILITY_MIN_INSTANCES:
        out.append(
            f"endpoint.autoscaling_min is {plan.configured_min}: one instance is a single point of failure; "
            f"use {AVAILABILITY_MIN_INSTANCES} or more in production"
        )
    if plan.configured_throttle.rate < plan.throttle.rate:
        out.append(
            f"api.throttle_rate is {plan.configured_throttle.rate:g}/s: a key sending the peak would be "
            f"refused (429) above that; set {plan.throttle.rate:g}"
        )
    if plan.throttle.rate > API_ACCOUNT_RATE_RPS:
        out.append(
            f"the peak exceeds API Gateway's default account throttle of {API_ACCOUNT_RATE_RPS:,}/s per "
            "region: request a quota increase"
        )
    if plan.throttle.burst == API_ACCOUNT_BURST:
        out.append(f"the burst is capped at the account's default burst of {API_ACCOUNT_BURST:,}")
    if plan.lambda_reserved > LAMBDA_ACCOUNT_CONCURRENCY - LAMBDA_UNRESERVED_MINIMUM:
        out.append(
            f"Lambda needs {plan.lambda_reserved:,} reserved concurrency; the default account limit is "
            f"{LAMBDA_ACCOUNT_CONCURRENCY:,} per region with {LAMBDA_UNRESERVED_MINIMUM} kept unreserved: "
            "request a quota increase"
        )
    if not plan.serverless_feasible:
        out.append(
            f"serverless cannot serve this peak on one endpoint: it needs {plan.serverless_concurrency:,} "
            f"concurrent invocations and MaxConcurrency is at most {SERVERLESS_MAX_CONCURRENCY}"
        )
    elif plan.configured_serverless_concurrency < plan.serverless_concurrency:
        out.append(
            f"endpoint.serverless_max_concurrency is {plan.configured_serverless_concurrency}: serverless "
            f"would need {plan.serverless_concurrency} at this peak"
        )
    if plan.hourly_price is None:
        out.append(
            f"{plan.instance.name} has no price in config/aws-prices.toml: real-time cost not computed"
        )
    if plan.region != plan.price_region:
        out.append(f"prices are {plan.price_region} list prices; {plan.region} is priced differently")
    if prices.unconfirmed:
        out.append(
            f"unconfirmed prices ({', '.join(prices.unconfirmed)}): "
            "see config/aws-prices.toml before relying on them"
        )
    return out


def render(plan: CapacityPlan) -> list[str]:
    """The plan as lines for people."""
    m, p, i = plan.measurement, plan.point, plan.instance
    p99 = "" if plan.p99_target_ms is None else f" with p99 within {plan.p99_target_ms:g} ms"
    lines = [
        f"capacity plan: peak {plan.peak_rps:,g} requests/s on {i.name} "
        f"({i.vcpus} vCPUs, {i.memory_gib:g} GiB; {i.source}){p99}",
        f"measured: {m.source} ({m.created}, `{m.command}`), engine {m.engine}, single-record JSON",
        f"  machine: {m.cpus} CPUs ({m.cpus_origin}); platform {m.platform or 'not recorded'}; "
        "CPU model not recorded",
        *([f"  note: {m.note}"] if m.note else []),
        "  points: "
        + "; ".join(f"{q.connections} conn {q.rps:,.1f}/s p99 {q.p99_ms:g} ms" for q in m.points),
        f"  used: {p.connections} connections, {p.rps:,.1f} requests/s, p99 {p.p99_ms:g} ms "
        "(at the container over loopback: SageMaker, Lambda and API Gateway add their own latency)",
        f"per vCPU {plan.per_vcpu_rps:,.1f}/s x {i.vcpus} vCPUs = {plan.instance_ceiling_rps:,.1f}/s per "
        f"instance at full CPU; planned at {UTILISATION:.0%}: {plan.sustainable_rps:,.1f}/s per instance",
        f"instances for the peak: {plan.instances_for_peak} (ceil({plan.peak_rps:,g} / "
        f"{plan.sustainable_rps:,.1f})); recommended: {plan.recommended_instances} "
        f"(at least {AVAILABILITY_MIN_INSTANCES}, so an instance or Availability Zone failure "
        "leaves capacity)",
        f"autoscaling target SageMakerVariantInvocationsPerInstance: {plan.target_per_minute:,} per instance "
        f"per minute (60 x {plan.sustainable_rps:,.1f} x {SCALE_OUT_HEADROOM:g} headroom for the scale-out "
        f"delay); configured: {plan.configured_target:,}",
        f"  at the peak target tracking runs {plan.instances_at_target} instances: autoscaling_min "
        f"{plan.recommended_instances}, autoscaling_max at least {plan.instances_at_target} "
        f"(configured {plan.configured_min}-{plan.configured_max})",
        f"API Gateway usage plan (per key, if one key carries the peak): rate {plan.throttle.rate:,g}/s, "
        f"burst {plan.throttle.burst:,} (configured {plan.configured_throttle.rate:g}/s, "
        f"{plan.configured_throttle.burst})",
        f"Lambda: {plan.lambda_concurrency:,} concurrent executions expected "
        f"({plan.peak_rps:,g}/s x {plan.request_seconds:g} s per request, Little's law, assumed duration "
        f"as in pipeline/cloud/cost.py); reserve {plan.lambda_reserved:,} for the burst",
        f"monthly cost with the peak sustained all month ({plan.hours_per_month:g} h, "
        f"{plan.requests_per_month:,.0f} requests; {plan.price_region} list prices taken "
        f"{plan.price_taken}):",
        _realtime_line(plan),
        f"  serverless ({plan.serverless_memory_mb} MB, {plan.request_seconds:g} s per request, "
        f"{plan.serverless_concurrency:,} concurrent): endpoint {cost.usd(plan.serverless.endpoint)} "
        f"+ API Gateway and Lambda {cost.usd(plan.serverless.gateway_and_lambda)} = "
        f"{cost.usd(plan.serverless.total)}"
        + ("" if plan.serverless_feasible else " (not possible on one endpoint, see below)"),
    ]
    lines += [f"warning: {w}" for w in plan.warnings]
    return lines


def _realtime_line(plan: CapacityPlan) -> str:
    fleet = f"{plan.instances_at_target} x {plan.instance.name}"
    requests = f"API Gateway and Lambda {cost.usd(plan.realtime.gateway_and_lambda)}"
    if plan.realtime.total is None:
        return f"  real-time: endpoint {fleet}: no price in table; {requests}"
    endpoint, total = cost.usd(plan.realtime.endpoint), cost.usd(plan.realtime.total)
    return f"  real-time: endpoint {fleet} {endpoint} + {requests} = {total}"
