"""Every AWS call of deploy and teardown fault-injected, against moto.

For each N, in a fresh moto account: the N-th AWS call of the code fails as AWS fails it (throttled,
or access denied; see fault_injection.py), then the command runs again without the fault. A deploy
must stop with an error the CLI turns into a message (ClientError or CloudError, nothing else) and
the re-run must build exactly the stack a clean deploy builds, nothing orphaned (stack_snapshot.py).
A teardown must report what it could not do, and with a clean re-run nothing of the project may be
left in any service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import BotoCoreError, ClientError
from cloud_stack import Stack
from fault_injection import KINDS, Fault, FaultInjector, no_retry_delay
from moto.core.base_backend import BackendDict
from stack_snapshot import leftovers, snapshot

from pipeline.cloud.errors import CloudError, describe_failure
from pipeline.cloud.progress import Progress
from pipeline.cloud.teardown import TeardownResult, teardown

# What the CLI turns into "error: <message>" and exit 1 (pipeline/commands/cloud.py, _guarded).
CLEAN_FAILURES = (ClientError, CloudError, BotoCoreError)
# Every call for access denied; every other call for throttling, which takes the same code paths
# with the SDK's retries in front (all N of both kinds: ~8 min on a loaded 2-core machine).
STRIDE = {"denied": 1, "throttle": 3}


class Sweep:
    """Fresh stacks in a fresh moto account, sharing one botocore loader (service models load once)."""

    def __init__(self, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path, self.monkeypatch = tmp_path, monkeypatch
        self.loader = botocore.session.Session().get_component("data_loader")
        self.count = 0
        self.retry_delays = no_retry_delay(monkeypatch)

    def stack(self) -> tuple[Stack, FaultInjector]:
        BackendDict.reset()
        self.count += 1
        core = botocore.session.Session()
        core.register_component("data_loader", self.loader)
        stack = Stack(
            self.tmp_path / f"run{self.count}",
            session=boto3.Session(botocore_session=core, region_name="us-east-1"),
        )
        return stack, FaultInjector().install(stack.session, self.monkeypatch)


def _teardown(stack: Stack) -> TeardownResult:
    return teardown(
        stack.config(),
        stack.clients,
        Progress(stack.output),
        lambda found: True,
        poll_s=0,
        sleep=lambda s: None,
    )


def _differences(want: Any, have: Any, path: str = "") -> Iterator[str]:
    if isinstance(want, dict) and isinstance(have, dict):
        for key in sorted(set(want) | set(have)):
            if key not in have:
                yield f"{path}/{key}: missing"
            elif key not in want:
                yield f"{path}/{key}: extra {str(have[key])[:200]}"
            else:
                yield from _differences(want[key], have[key], f"{path}/{key}")
    elif want != have:
        yield f"{path}: {str(want)[:200]} != {str(have)[:200]}"


@pytest.fixture
def sweep(aws, tmp_path, monkeypatch) -> Sweep:
    return Sweep(tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_deploy_converges_after_a_fault_at_any_call(sweep: Sweep, kind: str) -> None:
    started = time.monotonic()
    stack, injector = sweep.stack()
    stack.deploy()
    calls = list(injector.calls)
    clean = snapshot(stack)
    assert len(calls) > 50
    assert [k["name"] for k in clean["apigateway"]["api_keys"]] == ["adult-income-default"]

    exercised, absorbed, problems = 0, [], []
    for at in range(1, len(calls) + 1, STRIDE[kind]):
        stack, injector = sweep.stack()
        injector.arm(Fault(kind, at))
        where = f"{kind} at call {at} {calls[at - 1]}"
        try:
            stack.deploy()
        except CLEAN_FAILURES as exc:
            message = describe_failure(exc)
            if isinstance(exc, ClientError) and exc.operation_name != calls[at - 1][1]:
                problems.append(f"{where}: the error names {exc.operation_name}, not the faulted call")
            assert message and "Traceback" not in message
        except Exception as exc:  # any other type is the finding
            problems.append(f"{where}: {type(exc).__name__}: {exc}")
            continue
        else:
            absorbed.append(where)
        assert injector.faulted_call == calls[at - 1], f"{where}: the calls differ from the clean deploy's"
        exercised += 1
        injector.arm(None)
        try:
            stack.deploy()
        except Exception as exc:
            problems.append(f"{where}: the re-run failed: {type(exc).__name__}: {describe_failure(exc)}")
            continue
        diff = list(_differences(clean, snapshot(stack)))
        if diff:
            problems.append(f"{where}: the re-run's stack differs: " + "; ".join(diff[:6]))
    print(
        f"\ndeploy, {kind}: {exercised} fault points of {len(calls)} calls exercised, "
        f"{len(absorbed)} absorbed by retries, {time.monotonic() - started:.0f} s"
    )
    assert not problems, "\n".join(problems)
    assert exercised == len(range(1, len(calls) + 1, STRIDE[kind]))


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_teardown_finishes_after_a_fault_at_any_call(sweep: Sweep, kind: str) -> None:
    started = time.monotonic()
    stack, injector = sweep.stack()
    stack.deploy()
    injector.arm(None)
    assert _teardown(stack).complete
    calls = list(injector.calls)
    assert leftovers(stack) == {}

    exercised, problems = 0, []
    for at in range(1, len(calls) + 1, STRIDE[kind]):
        stack, injector = sweep.stack()
        stack.deploy()
        injector.arm(Fault(kind, at))
        where = f"{kind} at teardown call {at} {calls[at - 1]}"
        try:
            result = _teardown(stack)
        except CLEAN_FAILURES:
            pass  # the inventory before or after deleting could not be read: said, exit 1
        except Exception as exc:  # any other type is the finding
            problems.append(f"{where}: {type(exc).__name__}: {exc}")
            continue
        else:
            if result.complete:
                problems.append(f"{where}: the teardown reported complete although a call failed")
        if injector.faulted_call != calls[at - 1]:
            problems.append(f"{where}: faulted {injector.faulted_call}; the calls differ from a clean run")
            continue
        exercised += 1
        injector.arm(None)
        result = _teardown(stack)
        if not result.complete or leftovers(stack):
            problems.append(
                f"{where}: the second run left {result.left} {result.failures} {leftovers(stack)}"
            )
    print(
        f"\nteardown, {kind}: {exercised} fault points of {len(calls)} calls exercised, "
        f"{time.monotonic() - started:.0f} s"
    )
    assert not problems, "\n".join(problems)
    assert exercised == len(range(1, len(calls) + 1, STRIDE[kind]))


def test_a_throttle_the_retries_absorb_changes_nothing(sweep: Sweep) -> None:
    stack, injector = sweep.stack()
    stack.deploy()
    clean = snapshot(stack)
    # Six retries in standard mode: six throttled attempts in a row still succeed on the seventh.
    for operation in ("CreateRole", "CreateEndpoint", "CreateRestApi", "PutObject", "PutMetricAlarm"):
        stack, injector = sweep.stack()
        injector.arm(Fault("throttle", 0, attempts=6, operation=operation))
        stack.deploy()
        assert injector.failed_attempts >= 6, operation
        assert snapshot(stack) == clean, operation
    assert sweep.retry_delays, "the SDK backed off between attempts"


@pytest.mark.parametrize("mode", ["realtime", "serverless"])
def test_deploy_after_teardown_trains_again(sweep: Sweep, mode: str) -> None:
    """Defect 1: teardown deletes the bucket but SageMaker keeps the job: a missing artifact means
    train again, and the stack is then a clean deploy's."""
    stack, _ = sweep.stack()
    config = stack.config(endpoint__mode=mode)
    first = stack.deploy(config)
    assert _teardown(stack).complete and leftovers(stack) == {}
    second = stack.deploy(config)
    assert second.training_job != first.training_job
    assert "completed earlier but its model.tar.gz is gone" in stack.output.getvalue()
    again = snapshot(stack)
    clean_stack, _ = sweep.stack()
    clean_stack.deploy(clean_stack.config(endpoint__mode=mode))
    clean = snapshot(clean_stack)
    jobs = again["sagemaker"].pop("training_jobs")
    clean["sagemaker"].pop("training_jobs")
    assert again == clean
    assert [job.split()[-1] for job in jobs] == ["Completed", "Completed"]


