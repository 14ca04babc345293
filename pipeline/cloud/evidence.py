"""Evidence from the live AWS stack for the report: what ``python -m pipeline evidence ...`` prints.

Read-only AWS calls (DescribeEndpoint, the usage plan, GetMetricStatistics, FilterLogEvents) plus one
bounded burst of HTTP requests that shows the usage plan's throttling. No API key value is ever
returned or printed: keys are listed by id and name, the burst reads its key from the key file and
sends it only in the ``x-api-key`` header, and log lines are scrubbed of anything shaped like a key.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pipeline.cloud import apigateway as api_gateway
from pipeline.cloud import endpoint, keys
from pipeline.cloud.clients import Clients
from pipeline.cloud.errors import CloudError, NotDeployed
from pipeline.cloud.names import VARIANT_NAME, Names

SCRUBBED = "***"
# API Gateway generates 40-character keys and accepts imported ones of 20 characters or more: any run of
# 20+ letters and digits in a log line is hidden (a key id is 10 characters, a request id has dashes).
_KEY_SHAPED = re.compile(r"\b[A-Za-z0-9]{20,}\b")
_KEY_HEADER = re.compile(r"(x-api-key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+", re.IGNORECASE)
# The burst never sends more than this many requests, whatever the plan's burst limit says.
BURST_CEILING = 1000
BURST_FACTOR = 3
# Requests in flight at once. Concurrency is what empties the bucket from far away: at a round trip of
# 300 ms, 32 connections still send about twice the default plan's refill rate.
BURST_CONCURRENCY = 32
HTTP_TIMEOUT_S = 10.0


class NoEvidence(CloudError):
    """The stack did not show what the evidence is meant to show (no 429, no datapoints, no logs)."""


# --- describe-endpoint and the usage plan ---------------------------------------------------------


def describe_endpoint(clients: Clients, names: Names) -> dict[str, Any]:
    """SageMaker's DescribeEndpoint answer (what ``aws sagemaker describe-endpoint`` prints)."""
    described = endpoint.describe_endpoint(clients.sagemaker, names.endpoint)
    if not described:
        raise NotDeployed(f"endpoint {names.endpoint} does not exist; run `python -m pipeline deploy` first")
    return {k: v for k, v in described.items() if k != "ResponseMetadata"}


def usage_plan(clients: Clients, names: Names) -> dict[str, Any]:
    """The usage plan: throttle, quota, stages, and its keys by id and name (never a value)."""
    plan = api_gateway.find_usage_plan(clients.apigateway, names.usage_plan)
    if plan is None:
        raise NotDeployed(
            f"usage plan {names.usage_plan} does not exist; run `python -m pipeline deploy` first"
        )
    return {
        "id": plan["id"],
        "name": plan["name"],
        "throttle": plan.get("throttle"),
        "quota": plan.get("quota"),
        "apiStages": [{"apiId": s["apiId"], "stage": s["stage"]} for s in plan.get("apiStages", [])],
        "keys": [
            {"id": k["id"], "name": k["name"], "enabled": k["enabled"]}
            for k in keys.list_keys(clients.apigateway, plan["id"])
        ],
    }


# --- the burst -----------------------------------------------------------------------------------


def burst_cap(burst_limit: int) -> int:
    """How many requests the burst may send: three bucketfuls, never more than BURST_CEILING."""
    return max(1, min(BURST_FACTOR * int(burst_limit), BURST_CEILING))


@dataclass
class BurstResult:
    """What a burst saw: statuses in the order requests were issued, and the first 429's body."""

    cap: int
    statuses: dict[int, int | str] = field(default_factory=dict)  # request number -> status or error
    throttled_body: str = ""
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return len(self.statuses)

    @property
    def first_throttled(self) -> int | None:
        """The number of the first request (in issue order) that got 429, or None."""
        hits = [n for n, status in self.statuses.items() if status == 429]
        return min(hits) if hits else None

    def counts(self) -> Counter[int | str]:
        return Counter(self.statuses.values())


Sender = Callable[[str, str], tuple[int | str, str]]


def send_get(url: str, key: str) -> tuple[int | str, str]:
    """GET ``url`` with the key in ``x-api-key``; (status, body) or (error name, "") without an answer."""
    # Scheme checked by check_url before any request: http(s) only, never file: or custom schemes.
    request = urllib.request.Request(url, headers={"x-api-key": key}, method="GET")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
            return response.status, response.read(4096).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(4096).decode("utf-8", "replace")
    except OSError as exc:
        return type(exc).__name__, ""


