"""Deployment configuration: ``config/deploy.toml`` plus environment and command-line overrides.

Precedence (lowest first): the TOML file, environment variables ``ADULT_<SECTION>_<KEY>`` (for
example ``ADULT_ENDPOINT_MODE=serverless``), then explicit overrides (the CLI's
``--set section.key=value``). Everything is validated up front and every problem is reported at once,
each naming the key and where its value came from, so a deploy never fails half-way on a typo.

The result is a frozen dataclass tree whose attribute names mirror the TOML; the ``[lambda]`` section
is ``cfg.lambda_`` because ``lambda`` is a Python keyword.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

if TYPE_CHECKING:
    from pipeline.monitoring.thresholds import Thresholds

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "config" / "deploy.toml"
ENV_PREFIX = "ADULT_"

# API Gateway's REST integration timeout is 29 s; the Lambda must finish first so the caller gets the
# Lambda's JSON error rather than the gateway's bare 504.
API_GATEWAY_TIMEOUT_SECONDS = 29
# The retention values CloudWatch Logs accepts (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
# A prefix of at most 24 characters keeps every derived name inside AWS's limits (63 for SageMaker
# names, 64 for IAM roles) with room for the suffixes in pipeline.cloud.names.
_NAME_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# Python runtimes Lambda supports and the day each is deprecated (Lambda's runtime support policy:
# after that date functions on it can no longer be created, and later not updated either). Re-check
# this table against the "Lambda runtimes" page of the AWS Lambda developer guide when it is near.
LAMBDA_PYTHON_RUNTIMES: dict[str, dt.date] = {
    "python3.11": dt.date(2027, 6, 30),
    "python3.12": dt.date(2028, 10, 31),
    "python3.13": dt.date(2029, 6, 30),
    "python3.14": dt.date(2029, 6, 30),
}
# Partitions deploy supports; ARNs and hostnames differ per partition (arn:aws-cn:..., amazonaws.com.cn).
SUPPORTED_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` lists every problem found, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid deploy configuration:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class ProjectConfig:
    name_prefix: str = "adult-income"
    region: str = "us-east-1"
    bucket: str = ""
    # Every log group deploy manages (Lambda, endpoint; the shared training group only if it has none).
    log_retention_days: int = 14


@dataclass(frozen=True)
class TrainingConfig:
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    max_runtime_seconds: int = 3600
    volume_size_gb: int = 10
    # Files uploaded to the job's `train` and `test` channels (relative paths are from the repo root).
    train_data: str = "data/adult.data.gz"
    test_data: str = "data/adult.test.gz"


@dataclass(frozen=True)
class EndpointConfig:
    mode: str = "realtime"
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = 1
    autoscaling_min: int = 1
    autoscaling_max: int = 4
    # Derived from bench/results/engines.json for ml.m5.large (`python -m pipeline capacity`); a test in
    # tests/capacity keeps it equal to pipeline.capacity.plan.derived_default_target().
    autoscaling_target_invocations: int = 173995
    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5
    # Blue/green updates: how long the new fleet bakes under the rollback alarms before the old one goes.
    bake_seconds: int = 300

    @property
    def serverless(self) -> bool:
        """True when the endpoint runs on SageMaker Serverless Inference instead of instances."""
        return self.mode == "serverless"


@dataclass(frozen=True)
class LambdaConfig:
    # Lambda's CPU grows with memory; 1,024 MB is what docs/performance.md ("The Lambda hop")
    # chose from bench/results/lambda_hop.json: ~0.7 s of init and ~1.9 ms of proxy CPU per call.
    memory_mb: int = 1024
    timeout_seconds: int = 28
    runtime: str = "python3.12"


@dataclass(frozen=True)
class ApiConfig:
    stage: str = "prod"
    throttle_rate: float = 50.0
    throttle_burst: int = 100
    quota_limit: int = 100000
    quota_period: str = "DAY"


@dataclass(frozen=True)
class AlarmsConfig:
    # Who hears about an alarm: an email subscription to the stack's SNS topic ("" = no topic).
    email: str = ""
    # API Gateway 5XXError as a share of Count over 5 minutes.
    api_5xx_percent: float = 1.0
    # The latency SLO: API Gateway p99 Latency over it in 3 of 5 one-minute periods.
    p99_latency_ms: int = 1000
    # Lambda Errors / Throttles summed over 5 minutes.
    lambda_errors: int = 1
    lambda_throttles: int = 1
    # Minutes the endpoint may run at endpoint.autoscaling_max instances before the alarm fires.
    at_max_instances_minutes: int = 15


@dataclass(frozen=True)
class MonitoringConfig:
    # SageMaker Data Capture on the real-time endpoint (request and response), and locally in the
    # local InvokeEndpoint. Serverless endpoints cannot capture (a Serverless Inference exclusion).
    data_capture: bool = False
    capture_sampling_percentage: int = 100
    # Comma-separated media types captured as text (encoding CSV / JSON); any other is base64.
    capture_csv_content_types: str = "text/csv"
    capture_json_content_types: str = "application/json,application/jsonlines"
    # Under the deployment's own key prefix: s3://<bucket>/<name_prefix>/<capture_s3_prefix>/...
    capture_s3_prefix: str = "data-capture"
    # Drift monitor thresholds (python -m pipeline monitor), see docs/monitoring.md.
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    missing_rate_alert: float = 0.05
    unknown_rate_alert: float = 0.01
    positive_rate_alert: float = 0.05
    min_records: int = 500

    def thresholds(self) -> Thresholds:
        """The drift monitor's thresholds from these keys."""
        from pipeline.monitoring.thresholds import Thresholds

        return Thresholds(
            self.psi_warn,
            self.psi_alert,
            self.missing_rate_alert,
            self.unknown_rate_alert,
            self.positive_rate_alert,
            self.min_records,
        )

    @property
    def csv_content_types(self) -> tuple[str, ...]:
        return _media_types(self.capture_csv_content_types)

    @property
    def json_content_types(self) -> tuple[str, ...]:
        return _media_types(self.capture_json_content_types)


