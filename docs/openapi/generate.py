"""Generate the OpenAPI 3.1 descriptions of the container and of the API Gateway stage from the code.

``python -m docs.openapi.generate`` writes ``docs/openapi/container.json`` and ``gateway.json``;
``--check`` exits 1 if the committed files differ from what the code says now (the test suite runs
the same comparison, so a change to the schema, the media types or the routes without regenerating
fails CI).

Facts taken from the code, never retyped: the features, their kinds, ranges, optionality and known
categories (``pipeline.schema``), the request and response media types
(``inference.content_types``), the body limit (``inference.settings``), the error codes the app,
nginx and the Lambda proxy answer, the gateway's routes (``lambda_proxy.handler.ROUTES``), its
stage and its accepted content types (``config/deploy.toml``, ``lambda_proxy.settings``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = Path(__file__).resolve().parent
CONTAINER_SPEC = OUT_DIR / "container.json"
GATEWAY_SPEC = OUT_DIR / "gateway.json"
NGINX_CONF = REPO_ROOT / "container" / "nginx.conf"

if str(REPO_ROOT / "container") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "container"))

ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def error_schema() -> dict[str, Any]:
    """The error body every hop but API Gateway itself answers (``inference/errors.py``)."""
    return {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "additionalProperties": False,
                "properties": {
                    "code": {"type": "string", "pattern": "^[a-z0-9_]+$", "description": "machine-readable"},
                    "message": {"type": "string", "minLength": 1},
                    "details": {"type": "array", "items": {"type": "object"}},
                    "request_id": {"type": "string"},
                },
            }
        },
    }


def app_error_codes() -> list[str]:
    """Every code a :class:`inference.errors.ServingError` subclass answers with."""
    from inference import errors

    codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.ServingError)
    }
    return sorted(codes)


def nginx_error_codes() -> list[str]:
    """The codes of the JSON errors nginx renders itself (``container/nginx.conf``)."""
    return sorted(set(re.findall(r'"code":"([a-z0-9_]+)"', NGINX_CONF.read_text(encoding="utf-8"))))


def lambda_error_codes() -> list[str]:
    """The codes the Lambda proxy can answer with (``lambda_proxy``), found in its source."""
    source = "".join(
        path.read_text(encoding="utf-8") for path in sorted((REPO_ROOT / "lambda_proxy").glob("*.py"))
    )
    found = re.findall(r'ProxyError\(\s*(?:\w+|\d{3}),\s*"([a-z0-9_]+)"', source)
    return sorted(set(found))


def feature_schema(feature: Any) -> dict[str, Any]:
    """The JSON value schema of one feature (in a JSON record)."""
    from pipeline.schema import MISSING_TOKENS, NumericFeature

    missing = {"type": "string", "enum": sorted(MISSING_TOKENS), "description": "missing (imputed)"}
    if isinstance(feature, NumericFeature):
        return {
            "description": feature.description,
            "oneOf": [
                {"type": "number", "minimum": feature.minimum, "maximum": feature.maximum},
                {"type": "null"},
                missing,
            ],
            "x-kind": "numeric",
        }
    return {
        "description": (
            f"{feature.description}. Known categories are listed in x-categories; any other string is "
            "accepted and treated as an unseen category. null, '' and '?' mean missing."
        ),
        "type": ["string", "null"],
        "x-kind": "categorical",
        "x-categories": list(feature.categories),
    }


def record_schema() -> dict[str, Any]:
    """One record: an object keyed by feature name (required unless the feature is optional)."""
    from pipeline.schema import SCHEMA

    return {
        "type": "object",
        "description": "One person. Optional features may be left out; every feature may be null.",
        "required": [f.name for f in SCHEMA.features if not f.optional],
        "additionalProperties": False,
        "properties": {f.name: feature_schema(f) for f in SCHEMA.features},
    }


def positional_schema() -> dict[str, Any]:
    """One record as a list of values in the schema's feature order."""
    from pipeline.schema import SCHEMA

    return {
        "type": "array",
        "description": "Values in feature order: " + ", ".join(SCHEMA.names),
        "prefixItems": [feature_schema(f) for f in SCHEMA.features],
        "minItems": len(SCHEMA.features),
        "maxItems": len(SCHEMA.features),
    }


