"""The demo's requests against a running local stack, printed readably, and the demo API key.

The key value is never printed: it is written to ``.secrets/demo.key`` (mode 0600) and the demo prints
that path; the requests, and the curl command it suggests, read the key from there.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import urllib3

from pipeline.local.keys import create_key, find_key
from pipeline.local.settings import REPO_ROOT, LocalSettings
from pipeline.local.stack import StackInfo
from pipeline.schema import EXAMPLE_RECORD

RECORD = dict(EXAMPLE_RECORD)
CSV_BATCH = (
    "age,workclass,education_num,marital_status,occupation,relationship,race,sex,capital_gain,"
    "capital_loss,hours_per_week,native_country\n"
    "52,Self-emp-inc,14,Married-civ-spouse,Exec-managerial,Husband,White,Male,15024,0,60,United-States\n"
    "23,Private,9,Never-married,Handlers-cleaners,Own-child,Black,Female,0,0,30,United-States\n"
    "45,Federal-gov,16,Married-civ-spouse,Prof-specialty,Wife,Asian-Pac-Islander,Female,0,1902,40,India\n"
    "31,?,10,Divorced,?,Unmarried,White,Female,0,0,25,?\n"
)
INVALID_RECORD = {**RECORD, "age": -4, "sex": None, "hours_per_week": "forty"}


@dataclass(frozen=True)
class Sample:
    """One demo request."""

    title: str
    content_type: str
    body: bytes
    with_key: bool = True


SAMPLES = (
    Sample("One record (JSON)", "application/json", json.dumps(RECORD).encode()),
    Sample("A batch of four records (CSV with a header row)", "text/csv", CSV_BATCH.encode()),
    Sample("An invalid record (JSON): the container names each bad field", "application/json",
           json.dumps(INVALID_RECORD).encode()),
    Sample("No API key: the gateway refuses", "application/json", json.dumps(RECORD).encode(),
           with_key=False),
)  # fmt: skip


@dataclass(frozen=True)
class Exchange:
    """A sample and what the gateway answered."""

    sample: Sample
    status: int
    reason: str
    body: str
    elapsed_ms: float


def demo_key(settings: LocalSettings) -> tuple[Path, bool]:
    """The demo key file, creating a key if there is no valid one; returns (path, created)."""
    path = settings.demo_key_file
    if path.is_file():
        record = find_key(path.read_text().strip(), settings.keys_file)
        if record is not None and record.enabled:
            return path, False
    _, value = create_key("local-demo", settings.keys_file)
    write_secret(path, value)
    return path, True


def write_secret(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` with mode 0600 from the first byte (never world-readable)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    os.replace(tmp, path)


def send_samples(info: StackInfo, key_file: Path) -> list[Exchange]:
    """Send every sample through the gateway and collect the answers."""
    key = key_file.read_text().strip()
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=35))
    exchanges = []
    for sample in SAMPLES:
        headers = {"Content-Type": sample.content_type, "Accept": "application/json"}
        if sample.with_key:
            headers["x-api-key"] = key
        started = time.perf_counter()
        response = http.request("POST", info.predict_url, body=sample.body, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        exchanges.append(
            Exchange(
                sample,
                response.status,
                response.reason or "",
                response.data.decode(errors="replace"),
                elapsed,
            )
        )
    return exchanges


def render(exchanges: list[Exchange], info: StackInfo, say: Callable[[str], None] = print) -> None:
    """Print each request and answer: title, request line, status and the (pretty) body."""
    path = info.predict_url.removeprefix(info.gateway_url)
    for number, ex in enumerate(exchanges, 1):
        say(f"\n[{number}/{len(exchanges)}] {ex.sample.title}")
        key_note = "with x-api-key" if ex.sample.with_key else "without x-api-key"
        say(f"  POST {path}  Content-Type: {ex.sample.content_type}  ({key_note})")
        for line in _indent(_request_preview(ex.sample)):
            say(f"  > {line}")
        say(f"  < {ex.status} {ex.reason}  ({ex.elapsed_ms:.0f} ms)")
        for line in _indent(_pretty(ex.body)):
            say(f"  < {line}")


def instructions(info: StackInfo, key_file: Path, say: Callable[[str], None] = print) -> None:
    """How to call the stack yourself, and how to stop it."""
    key_path = display_path(key_file)
    record = json.dumps({k: RECORD[k] for k in RECORD})
    say("\nCall it yourself (the key is read from the file, so it never lands in your shell history):")
    say(f"  curl -s {info.predict_url} \\")
    say(f'    -H "x-api-key: $(cat {key_path})" -H "Content-Type: application/json" \\')
    say(f"    -d '{record}'")
    say(
        "\nOr call InvokeEndpoint directly with boto3, as the Lambda does (the SageMaker SDK works the same):"
    )
    say(f"export AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME={info.runtime_url}")
    say("export AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x  # placeholders: nothing checks them locally")
    say(".venv/bin/python - <<'EOF'")
    say("import boto3")
    say('runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")')
    say(
        'row = b"39,State-gov,13,Never-married,Adm-clerical,Not-in-family,White,Male,2174,0,40,United-States"'
    )
    say(f'answer = runtime.invoke_endpoint(EndpointName="{info.endpoint_name}",')
    say('                                  ContentType="text/csv", Body=row)')
    say('print(answer["Body"].read().decode())')
    say("EOF")
    logs = display_path(Path(info.logs["gateway"]).parent)
    say(f"\nLogs: {logs}/gateway.log (with the Lambda's log), {logs}/runtime.log, {logs}/container.log")
    say("Stop everything: make down   (or: .venv/bin/python -m pipeline local down)")


def _request_preview(sample: Sample) -> str:
    if sample.content_type == "application/json":
        return json.dumps(json.loads(sample.body), separators=(", ", ": "))
    return sample.body.decode()


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), indent=2)
    except ValueError:
        return body


def _indent(text: str, limit: int = 40) -> list[str]:
    lines = text.rstrip("\n").splitlines() or [""]
    return lines if len(lines) <= limit else [*lines[:limit], f"... ({len(lines) - limit} more lines)"]


def display_path(path: Path) -> str:
    """``path`` relative to the repository when inside it (what the user types from there)."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
