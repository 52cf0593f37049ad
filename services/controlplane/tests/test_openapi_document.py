"""The control plane's OpenAPI document: valid OpenAPI 3.1, every registered route in it, and a
request model behind every route that takes a body."""

from __future__ import annotations

from aiohttp import web
from openapi_spec_validator import validate

from hydite_controlplane.admin.openapi import QUERY_PARAMETERS, REQUEST_BODIES, admin_document
from hydite_controlplane.app import build_app
from hydite_controlplane.settings import ControlplaneSettings


def _app() -> web.Application:
    """The admin app, built but not started (no database needed to read its routes)."""
    return build_app(ControlplaneSettings(environment="dev", master_key="sk-" + "m" * 32, salt_key="s" * 32))


def _app_routes() -> set[tuple[str, str]]:
    app = _app()
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


def test_every_route_is_described_and_the_document_is_valid() -> None:
    """Each method + path the app registered is an operation of a document the validator accepts."""
    document = admin_document(_app())
    validate(document)
    described = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert described == _app_routes()


def test_every_route_with_a_body_names_its_request_model() -> None:
    """A route taking a body (any method but GET) has the model that validates it, so its schema
    is the real one rather than any object; and no body or query entry names a path nobody serves."""
    routes = _app_routes()
    with_bodies = {path for method, path in routes if method != "GET"}
    assert with_bodies <= set(REQUEST_BODIES), sorted(with_bodies - set(REQUEST_BODIES))
    assert set(REQUEST_BODIES) <= {path for _, path in routes}
    assert set(QUERY_PARAMETERS) <= {path for method, path in routes if method == "GET"}


def test_admin_bodies_are_their_models_schemas() -> None:
    """/key/generate's body is GenerateKeyRequest's schema, which forbids unknown fields."""
    document = admin_document(_app())
    body = document["paths"]["/key/generate"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/admin.GenerateKeyRequest"}
    schema = document["components"]["schemas"]["admin.GenerateKeyRequest"]
    assert schema["additionalProperties"] is False and "key_alias" in schema["properties"]
    assert document["paths"]["/health/readiness"]["get"]["security"] == []
