"""/openapi.json, /routes, /docs and the health routes' callers, on the running stack: the document
is valid OpenAPI 3.1 and describes every route of both planes; /docs is off unless EXPOSE_DOCS; the
master key and admins' keys reach /health and /health/services."""

from __future__ import annotations

import httpx
from openapi_spec_validator import validate

from hydite_common.devstack import Stack
from hydite_dataplane.routes import ROUTES
from tests.harness import ok_post, synced, unique


def _operations(document: dict[str, object]) -> set[tuple[str, str]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def test_openapi_json_describes_both_planes_and_is_valid(stack: Stack) -> None:
    """Every data plane route and every control plane route the data plane forwards is an
    operation of one valid document, with bearer and x-api-key schemes."""
    document = httpx.get(stack.base_url + "/openapi.json", timeout=30).json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["info"]["x-hydite-controlplane"]["included"] is True
    described = _operations(document)
    assert {(r.method, r.path) for r in ROUTES} <= described
    admin_document = httpx.get(stack.admin_url + "/openapi.json", timeout=30).json()
    served = {r.path for r in ROUTES}
    forwarded = {(m, p) for m, p in _operations(admin_document) if p not in served}
    assert forwarded and forwarded <= described
    assert {"bearer", "x-api-key"} <= set(document["components"]["securitySchemes"])
    generate = document["paths"]["/key/generate"]["post"]
    body_schema = generate["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/admin.GenerateKeyRequest"}
    assert generate["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ErrorResponse"
    )


def test_routes_lists_both_planes(stack: Stack) -> None:
    """/routes has the data plane's inference paths and the control plane's admin paths."""
    answer = httpx.get(stack.base_url + "/routes", timeout=30).json()
    assert answer["controlplane_included"] is True
    routes = answer["routes"]
    assert {"path": "/v1/chat/completions", "methods": ["POST"], "name": "chat"} in routes
    by_path = {r["path"]: r for r in routes}
    assert by_path["/key/generate"]["methods"] == ["POST"]
    assert set(by_path["/organization/update"]["methods"]) == {"PATCH", "POST"}


def test_docs_are_off_without_expose_docs(stack: Stack) -> None:
    """Without EXPOSE_DOCS, /docs and its assets are OpenAI-shaped 404s."""
    for path in ("/docs", "/docs/swagger-ui-bundle.js"):
        answer = httpx.get(stack.base_url + path, timeout=10)
        assert answer.status_code == 404
        assert answer.json()["error"]["type"] == "invalid_request_error"


def test_master_and_admin_keys_reach_the_health_routes(stack: Stack, admin: httpx.Client) -> None:
    """The master key and a proxy admin's management key get /health (every deployment, also
    ones outside the key's allowlist) and /health/services; an internal user's management key is
    refused, and an ordinary key sees only its own models."""
    model = unique("openapi-health")
    ok_post(admin, "/model/new", {"model_name": model, "litellm_params": {"model": "mock/anything"}})
    keys = {}
    for role in ("proxy_admin", "internal_user"):
        user_id = unique(f"openapi-{role}")
        ok_post(admin, "/user/new", {"user_id": user_id, "user_role": role, "auto_create_key": False})
        keys[role] = ok_post(
            admin, "/key/generate", {"user_id": user_id, "key_type": "management", "models": ["elsewhere"]}
        )["key"]
    keys["ordinary"] = ok_post(admin, "/key/generate", {"models": ["elsewhere"]})["key"]
    synced(admin)

    def health(key: str, path: str = "/health") -> httpx.Response:
        return httpx.get(
            stack.base_url + path,
            params={"model": model} if path == "/health" else None,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )

    for key in (stack.config.master_key, keys["proxy_admin"]):
        checked = health(key)
        assert checked.status_code == 200, checked.text
        assert checked.json()["healthy_count"] == 1
        services = health(key, "/health/services")
        assert services.status_code == 200 and "mock" in services.json()["services"]
    refused = health(keys["internal_user"])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "route_not_allowed"
    ordinary = health(keys["ordinary"])
    assert ordinary.status_code == 200 and ordinary.json()["healthy_count"] == 0