def json_request_schema() -> dict[str, Any]:
    return {
        "oneOf": [
            _ref("Record"),
            {"type": "array", "minItems": 1, "items": {"oneOf": [_ref("Record"), _ref("PositionalRecord")]}},
            {
                "type": "object",
                "required": ["instances"],
                "additionalProperties": False,
                "properties": {
                    "instances": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"oneOf": [_ref("Record"), _ref("PositionalRecord")]},
                    }
                },
            },
        ]
    }


def prediction_schemas() -> dict[str, Any]:
    from pipeline.schema import NEGATIVE_LABEL, POSITIVE_LABEL

    prediction = {
        "type": "object",
        "required": ["label", "probability"],
        "additionalProperties": False,
        "properties": {
            "label": {"type": "string", "enum": [POSITIVE_LABEL, NEGATIVE_LABEL]},
            "probability": {"type": "number", "minimum": 0, "maximum": 1},
        },
    }
    return {
        "Prediction": prediction,
        "Predictions": {
            "type": "object",
            "required": ["predictions"],
            "additionalProperties": False,
            "properties": {"predictions": {"type": "array", "minItems": 1, "items": _ref("Prediction")}},
        },
    }


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def _invocation_request(media_types: list[str]) -> dict[str, Any]:
    from inference.content_types import CSV

    content: dict[str, Any] = {}
    for media in media_types:
        if media == "application/json":
            content[media] = {"schema": _ref("JsonRequest")}
        elif media == CSV:
            content[media] = {
                "schema": {
                    "type": "string",
                    "description": "CSV rows in feature order, or with a header row naming the columns",
                }
            }
        else:
            content[media] = {
                "schema": {"type": "string", "description": "one JSON record (object or list) per line"}
            }
    return {"required": True, "content": content}


def _prediction_content(media_types: tuple[str, ...]) -> dict[str, Any]:
    from inference.content_types import CSV, JSON

    content: dict[str, Any] = {}
    for media in media_types:
        if media == JSON:
            content[media] = {"schema": _ref("Predictions")}
        elif media == CSV:
            content[media] = {"schema": {"type": "string", "description": "label,probability per record"}}
        else:
            content[media] = {"schema": {"type": "string", "description": "one prediction object per line"}}
    return content


def _components() -> dict[str, Any]:
    return {
        "Error": error_schema(),
        "Record": record_schema(),
        "PositionalRecord": positional_schema(),
        "JsonRequest": json_request_schema(),
        **prediction_schemas(),
    }


def container_spec() -> dict[str, Any]:
    """The serving container's HTTP contract (what SageMaker calls)."""
    from inference.content_types import INPUT_ALIASES, OUTPUT_TYPES
    from inference.settings import load_settings

    limit = load_settings({}).max_payload_bytes
    errors = sorted(set(app_error_codes()) | set(nginx_error_codes()))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Adult income model server (SageMaker BYOC container)",
            "version": "1",
            "description": (
                "The routes SageMaker calls on port 8080. Every error, whether the app or nginx "
                "answers it, is a JSON body of the Error schema."
            ),
            "x-max-body-bytes": limit,
            "x-error-codes": errors,
        },
        "paths": {
            "/ping": {
                "get": {
                    "operationId": "ping",
                    "summary": "Health check: 200 once the model is loaded and self-checked",
                    "responses": {
                        "200": {
                            "description": "ready",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["status"],
                                        "properties": {"status": {"const": "ok"}},
                                    }
                                }
                            },
                        },
                        "503": _error_response("the model is not loaded (model_not_ready)"),
                    },
                }
            },
            "/execution-parameters": {
                "get": {
                    "operationId": "executionParameters",
                    "summary": "Batch Transform tuning hints",
                    "responses": {
                        "200": {
                            "description": "parameters",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": [
                                            "MaxConcurrentTransforms",
                                            "BatchStrategy",
                                            "MaxPayloadInMB",
                                        ],
                                        "properties": {
                                            "MaxConcurrentTransforms": {"type": "integer", "minimum": 1},
                                            "BatchStrategy": {"const": "MULTI_RECORD"},
                                            "MaxPayloadInMB": {"type": "integer", "minimum": 1},
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/invocations": {
                "post": {
                    "operationId": "invocations",
                    "summary": "Score one or more records",
                    "parameters": [
                        {
                            "name": "Accept",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "default": OUTPUT_TYPES[0]},
                            "description": "response type: " + ", ".join(OUTPUT_TYPES),
                        }
                    ],
                    "requestBody": _invocation_request(sorted(INPUT_ALIASES)),
                    "responses": {
                        "200": {
                            "description": "one prediction per record",
                            "content": _prediction_content(OUTPUT_TYPES),
                        },
                        "400": _error_response(
                            "malformed body or invalid records (names record, field, problem)"
                        ),
                        "406": _error_response("no acceptable response type"),
                        "413": _error_response(f"body over {limit} bytes"),
                        "415": _error_response("unsupported Content-Type or charset"),
                        "500": _error_response("internal error"),
                        "502": _error_response("the model server is restarting a worker"),
                        "503": _error_response("model not ready"),
                        "504": _error_response("the request ran past its deadline"),
                        # Protocol-level answers nginx gives before the request reaches the app.
                        "408": _error_response("the client did not send the request in time"),
                        "414": _error_response("the request URI is too long"),
                        "501": _error_response("unsupported Transfer-Encoding"),
                        "505": _error_response("unsupported HTTP version"),
                    },
                }
            },
        },
        "components": {"schemas": _components()},
    }


