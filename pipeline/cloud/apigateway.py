"""The REST API in front of the Lambda proxy, its stage, and the usage plan that makes keys count.

Routes, both with ``apiKeyRequired`` and a Lambda proxy integration:

* ``POST /predict``: scoring.
* ``GET /health``: answered by the Lambda without calling the model. It requires the key too: every
  route that runs compute stays metered and throttled per key by the usage plan (an open route would
  be protected only by the account-wide limits), monitors can send a header, and a 200 proves that the
  caller's key, the plan, the stage and the function are all wired up.

Keys are identification, not authentication; the usage plan bound to the stage is what makes a key
required, throttled (token bucket) and counted against a quota.
"""

from __future__ import annotations

from typing import Any

from pipeline.cloud.clients import error_code
from pipeline.cloud.config import ApiConfig
from pipeline.cloud.names import Names
from pipeline.cloud.progress import Progress

# (path part, HTTP method); every route requires an API key.
ROUTES: tuple[tuple[str, str], ...] = (("predict", "POST"), ("health", "GET"))
INTEGRATION_TIMEOUT_MS = 29_000


def integration_uri(names: Names, function_arn: str) -> str:
    return names.arn("apigateway", f"path/2015-03-31/functions/{function_arn}/invocations", account="lambda")


def source_arn(names: Names, api_id: str, method: str, path_part: str) -> str:
    """The execute-api ARN of one route on our stage (what the Lambda permission allows)."""
    return names.arn("execute-api", f"{api_id}/{names.stage}/{method}/{path_part}")


def find_rest_api(apigateway: Any, name: str) -> dict[str, Any] | None:
    for page in apigateway.get_paginator("get_rest_apis").paginate():
        for api in page.get("items", []):
            if api["name"] == name:
                return api
    return None


def ensure_rest_api(apigateway: Any, names: Names, progress: Progress) -> tuple[str, bool]:
    """(api id, created?) for the project's REGIONAL REST API with keys read from the header."""
    api = find_rest_api(apigateway, names.api)
    if api:
        progress.detail(f"REST API {names.api} exists ({api['id']})")
        return api["id"], False
    api = apigateway.create_rest_api(
        name=names.api,
        description=f"Predictions from SageMaker endpoint {names.endpoint}",
        apiKeySource="HEADER",
        endpointConfiguration={"types": ["REGIONAL"]},
        tags=names.tags,
    )
    progress.detail(f"created REST API {names.api} ({api['id']})")
    return api["id"], True