def check_url(url: str) -> str:
    """``url`` if it is an http(s) URL with a host; CloudError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise CloudError(
            f"{url!r} is not an http(s) URL (expected e.g. https://<id>.execute-api.../prod/health)"
        )
    return url


def burst(
    url: str, key: str, cap: int, concurrency: int = BURST_CONCURRENCY, send: Sender = send_get
) -> BurstResult:
    """Send up to ``cap`` requests, ``concurrency`` at a time, and stop issuing at the first 429.

    Requests already in flight when the 429 arrives still finish (at most ``concurrency - 1``).
    Concurrency is what empties the token bucket: one client sending in sequence may never outrun
    the plan's refill rate.
    """
    check_url(url)
    result = BurstResult(cap=cap)
    lock = threading.Lock()
    issued = 0
    stop = threading.Event()

    def worker() -> None:
        nonlocal issued
        while True:
            with lock:
                if stop.is_set() or issued >= cap:
                    return
                issued += 1
                number = issued
            status, body = send(url, key)
            with lock:
                result.statuses[number] = status
                if status == 429 and not stop.is_set():
                    result.throttled_body = body.strip()
                    stop.set()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, min(concurrency, cap)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    return result


def render_burst(result: BurstResult, url: str, rate: float, burst_limit: int, concurrency: int) -> list[str]:
    """The burst's report; ends with the first 429's body and ``[HTTP 429]`` when one came."""
    lines = [
        f"usage plan throttle: {rate:g} requests/s, burst {burst_limit}",
        f"GET {url}: at most {result.cap} requests ({BURST_FACTOR} x burst, ceiling {BURST_CEILING}), "
        f"{concurrency} at a time, stopping at the first 429",
    ]
    counts = ", ".join(f"{status}: {n}" for status, n in sorted(result.counts().items(), key=str))
    lines.append(f"sent {result.sent} in {result.seconds:.1f} s; answers {counts}")
    first = result.first_throttled
    if first is None:
        lines.append(f"no 429 within {result.cap} requests: the plan did not throttle this burst")
        return lines
    in_flight = result.sent - first
    lines.append(
        f"first 429 for request {first}; stopped issuing there"
        + (f" ({in_flight} already in flight finished)" if in_flight > 0 else "")
    )
    lines.append(f"the 429 answer: {result.throttled_body}  [HTTP 429]")
    return lines


# --- CloudWatch metrics --------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricRead:
    """One metric's Sum per period over a window."""

    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    points: tuple[tuple[datetime, float], ...]

    @property
    def total(self) -> float:
        return sum(value for _, value in self.points)


def metric_queries(names: Names) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """(namespace, metric, dimensions) read for the report: API Gateway requests, endpoint invocations."""
    return [
        ("AWS/ApiGateway", "Count", (("ApiName", names.api), ("Stage", names.stage))),
        ("AWS/SageMaker", "Invocations", (("EndpointName", names.endpoint), ("VariantName", VARIANT_NAME))),
    ]


def read_metrics(
    clients: Clients, names: Names, minutes: int = 60, period_s: int = 300, now: datetime | None = None
) -> list[MetricRead]:
    """GetMetricStatistics (Sum) for each query over the last ``minutes``."""
    end = now or datetime.now(UTC)
    reads = []
    for namespace, metric, dims in metric_queries(names):
        answer = clients.cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": k, "Value": v} for k, v in dims],
            StartTime=end - timedelta(minutes=minutes),
            EndTime=end,
            Period=period_s,
            Statistics=["Sum"],
        )
        points = sorted((p["Timestamp"], float(p["Sum"])) for p in answer.get("Datapoints", []))
        reads.append(MetricRead(namespace, metric, dims, tuple(points)))
    return reads


def wait_for_metrics(
    read: Callable[[], list[MetricRead]],
    wait_s: float,
    poll_s: float = 20.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[MetricRead]:
    """Read until the first query (API Gateway Count) has a datapoint or ``wait_s`` has passed.

    CloudWatch shows a request in its metrics only after a delay, so a read right after the requests
    may find nothing yet.
    """
    deadline = clock() + wait_s
    while True:
        reads = read()
        if (reads and reads[0].points) or clock() >= deadline:
            return reads
        sleep(poll_s)


def render_metrics(reads: list[MetricRead], minutes: int, period_s: int) -> list[str]:
    """A table per metric: period start (UTC) and Sum."""
    lines = [f"CloudWatch GetMetricStatistics, Sum per {period_s // 60} min, last {minutes} min (UTC)"]
    for read in reads:
        dims = ", ".join(f"{k}={v}" for k, v in read.dimensions)
        lines.append(f"{read.namespace} {read.metric} ({dims}): total {read.total:g}")
        if not read.points:
            lines.append("    no datapoints")
        for stamp, value in read.points:
            lines.append(f"    {stamp.astimezone(UTC):%H:%M}  {value:g}")
    return lines


# --- the Lambda's log tail -----------------------------------------------------------------------


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret, every ``x-api-key: value`` and every key-shaped token hidden."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, SCRUBBED)
    text = _KEY_HEADER.sub(lambda m: m.group(1) + SCRUBBED, text)
    return _KEY_SHAPED.sub(SCRUBBED, text)


def log_tail(
    clients: Clients,
    log_group: str,
    lines: int = 20,
    minutes: int = 60,
    secrets: Iterable[str] = (),
    now: datetime | None = None,
    max_pages: int = 20,
) -> list[str]:
    """The last ``lines`` events of ``log_group`` in the last ``minutes``, time-stamped and scrubbed."""
    end = now or datetime.now(UTC)
    start_ms = int((end - timedelta(minutes=minutes)).timestamp() * 1000)
    events: list[dict[str, Any]] = []
    request: dict[str, Any] = {"logGroupName": log_group, "startTime": start_ms}
    for _ in range(max_pages):  # bounded: the newest events are on the last pages
        page = clients.logs.filter_log_events(**request)
        events += page.get("events", [])
        if not page.get("nextToken"):
            break
        request["nextToken"] = page["nextToken"]
    events.sort(key=lambda e: (e["timestamp"], e.get("eventId", "")))
    secrets = tuple(secrets)
    return [
        f"{datetime.fromtimestamp(e['timestamp'] / 1000, UTC):%H:%M:%S} "
        f"{scrub(e['message'].rstrip(), secrets)}"
        for e in events[-lines:]
    ]
