"""The AWS evidence path against moto: ``make aws-evidence``'s captures and ``make aws-down``'s proof.

The captures are recorded by the real code (``docs.report.cloud_session.record``, whose commands run
``python -m pipeline ...`` as separate processes) against a moto server on loopback holding a stack
deployed by the real deploy code. moto cannot serve the REST API, so the stage URL points at
tests/cloud/fake_api_gateway.py: a loopback stand-in that enforces the moto stack's own key values and
throttle and passes predictions to the real serving app. CloudWatch datapoints and the Lambda's log
lines are put into moto by the test, as API Gateway and the Lambda would write them.
"""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import fake_api_gateway
import pytest
from cloud_stack import Stack
from secret_checks import assert_absent

from pipeline.cloud import evidence, leftovers
from pipeline.cloud.progress import Progress
from pipeline.cloud.teardown import teardown
from pipeline.commands import evidence as evidence_command

PREFIX = "adult-income"
FUNCTION_LOG_GROUP = f"/aws/lambda/{PREFIX}-proxy"
OTHER_KEY = "Zq7" * 13 + "x"  # 40 characters, shaped like an API Gateway key


# --- make aws-evidence ---------------------------------------------------------------------------


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server in this process (so the shims reach it); every AWS client here and in the
    recorded commands' processes goes to it through AWS_ENDPOINT_URL."""
    from moto.server import ThreadedMotoServer
    from moto_shims import install

    install(monkeypatch)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    # The server shares moto's in-process state with every other moto use in this process: start and
    # leave it empty, so no test sees another's stack.
    reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).close()
    try:
        yield url
    finally:
        urllib.request.urlopen(reset, timeout=10).close()
        server.stop()


@pytest.fixture
def deployed(moto_server: str, tmp_path: Path) -> Stack:
    stack = Stack(tmp_path)
    stack.deploy()
    return stack


def _deploy_log(stack: Stack, path: Path) -> Path:
    """What ``make aws-up`` saves: its header line, then the deploy's output."""
    path.write_text(
        "== make aws-up: python -m pipeline deploy, 2026-01-01 00:00 UTC\n" + stack.output.getvalue()
    )
    return path


def _write_metrics_and_logs(stack: Stack, key: str) -> None:
    """Datapoints and log lines as API Gateway and the proxy Lambda would write them (one leaks a key)."""
    stack.client("cloudwatch").put_metric_data(
        Namespace="AWS/ApiGateway",
        MetricData=[
            {
                "MetricName": "Count",
                "Dimensions": [
                    {"Name": "ApiName", "Value": f"{PREFIX}-api"},
                    {"Name": "Stage", "Value": "prod"},
                ],
                "Timestamp": datetime.now(UTC),
                "Value": 7.0,
            }
        ],
    )
    logs = stack.client("logs")
    logs.create_log_stream(logGroupName=FUNCTION_LOG_GROUP, logStreamName="2026/01/01/[$LATEST]abc")
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    lines = [
        '{"event":"request","request_id":"9b1c-4e","method":"POST","resource":"/predict",'
        '"api_key_id":"k1a2b3c4d5","status":200,"latency_ms":41.2}',
        f'{{"event":"debug","note":"a careless line with x-api-key: {key} in it"}}',
        f"another careless line with the bare value {key}",
        f"and one with a key this machine never saw: {OTHER_KEY}",
        "REPORT RequestId: 3f1c2a9e-1b2c-4d5e-8f90-123456789abc Duration: 12.3 ms",
    ]
    logs.put_log_events(
        logGroupName=FUNCTION_LOG_GROUP,
        logStreamName="2026/01/01/[$LATEST]abc",
        logEvents=[{"timestamp": now_ms + i, "message": line} for i, line in enumerate(lines)],
    )


