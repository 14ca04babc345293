"""The README's runnable examples, executed against a real local cloud (isolated ports and directories).

A block preceded by ``<!-- runnable: local-cloud -->`` (shell) or ``<!-- runnable: local-cloud-python -->``
is run as written, with only the local addresses and the key file swapped for the isolated stack's; its
``# {...}`` comment is the documented output, and the real output must match it (same labels, and each
probability starting with the digits shown before ``...``).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from report_local_env import isolated_local_env

from docs.report import paths

README = paths.ROOT / "README.md"
BLOCK = re.compile(r"<!-- runnable: ([\w-]+)[^>]*-->\s*\n(\s*)```(\w+)\n(.*?)\n\s*```", re.S)


def runnable_blocks(text: str) -> dict[str, str]:
    """The README's runnable blocks by kind, dedented."""
    return {m.group(1): textwrap.dedent(m.group(4)) for m in BLOCK.finditer(text)}


def documented_output(block: str) -> str:
    """The last ``# {...}`` comment of a block: the output the README promises."""
    return [line.strip()[2:] for line in block.splitlines() if line.strip().startswith("# {")][-1]


def assert_matches_documented(actual: dict, documented: str) -> None:
    """Labels equal, probabilities start with the documented digits (``0.0009...``)."""
    shown = re.findall(r"""['"]probability['"]:\s*([0-9.]+?)\.\.\.""", documented)
    labels = re.findall(r"""['"]label['"]:\s*['"]([^'"]+)['"]""", documented)
    predictions = actual["predictions"]
    assert [p["label"] for p in predictions] == labels, (predictions, documented)
    for prediction, prefix in zip(predictions, shown, strict=True):
        assert repr(prediction["probability"]).startswith(prefix), (prediction, documented)


@pytest.fixture(scope="module")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    base = tmp_path_factory.mktemp("readme-cloud")
    env = {**os.environ, **isolated_local_env(base)}
    up = subprocess.run(
        [sys.executable, "-m", "pipeline", "local", "up"],
        cwd=paths.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        key = subprocess.run(
            [
                sys.executable,
                "-c",
                "from pipeline.local.demo import demo_key; from pipeline.local.settings import "
                "load_local_settings; print(demo_key(load_local_settings())[0])",
            ],
            cwd=paths.ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        yield {**env, "KEY_FILE": key}
    finally:
        subprocess.run(
            [sys.executable, "-m", "pipeline", "local", "down"],
            cwd=paths.ROOT,
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )


def test_readme_marks_its_runnable_examples() -> None:
    blocks = runnable_blocks(README.read_text())
    assert set(blocks) == {"local-cloud", "local-cloud-python"}
    assert "0.1..." not in README.read_text(), "the old, wrong sample probability"


def test_the_readme_curl_example_returns_what_the_readme_shows(local_cloud: dict[str, str]) -> None:
    block = runnable_blocks(README.read_text())["local-cloud"]
    command = block.replace(
        "http://127.0.0.1:8700", f"http://127.0.0.1:{local_cloud['LOCAL_GATEWAY_PORT']}"
    ).replace(".secrets/demo.key", local_cloud["KEY_FILE"])
    result = subprocess.run(
        ["bash", "-c", command], cwd=paths.ROOT, env=local_cloud, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert_matches_documented(json.loads(result.stdout), documented_output(block))


def test_the_readme_sdk_v3_example_returns_what_the_readme_shows(local_cloud: dict[str, str]) -> None:
    block = runnable_blocks(README.read_text())["local-cloud-python"]
    tree = ast.parse(block)
    last = tree.body[-1]
    assert isinstance(last, ast.Expr), "the example ends with the expression whose value it shows"
    tree.body[-1] = ast.parse(f"print(json.dumps({ast.unparse(last.value)}))").body[0]
    program = "import json\n" + ast.unparse(tree)
    env = {
        **local_cloud,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": f"http://127.0.0.1:{local_cloud['LOCAL_RUNTIME_PORT']}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert_matches_documented(json.loads(result.stdout.strip().splitlines()[-1]), documented_output(block))


def test_readme_names_the_key_file_deploy_writes_and_defines_its_url() -> None:
    text = README.read_text()
    assert ".secrets/alice.key" not in text
    assert "$URL" not in text
    from pipeline.cloud.config import load_config

    assert f".secrets/{load_config().project.name_prefix}-alice.key" in text
    assert "PREDICT_URL=$(" in text and '"$PREDICT_URL"' in text
