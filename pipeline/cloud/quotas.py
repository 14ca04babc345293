"""SageMaker service quotas the configuration needs, read from the Service Quotas API.

Quota names (service code ``sagemaker``) as the Service Quotas console and SageMaker's own
``ResourceLimitExceeded`` messages spell them ("The account-level service limit 'ml.g4dn.xlarge for
endpoint usage' is 0 Instances ..."): ``<instance type> for training job usage``,
``<instance type> for endpoint usage`` and, for Serverless Inference, ``Maximum total concurrency
that can be allocated across all serverless endpoints``. They are matched by name, never by quota
code, because codes differ per instance type and are not published as a list.

New accounts often have 0 for most ``ml.*`` instance types; SageMaker then refuses CreateEndpoint or
CreateTrainingJob only after everything before it has been created, which is why preflight looks first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pipeline.cloud.checks import FAIL, OK, WARN, Check
from pipeline.cloud.clients import error_code
from pipeline.cloud.config import DeployConfig

SERVICE_CODE = "sagemaker"
TRAINING_QUOTA = "{} for training job usage"
ENDPOINT_QUOTA = "{} for endpoint usage"
SERVERLESS_QUOTA = "Maximum total concurrency that can be allocated across all serverless endpoints"
_CONSOLE = "https://console.aws.amazon.com/servicequotas/home/services/sagemaker/quotas"


@dataclass(frozen=True)
class Quota:
    name: str
    code: str
    value: float
    applied: bool  # False when only AWS's default was found (ListAWSDefaultServiceQuotas)

    @property
    def where(self) -> str:
        return f"'{self.name}' ({self.code})"


class QuotaBook:
    """The account's SageMaker quotas by name: the applied values, else AWS's defaults.

    Each listing is paginated and read at most once per preflight.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._applied: dict[str, Quota] | None = None
        self._defaults: dict[str, Quota] | None = None

    def find(self, name: str) -> Quota | None:
        """The quota called ``name`` (case-insensitive), or None when the region has no such quota."""
        key = name.lower()
        if self._applied is None:
            self._applied = self._read("list_service_quotas", applied=True)
        if key in self._applied:
            return self._applied[key]
        if self._defaults is None:
            self._defaults = self._read("list_aws_default_service_quotas", applied=False)
        return self._defaults.get(key)

    def _read(self, operation: str, applied: bool) -> dict[str, Quota]:
        return {
            q["QuotaName"].lower(): Quota(q["QuotaName"], q.get("QuotaCode", "?"), float(q["Value"]), applied)
            for q in _pages(self.client, operation)
        }


def _pages(client: Any, operation: str) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(ServiceCode=SERVICE_CODE):
        yield from page.get("Quotas", [])


def check_quotas(config: DeployConfig, client: Any) -> list[Check]:
    """One check per quota the configuration depends on (training, then the endpoint)."""
    book = QuotaBook(client)
    try:
        return [_training(config, book), _endpoint(config, book)]
    except Exception as exc:  # botocore ClientError: a denied or failed Service Quotas call
        code = error_code(exc)
        if not code:
            raise
        hint = (
            "the deployer policy grants servicequotas:ListServiceQuotas and "
            "servicequotas:GetAWSDefaultServiceQuota (statement PreflightQuotas)"
            if code in ("AccessDeniedException", "AccessDenied")
            else "retry, or check the quotas in the Service Quotas console"
        )
        return [Check("quotas", FAIL, f"could not read SageMaker quotas ({code}: {_message(exc)}); {hint}")]


def _training(config: DeployConfig, book: QuotaBook) -> Check:
    tr = config.training
    name = TRAINING_QUOTA.format(tr.instance_type)
    quota = book.find(name)
    if quota is None:
        return _not_offered(
            "training quota", name, f"{tr.instance_type} is not offered for training jobs", config
        )
    return _compare("training quota", quota, tr.instance_count, "training.instance_count")


def _endpoint(config: DeployConfig, book: QuotaBook) -> Check:
    ep = config.endpoint
    if ep.serverless:
        quota = book.find(SERVERLESS_QUOTA)
        if quota is None:
            return _not_offered(
                "endpoint quota", SERVERLESS_QUOTA, "Serverless Inference is not offered", config
            )
        return _compare(
            "endpoint quota", quota, ep.serverless_max_concurrency, "endpoint.serverless_max_concurrency"
        )
    name = ENDPOINT_QUOTA.format(ep.instance_type)
    quota = book.find(name)
    if quota is None:
        return _not_offered(
            "endpoint quota", name, f"{ep.instance_type} is not offered for endpoints", config
        )
    check = _compare("endpoint quota", quota, ep.initial_instance_count, "endpoint.initial_instance_count")
    if check.status != OK:
        return check
    # Above the initial count: deploy works, but autoscaling and blue/green updates (which run the
    # old and the new fleet side by side until the bake ends) need more.
    wanted = {
        "endpoint.autoscaling_max": ep.autoscaling_max,
        "a blue/green update": 2 * ep.initial_instance_count,
    }
    short = [f"{what} needs {n}" for what, n in wanted.items() if quota.value < n]
    if short:
        return Check(
            "endpoint quota",
            WARN,
            f"{quota.where} is {quota.value:g}: enough to deploy {ep.initial_instance_count}, but "
            f"{'; '.join(short)}; scaling beyond {quota.value:g} will fail. Request an increase in Service "
            f"Quotas ({_CONSOLE}/{quota.code})",
        )
    return check


def _compare(check_name: str, quota: Quota, needed: int, setting: str) -> Check:
    source = "" if quota.applied else " (AWS default; your account's value could not be listed)"
    if quota.value == 0:
        return Check(
            check_name,
            FAIL,
            f"{quota.where} is 0{source}; {setting} needs {needed}. New accounts often have 0 for ml.* "
            f"instance types: request an increase of {quota.where} in Service Quotas "
            f"({_CONSOLE}/{quota.code}) "
            "or choose an instance type you have quota for",
        )
    if quota.value < needed:
        return Check(
            check_name,
            FAIL,
            f"{quota.where} is {quota.value:g}{source}; {setting} needs {needed}: lower it or request an "
            f"increase in Service Quotas ({_CONSOLE}/{quota.code})",
        )
    return Check(check_name, OK, f"{quota.where} is {quota.value:g}{source}; {setting} needs {needed}")


def _not_offered(check_name: str, name: str, what: str, config: DeployConfig) -> Check:
    return Check(
        check_name,
        FAIL,
        f"{what} in {config.project.region}: no SageMaker quota named '{name}' exists there. "
        "Choose another instance type or region (see the SageMaker pricing page for what each region offers)",
    )


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", {}) or {}
    return str(response.get("Error", {}).get("Message", exc))
