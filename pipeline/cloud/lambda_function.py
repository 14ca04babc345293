"""The Lambda proxy: its log group, the function (zip of ``lambda_proxy/``) and API Gateway's permission.

The zip is byte-for-byte reproducible (sorted entries, fixed timestamps), so its SHA-256 equals the
deployed CodeSha256 when nothing changed and deploy leaves the function alone.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from pipeline.cloud.clients import error_code
from pipeline.cloud.config import DeployConfig
from pipeline.cloud.iam import retry_while_role_propagates
from pipeline.cloud.names import Names
from pipeline.cloud.progress import Progress

HANDLER = "lambda_proxy.handler.handler"
# The proxy is pure Python; Graviton functions cost about 20% less per GB-second than x86_64.
ARCHITECTURE = "arm64"
CONNECT_TIMEOUT_S = 2
# Left after connect + read for the function to answer before its own timeout.
ANSWER_MARGIN_S = 2
SERVERLESS_PAYLOAD_MB = 4  # Serverless Inference accepts 4 MB, real-time 6 MB


def build_zip(package_dir: Path) -> bytes:
    """A reproducible zip with ``lambda_proxy/*.py`` at its root's ``lambda_proxy/`` folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(package_dir.glob("*.py")):
            info = zipfile.ZipInfo(f"{package_dir.name}/{path.name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def code_sha256(zip_bytes: bytes) -> str:
    """Lambda's CodeSha256: base64 of the zip's SHA-256."""
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def environment(config: DeployConfig, names: Names) -> dict[str, str]:
    """The function's environment: the endpoint and a time budget that fits the function timeout."""
    read_timeout = max(1, config.lambda_.timeout_seconds - CONNECT_TIMEOUT_S - ANSWER_MARGIN_S)
    env = {
        "ENDPOINT_NAME": names.endpoint,
        "INVOKE_CONNECT_TIMEOUT_S": str(CONNECT_TIMEOUT_S),
        "INVOKE_READ_TIMEOUT_S": str(read_timeout),
    }
    if config.endpoint.serverless:
        env["MAX_PAYLOAD_MB"] = str(SERVERLESS_PAYLOAD_MB)
    return env


def _desired_configuration(config: DeployConfig, names: Names, role_arn: str) -> dict[str, Any]:
    return {
        "Runtime": config.lambda_.runtime,
        "Role": role_arn,
        "Handler": HANDLER,
        "Timeout": config.lambda_.timeout_seconds,
        "MemorySize": config.lambda_.memory_mb,
        "Environment": {"Variables": environment(config, names)},
        "Description": f"API Gateway -> SageMaker endpoint {names.endpoint}",
    }


def ensure_function(
    lambda_: Any,
    config: DeployConfig,
    names: Names,
    role_arn: str,
    zip_bytes: bytes,
    progress: Progress,
    sleep: Any,
) -> str:
    """Create the function or update its code/configuration where they differ; returns what happened."""
    desired = _desired_configuration(config, names, role_arn)
    try:
        current = lambda_.get_function(FunctionName=names.function)["Configuration"]
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        current = None
    if current is None:
        retry_while_role_propagates(
            lambda: lambda_.create_function(
                FunctionName=names.function,
                Code={"ZipFile": zip_bytes},
                Architectures=[ARCHITECTURE],
                Tags=names.tags,
                **desired,
            ),
            _role_not_ready,
            progress,
            sleep=sleep,
        )
        lambda_.get_waiter("function_active_v2").wait(FunctionName=names.function)
        progress.detail(f"created function {names.function}")
        return "created"
    changed = []
    if current.get("CodeSha256") != code_sha256(zip_bytes):
        lambda_.update_function_code(
            FunctionName=names.function, ZipFile=zip_bytes, Architectures=[ARCHITECTURE]
        )
        lambda_.get_waiter("function_updated_v2").wait(FunctionName=names.function)
        changed.append("code")
    if _config_differs(current, desired):
        lambda_.update_function_configuration(FunctionName=names.function, **desired)
        lambda_.get_waiter("function_updated_v2").wait(FunctionName=names.function)
        changed.append("configuration")
    progress.detail(
        f"function {names.function}: " + (f"updated {' and '.join(changed)}" if changed else "up to date")
    )
    return "updated" if changed else "unchanged"


def _config_differs(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    for key, value in desired.items():
        have = current.get(key)
        if key == "Environment":
            have = {"Variables": (current.get("Environment") or {}).get("Variables", {})}
        if have != value:
            return True
    return False


def _role_not_ready(exc: Exception) -> bool:
    return error_code(exc) == "InvalidParameterValueException" and "assume" in str(exc).lower()


def ensure_permission(
    lambda_: Any, names: Names, statement_id: str, source_arn: str, progress: Progress
) -> bool:
    """Allow API Gateway to invoke the function, only from ``source_arn``; True if (re)added."""
    for statement in _policy_statements(lambda_, names.function):
        if statement.get("Sid") == statement_id:
            if source_arn in json.dumps(statement.get("Condition", {})):
                return False
            lambda_.remove_permission(FunctionName=names.function, StatementId=statement_id)
    lambda_.add_permission(
        FunctionName=names.function,
        StatementId=statement_id,
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=source_arn,
        SourceAccount=names.account_id,
    )
    progress.detail(f"allowed API Gateway to invoke {names.function} from {source_arn}")
    return True


def _policy_statements(lambda_: Any, function: str) -> list[dict[str, Any]]:
    try:
        return json.loads(lambda_.get_policy(FunctionName=function)["Policy"]).get("Statement", [])
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return []
        raise


def function_exists(lambda_: Any, names: Names) -> bool:
    try:
        lambda_.get_function(FunctionName=names.function)
        return True
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise


def delete_function(lambda_: Any, names: Names) -> bool:
    try:
        lambda_.delete_function(FunctionName=names.function)
        return True
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise
