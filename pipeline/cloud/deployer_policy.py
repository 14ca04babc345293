"""The IAM policy the identity that runs deploy, status, keys, preflight and teardown needs.

The policy is a file, ``policies/deployer.json``, so that people and tools read the same thing: the
docs point to it, ``python -m pipeline policy`` prints it filled in for an account, preflight simulates
it against the caller, and the tests run the whole lifecycle as an IAM user holding only this policy.
Placeholders: ``${Partition}``, ``${Region}``, ``${Account}``, ``${Prefix}``, ``${Bucket}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.cloud.names import Names

TEMPLATE_PATH = Path(__file__).resolve().parent / "policies" / "deployer.json"


def template() -> str:
    """The policy text with its placeholders."""
    return TEMPLATE_PATH.read_text()


def render(names: Names) -> dict[str, Any]:
    """The policy for one account, region and project prefix."""
    text = template()
    for placeholder, value in (
        ("${Partition}", names.partition),
        ("${Region}", names.region),
        ("${Account}", names.account_id),
        ("${Prefix}", names.prefix),
        ("${Bucket}", names.bucket),
    ):
        text = text.replace(placeholder, value)
    return json.loads(text)


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The policy's statements, each with ``Action`` and ``Resource`` as lists."""
    listed = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
    return [
        {**s, "Action": _as_list(s.get("Action", [])), "Resource": _as_list(s.get("Resource", []))}
        for s in listed
    ]


def actions(policy: dict[str, Any]) -> list[str]:
    """Every action the policy allows, sorted, without duplicates."""
    return sorted({a for s in statements(policy) if s["Effect"] == "Allow" for a in s["Action"]})


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
