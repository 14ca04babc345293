"""The deploy configuration: file values, overrides and up-front validation with clear messages."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pipeline.cloud.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_override


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deploy.toml"
    path.write_text(text)
    return path


def test_checked_in_file_loads_and_mirrors_the_toml() -> None:
    config = load_config()
    document = tomllib.loads(DEFAULT_CONFIG_PATH.read_text())
    for section, attr in (
        ("project", "project"),
        ("endpoint", "endpoint"),
        ("lambda", "lambda_"),
        ("api", "api"),
    ):
        for key, value in document[section].items():
            assert getattr(getattr(config, attr), key) == value, f"{section}.{key}"
    assert config.lambda_.timeout_seconds == 28
    assert config.api.quota_period == "DAY"
    assert config.endpoint.serverless is False
    assert config.source == DEFAULT_CONFIG_PATH


def test_environment_overrides_the_file_and_cli_overrides_both(tmp_path) -> None:
    path = write(tmp_path, '[endpoint]\nmode = "realtime"\n[api]\nthrottle_rate = 5.0\n')
    env = {
        "ADULT_ENDPOINT_MODE": "serverless",
        "ADULT_API_THROTTLE_RATE": "7.5",
        "ADULT_LAMBDA_MEMORY_MB": "1024",
    }
    config = load_config(path, environ=env)
    assert config.endpoint.mode == "serverless" and config.endpoint.serverless
    assert config.api.throttle_rate == 7.5
    assert config.lambda_.memory_mb == 1024
    config = load_config(path, overrides={"api.throttle_rate": "9", "endpoint.mode": "realtime"}, environ=env)
    assert config.api.throttle_rate == 9.0 and config.endpoint.mode == "realtime"


def test_missing_keys_take_documented_defaults(tmp_path) -> None:
    config = load_config(write(tmp_path, ""), environ={})
    assert config.project.name_prefix == "adult-income"
    assert config.endpoint.bake_seconds == 300
    assert config.lambda_.runtime == "python3.12"


def test_every_problem_is_reported_at_once_with_its_source(tmp_path) -> None:
    path = write(
        tmp_path,
        "[project]\n"
        'name_prefix = "Adult_Income"\n'
        'region = "moon-1"\n'
        "log_retention_days = 10\n"
        "[endpoint]\n"
        "autoscaling_min = 5\n"
        "serverless_memory_mb = 1500\n"
        "[lambda]\n"
        "timeout_seconds = 29\n"
        "[api]\n"
        "throttle_burst = true\n"
        'quota_period = "YEAR"\n'
        "typo_key = 1\n"
        "[extra]\n",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={"ADULT_ENDPOINT_MODE": "gpu"})
    problems = "\n".join(error.value.problems)
    expected = [
        "name_prefix 'Adult_Income' must be 3-24 characters",
        "project.region 'moon-1' is not an AWS region",
        "endpoint.autoscaling_min (5) must not exceed endpoint.autoscaling_max (4)",
        "endpoint.serverless_memory_mb (1500) must be one of 1024",
        "lambda.timeout_seconds (29) must be between 3 and 28: API Gateway stops waiting after 29 s",
        "project.log_retention_days (10) must be a value CloudWatch accepts",
        "api.throttle_burst must be an integer, got True",
        "api.quota_period 'YEAR' must be DAY, WEEK or MONTH",
        "unknown key api.typo_key",
        "unknown section [extra]",
        "endpoint.mode 'gpu' must be 'realtime' or 'serverless' (endpoint.mode from ADULT_ENDPOINT_MODE)",
    ]
    for fragment in expected:
        assert fragment in problems
    assert len(error.value.problems) == len(expected)


def test_bad_override_values_name_the_override(tmp_path) -> None:
    with pytest.raises(
        ConfigError, match=r"endpoint.initial_instance_count must be an integer, got 'two' \(from --set\)"
    ):
        load_config(write(tmp_path, ""), overrides={"endpoint.initial_instance_count": "two"}, environ={})
    with pytest.raises(ConfigError, match=r"override api.nope: unknown key"):
        load_config(write(tmp_path, ""), overrides={"api.nope": "1"}, environ={})


def test_initial_count_must_lie_within_the_autoscaling_range(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"initial_instance_count \(6\) must lie between"):
        load_config(write(tmp_path, "[endpoint]\ninitial_instance_count = 6\n"), environ={})


def test_unreadable_files_are_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", environ={})
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(write(tmp_path, "[api\n"), environ={})


def test_parse_override() -> None:
    assert parse_override("api.stage=dev") == ("api.stage", "dev")
    assert parse_override("project.bucket=") == ("project.bucket", "")
    with pytest.raises(ConfigError):
        parse_override("stage=dev")


def test_config_is_frozen() -> None:
    config = load_config(environ={})
    with pytest.raises(AttributeError):
        config.api.stage = "dev"  # type: ignore[misc]