def gateway_spec() -> dict[str, Any]:
    """The API Gateway stage's contract (what API clients call, with an API key)."""
    from inference.content_types import OUTPUT_TYPES

    from lambda_proxy.handler import ROUTES
    from lambda_proxy.settings import DEFAULT_CONTENT_TYPES
    from pipeline.cloud.config import load_config

    config = load_config(REPO_ROOT / "config" / "deploy.toml")
    gateway_message = {
        "type": "object",
        "required": ["message"],
        "additionalProperties": False,
        "properties": {"message": {"type": "string"}},
        "description": "API Gateway's own answers (403 Forbidden, 429, 413 Request Too Long, 502, 504)",
    }
    any_error = {"oneOf": [ERROR_REF, _ref("GatewayMessage")]}

    def errors(*statuses: str) -> dict[str, Any]:
        return {
            status: {"description": "error", "content": {"application/json": {"schema": any_error}}}
            for status in statuses
        }

    paths: dict[str, Any] = {}
    for resource, methods in ROUTES.items():
        for method in methods:
            operation: dict[str, Any] = {"operationId": resource.strip("/"), "security": [{"apiKey": []}]}
            if method == "POST":
                operation["summary"] = "Score records through the Lambda proxy and the SageMaker endpoint"
                operation["parameters"] = [
                    {"name": "Accept", "in": "header", "required": False, "schema": {"type": "string"}}
                ]
                operation["requestBody"] = _invocation_request(list(DEFAULT_CONTENT_TYPES))
                operation["responses"] = {
                    "200": {"description": "predictions", "content": _prediction_content(OUTPUT_TYPES)},
                    **errors("400", "403", "406", "413", "415", "429", "500", "502", "503", "504"),
                }
            else:
                operation["summary"] = "Liveness of the key, the gateway and the function"
                operation["responses"] = {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["status"],
                                    "properties": {"status": {"const": "ok"}},
                                }
                            }
                        },
                    },
                    **errors("403", "429", "500", "502", "504"),
                }
            paths.setdefault(resource, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Adult income prediction API (API Gateway REST stage)",
            "version": "1",
            "description": (
                "Every method needs an API key (header x-api-key) of the usage plan. Errors are the "
                "shared Error schema, or API Gateway's own {message} body for its 403/413/429/502/504."
            ),
            "x-max-body-bytes": 10 * 1024 * 1024,
            "x-lambda-max-body-bytes": 6 * 1024 * 1024,
            "x-error-codes": lambda_error_codes(),
        },
        "servers": [{"url": f"/{config.api.stage}"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
            "schemas": {**_components(), "GatewayMessage": gateway_message},
        },
    }


def render(spec: dict[str, Any]) -> str:
    """The committed text form of a spec (stable key order, trailing newline)."""
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed files are stale")
    args = parser.parse_args(argv)
    stale = []
    for path, spec in ((CONTAINER_SPEC, container_spec()), (GATEWAY_SPEC, gateway_spec())):
        text = render(spec)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO_ROOT)}")
    if stale:
        names = ", ".join(str(p.relative_to(REPO_ROOT)) for p in stale)
        print(f"stale: {names}; run python -m docs.openapi.generate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