def _media_types(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


@dataclass(frozen=True)
class BatchConfig:
    """SageMaker Batch Transform jobs (``python -m pipeline batch s3://... s3://...``)."""

    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    # 0: not sent, so SageMaker asks the container's /execution-parameters (MaxPayloadInMB 6, one
    # concurrent transform per worker); a value here overrides the container.
    max_payload_mb: int = 0
    max_concurrent_transforms: int = 0
    invocations_timeout_seconds: int = 600
    invocations_max_retries: int = 3


@dataclass(frozen=True)
class DeployConfig:
    """The whole deployment configuration; ``source`` is the file it was read from."""

    project: ProjectConfig = field(default_factory=ProjectConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    lambda_: LambdaConfig = field(default_factory=LambdaConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    alarms: AlarmsConfig = field(default_factory=AlarmsConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    source: Path | None = None

    def replace(self, **sections: Any) -> DeployConfig:
        """A copy with whole sections replaced (tests and callers that tweak one section)."""
        return dataclasses.replace(self, **sections)


# TOML section name -> DeployConfig attribute.
SECTIONS: dict[str, str] = {
    "project": "project",
    "training": "training",
    "endpoint": "endpoint",
    "lambda": "lambda_",
    "api": "api",
    "alarms": "alarms",
    "monitoring": "monitoring",
    "batch": "batch",
}


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> DeployConfig:
    """Read, override and validate the deploy configuration.

    ``path`` defaults to ``config/deploy.toml`` in the repository. ``overrides`` maps
    ``"section.key"`` to a value (strings are parsed like environment values). ``environ`` defaults to
    ``os.environ``. Raises :class:`ConfigError` listing every problem.
    """
    source = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    environ = os.environ if environ is None else environ
    try:
        with source.open("rb") as fh:
            document = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"configuration file {source} does not exist"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source} is not valid TOML: {exc}"]) from None

    problems: list[str] = []
    origins: dict[str, str] = {}
    raw = _layer(document, source, environ, overrides or {}, problems, origins)
    sections: dict[str, Any] = {}
    for toml_name, attr in SECTIONS.items():
        cls = _section_class(attr)
        sections[attr] = cls(**raw[toml_name])
    config = DeployConfig(**sections, source=source)
    problems.extend(_with_origins(problem, origins) for problem in validate(config))
    if problems:
        raise ConfigError(problems)
    return config


def parse_override(text: str) -> tuple[str, str]:
    """Split a CLI ``section.key=value`` override; raises ConfigError on a malformed one."""
    key, sep, value = text.partition("=")
    if not sep or "." not in key:
        raise ConfigError([f"override {text!r} is not of the form section.key=value"])
    return key.strip(), value


def _section_class(attr: str) -> type:
    return get_type_hints(DeployConfig)[attr]


def _layer(
    document: Mapping[str, Any],
    source: Path,
    environ: Mapping[str, str],
    overrides: Mapping[str, object],
    problems: list[str],
    origins: dict[str, str],
) -> dict[str, dict[str, Any]]:
    """Merge file, environment and overrides into typed values per section, collecting problems."""
    for section in document:
        if section not in SECTIONS:
            problems.append(f"{source}: unknown section [{section}] (known: {', '.join(SECTIONS)})")
    raw: dict[str, dict[str, Any]] = {}
    for toml_name, attr in SECTIONS.items():
        cls = _section_class(attr)
        hints = get_type_hints(cls)
        table = document.get(toml_name, {})
        if not isinstance(table, dict):
            problems.append(f"{source}: [{toml_name}] must be a table")
            table = {}
        for key in table:
            if key not in hints:
                problems.append(f"{source}: unknown key {toml_name}.{key} (known: {', '.join(hints)})")
        values: dict[str, Any] = {}
        for f in fields(cls):
            typ = hints[f.name]
            value, origin = f.default, "default"
            if f.name in table:
                value, origin = table[f.name], str(source)
            env_name = f"{ENV_PREFIX}{toml_name.upper()}_{f.name.upper()}"
            if env_name in environ:
                value, origin = environ[env_name], env_name
            dotted = f"{toml_name}.{f.name}"
            if dotted in overrides:
                value, origin = overrides[dotted], "--set"
            values[f.name] = _coerce(dotted, value, typ, origin, problems, f.default)
            if origin != str(source) and origin != "default":
                origins[dotted] = origin
        raw[toml_name] = values
    known = {f"{t}.{f.name}" for t, a in SECTIONS.items() for f in fields(_section_class(a))}
    for dotted in overrides:
        if dotted not in known:
            problems.append(f"override {dotted}: unknown key")
    return raw


def _coerce(dotted: str, value: object, typ: type, origin: str, problems: list[str], default: Any) -> Any:
    """Convert ``value`` to ``typ`` (strings from env/CLI are parsed); on failure record and use default."""
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
                return _BOOL_WORDS[value.strip().lower()]
            raise TypeError
        if typ is str:
            if not isinstance(value, str):
                raise TypeError
            return value.strip()
        if typ is int:
            if isinstance(value, bool):
                raise TypeError
            if isinstance(value, str):
                return int(value.strip())
            if isinstance(value, int):
                return value
            raise TypeError
        if typ is float:
            if isinstance(value, bool):
                raise TypeError
            if isinstance(value, str):
                return float(value.strip())
            if isinstance(value, int | float):
                return float(value)
            raise TypeError
    except (TypeError, ValueError):
        problems.append(f"{dotted} must be {_TYPE_WORDS[typ]}, got {value!r} (from {origin})")
        return default
    raise AssertionError(f"unsupported config type {typ} for {dotted}")  # a programming error


_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _with_origins(problem: str, origins: Mapping[str, str]) -> str:
    """Append where overridden values in ``problem`` came from, so an env typo is easy to find."""
    sources = [f"{key} from {origin}" for key, origin in origins.items() if key in problem]
    return f"{problem} ({'; '.join(sources)})" if sources else problem


def validate(config: DeployConfig, today: dt.date | None = None) -> list[str]:
    """Semantic checks across keys; returns the list of problems (empty when valid)."""
    p: list[str] = []
    proj, tr, ep, lm, api = config.project, config.training, config.endpoint, config.lambda_, config.api

    if not _NAME_PREFIX.match(proj.name_prefix):
        p.append(
            f"project.name_prefix {proj.name_prefix!r} must be 3-24 characters of lower-case letters, digits "
            "and '-', starting with a letter and not ending with '-'"
        )
    if not _REGION.match(proj.region):
        p.append(f"project.region {proj.region!r} is not an AWS region name such as 'us-east-1'")
    elif proj.region not in sagemaker_regions():
        p.append(
            f"project.region {proj.region!r} is not a region where SageMaker is offered (botocore's "
            f"endpoint data for partitions {', '.join(SUPPORTED_PARTITIONS)})"
        )
    if proj.bucket and (not _BUCKET.match(proj.bucket) or ".." in proj.bucket):
        p.append(f"project.bucket {proj.bucket!r} is not a valid S3 bucket name (3-63 of a-z 0-9 . -)")

    for name, itype in (
        ("training.instance_type", tr.instance_type),
        ("endpoint.instance_type", ep.instance_type),
    ):
        if not _INSTANCE_TYPE.match(itype):
            p.append(f"{name} {itype!r} is not a SageMaker instance type such as 'ml.m5.large'")
    _range(p, "training.instance_count", tr.instance_count, 1, 100)
    _range(p, "training.max_runtime_seconds", tr.max_runtime_seconds, 60, 28 * 24 * 3600)
    _range(p, "training.volume_size_gb", tr.volume_size_gb, 1, 16384)
    if not tr.train_data:
        p.append("training.train_data must name a data file")

    if ep.mode not in ("realtime", "serverless"):
        p.append(f"endpoint.mode {ep.mode!r} must be 'realtime' or 'serverless'")
    _range(p, "endpoint.initial_instance_count", ep.initial_instance_count, 1, 100)
    _range(p, "endpoint.autoscaling_min", ep.autoscaling_min, 1, 100)
    _range(p, "endpoint.autoscaling_max", ep.autoscaling_max, 1, 100)
    if ep.autoscaling_min > ep.autoscaling_max:
        p.append(
            f"endpoint.autoscaling_min ({ep.autoscaling_min}) must not exceed "
            f"endpoint.autoscaling_max ({ep.autoscaling_max})"
        )
    elif not ep.autoscaling_min <= ep.initial_instance_count <= ep.autoscaling_max:
        p.append(
            f"endpoint.initial_instance_count ({ep.initial_instance_count}) must lie between "
            f"autoscaling_min ({ep.autoscaling_min}) and autoscaling_max ({ep.autoscaling_max})"
        )
    _range(p, "endpoint.autoscaling_target_invocations", ep.autoscaling_target_invocations, 1, 1_000_000)
    if ep.serverless_memory_mb not in range(1024, 6145, 1024):
        p.append(
            f"endpoint.serverless_memory_mb ({ep.serverless_memory_mb}) must be one of 1024, 2048, 3072, "
            "4096, 5120, 6144"
        )
    _range(p, "endpoint.serverless_max_concurrency", ep.serverless_max_concurrency, 1, 200)
    if ep.serverless:
        p.extend(_serverless_problems(ep, config.monitoring))
    _range(p, "endpoint.bake_seconds", ep.bake_seconds, 0, 3600)

    _range(p, "lambda.memory_mb", lm.memory_mb, 128, 10240)
    if lm.timeout_seconds >= API_GATEWAY_TIMEOUT_SECONDS or lm.timeout_seconds < 3:
        p.append(
            f"lambda.timeout_seconds ({lm.timeout_seconds}) must be between 3 and "
            f"{API_GATEWAY_TIMEOUT_SECONDS - 1}: API Gateway stops waiting after "
            f"{API_GATEWAY_TIMEOUT_SECONDS} s"
        )
    if proj.log_retention_days not in LOG_RETENTION_DAYS:
        p.append(
            f"project.log_retention_days ({proj.log_retention_days}) must be a value CloudWatch accepts: "
            + ", ".join(map(str, LOG_RETENTION_DAYS))
        )
    p.extend(_lambda_runtime_problems(lm.runtime, today or dt.date.today()))

    if not _STAGE.match(api.stage):
        p.append(f"api.stage {api.stage!r} must be 1-128 of letters, digits, '-' and '_'")
    if not api.throttle_rate > 0:
        p.append(f"api.throttle_rate ({api.throttle_rate}) must be greater than 0 requests per second")
    _range(p, "api.throttle_burst", api.throttle_burst, 1, 5000)
    _range(p, "api.quota_limit", api.quota_limit, 1, 2**31 - 1)
    if api.quota_period not in ("DAY", "WEEK", "MONTH"):
        p.append(f"api.quota_period {api.quota_period!r} must be DAY, WEEK or MONTH")
    p.extend(_alarm_problems(config.alarms))
    p.extend(_monitoring_problems(config.monitoring))
    p.extend(_batch_problems(config.batch))
    return p


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _alarm_problems(al: AlarmsConfig) -> list[str]:
    p: list[str] = []
    if al.email and not _EMAIL.match(al.email):
        p.append(
            f"alarms.email {al.email!r} is not an email address (or leave it empty for no notifications)"
        )
    if not 0 < al.api_5xx_percent <= 100:
        p.append(
            f"alarms.api_5xx_percent ({al.api_5xx_percent}) must be a percentage above 0 and at most 100"
        )
    _range(p, "alarms.p99_latency_ms", al.p99_latency_ms, 1, API_GATEWAY_TIMEOUT_SECONDS * 1000)
    _range(p, "alarms.lambda_errors", al.lambda_errors, 1, 1_000_000)
    _range(p, "alarms.lambda_throttles", al.lambda_throttles, 1, 1_000_000)
    _range(p, "alarms.at_max_instances_minutes", al.at_max_instances_minutes, 5, 1440)
    if al.at_max_instances_minutes % 5:
        p.append(f"alarms.at_max_instances_minutes ({al.at_max_instances_minutes}) must be a multiple of 5")
    return p


# DataCaptureConfig limits (SageMaker API reference): InitialSamplingPercentage 0-100; at most 10 CSV
# and 10 JSON content types, each a type/subtype media type.
_MEDIA_TYPE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9.+-]*/[a-zA-Z0-9][a-zA-Z0-9.+-]*$")
_S3_PREFIX = re.compile(r"^[a-zA-Z0-9!_.*'()/-]{1,200}$")


def _monitoring_problems(m: MonitoringConfig) -> list[str]:
    p: list[str] = []
    _range(p, "monitoring.capture_sampling_percentage", m.capture_sampling_percentage, 0, 100)
    for key, types in (
        ("monitoring.capture_csv_content_types", m.csv_content_types),
        ("monitoring.capture_json_content_types", m.json_content_types),
    ):
        bad = [t for t in types if not _MEDIA_TYPE.match(t) or len(t) > 256]
        if bad:
            p.append(f"{key}: {', '.join(map(repr, bad))} not a media type such as 'text/csv'")
        if len(types) > 10:
            p.append(f"{key} lists {len(types)} media types; SageMaker accepts at most 10")
    if m.data_capture and not (m.csv_content_types or m.json_content_types):
        p.append("monitoring.data_capture needs at least one CSV or JSON content type to capture as text")
    if not _S3_PREFIX.match(m.capture_s3_prefix.strip("/")):
        p.append(
            f"monitoring.capture_s3_prefix {m.capture_s3_prefix!r} must be 1-200 of letters, digits and "
            "!_.*'()/-"
        )
    # The monitor's own rules for its thresholds.
    p.extend(f"monitoring.{problem}" for problem in m.thresholds().problems())
    return p


def _batch_problems(batch: BatchConfig) -> list[str]:
    """CreateTransformJob's ranges (API reference) for the [batch] section."""
    p: list[str] = []
    if not _INSTANCE_TYPE.match(batch.instance_type):
        p.append(
            f"batch.instance_type {batch.instance_type!r} is not a SageMaker instance type "
            "such as 'ml.m5.large'"
        )
    _range(p, "batch.instance_count", batch.instance_count, 1, 100)
    if batch.max_payload_mb:
        _range(p, "batch.max_payload_mb", batch.max_payload_mb, 1, 100)
    if batch.max_concurrent_transforms < 0:
        p.append(
            f"batch.max_concurrent_transforms ({batch.max_concurrent_transforms}) must be 0 "
            "(ask the container) or more"
        )
    _range(p, "batch.invocations_timeout_seconds", batch.invocations_timeout_seconds, 1, 3600)
    _range(p, "batch.invocations_max_retries", batch.invocations_max_retries, 0, 3)
    return p


# Serverless Inference "feature exclusions" (SageMaker developer guide, "Deploy models with Amazon
# SageMaker Serverless Inference"): no GPUs, no network isolation, no VPC, no data capture, no multiple
# variants, no Model Monitor. Deploy never asks for VPC, isolation or more variants on serverless; these
# are the rules a configuration can break.
_GPU_FAMILIES = re.compile(r"^ml\.(g\d|p\d|inf\d|trn\d)")


def _serverless_problems(ep: EndpointConfig, monitoring: MonitoringConfig) -> list[str]:
    problems = []
    if monitoring.data_capture:
        problems.append(
            "monitoring.data_capture is true but endpoint.mode is 'serverless': data capture is one of "
            "the Serverless Inference feature exclusions (SageMaker does not capture for serverless "
            "endpoints); set monitoring.data_capture=false or use endpoint.mode='realtime'"
        )
    if _GPU_FAMILIES.match(ep.instance_type):
        problems.append(
            f"endpoint.instance_type {ep.instance_type!r} is an accelerated instance; Serverless Inference "
            "runs on CPU only (no GPUs): use endpoint.mode='realtime' for it"
        )
    return problems


def _lambda_runtime_problems(runtime: str, today: dt.date) -> list[str]:
    deprecated_on = LAMBDA_PYTHON_RUNTIMES.get(runtime)
    supported = ", ".join(r for r, day in LAMBDA_PYTHON_RUNTIMES.items() if day > today)
    if deprecated_on is None:
        return [f"lambda.runtime {runtime!r} is not a Lambda Python runtime deploy supports ({supported})"]
    if deprecated_on <= today:
        return [
            f"lambda.runtime {runtime!r} was deprecated by Lambda on {deprecated_on.isoformat()}: new "
            f"functions cannot use it; choose one of {supported}"
        ]
    return []


@cache
def sagemaker_regions() -> frozenset[str]:
    """Regions where botocore knows a SageMaker endpoint, in the partitions deploy supports."""
    import boto3  # deferred: config validation runs in commands that may not touch AWS at all

    session = boto3.session.Session()
    return frozenset(
        region
        for partition in SUPPORTED_PARTITIONS
        for region in session.get_available_regions("sagemaker", partition_name=partition)
    )


def partition_of(region: str) -> str:
    """The AWS partition of ``region`` ('aws', 'aws-cn' or 'aws-us-gov')."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _range(problems: list[str], name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        problems.append(f"{name} ({value}) must be between {low} and {high}")
