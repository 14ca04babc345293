"""Make the N-th AWS call of the code under test fail, the way AWS fails it, on the wire.

The fault is answered from botocore's ``before-send`` event, i.e. per HTTP attempt and before moto
sees the request: the service's own protocol parser turns the fake response into a real
``ClientError``, and botocore's retry handler (standard mode, 6 attempts, pipeline/cloud/clients.py)
sees every attempt. Raising a ``ClientError`` from ``before-call`` instead would skip both, so a
throttle the SDK absorbs in real life would fail the test, and one it does not absorb would never
exercise the retry path. A throttle is therefore injected on *every* attempt of the chosen call
(``attempts=None``) so that it surfaces after the retries, or on the first attempts only to check
that the retry absorbs it. The request never reaches moto, as a throttled or denied request never
changes anything in AWS.

Only calls made by the project's clients count (their User-Agent carries ``adult-income-deploy``):
the test fakes (docker push into ECR, the training-artifact hook) call AWS too, but AWS would not
see those calls, so faulting them would test the fakes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import botocore.retries.standard
import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import BotocoreStubber

PROJECT_USER_AGENT = "adult-income-deploy"
FAULT = "fault-injection"  # key in the request context: this call is the faulted one
ANSWERED = "fault-injection-answered"  # this HTTP attempt was answered with the fault

# (code, HTTP status) per protocol, as each service family answers it.
THROTTLE = {
    "query": ("Throttling", 400),  # IAM, STS
    "json": ("ThrottlingException", 400),  # SageMaker, ECR, Logs, Application Auto Scaling
    "smithy-rpc-v2-cbor": ("ThrottlingException", 400),  # CloudWatch
    "rest-json": ("TooManyRequestsException", 429),  # Lambda, API Gateway, Resource Groups
    "rest-xml": ("SlowDown", 503),  # S3
}
DENIED = {
    "query": ("AccessDenied", 403),
    "json": ("AccessDeniedException", 400),
    "smithy-rpc-v2-cbor": ("AccessDeniedException", 400),
    "rest-json": ("AccessDeniedException", 403),
    "rest-xml": ("AccessDenied", 403),
}
KINDS = {"throttle": THROTTLE, "denied": DENIED}


@dataclass
class Fault:
    kind: str  # "throttle" or "denied"
    at: int  # 1-based number of the project's call to fail
    attempts: int | None = None  # HTTP attempts to fail; None: every attempt (the fault persists)
    operation: str | None = None  # instead of ``at``: fail every call of this operation


@dataclass
class FaultInjector:
    """Counts the project's AWS calls on a session and fails the one ``fault`` names."""

    fault: Fault | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)
    failed_attempts: int = 0  # HTTP attempts answered with the fault
    faulted_call: tuple[str, str] | None = None

    def install(self, session: Any, monkeypatch: pytest.MonkeyPatch) -> FaultInjector:
        """Hook ``session`` (before any client of it exists: clients copy the hooks when created)."""
        session.events.register_first("before-call.*.*", self._before_call)
        # First, so the fault's response is the one botocore takes. botocore still calls every
        # before-send handler, moto's included, so moto is told to leave an answered attempt alone:
        # a throttled or denied request changes nothing in AWS.
        session.events.register_first("before-send.*.*", self._before_send)
        original = BotocoreStubber.__call__
        if getattr(original, "skips_answered", False):
            return self

        def moto_unless_answered(stubber: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
            if (request.context or {}).pop(ANSWERED, False):
                return None
            return original(stubber, event_name, request, **kwargs)

        moto_unless_answered.skips_answered = True  # type: ignore[attr-defined]
        monkeypatch.setattr(BotocoreStubber, "__call__", moto_unless_answered)
        return self

    def arm(self, fault: Fault | None) -> None:
        """Count from zero again and fail as ``fault`` says (None: fail nothing)."""
        self.fault, self.calls, self.failed_attempts, self.faulted_call = fault, [], 0, None

    def _before_call(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if PROJECT_USER_AGENT not in params.get("headers", {}).get("User-Agent", ""):
            return
        self.calls.append((model.service_model.service_name, model.name))
        if self.fault and (
            model.name == self.fault.operation if self.fault.operation else len(self.calls) == self.fault.at
        ):
            context[FAULT] = {"model": model, "kind": self.fault.kind, "left": self.fault.attempts}
            self.faulted_call = self.calls[-1]

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        fault = (request.context or {}).get(FAULT)
        if fault is None or fault["left"] == 0:
            return None
        if fault["left"] is not None:
            fault["left"] -= 1
        self.failed_attempts += 1
        request.context[ANSWERED] = True
        return error_response(fault["model"], fault["kind"], request)


def error_response(model: Any, kind: str, request: Any) -> AWSResponse:
    """The HTTP error ``model``'s service sends for a ``kind`` fault, in that service's protocol."""
    protocol = model.service_model.resolved_protocol  # the one the client speaks
    code, status = KINDS[kind][protocol]
    service = model.service_model.signing_name
    if kind == "throttle":
        message = "Rate exceeded"
    else:
        message = (
            f"User: arn:aws:iam::123456789012:user/deployer is not authorized to perform: "
            f"{service}:{model.name} because no identity-based policy allows the "
            f"{service}:{model.name} action"
        )
    headers = {"x-amzn-RequestId": "fault-injected"}
    if protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}"
            "</Message></Error><RequestId>fault-injected</RequestId></ErrorResponse>"
        ).encode()
        headers["Content-Type"] = "text/xml"
    elif protocol == "rest-xml":
        body = (
            b""  # S3 answers a HEAD with the status only
            if request.method == "HEAD"
            else f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>".encode()
        )
        headers["Content-Type"] = "application/xml"
    elif protocol == "rest-json":
        body = json.dumps({"message": message}).encode()
        headers.update({"Content-Type": "application/json", "x-amzn-ErrorType": code})
    elif protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers["Content-Type"] = "application/x-amz-json-1.1"
    else:  # smithy-rpc-v2-cbor
        body = _cbor_text_map({"__type": code, "message": message})
        headers.update({"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"})
    return AWSResponse(request.url, status, headers, _Raw(body))


class _Raw:
    """The raw-stream side of an HTTP response that AWSResponse reads its body from."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def _cbor_text_map(items: dict[str, str]) -> bytes:
    """CBOR (RFC 8949) encoding of a small map of text strings: all an RPC v2 error body needs."""

    def head(major: int, length: int) -> bytes:
        if length < 24:
            return bytes([major << 5 | length])
        if length < 256:
            return bytes([major << 5 | 24, length])
        return bytes([major << 5 | 25]) + length.to_bytes(2, "big")

    out = head(5, len(items))
    for key, value in items.items():
        for text in (key, value):
            data = text.encode()
            out += head(3, len(data)) + data
    return out


def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Keep botocore's retries (the attempts happen) but not their back-off sleeps; returns the delays."""
    delays: list[float] = []
    original = botocore.retries.standard.ExponentialBackoff.delay_amount

    def delay_amount(self: Any, context: Any) -> float:
        delays.append(original(self, context))
        return 0.0

    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", delay_amount)
    return delays
