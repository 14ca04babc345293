"""CloudWatch Logs Insights queries saved by deploy, for the JSON lines the stack writes.

The container writes one JSON line per request to ``/aws/sagemaker/Endpoints/<endpoint>``
(``event``, ``status``, ``latency_ms``, ``error_code``, ``invalid_fields``, ``unknown_categories``:
container/inference/request_log.py) and the Lambda proxy one per request to its own group
(``status``, ``latency_ms``, ``invoke_ms``, ``attempts``, ``error_code``, ``upstream_error``:
lambda_proxy/handler.py). Logs Insights discovers JSON fields by name, nested ones as ``a.b``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.cloud.names import Names


@dataclass(frozen=True)
class Query:
    name: str
    log_group: str
    text: str


def queries(names: Names) -> list[Query]:
    """The saved queries, named '<prefix>/<what>' (a folder in the console)."""
    endpoint, proxy = names.endpoint_log_group, names.function_log_group
    folder = names.query_folder
    return [
        Query(
            f"{folder}/container-errors-by-code",
            endpoint,
            'filter event = "request" and status >= 400\n'
            "| stats count(*) as requests by status, error_code\n"
            "| sort requests desc",
        ),
        Query(
            f"{folder}/container-p99-latency-per-minute",
            endpoint,
            'filter event = "request"\n'
            "| stats pct(latency_ms, 99) as p99_ms, pct(latency_ms, 50) as p50_ms, count(*) as requests "
            "by bin(1m)\n"
            "| sort bin(1m) desc",
        ),
        Query(
            f"{folder}/container-top-invalid-fields",
            endpoint,
            'filter event = "request" and ispresent(invalid_fields)\n'
            "| stats count(*) as requests by invalid_fields\n"
            "| sort requests desc\n"
            "| limit 20",
        ),
        Query(
            f"{folder}/container-unknown-categories",
            endpoint,
            'filter event = "request" and ispresent(unknown_categories)\n'
            "| stats count(*) as requests, sum(unknown_categories.native_country) as native_country, "
            "sum(unknown_categories.occupation) as occupation, "
            "sum(unknown_categories.workclass) as workclass by bin(1h)",
        ),
        Query(
            f"{folder}/proxy-errors-and-latency",
            proxy,
            "filter ispresent(status)\n"
            "| stats count(*) as requests, sum(status >= 500) as errors_5xx, sum(status = 429) as throttled, "
            "pct(latency_ms, 99) as p99_ms, avg(attempts) as mean_attempts by bin(5m)\n"
            "| sort bin(5m) desc",
        ),
        Query(
            f"{folder}/proxy-upstream-errors",
            proxy,
            "filter ispresent(upstream_error)\n"
            "| stats count(*) as requests by upstream_error, error_code, status\n"
            "| sort requests desc",
        ),
    ]


def _existing(logs: Any, names: Names) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    token = None
    while True:
        kwargs: dict[str, Any] = {"queryDefinitionNamePrefix": f"{names.query_folder}/", "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = logs.describe_query_definitions(**kwargs)
        for item in page.get("queryDefinitions", []):
            found[item["name"]] = item
        token = page.get("nextToken")
        if not token:
            return found


def ensure(logs: Any, names: Names) -> list[str]:
    """Save every query (update a changed one in place); returns their names."""
    existing = _existing(logs, names)
    for query in queries(names):
        have = existing.get(query.name)
        same = (
            have and have.get("queryString") == query.text and have.get("logGroupNames") == [query.log_group]
        )
        if same:
            continue
        params: dict[str, Any] = {
            "name": query.name,
            "queryString": query.text,
            "logGroupNames": [query.log_group],
        }
        if have:
            params["queryDefinitionId"] = have["queryDefinitionId"]
        logs.put_query_definition(**params)
    return [q.name for q in queries(names)]


def saved(logs: Any, names: Names) -> list[str]:
    """Names of the project's saved queries."""
    return sorted(_existing(logs, names))


def delete(logs: Any, names: Names) -> list[str]:
    """Delete the project's saved queries; returns their names."""
    existing = _existing(logs, names)
    for item in existing.values():
        logs.delete_query_definition(queryDefinitionId=item["queryDefinitionId"])
    return sorted(existing)
