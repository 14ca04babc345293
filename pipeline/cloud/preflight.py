"""Preflight: everything a first real deploy needs, checked before anything is created.

Credentials and account, region and partition, Docker able to build linux/amd64, SageMaker quotas
for the configured instance types, the caller's permissions against the deployer policy, and a cost
estimate. Only read calls (STS, IAM Get/Simulate, Service Quotas List) are made. Deploy calls
:func:`run_preflight` first and raises :class:`PreflightFailed` when a check fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.cloud import cost as cost_module
from pipeline.cloud.checks import FAIL, OK, SKIPPED, Check
from pipeline.cloud.clients import Clients, error_code
from pipeline.cloud.config import DeployConfig
from pipeline.cloud.docker_check import DockerProbe, check_docker, probe_docker
from pipeline.cloud.errors import CloudError
from pipeline.cloud.names import names_for
from pipeline.cloud.permissions import check_permissions
from pipeline.cloud.progress import Progress
from pipeline.cloud.quotas import check_quotas

NO_CREDENTIALS = (
    "no AWS credentials found; configure them (aws configure, AWS_PROFILE or "
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), see docs/deploy.md"
)


@dataclass
class PreflightReport:
    """The checks in the order they ran, and the cost estimate (None if the price table is unusable)."""

    checks: list[Check] = field(default_factory=list)
    cost: cost_module.CostEstimate | None = None
    account_id: str = ""
    caller_arn: str = ""

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "account_id": self.account_id,
            "caller_arn": self.caller_arn,
            "checks": [c.to_dict() for c in self.checks],
            "cost": None if self.cost is None else self.cost.to_dict(),
        }


class PreflightFailed(CloudError):
    """At least one preflight check failed; nothing was created. ``report`` has every check."""

    def __init__(self, report: PreflightReport) -> None:
        self.report = report
        lines = [f"{c.name}: {c.message}" for c in report.failures]
        super().__init__("preflight failed, nothing was created:\n  - " + "\n  - ".join(lines))


def run_preflight(
    config: DeployConfig,
    clients: Clients,
    progress: Progress,
    check_docker: bool = True,
    docker_probe: DockerProbe = probe_docker,
    prices: cost_module.PriceTable | None = None,
) -> PreflightReport:
    """Run every check, printing one line each on ``progress``; never raises for a failed check.

    ``check_docker=False`` skips the Docker check (deploy with ``--image-uri`` builds nothing).
    """
    report = PreflightReport()

    def record(check: Check) -> None:
        report.checks.append(check)
        progress.detail(check.line())
        for detail in check.details:
            progress.detail(f"             {detail}")

    identity, report.account_id, report.caller_arn = _identity(clients)
    record(identity)
    project = config.project
    names = names_for(config, report.account_id or "000000000000")
    record(Check("region", OK, f"{project.region} (partition {names.partition})"))
    record(_docker(check_docker, docker_probe))

    if identity.status != OK:
        for name in ("training quota", "endpoint quota", "permissions"):
            record(Check(name, SKIPPED, "needs working credentials"))
    else:
        names = names_for(config, report.account_id)
        quota_checks = _guarded_check(
            "quotas", lambda: check_quotas(config, clients.client("service-quotas"))
        )
        for check in quota_checks:
            record(check)
        for check in _guarded_check(
            "permissions", lambda: [check_permissions(clients.iam, report.caller_arn, names)]
        ):
            record(check)

    record(_cost(config, prices, report))
    return report


def _identity(clients: Clients) -> tuple[Check, str, str]:
    """The credentials check, the account id and the caller ARN ('' when unknown)."""
    from botocore.exceptions import BotoCoreError, NoCredentialsError

    try:
        who = clients.client("sts").get_caller_identity()
    except NoCredentialsError:
        return Check("credentials", FAIL, NO_CREDENTIALS), "", ""
    except BotoCoreError as exc:
        return Check("credentials", FAIL, f"could not reach STS: {exc}"), "", ""
    except Exception as exc:
        code = error_code(exc)
        if not code:
            raise
        message = (
            f"STS GetCallerIdentity refused the credentials ({code}): they are invalid or expired; "
            "renew them (aws sso login, new access keys) and retry"
        )
        return Check("credentials", FAIL, message), "", ""
    account, arn = who["Account"], who["Arn"]
    return Check("credentials", OK, f"account {account} as {arn}"), account, arn


def _guarded_check(name: str, run: Callable[[], list[Check]]) -> list[Check]:
    """Run a check; an AWS error it did not expect becomes a failed check instead of ending preflight."""
    from botocore.exceptions import BotoCoreError

    try:
        return run()
    except BotoCoreError as exc:
        return [Check(name, FAIL, f"could not be checked: {exc}")]
    except Exception as exc:
        code = error_code(exc)
        if not code:
            raise
        operation = getattr(exc, "operation_name", "an AWS call")
        return [Check(name, FAIL, f"could not be checked: {operation} failed with {code}")]


def _docker(enabled: bool, probe: DockerProbe) -> Check:
    if not enabled:
        return Check("docker", SKIPPED, "not needed: deploy uses an existing image (--image-uri)")
    return check_docker(probe)


def _cost(config: DeployConfig, prices: cost_module.PriceTable | None, report: PreflightReport) -> Check:
    try:
        report.cost = cost_module.estimate(config, prices)
    except cost_module.PriceTableError as exc:
        return Check("cost", SKIPPED, f"no estimate: {exc}")
    estimate = report.cost
    if estimate.mode == "serverless":
        summary = f"no cost while idle; {cost_module.usd(estimate.requests_per_million)} per million requests"
    elif estimate.endpoint_hourly is None:
        summary = f"{estimate.endpoint_instance_type}: no price in table"
    else:
        summary = (
            f"{cost_module.usd(estimate.endpoint_hourly)}/hour, "
            f"{cost_module.usd(estimate.endpoint_monthly)}/month "
            f"always on; up to {cost_module.usd(estimate.endpoint_ceiling_monthly)}/month at autoscaling max"
        )
    return Check("cost", OK, summary, tuple(cost_module.render(estimate)))


def render(report: PreflightReport) -> list[str]:
    """The whole report as lines (each check, its details, and the verdict)."""
    lines = []
    for check in report.checks:
        lines.append(check.line())
        lines.extend(f"             {detail}" for detail in check.details)
    if report.ok:
        lines.append("preflight passed: nothing was created")
    else:
        lines.append(f"preflight FAILED ({len(report.failures)} check(s)); nothing was created")
    return lines
