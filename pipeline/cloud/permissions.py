"""Can the caller do everything deploy does? ``iam:SimulatePrincipalPolicy`` against the deployer policy.

Every statement of ``policies/deployer.json`` (rendered for this account and prefix) becomes one
simulation per resource: its actions, its resource made concrete (a ``*`` inside an ARN becomes a probe
name, a bare ``*`` stays) and, where the statement has conditions, the context the real call carries
(``iam:PassedToService`` for PassRole, ``iam:AWSServiceName`` for CreateServiceLinkedRole). Anything
whose decision is not ``allowed`` is listed, grouped by the statement that would grant it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pipeline.cloud import deployer_policy
from pipeline.cloud.checks import FAIL, OK, WARN, Check
from pipeline.cloud.clients import error_code
from pipeline.cloud.names import Names

PROBE = "preflight-probe"
_ASSUMED_ROLE = re.compile(
    r"^arn:(?P<partition>[^:]+):sts::(?P<account>\d+):assumed-role/(?P<role>[^/]+)/.+$"
)
_DENIED = ("AccessDenied", "AccessDeniedException")


@dataclass(frozen=True)
class Probe:
    """One SimulatePrincipalPolicy request: actions of one statement on one concrete resource."""

    sid: str
    actions: tuple[str, ...]
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def context_entries(self) -> list[dict[str, Any]]:
        return [
            {"ContextKeyName": key, "ContextKeyValues": [value], "ContextKeyType": "string"}
            for key, value in self.context
        ]


@dataclass(frozen=True)
class Denied:
    sid: str
    action: str
    resource: str
    decision: str


class SimulationDenied(Exception):
    """The caller may not call SimulatePrincipalPolicy (or GetRole) on itself."""


def concrete(resource: str) -> str:
    """A resource pattern as one real ARN: ``*`` inside an ARN -> the probe name; bare ``*`` stays."""
    return resource if resource == "*" else resource.replace("*", PROBE)


def probes(policy: dict[str, Any]) -> list[Probe]:
    """The simulations that cover every Allow statement of ``policy``."""
    out = []
    for statement in deployer_policy.statements(policy):
        if statement["Effect"] != "Allow":
            continue
        contexts = _contexts(statement.get("Condition", {}))
        for resource in statement["Resource"]:
            for context in contexts:
                out.append(
                    Probe(statement.get("Sid", "?"), tuple(statement["Action"]), concrete(resource), context)
                )
    return out


def _contexts(condition: dict[str, dict[str, Any]]) -> list[tuple[tuple[str, str], ...]]:
    """Every combination of the condition keys' values: each is a request that must be allowed."""
    keys: list[list[tuple[str, str]]] = []
    for operator_block in condition.values():
        for key, values in operator_block.items():
            values = values if isinstance(values, list) else [values]
            keys.append([(key, str(v)) for v in values])
    return [tuple(combo) for combo in itertools.product(*keys)] if keys else [()]


def principal_arn(iam: Any, caller_arn: str) -> str | None:
    """The IAM ARN to simulate for the STS caller ARN; None for identities that cannot be simulated.

    An assumed-role session (``arn:aws:sts::ACCT:assumed-role/NAME/SESSION``, e.g. an SSO login) is
    simulated as its role, whose ARN may carry a path (``role/aws-reserved/sso.amazonaws.com/NAME``)
    that the session ARN leaves out: GetRole gives the real one.
    """
    match = _ASSUMED_ROLE.match(caller_arn)
    if match:
        try:
            return iam.get_role(RoleName=match["role"])["Role"]["Arn"]
        except Exception as exc:
            if error_code(exc) in _DENIED:
                raise SimulationDenied(f"iam:GetRole on role {match['role']}") from exc
            raise
    if ":user/" in caller_arn:
        return caller_arn
    return None  # the root user, a federated user: SimulatePrincipalPolicy cannot take them


def simulate(iam: Any, principal: str, probe_list: list[Probe]) -> list[Denied]:
    """Run every probe; the actions whose decision is not 'allowed'."""
    denied = []
    paginator = iam.get_paginator("simulate_principal_policy")
    for probe in probe_list:
        params: dict[str, Any] = {
            "PolicySourceArn": principal,
            "ActionNames": list(probe.actions),
            "ResourceArns": [probe.resource],
        }
        if probe.context:
            params["ContextEntries"] = probe.context_entries()
        try:
            for result in _results(paginator.paginate(**params)):
                if result["EvalDecision"] != "allowed":
                    denied.append(
                        Denied(probe.sid, result["EvalActionName"], probe.resource, result["EvalDecision"])
                    )
        except Exception as exc:
            if error_code(exc) in _DENIED:
                raise SimulationDenied("iam:SimulatePrincipalPolicy") from exc
            raise
    return denied


def _results(pages: Any) -> Iterator[dict[str, Any]]:
    for page in pages:
        yield from page.get("EvaluationResults", [])


def check_permissions(iam: Any, caller_arn: str, names: Names) -> Check:
    """Simulate the deployer policy for the caller; fail listing every action it lacks."""
    try:
        principal = principal_arn(iam, caller_arn)
        if principal is None:
            return Check(
                "permissions",
                WARN,
                f"{caller_arn} cannot be simulated (root or federated user); deploy from an IAM user or role "
                "holding pipeline/cloud/policies/deployer.json",
            )
        policy = deployer_policy.render(names)
        probe_list = probes(policy)
        denied = simulate(iam, principal, probe_list)
    except SimulationDenied as exc:
        return Check(
            "permissions",
            FAIL,
            f"{caller_arn} may not call {exc} on itself, so its permissions cannot be checked. Grant it the "
            "deployer policy (pipeline/cloud/policies/deployer.json, statement PreflightSelfCheck allows "
            "iam:SimulatePrincipalPolicy, iam:GetUser and iam:GetRole on the account's users and roles)",
        )
    actions = sum(len(p.actions) for p in probe_list)
    if not denied:
        return Check("permissions", OK, f"{principal} is allowed all {actions} simulated deployer actions")
    return Check(
        "permissions",
        FAIL,
        f"{principal} is denied {len({(d.action, d.resource) for d in denied})} action/resource pairs of "
        "the deployer policy; add them (pipeline/cloud/policies/deployer.json has each statement):",
        tuple(_grouped(denied)),
    )


def _grouped(denied: list[Denied]) -> Iterator[str]:
    by_statement: dict[tuple[str, str], list[str]] = {}
    for d in denied:
        actions = by_statement.setdefault((d.sid, d.resource), [])
        if d.action not in actions:
            actions.append(d.action)
    for (sid, resource), actions in by_statement.items():
        yield f"{sid}: {', '.join(sorted(actions))} on {resource}"
