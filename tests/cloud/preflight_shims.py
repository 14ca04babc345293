"""Test-only moto 5.2 extensions for preflight: IAM SimulatePrincipalPolicy and Service Quotas listings.

moto 5.2.5 lacks ``iam:SimulatePrincipalPolicy`` and ``servicequotas:ListServiceQuotas``, and its
``ListAWSDefaultServiceQuotas`` knows only the ``vpc`` service. The shims are patches of moto's
response classes (like moto_shims.UpdateEndpoint), so they work in-process under ``mock_aws`` and in a
``ThreadedMotoServer`` running in the test process.

SimulatePrincipalPolicy answers from the principal's real policies in moto's IAM backend (inline,
attached and group policies of a user; inline and attached policies of a role), evaluated by the
small evaluator in iam_evaluator: Allow/Deny statements, Action/NotAction and Resource wildcards, and the
StringEquals/StringLike conditions the deployer policy uses, against the request's context entries.
The caller is taken to be the simulated principal (preflight always simulates itself): if that
principal may not call iam:SimulatePrincipalPolicy on itself, the call is refused with AccessDenied.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from iam_evaluator import evaluate

SAGEMAKER = "sagemaker"


@dataclass
class PreflightShims:
    """Quota values to serve (name -> value) and a record of what the shims were asked."""

    applied: dict[str, float] = field(default_factory=dict)  # ListServiceQuotas
    defaults: dict[str, float] = field(default_factory=dict)  # ListAWSDefaultServiceQuotas
    page_size: int = 2  # small, so that callers must follow NextToken
    quota_calls: list[tuple[str, str | None]] = field(default_factory=list)
    simulated: list[dict[str, Any]] = field(default_factory=list)
    # Policies to simulate for a principal ARN instead of what moto holds for it: under moto's IAM
    # enforcement the user holds a projection of the deployer policy that moto can check, while
    # SimulatePrincipalPolicy must answer for the real policy (see iam_enforcement).
    documents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


# --- the principal's policies in moto's IAM backend ------------------------------------------


def _document(policy: Any) -> dict[str, Any]:
    from moto.iam.access_control import IAMPolicy

    return IAMPolicy(policy)._policy_json


def principal_documents(backend: Any, arn: str) -> list[dict[str, Any]]:
    """Every identity policy of the user or role ``arn`` (paths allowed)."""
    kind, _, rest = arn.split(":", 5)[5].partition("/")
    name = rest.rsplit("/", 1)[-1]
    policies: list[Any] = []
    if kind == "user":
        policies += [backend.get_user_policy(name, p) for p in backend.list_user_policies(name)]
        policies += list(backend.list_attached_user_policies(name)[0])
        for group in backend.get_groups_for_user(name):
            policies += [
                backend.get_group_policy(group.name, p) for p in backend.list_group_policies(group.name)
            ]
            policies += list(backend.list_attached_group_policies(group.name)[0])
    elif kind == "role":
        role = backend.get_role(name)
        if role.arn != arn:
            raise ValueError(f"{arn} is not the role's ARN {role.arn} (path missing?)")
        policies += [backend.get_role_policy(name, p)[1] for p in backend.list_role_policies(name)]
        policies += list(backend.list_attached_role_policies(name)[0])
    else:
        raise ValueError(f"cannot simulate {arn}")
    return [_document(p) for p in policies]


# --- installation ------------------------------------------------------------------------------


def _quota_code(name: str) -> str:
    return "L-" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()


def _quota(name: str, value: float, region: str) -> dict[str, Any]:
    code = _quota_code(name)
    return {
        "ServiceCode": SAGEMAKER,
        "ServiceName": "Amazon SageMaker",
        "QuotaArn": f"arn:aws:servicequotas:{region}:123456789012:{SAGEMAKER}/{code}",
        "QuotaCode": code,
        "QuotaName": name,
        "Value": value,
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
    }


def install(monkeypatch: pytest.MonkeyPatch) -> PreflightShims:
    from moto.core.exceptions import AccessDeniedError
    from moto.core.responses import ActionResult
    from moto.iam.responses import IamResponse
    from moto.servicequotas.responses import ServiceQuotasResponse

    shims = PreflightShims()
    original_defaults = ServiceQuotasResponse.list_aws_default_service_quotas

    def simulate_principal_policy(self: Any) -> ActionResult:
        source = self._get_param("PolicySourceArn")
        actions = self._get_param("ActionNames") or []
        resources = self._get_param("ResourceArns") or ["*"]
        context: dict[str, list[str]] = {}
        for entry in self._get_param("ContextEntries") or []:
            context[entry["ContextKeyName"].lower()] = list(entry.get("ContextKeyValues", []))
        documents = shims.documents.get(source) or principal_documents(self.backend, source)
        if evaluate(documents, "iam:SimulatePrincipalPolicy", source, {}) != "allowed":
            raise AccessDeniedError(source, "iam:SimulatePrincipalPolicy")
        shims.simulated.append(
            {"source": source, "actions": list(actions), "resources": resources, "context": context}
        )
        results = []
        for action in actions:
            decisions = [evaluate(documents, action, r, context) for r in resources]
            decision = next((d for d in decisions if d != "allowed"), "allowed")
            results.append(
                {"EvalActionName": action, "EvalResourceName": resources[0], "EvalDecision": decision}
            )
        return ActionResult({"EvaluationResults": results, "IsTruncated": False})

    def listing(self: Any, table: dict[str, float], operation: str) -> str:
        params = json.loads(self.body or "{}")
        token = params.get("NextToken")
        shims.quota_calls.append((operation, token))
        quotas = [_quota(n, v, self.region) for n, v in table.items()]
        start = int(token or 0)
        page = quotas[start : start + shims.page_size]
        body: dict[str, Any] = {"Quotas": page}
        if start + shims.page_size < len(quotas):
            body["NextToken"] = str(start + shims.page_size)
        return json.dumps(body)

    def list_service_quotas(self: Any) -> str:
        return listing(self, shims.applied, "ListServiceQuotas")

    def list_aws_default_service_quotas(self: Any) -> str:
        if json.loads(self.body or "{}").get("ServiceCode") != SAGEMAKER:
            return original_defaults(self)
        return listing(self, shims.defaults, "ListAWSDefaultServiceQuotas")

    monkeypatch.setattr(IamResponse, "simulate_principal_policy", simulate_principal_policy, raising=False)
    monkeypatch.setattr(ServiceQuotasResponse, "list_service_quotas", list_service_quotas, raising=False)
    monkeypatch.setattr(
        ServiceQuotasResponse, "list_aws_default_service_quotas", list_aws_default_service_quotas
    )
    return shims
