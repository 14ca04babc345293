"""Every AWS resource name, ARN and tag the deployment uses, derived from the configuration.

Names are deterministic so that deploy, status, keys and teardown find the same resources without
any local state file; everything is also tagged ``project=<name_prefix>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.cloud.config import DeployConfig, partition_of

VARIANT_NAME = "AllTraffic"
MANAGED_BY = "python -m pipeline deploy"
# Public DNS suffix of each partition the configuration accepts (execute-api and ECR hosts).
DNS_SUFFIX = {"aws": "amazonaws.com", "aws-cn": "amazonaws.com.cn", "aws-us-gov": "amazonaws.com"}


@dataclass(frozen=True)
class Names:
    prefix: str
    region: str
    account_id: str
    bucket: str
    stage: str
    partition: str = "aws"

    def arn(self, service: str, resource: str, region: str | None = None, account: str | None = None) -> str:
        """``arn:<partition>:<service>:<region>:<account>:<resource>`` (region/account default to ours)."""
        region = self.region if region is None else region
        account = self.account_id if account is None else account
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    # --- storage and image -------------------------------------------------------------------
    @property
    def repository(self) -> str:
        return self.prefix

    @property
    def s3_prefix(self) -> str:
        """Every object the deployment writes lives under this key prefix (the IAM scope)."""
        return self.prefix

    @property
    def training_data_prefix(self) -> str:
        return f"{self.prefix}/training-data"

    @property
    def training_output_prefix(self) -> str:
        return f"{self.prefix}/training-output"

    # --- IAM -------------------------------------------------------------------------------
    @property
    def sagemaker_role(self) -> str:
        return f"{self.prefix}-sagemaker-execution"

    @property
    def lambda_role(self) -> str:
        return f"{self.prefix}-lambda-proxy"

    def role_arn(self, role_name: str) -> str:
        return self.arn("iam", f"role/{role_name}", region="")

    # --- SageMaker ---------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return self.prefix

    @property
    def endpoint_arn(self) -> str:
        # SageMaker ARNs carry the name in lower case; the prefix is lower case by validation.
        return self.arn("sagemaker", f"endpoint/{self.endpoint}")

    @property
    def training_job_prefix(self) -> str:
        return f"{self.prefix}-train"

    @property
    def model_prefix(self) -> str:
        return f"{self.prefix}-model"

    @property
    def endpoint_config_prefix(self) -> str:
        return f"{self.prefix}-config"

    @property
    def endpoint_log_group(self) -> str:
        return f"/aws/sagemaker/Endpoints/{self.endpoint}"

    @property
    def training_log_group(self) -> str:
        """Shared by every training job in the account and region (SageMaker's own name)."""
        return "/aws/sagemaker/TrainingJobs"

    @property
    def scaling_resource_id(self) -> str:
        return f"endpoint/{self.endpoint}/variant/{VARIANT_NAME}"

    @property
    def scaling_policy(self) -> str:
        return f"{self.prefix}-invocations-per-instance"

    @property
    def rollback_alarms(self) -> tuple[str, ...]:
        return (f"{self.prefix}-invocation-5xx", f"{self.prefix}-model-latency")

    # --- Lambda and API Gateway --------------------------------------------------------------
    @property
    def function(self) -> str:
        return f"{self.prefix}-proxy"

    @property
    def function_arn(self) -> str:
        return self.arn("lambda", f"function:{self.function}")

    @property
    def function_log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    @property
    def api(self) -> str:
        return f"{self.prefix}-api"

    @property
    def usage_plan(self) -> str:
        return f"{self.prefix}-plan"

    def key_name(self, name: str) -> str:
        """The API Gateway name of a key the user calls ``name``."""
        return name if name.startswith(f"{self.prefix}-") else f"{self.prefix}-{name}"

    @property
    def default_key(self) -> str:
        return self.key_name("default")

    def invoke_url(self, api_id: str) -> str:
        return f"https://{api_id}.execute-api.{self.region}.{DNS_SUFFIX[self.partition]}/{self.stage}"

    @property
    def resource_group(self) -> str:
        return self.prefix

    # --- operations --------------------------------------------------------------------------
    @property
    def dashboard(self) -> str:
        return self.prefix

    @property
    def alarm_topic(self) -> str:
        return f"{self.prefix}-alarms"

    @property
    def alarm_topic_arn(self) -> str:
        return self.arn("sns", self.alarm_topic)

    def operational_alarm(self, what: str) -> str:
        """Name of the operational alarm watching ``what`` (e.g. 'api-5xx-rate')."""
        return f"{self.prefix}-ops-{what}"

    @property
    def query_folder(self) -> str:
        """Logs Insights saved queries are named '<folder>/<query>' (the console shows a folder)."""
        return self.prefix

    # --- tags ------------------------------------------------------------------------------
    @property
    def tags(self) -> dict[str, str]:
        return {"project": self.prefix, "managed-by": MANAGED_BY}

    def tag_list(self) -> list[dict[str, str]]:
        """Tags as [{Key, Value}] (SageMaker, IAM, ECR style)."""
        return [{"Key": k, "Value": v} for k, v in self.tags.items()]


def names_for(config: DeployConfig, account_id: str) -> Names:
    """The names for ``config`` in ``account_id`` (the bucket defaults to prefix-account-region)."""
    project = config.project
    bucket = project.bucket or f"{project.name_prefix}-{account_id}-{project.region}"
    return Names(
        project.name_prefix,
        project.region,
        account_id,
        bucket,
        config.api.stage,
        partition_of(project.region),
    )
