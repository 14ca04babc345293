"""API keys on the project's usage plan: create, list, revoke; and where a new key's value goes.

A key's value is secret: it is written once to ``<secrets dir>/<key name>.key`` (mode 0600,
directory 0700) or, when the user asks for it, printed once. It is never passed to the progress
output. The directory is ``$SECRETS_DIR`` if set, else ``<repo>/.secrets`` (gitignored).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipeline.cloud import apigateway as api_gateway
from pipeline.cloud.errors import CloudError, NotDeployed
from pipeline.cloud.names import Names

SECRETS_DIR = Path(__file__).resolve().parents[2] / ".secrets"


def secrets_dir() -> Path:
    """Where key files go: ``$SECRETS_DIR`` or the repository's ``.secrets``."""
    return Path(os.environ["SECRETS_DIR"]) if os.environ.get("SECRETS_DIR") else SECRETS_DIR


def plan_id(apigateway: Any, names: Names) -> str:
    plan = api_gateway.find_usage_plan(apigateway, names.usage_plan)
    if plan is None:
        raise NotDeployed(
            f"usage plan {names.usage_plan} does not exist; run `python -m pipeline deploy` first"
        )
    return plan["id"]


def create_key(apigateway: Any, names: Names, usage_plan_id: str, name: str) -> tuple[str, str]:
    """Create an enabled key named ``<prefix>-<name>`` on the plan; returns (key id, key value)."""
    key_name = names.key_name(name)
    for existing in list_keys(apigateway, usage_plan_id):
        if existing["name"] == key_name:
            raise CloudError(
                f"a key named {key_name} already exists ({existing['id']}); revoke it or pick another name"
            )
    # A run stopped between CreateApiKey and CreateUsagePlanKey left the key off the plan: take it
    # rather than make a second one that teardown would have to find.
    detached = [k for k in detached_keys(apigateway, names) if k["name"] == key_name]
    if detached:
        key = apigateway.get_api_key(apiKey=detached[0]["id"], includeValue=True)
    else:
        key = apigateway.create_api_key(
            name=key_name, description=f"{names.api} client key", enabled=True, tags=names.tags
        )
    apigateway.create_usage_plan_key(usagePlanId=usage_plan_id, keyId=key["id"], keyType="API_KEY")
    return key["id"], key["value"]


def detached_keys(apigateway: Any, names: Names) -> list[dict[str, Any]]:
    """This project's keys (its name prefix and tag) that are on no usage plan: id and name.

    They are left by a deploy or teardown that stopped between the key and its plan attachment.
    """
    on_a_plan = {
        item["id"]
        for plan in apigateway.get_usage_plans(limit=500).get("items", [])
        for item in apigateway.get_usage_plan_keys(usagePlanId=plan["id"], limit=500).get("items", [])
    }
    return [
        {"id": key["id"], "name": key["name"]}
        for key in apigateway.get_api_keys(nameQuery=f"{names.prefix}-", limit=500).get("items", [])
        if key.get("name", "").startswith(f"{names.prefix}-")
        and (key.get("tags") or {}).get("project") == names.prefix
        and key["id"] not in on_a_plan
    ]


def list_keys(apigateway: Any, usage_plan_id: str) -> list[dict[str, Any]]:
    """Keys on the plan: id, name, enabled, created (never the value)."""
    rows = []
    for item in apigateway.get_usage_plan_keys(usagePlanId=usage_plan_id, limit=500).get("items", []):
        key = apigateway.get_api_key(apiKey=item["id"], includeValue=False)
        rows.append(
            {
                "id": key["id"],
                "name": key.get("name", ""),
                "enabled": bool(key.get("enabled")),
                "created": str(key.get("createdDate", "")),
            }
        )
    return sorted(rows, key=lambda r: r["name"])


def revoke_key(apigateway: Any, usage_plan_id: str, key_id: str) -> str:
    """Remove the key from the plan and delete it; returns its name. Only keys on our plan qualify."""
    keys = {k["id"]: k for k in list_keys(apigateway, usage_plan_id)}
    if key_id not in keys:
        raise CloudError(f"no key {key_id} on this project's usage plan (see `python -m pipeline keys list`)")
    apigateway.delete_usage_plan_key(usagePlanId=usage_plan_id, keyId=key_id)
    apigateway.delete_api_key(apiKey=key_id)
    return keys[key_id]["name"]


def delete_detached(apigateway: Any, names: Names) -> list[str]:
    """Delete this project's keys that are on no usage plan; returns their names."""
    deleted = []
    for key in detached_keys(apigateway, names):
        apigateway.delete_api_key(apiKey=key["id"])
        deleted.append(key["name"])
    return deleted


def write_secret(name: str, value: str, directory: Path | None = None) -> Path:
    """Write ``value`` to ``<directory>/<name>.key`` readable by the owner only; returns the path."""
    directory = directory or secrets_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    path = directory / f"{name}.key"
    # Create with 0600 from the start (no window in which the file is readable by others).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    os.chmod(path, 0o600)
    return path