def test_aws_evidence_captures_show_each_outcome_and_never_a_key(
    deployed: Stack, tmp_path: Path, released_model_dir: Path
) -> None:
    from docs.report import cloud_session
    from docs.report.capture import load_all

    [key_file] = (tmp_path / "secrets").glob("*.key")
    key = key_file.read_text().strip()
    _write_metrics_and_logs(deployed, key)
    gateway = fake_api_gateway.start(
        deployed.client("apigateway"), f"{PREFIX}-plan", "prod", released_model_dir
    )
    destination = tmp_path / "captures" / "cloud"
    destination.mkdir(parents=True)
    (destination / "99_stale.json").write_text("{}")  # a previous run's file must not survive
    try:
        written = cloud_session.record(
            destination,
            deploy_log=_deploy_log(deployed, tmp_path / "deploy.log"),
            api_url=gateway.url,
            metrics_wait_s=0,
        )
    finally:
        gateway.stop()

    captures = {c.name: c for c in load_all(destination)}
    assert (
        sorted(captures)
        == sorted(p.stem for p in written)
        == [
            "00_deploy",
            "01_status",
            "02_predictions",
            "03_refusals",
            "04_throttling",
            "05_endpoint",
            "06_usage_plan",
            "07_metrics",
            "08_lambda_logs",
        ]
    )
    for capture in captures.values():
        capture.check()  # each HTTP step shows the status it was recorded to expect
        assert capture.where == "AWS"
        assert all(step.exit_code == 0 for step in capture.steps), capture.name
    assert not (tmp_path / "captures" / ".cloud.recording").exists()
    every_text = [path.read_text() for path in destination.iterdir()]
    assert_absent(key, *every_text)
    # The stand-in saw the real key on the keyed requests, so the captures hid a value that was used.
    assert key in gateway.seen_keys and None in gateway.seen_keys

    deploy_output = captures["00_deploy"].steps[0].output
    assert deploy_output.startswith("== make aws-up") and "invoke URL: https://" in deploy_output

    statuses = [s.expected_status for c in ("02_predictions", "03_refusals") for s in captures[c].steps]
    assert [s for s in statuses if s] == [200, 200, 403, 403, 400]
    refusals = "".join(s.output for s in captures["03_refusals"].steps)
    assert '{"message": "Forbidden"}  [HTTP 403]' in refusals and '"field":"age"' in refusals

    [burst_step] = [s for s in captures["04_throttling"].steps if "evidence burst" in s.command]
    assert burst_step.expected_status == 429
    assert "usage plan throttle: 50 requests/s, burst 100" in burst_step.output
    assert "at most 300 requests (3 x burst, ceiling 1000)" in burst_step.output
    sent = int(burst_step.output.split("sent ", 1)[1].split(" ", 1)[0])
    assert 100 < sent <= 300  # the bucket (100) ran dry before the cap
    assert 'the 429 answer: {"message": "Too Many Requests"}  [HTTP 429]' in burst_step.output
    assert "value not shown" in burst_step.output

    described = json.loads(captures["05_endpoint"].steps[0].output)
    assert (described["EndpointName"], described["EndpointStatus"]) == (PREFIX, "InService")

    plan = json.loads(captures["06_usage_plan"].steps[0].output)
    assert plan["throttle"] == {"rateLimit": 50.0, "burstLimit": 100}
    assert plan["quota"]["limit"] == 100000 and plan["apiStages"][0]["stage"] == "prod"
    assert [k["name"] for k in plan["keys"]] == [f"{PREFIX}-default"]
    assert set(plan["keys"][0]) == {"id", "name", "enabled"}

    metrics = captures["07_metrics"].steps[0].output
    assert f"AWS/ApiGateway Count (ApiName={PREFIX}-api, Stage=prod): total 7" in metrics
    assert "AWS/SageMaker Invocations" in metrics

    tail = captures["08_lambda_logs"].steps[0].output
    assert '"api_key_id":"k1a2b3c4d5","status":200' in tail  # a key id is not a key value
    # Hidden by the evidence command itself ("***"), before the recorder's own scrubbing ("****").
    assert "x-api-key: *** in it" in tail and "the bare value ***\n" in tail
    assert "never saw: ***\n" in tail and OTHER_KEY not in tail
    assert "RequestId: 3f1c2a9e-1b2c-4d5e-8f90-123456789abc" in tail


def test_a_deploy_log_holding_the_key_is_refused_and_nothing_is_replaced(
    deployed: Stack, tmp_path: Path
) -> None:
    from docs.report import cloud_session
    from docs.report.sessions import CaptureError

    [key_file] = (tmp_path / "secrets").glob("*.key")
    log = tmp_path / "deploy.log"
    log.write_text(f"    API key abc value (shown once, store it now): {key_file.read_text().strip()}\n")
    destination = tmp_path / "cloud"
    destination.mkdir()
    (destination / "00_deploy.json").write_text("{}")
    with pytest.raises(CaptureError, match="contains the API key's value") as raised:
        cloud_session.record(destination, deploy_log=log, api_url="http://127.0.0.1:9/prod", metrics_wait_s=0)
    assert_absent(key_file.read_text().strip(), str(raised.value))
    assert [p.name for p in destination.iterdir()] == ["00_deploy.json"]  # the previous recording stays
    assert not (tmp_path / ".cloud.recording").exists()