def _resources(apigateway: Any, api_id: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for page in apigateway.get_paginator("get_resources").paginate(restApiId=api_id):
        for item in page.get("items", []):
            found[item["path"]] = item
    return found


def ensure_routes(apigateway: Any, names: Names, api_id: str, function_arn: str, progress: Progress) -> bool:
    """Resources, methods and integrations for ROUTES; True if anything was created or changed."""
    resources = _resources(apigateway, api_id)
    root_id = resources["/"]["id"]
    uri = integration_uri(names, function_arn)
    changed = False
    for path_part, method in ROUTES:
        resource = resources.get(f"/{path_part}")
        if resource is None:
            resource = apigateway.create_resource(restApiId=api_id, parentId=root_id, pathPart=path_part)
            changed = True
        changed |= _ensure_method(apigateway, api_id, resource["id"], method, uri)
        progress.detail(f"{method} /{path_part}: API key required, Lambda proxy integration")
    return changed


def _ensure_method(apigateway: Any, api_id: str, resource_id: str, method: str, uri: str) -> bool:
    changed = False
    try:
        current = apigateway.get_method(restApiId=api_id, resourceId=resource_id, httpMethod=method)
    except Exception as exc:
        if error_code(exc) != "NotFoundException":
            raise
        current = None
    if current is None:
        apigateway.put_method(
            restApiId=api_id,
            resourceId=resource_id,
            httpMethod=method,
            authorizationType="NONE",
            apiKeyRequired=True,
        )
        changed = True
    elif not current.get("apiKeyRequired"):
        apigateway.update_method(
            restApiId=api_id,
            resourceId=resource_id,
            httpMethod=method,
            patchOperations=[{"op": "replace", "path": "/apiKeyRequired", "value": "true"}],
        )
        changed = True
    integration = (current or {}).get("methodIntegration") or {}
    if integration.get("type") != "AWS_PROXY" or integration.get("uri") != uri:
        apigateway.put_integration(
            restApiId=api_id,
            resourceId=resource_id,
            httpMethod=method,
            type="AWS_PROXY",
            integrationHttpMethod="POST",  # Lambda is always invoked with POST, whatever the route's method
            uri=uri,
            timeoutInMillis=INTEGRATION_TIMEOUT_MS,
        )
        changed = True
    return changed


def ensure_stage(apigateway: Any, names: Names, api_id: str, routes_changed: bool, progress: Progress) -> str:
    """Deploy the API to the stage when the stage is new or the routes changed; returns what happened."""
    try:
        apigateway.get_stage(restApiId=api_id, stageName=names.stage)
        exists = True
    except Exception as exc:
        if error_code(exc) != "NotFoundException":
            raise
        exists = False
    if exists and not routes_changed:
        progress.detail(f"stage {names.stage} is current")
        return "unchanged"
    deployment = apigateway.create_deployment(restApiId=api_id, description="python -m pipeline deploy")
    if exists:
        apigateway.update_stage(
            restApiId=api_id,
            stageName=names.stage,
            patchOperations=[{"op": "replace", "path": "/deploymentId", "value": deployment["id"]}],
        )
        progress.detail(f"redeployed stage {names.stage}")
        return "redeployed"
    apigateway.create_stage(
        restApiId=api_id,
        stageName=names.stage,
        deploymentId=deployment["id"],
        description=f"{names.prefix} {names.stage}",
        tags=names.tags,
    )
    progress.detail(f"created stage {names.stage}")
    return "created"


def find_usage_plan(apigateway: Any, name: str) -> dict[str, Any] | None:
    for page in apigateway.get_paginator("get_usage_plans").paginate():
        for plan in page.get("items", []):
            if plan["name"] == name:
                return plan
    return None


def ensure_usage_plan(apigateway: Any, names: Names, api_id: str, api: ApiConfig, progress: Progress) -> str:
    """The usage plan bound to our stage with the configured throttle and quota; returns its id."""
    throttle = {"rateLimit": float(api.throttle_rate), "burstLimit": api.throttle_burst}
    quota = {"limit": api.quota_limit, "period": api.quota_period, "offset": 0}
    stage = {"apiId": api_id, "stage": names.stage}
    plan = find_usage_plan(apigateway, names.usage_plan)
    if plan is None:
        plan = apigateway.create_usage_plan(
            name=names.usage_plan,
            description=f"Keys for {names.api}",
            apiStages=[stage],
            throttle=throttle,
            quota=quota,
            tags=names.tags,
        )
        progress.detail(f"created usage plan {names.usage_plan}: {_describe(api)}")
        return plan["id"]
    ops = _plan_patch(plan, throttle, quota, stage)
    if ops:
        apigateway.update_usage_plan(usagePlanId=plan["id"], patchOperations=ops)
        progress.detail(f"updated usage plan {names.usage_plan}: {_describe(api)}")
    else:
        progress.detail(f"usage plan {names.usage_plan} is current: {_describe(api)}")
    return plan["id"]


def _describe(api: ApiConfig) -> str:
    return (
        f"{api.throttle_rate:g} req/s (burst {api.throttle_burst}) and {api.quota_limit} requests per "
        f"{api.quota_period.lower()} per key, stage {api.stage}"
    )


def _plan_patch(
    plan: dict[str, Any], throttle: dict[str, Any], quota: dict[str, Any], stage: dict[str, str]
) -> list[dict[str, str]]:
    ops: list[dict[str, str]] = []
    have_throttle = plan.get("throttle") or {}
    if float(have_throttle.get("rateLimit", -1)) != throttle["rateLimit"]:
        ops.append({"op": "replace", "path": "/throttle/rateLimit", "value": f"{throttle['rateLimit']:g}"})
    if int(have_throttle.get("burstLimit", -1)) != throttle["burstLimit"]:
        ops.append({"op": "replace", "path": "/throttle/burstLimit", "value": str(throttle["burstLimit"])})
    have_quota = plan.get("quota") or {}
    if int(have_quota.get("limit", -1)) != quota["limit"]:
        ops.append({"op": "replace", "path": "/quota/limit", "value": str(quota["limit"])})
    if have_quota.get("period") != quota["period"]:
        ops.append({"op": "replace", "path": "/quota/period", "value": quota["period"]})
    stages = plan.get("apiStages") or []
    for other in stages:
        if other["apiId"] != stage["apiId"]:  # left over from an API that was deleted and recreated
            ops.append({"op": "remove", "path": "/apiStages", "value": f"{other['apiId']}:{other['stage']}"})
    if not any(s["apiId"] == stage["apiId"] and s["stage"] == stage["stage"] for s in stages):
        ops.append({"op": "add", "path": "/apiStages", "value": f"{stage['apiId']}:{stage['stage']}"})
    return ops


def delete_rest_api(apigateway: Any, names: Names) -> str | None:
    api = find_rest_api(apigateway, names.api)
    if api is None:
        return None
    apigateway.delete_rest_api(restApiId=api["id"])
    return api["id"]


def delete_usage_plan(apigateway: Any, names: Names) -> list[str] | None:
    """Detach the plan from its stages, delete this project's keys on it and the plan.

    Returns the deleted key ids, or None when there is no plan. The stages are detached first: AWS
    refuses to delete a plan (and, later, its REST API) while the plan still names a stage.
    """
    plan = find_usage_plan(apigateway, names.usage_plan)
    if plan is None:
        return None
    stages = plan.get("apiStages") or []
    if stages:
        apigateway.update_usage_plan(
            usagePlanId=plan["id"],
            patchOperations=[
                {"op": "remove", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"} for s in stages
            ],
        )
    deleted = []
    for key in apigateway.get_usage_plan_keys(usagePlanId=plan["id"], limit=500).get("items", []):
        apigateway.delete_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"])
        if key["name"].startswith(f"{names.prefix}-"):
            apigateway.delete_api_key(apiKey=key["id"])
            deleted.append(key["id"])
    apigateway.delete_usage_plan(usagePlanId=plan["id"])
    return deleted
