"""The committed OpenAPI descriptions as a contract that tests and benches check live answers against."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

OPENAPI_DIR = Path(__file__).resolve().parent
CONTAINER_SPEC = OPENAPI_DIR / "container.json"
GATEWAY_SPEC = OPENAPI_DIR / "gateway.json"


@cache
def load(path: Path) -> dict[str, Any]:
    """A committed spec document."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


@cache
def error_validators(path: Path = CONTAINER_SPEC) -> tuple[jsonschema.Draft202012Validator, ...]:
    """Validators for the error bodies ``path`` documents (Error, plus API Gateway's own where listed)."""
    schemas = load(path)["components"]["schemas"]
    names = [name for name in ("Error", "GatewayMessage") if name in schemas]
    return tuple(jsonschema.Draft202012Validator(schemas[name]) for name in names)


def error_problem(body: bytes | str, content_type: str | None, path: Path = CONTAINER_SPEC) -> str | None:
    """None if ``body`` is a JSON error matching a documented error schema, else what is wrong."""
    if not (content_type or "").lower().startswith("application/json"):
        return f"error with Content-Type {content_type!r}"
    try:
        document = json.loads(body)
    except ValueError:
        return f"error body is not JSON: {body[:200]!r}"
    if any(validator.is_valid(document) for validator in error_validators(path)):
        return None
    return f"error body does not match the documented error schema: {document!r}"[:500]


def assert_documented_error(
    body: bytes | str, content_type: str | None = "application/json", path: Path = CONTAINER_SPEC
) -> dict[str, Any]:
    """Assert ``body`` is a documented JSON error; returns the parsed document's ``error`` (or itself)."""
    problem = error_problem(body, content_type, path)
    assert problem is None, problem
    document = json.loads(body)
    return document.get("error", document)
