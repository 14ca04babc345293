"""Test-only extensions of moto 5.2 where it lacks what the deploy uses (see shared moto-coverage §8.1).

* ``UpdateEndpoint`` is not implemented in moto: added here. It switches the endpoint to the new
  config as SageMaker does after a successful blue/green update, records the request (so tests can
  assert the DeploymentConfig), and can simulate an automatic rollback.
* moto evaluates a bucket policy's conditions only for ``StringEquals`` and treats any other
  operator as matching, so the TLS-only statement (Deny when ``aws:SecureTransport`` is false) denies
  every request. boto3 always calls over HTTPS, so the shim drops exactly that statement from the
  evaluation, as AWS would find its condition false.
* CloudWatch Logs Insights saved queries (``PutQueryDefinition``, ``DescribeQueryDefinitions``,
  ``DeleteQueryDefinition``) are not implemented: a per-test store answers them like AWS (name
  prefix filter; an update keeps its id).
* Training jobs never run in moto: a botocore hook writes the ``model.tar.gz`` a real job would
  leave at its S3ModelArtifacts path, and ``fail_next_training_job`` makes the next job end Failed
  with a FailureReason (what SageMaker copies from /opt/ml/output/failure).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class MotoShims:
    update_calls: list[dict[str, Any]] = field(default_factory=list)
    # Set to a reason to make the next UpdateEndpoint roll back instead of switching config.
    rollback_reason: str | None = None
    # Set to a reason to make the next CreateTrainingJob end Failed with it.
    training_failure: str | None = None


def install(monkeypatch: pytest.MonkeyPatch) -> MotoShims:
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    shims = MotoShims()

    def update_endpoint(self: Any) -> ActionResult:
        backend = self.sagemaker_backend
        name = self._get_param("EndpointName")
        if name not in backend.endpoints:
            raise ValidationError(message=f"Could not find endpoint '{name}'.")
        endpoint = backend.endpoints[name]
        config_name = self._get_param("EndpointConfigName")
        config = backend.describe_endpoint_config(config_name)  # raises for an unknown config
        shims.update_calls.append(
            {
                "EndpointName": name,
                "EndpointConfigName": config_name,
                "DeploymentConfig": self._get_param("DeploymentConfig"),
                "RetainAllVariantProperties": self._get_param("RetainAllVariantProperties"),
            }
        )
        if shims.rollback_reason:
            endpoint.failure_reason = shims.rollback_reason
            shims.rollback_reason = None
        else:
            endpoint.endpoint_config_name = config_name
            endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
            endpoint.data_capture_config = config.get("DataCaptureConfig", {})
        endpoint.last_modified_time = utcnow()
        return ActionResult({"EndpointArn": endpoint.arn})

    original_create = SageMakerModelBackend.create_training_job

    def create_training_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        job = original_create(self, *args, **kwargs)
        if shims.training_failure:
            job.training_job_status = "Failed"
            job.secondary_status = "Failed"
            job.failure_reason = shims.training_failure
            shims.training_failure = None
        return job

    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = json.loads(self.policy.decode())
        insecure_only = {"Bool": {"aws:SecureTransport": "false"}}
        policy["Statement"] = [st for st in policy["Statement"] if st.get("Condition") != insecure_only]
        return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)

    monkeypatch.setattr(FakeBucket, "get_permission", get_permission)
    _install_query_definitions(monkeypatch)
    monkeypatch.setattr(SageMakerResponse, "update_endpoint", update_endpoint, raising=False)
    monkeypatch.setattr(SageMakerModelBackend, "create_training_job", create_training_job)
    return shims


def write_artifacts_like_a_training_job(session: Any, writer: Any = None) -> None:
    """Register a hook on ``session``: after CreateTrainingJob, put model.tar.gz where that job would.

    Only the job just created: an older job's artifact that is gone (teardown deletes the bucket, but
    SageMaker keeps the job history) must stay gone, as it would in AWS. The writing is done through
    ``writer`` (default ``session``): the training job's own identity.
    """
    writer = writer or session

    def after_create(http_response: Any, parsed: Any, model: Any, **kwargs: Any) -> None:
        if http_response.status_code >= 300:  # refused: no job, no artifact
            return
        client = writer.client("sagemaker", region_name="us-east-1")
        job = client.describe_training_job(TrainingJobName=parsed["TrainingJobArn"].split("/")[-1])
        if job["TrainingJobStatus"] != "Completed":
            return
        uri = job["ModelArtifacts"]["S3ModelArtifacts"]
        bucket, key = uri[5:].split("/", 1)
        writer.client("s3", region_name="us-east-1").put_object(Bucket=bucket, Key=key, Body=b"model.tar.gz")

    session.events.register("after-call.sagemaker.CreateTrainingJob", after_create)


def _install_query_definitions(monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    from moto.logs.responses import LogsResponse

    def store_of(response: Any) -> dict[str, dict[str, Any]]:
        # Kept on moto's own logs backend, so it is reset exactly when moto's state is.
        backend = response.logs_backend
        if not hasattr(backend, "query_definitions_shim"):
            backend.query_definitions_shim = {}
        return backend.query_definitions_shim

    def put_query_definition(self: Any) -> str:
        store = store_of(self)
        query_id = self._get_param("queryDefinitionId") or str(uuid.uuid4())
        store[query_id] = {
            "queryDefinitionId": query_id,
            "name": self._get_param("name"),
            "queryString": self._get_param("queryString"),
            "logGroupNames": self._get_param("logGroupNames") or [],
        }
        return json.dumps({"queryDefinitionId": query_id})

    def describe_query_definitions(self: Any) -> str:
        store = store_of(self)
        prefix = self._get_param("queryDefinitionNamePrefix") or ""
        found = [q for q in store.values() if q["name"].startswith(prefix)]
        return json.dumps({"queryDefinitions": sorted(found, key=lambda q: q["name"])})

    def delete_query_definition(self: Any) -> str:
        store = store_of(self)
        existed = store.pop(self._get_param("queryDefinitionId"), None) is not None
        return json.dumps({"success": existed})

    monkeypatch.setattr(LogsResponse, "put_query_definition", put_query_definition, raising=False)
    monkeypatch.setattr(LogsResponse, "describe_query_definitions", describe_query_definitions, raising=False)
    monkeypatch.setattr(LogsResponse, "delete_query_definition", delete_query_definition, raising=False)
