"""``python -m pipeline capacity``: arguments, exit statuses, messages, --json, and the derived default."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib

import pytest

from pipeline.capacity.measurement import ENGINES_RESULT
from pipeline.capacity.plan import SCALE_OUT_HEADROOM, UTILISATION, derived_default_target
from pipeline.cli import main
from pipeline.cloud import cost
from pipeline.cloud.config import DEFAULT_CONFIG_PATH, EndpointConfig, load_config


def _run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        status = main(["capacity", *args])
    except SystemExit as exc:  # argparse's usage errors
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("value", ["0", "-5", "nan", "fast"])
def test_a_peak_that_is_not_a_positive_number_is_a_usage_error(capsys, value: str) -> None:
    status, out, err = _run(capsys, "--peak-rps", value)
    assert status == 2 and out == ""
    assert "--peak-rps must be" in err and value in err
    assert "Traceback" not in err


def test_a_p99_target_that_is_not_positive_is_a_usage_error(capsys) -> None:
    status, _, err = _run(capsys, "--peak-rps", "10", "--p99-ms", "0")
    assert status == 2 and "--p99-ms must be greater than 0, got 0" in err


def test_an_instance_type_missing_from_the_table_exits_2_naming_it(capsys, bench_file) -> None:
    status, out, err = _run(
        capsys, "--peak-rps", "10", "--bench", str(bench_file), "--set", "endpoint.instance_type=ml.r5.large"
    )
    assert status == 2 and out == ""
    assert err.startswith("error: instance type 'ml.r5.large' is not in the instance-type table")


def test_an_invalid_configuration_exits_2(capsys, bench_file) -> None:
    status, _, err = _run(
        capsys, "--peak-rps", "10", "--bench", str(bench_file), "--set", "endpoint.mode=gpu"
    )
    assert status == 2 and "endpoint.mode 'gpu' must be 'realtime' or 'serverless'" in err


def test_an_unreachable_p99_target_exits_1_with_the_measured_points(capsys, bench_file) -> None:
    status, out, err = _run(capsys, "--peak-rps", "10", "--bench", str(bench_file), "--p99-ms", "1")
    assert status == 1 and out == ""
    assert "no point in" in err and "within 1 ms" in err and "2 ms at 1 connections" in err


def test_a_missing_benchmark_file_exits_1(capsys, tmp_path) -> None:
    status, _, err = _run(capsys, "--peak-rps", "10", "--bench", str(tmp_path / "none.json"))
    assert status == 1 and "does not exist" in err


def test_json_output_carries_the_plan(capsys, monkeypatch, bench_file, prices_file) -> None:
    monkeypatch.setattr(cost, "PRICES_PATH", prices_file)
    status, out, err = _run(
        capsys,
        "--peak-rps",
        "1000",
        "--p99-ms",
        "3",
        "--bench",
        str(bench_file),
        "--set",
        "lambda.memory_mb=1024",
        "--json",
    )
    assert status == 0, err
    data = json.loads(out)
    assert data["point"] == {"connections": 1, "rps": 1000.0, "p99_ms": 2.0}
    assert data["measurement"]["cpus"] == 2 and data["measurement"]["engine"] == "onnx"
    assert data["target_per_minute"] == 29_400
    assert (data["instances_for_peak"], data["instances_at_target"]) == (2, 3)
    assert data["throttle"] == {"rate": 1000.0, "burst": 2000}
    assert (data["lambda_concurrency"], data["lambda_reserved"]) == (100, 200)
    assert data["realtime"]["endpoint"] == pytest.approx(0.10 * 3 * 730)
    assert data["serverless"]["endpoint"] == pytest.approx(10_512.0)
    assert data["factors"]["utilisation"] == 0.7 and data["factors"]["scale_out_headroom"] == 0.7
    assert "endpoint-scaling-loadtest" in data["sources"]["autoscaling target formula and safety factor 0.5"]


def test_the_human_output_names_the_source_the_machine_and_the_target(capsys, bench_file) -> None:
    status, out, _ = _run(capsys, "--peak-rps", "1000", "--bench", str(bench_file))
    assert status == 0
    assert f"measured: {bench_file}" in out
    assert "machine: 2 CPUs (recorded in" in out and "CPU model not recorded" in out
    assert "ml.m5.large (2 vCPUs, 8 GiB" in out
    assert "SageMakerVariantInvocationsPerInstance: 58,800 per instance per minute" in out
    assert "rate 1,000/s, burst 2,000" in out


def test_the_configured_default_target_is_the_one_derived_from_the_benchmark() -> None:
    """config/deploy.toml and EndpointConfig carry what `capacity` derives for the default instance type."""
    derived = derived_default_target()
    fix = (
        f"re-derive: `python -m pipeline capacity --peak-rps 1` prints {derived}; put it in "
        "config/deploy.toml (endpoint.autoscaling_target_invocations) and EndpointConfig"
    )
    toml = tomllib.loads(DEFAULT_CONFIG_PATH.read_text())["endpoint"]
    assert toml["autoscaling_target_invocations"] == derived, fix
    assert EndpointConfig().autoscaling_target_invocations == derived, fix
    assert toml["instance_type"] == EndpointConfig().instance_type == "ml.m5.large"
    # the same number straight from the file: 60 x the fastest error-free ONNX point x 0.7 x 0.7
    bench = json.loads(ENGINES_RESULT.read_text())
    fastest = max(p["rps"] for p in bench["stacks"]["onnx"]["json_single"] if p["errors"] == 0)
    cpus = bench["machine"]["cpus"]
    assert derived == math.floor(60 * fastest / cpus * 2 * UTILISATION * SCALE_OUT_HEADROOM + 1e-9)


def test_the_command_reports_the_configured_target_as_derived(capsys) -> None:
    status, out, _ = _run(capsys, "--peak-rps", "1", "--json")
    assert status == 0
    data = json.loads(out)
    assert (
        data["target_per_minute"]
        == data["configured_target"]
        == load_config().endpoint.autoscaling_target_invocations
    )


def test_the_module_entry_point_runs_the_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "capacity", "--peak-rps", "-1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "argument --peak-rps: --peak-rps must be greater than 0, got -1" in proc.stderr
