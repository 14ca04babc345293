"""A loopback stand-in for the deployed stage URL (``https://<id>.execute-api.../<stage>``).

moto stores the REST API, the usage plan and the keys but cannot serve the API, so the evidence tests
point the stage URL here. It answers as API Gateway does for this API, with the moto-deployed stack's
own settings: the key values on the usage plan (read from moto) and the plan's throttle (the project's
token bucket, pipeline.local.usage_plan). Missing or unknown key: 403 ``{"message":"Forbidden"}``;
empty bucket: 429 ``{"message":"Too Many Requests"}``. Behind it, ``GET /health`` answers as the Lambda
does, and ``POST /predict`` goes to the real serving app (the container's Flask app with the released
model, in process), so predictions and a 400 naming the bad fields are the container's own answers.
The Lambda and InvokeEndpoint hops are left out: they have their own tests.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pipeline.local.usage_plan import PlanLimits, QuotaExceeded, Throttled, UsagePlan


@dataclass
class FakeApiGateway:
    url: str  # the stage URL, ``http://127.0.0.1:PORT/<stage>``
    server: ThreadingHTTPServer
    seen_keys: list[str | None]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _plan_from_moto(apigateway: Any, plan_name: str) -> tuple[dict[str, str], PlanLimits]:
    """(key value -> key id, limits) of the moto-deployed usage plan."""
    plan = next(p for p in apigateway.get_usage_plans()["items"] if p["name"] == plan_name)
    keys = {}
    for item in apigateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"]:
        key = apigateway.get_api_key(apiKey=item["id"], includeValue=True)
        keys[key["value"]] = key["id"]
    limits = PlanLimits(
        rate=float(plan["throttle"]["rateLimit"]),
        burst=int(plan["throttle"]["burstLimit"]),
        quota_limit=int(plan["quota"]["limit"]),
        quota_period=plan["quota"]["period"],
    )
    return keys, limits


def _serving_app(model_dir: Path) -> Any:
    from inference.app import create_app
    from inference.readiness import load_model_state
    from inference.settings import load_settings

    settings = load_settings({"MODEL_DIR": str(model_dir), "SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    return create_app(settings, load_model_state(settings.model_dir)).test_client()


def start(apigateway: Any, plan_name: str, stage: str, model_dir: Path) -> FakeApiGateway:
    """Serve the stage on 127.0.0.1 (a free port) until ``stop``."""
    keys, limits = _plan_from_moto(apigateway, plan_name)
    plan = UsagePlan(limits)
    app = _serving_app(model_dir)
    seen: list[str | None] = []
    app_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet: the test reads the captures
            pass

        def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _message(self, status: int, message: str) -> None:
            self._answer(status, json.dumps({"message": message}).encode())

        def _admit(self) -> str | None:
            """The route ('/health', '/predict') if the gateway lets the request through, else None."""
            length = int(self.headers.get("Content-Length") or 0)
            self.body = self.rfile.read(length) if length else b""
            route = self.path.split("?")[0].removeprefix(f"/{stage}")
            if route not in ("/health", "/predict"):
                self._message(403, "Missing Authentication Token")
                return None
            key = self.headers.get("x-api-key")
            seen.append(key)
            if key not in keys:
                self._message(403, "Forbidden")
                return None
            try:
                plan.admit(keys[key])
            except Throttled:
                self._message(429, "Too Many Requests")
                return None
            except QuotaExceeded:
                self._message(429, "Limit Exceeded")
                return None
            return route

        def do_GET(self) -> None:
            route = self._admit()
            if route == "/health":
                self._answer(200, b'{"status": "ok"}')
            elif route is not None:
                self._message(403, "Missing Authentication Token")

        def do_POST(self) -> None:
            route = self._admit()
            if route == "/predict":
                with app_lock:
                    answer = app.post(
                        "/invocations",
                        data=self.body,
                        content_type=self.headers.get("Content-Type", "application/json"),
                    )
                self._answer(answer.status_code, answer.data, answer.content_type)
            elif route is not None:
                self._message(403, "Missing Authentication Token")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return FakeApiGateway(f"http://127.0.0.1:{server.server_address[1]}/{stage}", server, seen)