def test_teardown_deletes_billable_first_and_log_groups_and_group_last(sweep: Sweep) -> None:
    stack, injector = sweep.stack()
    stack.deploy()
    injector.arm(None)
    assert _teardown(stack).complete
    order = [operation for _, operation in injector.calls]

    def at(operation: str) -> int:
        assert operation in order, operation
        return order.index(operation)

    mutating = [op for op in order if op.startswith(("Delete", "Deregister", "Update", "Stop"))]
    assert mutating[:3] == ["DeleteScalingPolicy", "DeregisterScalableTarget", "DeleteEndpoint"]
    for later in ("DeleteRestApi", "DeleteFunction", "DeleteRepository", "DeleteBucket", "DeleteRole"):
        assert at("DeleteEndpoint") < at(later), later
    assert at("UpdateUsagePlan") < at("DeleteUsagePlan") < at("DeleteRestApi")  # stage detached first
    last_log_group = len(order) - 1 - order[::-1].index("DeleteLogGroup")
    assert max(order.index("DeleteEndpoint"), order.index("DeleteRole")) < at("DeleteLogGroup")
    assert mutating[-1] == "DeleteGroup" and last_log_group < at("DeleteGroup")


def test_teardown_goes_on_past_a_failure_and_a_second_run_finishes(sweep: Sweep, monkeypatch, capsys) -> None:
    """Defect 6 through the CLI: DeleteFunction denied -> the rest is deleted, the Lambda is reported
    as left with AWS's reason, exit 1; the second run deletes it and exits 0."""
    from pipeline.cli import main

    stack, injector = sweep.stack()
    stack.deploy()
    injector.arm(Fault("denied", 0, operation="DeleteFunction"))
    monkeypatch.setattr("pipeline.cloud.clients.boto3.Session", lambda region_name=None: stack.session)
    capsys.readouterr()
    assert main(["teardown", "--yes", "--poll-seconds", "0"]) == 1
    out = capsys.readouterr().out
    assert leftovers(stack) == {"lambda functions": ["adult-income-proxy"]}
    assert "Lambda function: adult-income-proxy" in out.split("Left behind")[1]
    assert "DeleteFunction failed: AccessDeniedException" in out
    assert "Traceback" not in out
    injector.arm(None)
    assert main(["teardown", "--yes", "--poll-seconds", "0"]) == 0
    assert leftovers(stack) == {}
