"""A small IAM identity-policy evaluator for the tests (moto's own one ignores resources and most conditions).

What it implements is what the project's policies use: Allow/Deny statements, Action/NotAction and
Resource/NotResource with ``*`` and ``?`` wildcards (actions case-insensitive, resources
case-sensitive), and the StringEquals, StringLike, ArnEquals and ArnLike condition operators with
their multi-valued semantics for the keys a request carries (a key the request does not carry never
satisfies one of these operators, as in IAM). An explicit Deny wins; no Allow means an implicit deny.
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
"""

from __future__ import annotations

import re
from typing import Any

ALLOWED = "allowed"
EXPLICIT_DENY = "explicitDeny"
IMPLICIT_DENY = "implicitDeny"


def as_list(value: Any) -> list[Any]:
    """A policy element that may be a single value or a list, as a list."""
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, case_sensitive: bool) -> bool:
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def _matches(patterns: Any, value: str, case_sensitive: bool) -> bool:
    return any(_wildcard(p, value, case_sensitive) for p in as_list(patterns))


def _arn_like(pattern: str, value: str) -> bool:
    # ArnLike compares the six colon-separated fields one by one (the resource part keeps its colons).
    want, have = pattern.split(":", 5), value.split(":", 5)
    return len(want) == len(have) == 6 and all(_wildcard(w, h, True) for w, h in zip(want, have, strict=True))


_OPERATORS = {
    "StringEquals": lambda expected, actual: actual == expected,
    "StringLike": lambda expected, actual: _wildcard(expected, actual, True),
    "ArnEquals": lambda expected, actual: actual == expected,
    "ArnLike": _arn_like,
}


def condition_holds(condition: dict[str, dict[str, Any]], context: dict[str, list[str]]) -> bool:
    """Whether every operator/key block of ``condition`` holds for ``context`` (keys lower case)."""
    for operator, block in condition.items():
        if operator not in _OPERATORS:
            raise NotImplementedError(f"condition operator {operator} in a test policy")
        test = _OPERATORS[operator]
        for key, expected in block.items():
            actual = context.get(key.lower())
            if not actual:
                return False
            if not all(any(test(e, a) for e in as_list(expected)) for a in actual):
                return False
    return True


def statement_applies(
    statement: dict[str, Any], action: str, resource: str, context: dict[str, list[str]]
) -> bool:
    """Whether ``statement`` covers the request (action, resource and its condition)."""
    if "NotAction" in statement:
        if _matches(statement["NotAction"], action, case_sensitive=False):
            return False
    elif not _matches(statement.get("Action", []), action, case_sensitive=False):
        return False
    if "NotResource" in statement:
        if _matches(statement["NotResource"], resource, case_sensitive=True):
            return False
    elif not _matches(statement.get("Resource", []), resource, case_sensitive=True):
        return False
    return condition_holds(statement.get("Condition", {}), context)


def evaluate(
    documents: list[dict[str, Any]], action: str, resource: str, context: dict[str, list[str]] | None = None
) -> str:
    """'allowed', 'explicitDeny' or 'implicitDeny', as IAM's identity-policy evaluation decides."""
    context = {k.lower(): v for k, v in (context or {}).items()}
    allowed = False
    for document in documents:
        for statement in as_list(document.get("Statement", [])):
            if statement_applies(statement, action, resource, context):
                if statement["Effect"] == "Deny":
                    return EXPLICIT_DENY
                allowed = True
    return ALLOWED if allowed else IMPLICIT_DENY