# --- the burst, the scrubbing and the metric wait, without AWS ------------------------------------


def test_burst_is_capped_and_stops_at_the_first_429() -> None:
    sent: list[int] = []

    def answers_429_from_the_fifth(url: str, key: str) -> tuple[int, str]:
        sent.append(1)
        return (429, '{"message":"Too Many Requests"}') if len(sent) >= 5 else (200, "{}")

    result = evidence.burst(
        "https://x.example/prod/health", "k" * 40, cap=300, concurrency=1, send=answers_429_from_the_fifth
    )
    assert (result.sent, result.first_throttled) == (5, 5)
    lines = evidence.render_burst(result, "https://x.example/prod/health", 50, 100, 1)
    assert lines[-1] == 'the 429 answer: {"message":"Too Many Requests"}  [HTTP 429]'

    never = evidence.burst("https://x.example/h", "k", cap=12, concurrency=4, send=lambda u, k: (200, "{}"))
    assert (never.sent, never.first_throttled) == (12, None)
    rendered = evidence.render_burst(never, "https://x.example/h", 50, 4, 4)
    assert rendered[-1] == "no 429 within 12 requests: the plan did not throttle this burst"
    assert not any("[HTTP" in line for line in rendered)
    assert [evidence.burst_cap(b) for b in (1, 100, 5000)] == [3, 300, 1000]


def test_burst_refuses_a_url_that_is_not_http() -> None:
    with pytest.raises(evidence.CloudError, match="not an http"):
        evidence.burst("file:///etc/passwd", "k", cap=3, send=lambda u, k: (200, ""))


def test_scrub_hides_key_values_but_keeps_ids() -> None:
    key = "Ab3" * 14
    text = f'x-api-key: {key} {{"x-api-key": "short-but-secret"}} api_key_id k1a2b3c4d5 {key[:25]}'
    scrubbed = evidence.scrub(text, [key])
    assert key not in scrubbed and key[:25] not in scrubbed and "short-but-secret" not in scrubbed
    assert "k1a2b3c4d5" in scrubbed and scrubbed.startswith("x-api-key: ***")


def test_metric_wait_reads_again_until_a_datapoint_and_gives_up_at_the_deadline() -> None:
    empty = evidence.MetricRead("AWS/ApiGateway", "Count", (), ())
    full = evidence.MetricRead("AWS/ApiGateway", "Count", (), ((datetime.now(UTC), 3.0),))
    answers = iter([[empty], [empty], [full]])
    clock = iter(range(0, 1000, 20))
    got = evidence.wait_for_metrics(
        lambda: next(answers), 300, poll_s=20, sleep=lambda s: None, clock=lambda: next(clock)
    )
    assert got == [full]
    clock = iter(range(0, 1000, 200))
    got = evidence.wait_for_metrics(lambda: [empty], 300, sleep=lambda s: None, clock=lambda: next(clock))
    assert got == [empty]


# --- make aws-down: nothing left ------------------------------------------------------------------


@pytest.fixture
def stack(aws, tmp_path: Path) -> Stack:
    return Stack(tmp_path)


def _teardown(stack: Stack) -> None:
    result = teardown(
        stack.config(),
        stack.clients,
        Progress(io.StringIO()),
        lambda found: True,
        poll_s=0,
        sleep=lambda s: None,
    )
    assert result.complete, result


def test_verify_gone_passes_after_a_clean_teardown_keeping_training_history(stack: Stack) -> None:
    stack.deploy()  # trains (moto's job + the shim's artifact): the job stays in SageMaker's history
    before = leftovers.look(stack.config(), stack.clients)
    assert not before.clean and before.by_name
    _teardown(stack)
    found = leftovers.verify_gone(stack.config(), stack.clients)
    assert found.clean, found
    assert found.history and all(":training-job/adult-income-train-" in arn for arn in found.history)
    lines = leftovers.render(found, PREFIX, "us-east-1")
    assert lines[0].startswith("nothing of adult-income is left in us-east-1")
    assert "kept by SageMaker (no delete API, no cost once stopped): 1 training job(s)" in lines


