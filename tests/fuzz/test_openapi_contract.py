"""The committed OpenAPI descriptions match the code: regenerate-and-compare, plus independent checks
against what the Flask app registers, the media types it accepts, the schema and the gateway routes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from docs.openapi import generate
from docs.openapi.contract import CONTAINER_SPEC, GATEWAY_SPEC, load
from pipeline.schema import SCHEMA, CategoricalFeature, NumericFeature

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("path", "build"), [(CONTAINER_SPEC, generate.container_spec), (GATEWAY_SPEC, generate.gateway_spec)]
)
def test_committed_spec_is_what_the_code_generates(path: Path, build) -> None:
    assert path.read_text(encoding="utf-8") == generate.render(build()), (
        f"{path.name} is stale: run python -m docs.openapi.generate and commit the result"
    )


@pytest.mark.parametrize("path", [CONTAINER_SPEC, GATEWAY_SPEC])
def test_specs_are_valid_openapi(path: Path) -> None:
    validate(json.loads(path.read_text(encoding="utf-8")))


def test_container_paths_and_methods_are_the_routes_flask_registers(quick_model_dir: Path) -> None:
    from inference.app import create_app
    from inference.readiness import load_model_state
    from inference.settings import load_settings

    app = create_app(load_settings({}), load_model_state(quick_model_dir))
    registered = {
        (rule.rule, method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(p, m) for p, ops in load(CONTAINER_SPEC)["paths"].items() for m in ops}
    assert documented == registered


def test_request_and_response_media_types_are_the_ones_the_app_negotiates() -> None:
    from inference.content_types import INPUT_ALIASES, OUTPUT_TYPES

    post = load(CONTAINER_SPEC)["paths"]["/invocations"]["post"]
    assert set(post["requestBody"]["content"]) == set(INPUT_ALIASES)
    assert list(post["responses"]["200"]["content"]) == list(OUTPUT_TYPES)


def test_record_schema_lists_every_feature_with_its_type_range_categories_and_requiredness() -> None:
    record = load(CONTAINER_SPEC)["components"]["schemas"]["Record"]
    assert list(record["properties"]) == list(SCHEMA.names)
    assert set(record["required"]) == {f.name for f in SCHEMA.features if not f.optional}
    assert record["additionalProperties"] is False
    for feature in SCHEMA.features:
        documented = record["properties"][feature.name]
        if isinstance(feature, NumericFeature):
            number = next(s for s in documented["oneOf"] if s.get("type") == "number")
            assert (number["minimum"], number["maximum"]) == (feature.minimum, feature.maximum)
            assert documented["x-kind"] == "numeric"
        else:
            assert isinstance(feature, CategoricalFeature)
            assert documented["x-categories"] == list(feature.categories)
            assert documented["type"] == ["string", "null"]
    positional = load(CONTAINER_SPEC)["components"]["schemas"]["PositionalRecord"]
    assert positional["minItems"] == positional["maxItems"] == len(SCHEMA.features)


def test_documented_error_codes_cover_every_code_the_app_and_nginx_answer() -> None:
    from inference import errors

    codes = set(load(CONTAINER_SPEC)["info"]["x-error-codes"])
    app_codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.ServingError)
    }
    nginx_text = (REPO_ROOT / "container" / "nginx.conf").read_text(encoding="utf-8")
    nginx_codes = set(re.findall(r'"code":"([a-z0-9_]+)"', nginx_text))
    assert app_codes | nginx_codes <= codes
    assert nginx_codes, "nginx.conf no longer renders JSON errors"
    # Every status nginx answers itself is documented on /invocations.
    statuses = {int(s) for s in re.findall(r"return (\d{3}) '\{\"error\"", nginx_text)}
    documented = {int(s) for s in load(CONTAINER_SPEC)["paths"]["/invocations"]["post"]["responses"]}
    assert statuses - {405} <= documented, statuses - documented  # a POST /invocations is never a 405


def test_gateway_spec_matches_the_lambda_routes_stage_and_content_types() -> None:
    from lambda_proxy.handler import ROUTES
    from lambda_proxy.settings import DEFAULT_CONTENT_TYPES
    from pipeline.cloud.apigateway import ROUTES as CLOUD_ROUTES
    from pipeline.cloud.config import load_config

    spec = load(GATEWAY_SPEC)
    documented = {(p, m.upper()) for p, ops in spec["paths"].items() for m in ops}
    assert documented == {(r, m) for r, methods in ROUTES.items() for m in methods}
    assert documented == {("/" + part, method) for part, method in CLOUD_ROUTES}
    assert spec["servers"] == [{"url": f"/{load_config().api.stage}"}]
    assert set(spec["paths"]["/predict"]["post"]["requestBody"]["content"]) == set(DEFAULT_CONTENT_TYPES)
    for ops in spec["paths"].values():
        for op in ops.values():
            assert op["security"] == [{"apiKey": []}]
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }


def test_error_schema_is_the_one_the_app_renders() -> None:
    import jsonschema
    from inference.errors import InvalidRecords, error_body

    schema = load(CONTAINER_SPEC)["components"]["schemas"]["Error"]
    body = json.loads(error_body(InvalidRecords("1 problem", [{"record": 0, "field": "age"}]), "abc"))
    jsonschema.validate(body, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"error": {"code": "x", "message": "m"}}, schema)  # details is required
