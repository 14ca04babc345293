"""The capacity plan's arithmetic on a fixture benchmark and price table, checked against hand-worked values.

Fixture (conftest.py): 2 CPUs; ONNX 1,000/s at p99 2 ms, 2,000/s at p99 5 ms, 1,900/s at p99 20 ms.
Worked by hand for ml.m5.large (2 vCPUs), no p99 target -> the 2,000/s point:
  per vCPU 2,000 / 2 = 1,000/s; ceiling 1,000 x 2 = 2,000/s; sustainable 2,000 x 0.7 = 1,400/s;
  target floor(60 x 1,400 x 0.7) = 58,800 per instance per minute.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.capacity.errors import BenchResultError, NoPointWithinP99, UnknownInstanceType
from pipeline.capacity.instances import load_instance_types
from pipeline.capacity.measurement import read_measurement
from pipeline.capacity.plan import make_plan, render
from pipeline.cloud import cost
from pipeline.cloud.config import load_config


def _plan(bench_file: Path, prices_file: Path, peak: float, p99_ms: float | None = None, **overrides: object):
    config = load_config(
        overrides={"lambda.memory_mb": 1024, "endpoint.serverless_memory_mb": 2048, **overrides}
    )
    return make_plan(
        peak,
        config,
        p99_ms=p99_ms,
        measurement=read_measurement(bench_file),
        prices=cost.load_prices(prices_file),
    )


def test_the_hand_worked_values_assume_cost_py_request_duration() -> None:
    assert cost.ASSUMED_REQUEST_SECONDS == 0.1  # the figures below use 100 ms per request


def test_plan_for_1000_rps_on_m5_large_equals_the_hand_worked_numbers(bench_file, prices_file) -> None:
    plan = _plan(bench_file, prices_file, 1000)
    assert (plan.point.connections, plan.point.rps) == (8, 2000.0)
    assert plan.per_vcpu_rps == 1000.0
    assert plan.instance_ceiling_rps == 2000.0
    assert plan.sustainable_rps == pytest.approx(1400.0)
    assert plan.target_per_minute == 58_800
    assert plan.instances_for_peak == 1  # ceil(1,000 / 1,400)
    assert plan.recommended_instances == 2  # at least two, for the Availability Zones
    assert plan.instances_at_target == 2  # ceil(1,000 x 60 / 58,800) = 2
    assert (plan.throttle.rate, plan.throttle.burst) == (1000.0, 2000)
    assert plan.lambda_concurrency == 100  # 1,000/s x 0.1 s
    assert plan.lambda_reserved == 200  # twice that, for the burst
    assert plan.serverless_concurrency == 100 and plan.serverless_feasible
    # 1,000/s x 3,600 s x 730 h = 2,628,000,000 requests a month
    assert plan.requests_per_month == 2_628_000_000
    # real-time: 2 instances x $0.10 x 730 h = $146.00
    assert plan.realtime.endpoint == pytest.approx(146.0)
    # API Gateway $3.00/M + Lambda ($0.20/M + 1 GB x 0.1 s x $0.00001 = $1.00/M) = $4.20/M x 2,628 M
    assert plan.realtime.gateway_and_lambda == pytest.approx(11_037.6)
    assert plan.realtime.total == pytest.approx(11_183.6)
    # serverless: 2 GB x 0.1 s x $0.00002 = $4.00/M x 2,628 M = $10,512.00
    assert plan.serverless.endpoint == pytest.approx(10_512.0)
    assert plan.serverless.total == pytest.approx(21_549.6)


def test_a_larger_peak_needs_more_instances_and_caps_the_burst(bench_file, prices_file) -> None:
    plan = _plan(bench_file, prices_file, 3000)
    assert plan.instances_for_peak == 3  # ceil(3,000 / 1,400) = ceil(2.14)
    assert plan.recommended_instances == 3
    assert plan.instances_at_target == 4  # ceil(3,000 x 60 / 58,800) = ceil(3.06)
    assert plan.realtime.endpoint == pytest.approx(0.10 * 4 * 730)
    assert (plan.throttle.rate, plan.throttle.burst) == (3000.0, 5000)  # 6,000 capped at the account's 5,000
    assert any("capped at the account's default burst of 5,000" in w for w in plan.warnings)
    assert not any("autoscaling_max" in w for w in plan.warnings)  # 4 instances fit the shipped maximum
    bigger = _plan(bench_file, prices_file, 5000)
    assert bigger.instances_at_target == 6  # ceil(5,000 x 60 / 58,800) = ceil(5.10)
    assert any("endpoint.autoscaling_max is 4: target tracking would need 6" in w for w in bigger.warnings)


def test_the_vcpu_count_of_the_instance_type_scales_the_plan(bench_file, prices_file) -> None:
    plan = _plan(bench_file, prices_file, 3000, **{"endpoint.instance_type": "ml.m5.xlarge"})
    assert plan.instance.vcpus == 4
    assert plan.instance_ceiling_rps == 4000.0
    assert plan.target_per_minute == 117_600  # floor(60 x 2,800 x 0.7)
    assert plan.instances_for_peak == 2  # ceil(3,000 / 2,800)
    assert plan.realtime.endpoint == pytest.approx(0.20 * 2 * 730)


def test_a_p99_target_selects_a_lower_throughput_point(bench_file, prices_file) -> None:
    plan = _plan(bench_file, prices_file, 1000, p99_ms=3.0)
    assert (plan.point.connections, plan.point.rps, plan.point.p99_ms) == (1, 1000.0, 2.0)
    assert plan.sustainable_rps == pytest.approx(700.0)  # 1,000 / 2 x 2 x 0.7
    assert plan.target_per_minute == 29_400  # floor(60 x 700 x 0.7)
    assert plan.instances_for_peak == 2  # ceil(1,000 / 700)
    assert plan.instances_at_target == 3  # ceil(60,000 / 29,400) = ceil(2.04)


def test_a_point_exactly_at_the_p99_target_is_eligible(bench_file, prices_file) -> None:
    assert _plan(bench_file, prices_file, 1000, p99_ms=5.0).point.rps == 2000.0


def test_a_point_with_errors_is_never_used(bench_file) -> None:
    measurement = read_measurement(bench_file)
    assert [p.connections for p in measurement.points] == [1, 8, 32]  # the 5,000/s run had errors
    assert measurement.choose(3.0).rps == 1000.0  # not the erroring 5,000/s at p99 3 ms


def test_no_point_within_the_p99_target_is_an_error_listing_the_measured_p99s(
    bench_file, prices_file
) -> None:
    with pytest.raises(NoPointWithinP99) as err:
        _plan(bench_file, prices_file, 1000, p99_ms=1.0)
    message = str(err.value)
    assert "within 1 ms" in message
    assert "2 ms at 1 connections" in message and "20 ms at 32 connections" in message


def test_an_instance_type_missing_from_the_table_is_refused_by_name(bench_file, prices_file) -> None:
    with pytest.raises(UnknownInstanceType) as err:
        _plan(bench_file, prices_file, 100, **{"endpoint.instance_type": "ml.r5.large"})
    assert "'ml.r5.large' is not in the instance-type table" in str(err.value)
    assert "ml.m5.large" in str(err.value)  # the known types are listed


def test_an_instance_type_without_a_price_plans_capacity_but_not_real_time_cost(
    bench_file, prices_file
) -> None:
    plan = _plan(bench_file, prices_file, 100, **{"endpoint.instance_type": "ml.c5.xlarge"})
    assert plan.target_per_minute == 117_600  # 4 vCPUs, like ml.m5.xlarge
    assert plan.realtime.endpoint is None and plan.realtime.total is None
    assert any("ml.c5.xlarge has no price" in w for w in plan.warnings)
    assert "no price in table" in "\n".join(render(plan))


def test_a_burstable_instance_type_is_flagged(bench_file, prices_file) -> None:
    plan = _plan(bench_file, prices_file, 100, **{"endpoint.instance_type": "ml.t3.medium"})
    assert any("ml.t3.medium is burstable" in w for w in plan.warnings)


def test_a_peak_above_one_serverless_endpoint_is_reported_infeasible(bench_file, prices_file) -> None:
    plan = _plan(bench_file, prices_file, 2500)
    assert plan.serverless_concurrency == 250 and not plan.serverless_feasible
    assert any("serverless cannot serve this peak" in w for w in plan.warnings)
    assert "not possible on one endpoint" in "\n".join(render(plan))


def test_the_configured_limits_below_the_plan_are_warned_about(bench_file, prices_file) -> None:
    plan = _plan(bench_file, prices_file, 1000)  # shipped: throttle 50/s, min 1, serverless concurrency 5
    assert any("api.throttle_rate is 50/s" in w and "set 1000" in w for w in plan.warnings)
    assert any("endpoint.autoscaling_min is 1" in w for w in plan.warnings)
    assert any("endpoint.serverless_max_concurrency is 5" in w for w in plan.warnings)


@pytest.mark.parametrize("peak", [0, -1, float("nan"), float("inf")])
def test_a_non_positive_peak_is_refused(bench_file, prices_file, peak: float) -> None:
    with pytest.raises(ValueError, match="peak_rps must be a positive number"):
        _plan(bench_file, prices_file, peak)


def test_the_cpu_count_falls_back_to_the_worker_count_and_says_so(tmp_path, bench_file) -> None:
    doc = json.loads(bench_file.read_text())
    del doc["machine"]["cpus"]
    doc["stacks"]["onnx"]["workers"] = 4
    path = tmp_path / "no-cpus.json"
    path.write_text(json.dumps(doc))
    measurement = read_measurement(path)
    assert measurement.cpus == 4
    assert measurement.cpus_origin.startswith("not recorded in")
    assert "worker count" in measurement.cpus_origin


def test_an_unusable_benchmark_file_is_a_clear_error(tmp_path, bench_file) -> None:
    with pytest.raises(BenchResultError, match=r"does not exist; run `python bench/bench_engines\.py`"):
        read_measurement(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BenchResultError, match="is not readable JSON"):
        read_measurement(tmp_path / "bad.json")
    with pytest.raises(
        BenchResultError, match="no measurement for engine 'torch' \\(measured: sklearn, onnx\\)"
    ):
        read_measurement(bench_file, engine="torch")


def test_the_instance_table_holds_the_documented_vcpus() -> None:
    table = load_instance_types()
    expected = {"ml.t3.medium": 2, "ml.m5.large": 2, "ml.m5.xlarge": 4, "ml.c5.large": 2, "ml.c5.xlarge": 4}
    expected |= {"ml.c6i.large": 2, "ml.c6i.xlarge": 4}
    assert {name: table[name].vcpus for name in expected} == expected
    assert table["ml.m5.large"].memory_gib == 8 and table["ml.c5.large"].memory_gib == 4
    assert all(row.source.startswith("https://docs.aws.amazon.com/") for row in table.values())
    assert {name for name, row in table.items() if row.burstable} == {
        "ml.t3.medium",
        "ml.t3.large",
        "ml.t3.xlarge",
        "ml.t3.2xlarge",
    }


def test_a_configured_target_other_than_the_plan_is_named_with_the_value_to_set(
    bench_file, prices_file
) -> None:
    late = _plan(bench_file, prices_file, 1000, **{"endpoint.autoscaling_target_invocations": 60_000})
    assert any("is 60,000: above this plan's 58,800" in w and w.endswith("set 58800") for w in late.warnings)
    early = _plan(bench_file, prices_file, 1000, **{"endpoint.autoscaling_target_invocations": 600})
    assert any("is 600: below this plan's 58,800" in w and w.endswith("set 58800") for w in early.warnings)
    same = _plan(bench_file, prices_file, 1000, **{"endpoint.autoscaling_target_invocations": 58_800})
    assert not any("autoscaling_target_invocations" in w for w in same.warnings)