def test_verify_gone_fails_on_an_orphan_tagged_log_group_and_a_named_leftover(stack: Stack) -> None:
    stack.deploy()
    _teardown(stack)
    logs = stack.client("logs")
    logs.create_log_group(logGroupName="/custom/orphan", tags={"project": PREFIX})
    slept: list[float] = []
    found = leftovers.verify_gone(
        stack.config(),
        stack.clients,
        wait_s=30,
        poll_s=15,
        sleep=slept.append,
        clock=iter([0, 10, 20, 40]).__next__,
    )
    assert slept == [15, 15]  # looked again while within the wait, then gave up
    assert not found.clean
    assert [(kind, arn.split(":log-group:")[1]) for kind, arn in found.by_tag] == [
        ("unknown (tagged, not created by deploy)", "/custom/orphan")
    ]
    # A live endpoint's group re-created after teardown is a leftover by name (and by tag).
    logs.create_log_group(logGroupName=FUNCTION_LOG_GROUP, tags={"project": PREFIX})
    again = leftovers.look(stack.config(), stack.clients)
    assert ("log group", FUNCTION_LOG_GROUP) in again.by_name
    assert "log group" in {kind for kind, _ in again.by_tag}
    rendered = "\n".join(leftovers.render(again, PREFIX, "us-east-1"))
    assert rendered.startswith("LEFT BEHIND in us-east-1 (3):") and "/custom/orphan" in rendered


def test_verify_gone_command_exit_status(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """The command ``make aws-down`` runs: 0 when clean, 1 with the leftovers named otherwise."""
    from pipeline.cli import main

    monkeypatch.setattr("pipeline.cloud.clients.Clients", lambda region, session=None: stack.clients)
    stack.deploy()
    _teardown(stack)
    assert main(["verify-gone", "--wait", "0"]) == 0
    assert "nothing of adult-income is left" in capsys.readouterr().out
    stack.client("logs").create_log_group(logGroupName="/custom/orphan", tags={"project": PREFIX})
    assert main(["verify-gone", "--wait", "0"]) == 1
    assert "LEFT BEHIND" in capsys.readouterr().out
    assert evidence_command  # registered through pipeline.cli.COMMAND_MODULES


def test_makefile_aws_targets_run_the_commands_and_never_show_a_key() -> None:
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    up = makefile.split("\naws-up:", 1)[1].split("\n\n", 1)[0]
    assert "-m pipeline deploy;" in up and "tee $(AWS_DIR)/deploy.log" in up and "pipefail" in up
    assert "--show-key" not in up
    down = makefile.split("\naws-down:", 1)[1].split("\n\n", 1)[0]
    assert "teardown --yes" in down and "verify-gone" in down and "exit $$(( torn || gone ))" in down
    assert "-m docs.report.cloud_session" in makefile.split("\naws-evidence:", 1)[1].split("\n\n", 1)[0]


# --- the README's Status line tells the truth about the AWS captures ------------------------------

REPO = Path(__file__).resolve().parents[2]
NOT_YET = "**not yet** verified on a live AWS account"


def readme_status_problem(readme: str, captures: Path) -> str | None:
    """Why the README's Status paragraph contradicts ``captures`` (AWS captures present?), or None."""
    head = readme.split("\n## ", 1)[0]  # the Status line belongs above the first section
    paragraphs = [p for p in head.split("\n\n") if p.startswith("**Status:**")]
    if len(paragraphs) != 1:
        return "the README needs exactly one '**Status:**' paragraph above its first section"
    status = " ".join(paragraphs[0].split())
    live = any(captures.glob("*.json"))
    if not live and NOT_YET not in status:
        return f"no AWS captures in {captures}, so the Status must say {NOT_YET!r}"
    if live and ("not yet" in status or "live AWS account" not in status):
        return f"{captures} holds AWS captures, so the Status must say it was verified on a live AWS account"
    return None


def test_readme_status_line_matches_the_aws_captures(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme_status_problem(readme, REPO / "docs" / "report" / "captures" / "cloud") is None
    # The check can fail both ways: the same README against the other state of the captures.
    live = tmp_path / "live"
    live.mkdir()
    (live / "00_deploy.json").write_text("{}")
    empty = tmp_path / "empty"
    empty.mkdir()
    has_live_captures = any((REPO / "docs" / "report" / "captures" / "cloud").glob("*.json"))
    assert readme_status_problem(readme, empty if has_live_captures else live) is not None
