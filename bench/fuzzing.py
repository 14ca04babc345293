"""Schemathesis-driven fuzzing of a live API against its committed OpenAPI description.

For every operation of the spec, hypothesis generates positive (schema-valid) and negative
(schema-violating) requests through schemathesis; each is sent to the live server and judged:

* never a 5xx (``not_a_server_error``), and the status, content type and body conform to the spec;
* every 4xx is JSON matching the documented error schema (the shared ``Error`` body, or API Gateway's
  own ``{"message": ...}`` where the spec allows it);
* a positive ``application/json`` case with an acceptable ``Accept`` is scored (2xx).

Used by ``tests/fuzz`` (a few hundred cases) and ``bench/fuzz.py`` (tens of thousands).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from docs.openapi.contract import error_problem

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ACCEPTABLE = ("application/json", "text/csv", "application/jsonlines", "*/*")


@dataclass
class FuzzResult:
    """Counts and the first failures of one fuzz run."""

    cases: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)
    by_mode: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    failure_count: int = 0
    not_sent: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    def add_failure(self, kind: str, case: Any, response: Any, detail: str) -> None:
        self.failure_count += 1
        if len(self.failures) < 20:
            self.failures.append(
                {
                    "kind": kind,
                    "operation": f"{case.method} {case.path}",
                    "media_type": case.media_type,
                    "headers": {k: str(v)[:80] for k, v in (case.headers or {}).items()},
                    "body": repr(case.body)[:300],
                    "status": response.status_code if response is not None else None,
                    "response": response.content[:300].decode(errors="replace")
                    if response is not None
                    else None,
                    "detail": detail[:600],
                }
            )

    def summary(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "failures": self.failure_count,
            "five_xx": sum(n for s, n in self.statuses.items() if s >= 500),
            "by_operation": dict(self.by_operation),
            "by_mode": dict(self.by_mode),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "not_sent_by_client": dict(self.not_sent),
            "elapsed_s": round(self.elapsed_s, 2),
            "cases_per_s": round(self.cases / self.elapsed_s, 1) if self.elapsed_s else None,
            "first_failures": self.failures,
        }


def load_spec(path: Path) -> tuple[Any, dict[str, Any]]:
    """The schemathesis schema and the raw document of an OpenAPI file."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return schemathesis.openapi.from_dict(raw), raw


def fuzz(
    spec_path: Path,
    base_url: str,
    *,
    examples_per_operation: int,
    headers: Mapping[str, str] | None = None,
    seed: int | None = None,
    timeout_s: float = 35.0,
) -> FuzzResult:
    """Fuzz every operation of ``spec_path`` at ``base_url`` with positive and negative cases."""
    schema, _raw = load_spec(spec_path)
    result = FuzzResult()
    session = requests.Session()
    started = time.monotonic()
    for operation in _operations(schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(
                operation, mode, base_url, session, headers, Path(spec_path), result,
                examples_per_operation // 2, seed, timeout_s,
            )  # fmt: skip
    result.elapsed_s = time.monotonic() - started
    session.close()
    return result


def _operations(schema: Any) -> list[Any]:
    operations = []
    for item in schema.get_all_operations():
        operations.append(item.ok())
    return operations


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    session: requests.Session,
    headers: Mapping[str, str] | None,
    spec_path: Path,
    result: FuzzResult,
    examples: int,
    seed: int | None,
    timeout_s: float,
) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @settings(
        max_examples=max(1, examples),
        database=None,
        deadline=None,
        derandomize=seed is None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        # The credentials we were given replace generated ones (wrong keys are tested elsewhere).
        case.headers = {**(case.headers or {}), **(headers or {})}
        try:
            response = case.call(base_url=base_url, session=session, timeout=timeout_s)
        except (ValueError, UnicodeError, requests.exceptions.InvalidHeader) as exc:
            # Requests refuses to put some generated header values on the wire; nothing was sent.
            result.not_sent[type(exc).__name__] += 1
            return
        except requests.RequestException as exc:
            result.cases += 1
            result.add_failure("connection", case, None, f"{type(exc).__name__}: {exc}")
            return
        result.cases += 1
        result.by_operation[label] += 1
        result.by_mode[mode.value] += 1
        result.statuses[response.status_code] += 1
        _judge(case, response, mode, spec_path, result)

    if seed is not None:
        run = hypothesis_seed(seed)(run)
    try:
        run()
    except Unsatisfiable:
        # An operation without inputs (GET /ping) has no negative variant: nothing to generate.
        if mode is not GenerationMode.NEGATIVE:
            raise


def _judge(case: Any, response: Any, mode: GenerationMode, spec_path: Path, result: FuzzResult) -> None:
    try:
        case.validate_response(response, checks=CHECKS)
    except Exception as exc:  # schemathesis raises a Failure or FailureGroup per violated check
        result.add_failure("schemathesis", case, response, f"{type(exc).__name__}: {exc}")
        return
    status = response.status_code
    if status >= 400:
        detail = _error_body_problem(response, spec_path)
        if detail:
            result.add_failure("error_body", case, response, detail)
    if mode is GenerationMode.POSITIVE and case.media_type == "application/json" and not 200 <= status < 300:
        accept = (case.headers or {}).get("Accept")
        if accept is None or accept in ACCEPTABLE:
            result.add_failure("positive_rejected", case, response, f"a valid record got {status}")


def _error_body_problem(response: Any, spec_path: Path) -> str | None:
    """None if ``response`` is a JSON error matching one of the documented error schemas."""
    content_type = ";".join(response.headers.get("content-type", []))
    return error_problem(response.content, content_type, spec_path)
