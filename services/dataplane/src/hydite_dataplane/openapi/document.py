"""The OpenAPI 3.1 document of the data plane, generated from the route table (routes.ROUTES,
routes.OPERATIONS) and the operation docs (openapi/operations.py), and its merge with the control
plane's admin document. Pure: no I/O but reading the vendored schemas once."""

from __future__ import annotations

import copy
import re
from importlib import resources
from typing import Any

import orjson

from hydite_common.http import service_version
from hydite_dataplane.openapi.operations import GATEWAY_SCHEMAS, OPERATION_DOCS, SSE, OperationDoc, ref
from hydite_dataplane.routes import OPERATIONS, ROUTES, Route

OPENAI_COMPONENTS = "openai_components.json"
CONTROLPLANE_EXTENSION = "x-hydite-controlplane"
"""The info field saying whether the control plane's admin routes are in the document."""

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A virtual key (sk-...) or the master key.",
    },
    "x-api-key": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "The same key in Anthropic's header (the Messages API).",
    },
}

_INFERENCE_ERRORS = {
    "400": "The request is malformed or a field is invalid.",
    "401": "No key, or an invalid, blocked or expired one.",
    "403": "The key may not use this route or model.",
    "404": "No such model (or resource).",
    "429": "A rate limit or budget was reached.",
}
_PATH_PARAMETER = re.compile(r"{([^}:]+)}")


def vendored_openai_schemas() -> dict[str, Any]:
    """OpenAI's component schemas the document refers to (package data, see
    scripts/vendor_openai_schemas.py)."""
    loaded: dict[str, Any] = orjson.loads(
        resources.files("hydite_dataplane.openapi").joinpath(OPENAI_COMPONENTS).read_bytes()
    )
    return loaded


def operation_id(route: Route) -> str:
    """A unique id for a route: its operation, method and path (e.g. chat_post_v1_chat_completions)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", route.path).strip("_")
    return f"{route.operation.replace('.', '_')}_{route.method.lower()}_{slug}"


def _parameters(route: Route, doc: OperationDoc) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _PATH_PARAMETER.findall(route.path)
    ]
    if "/openai/deployments/" in route.path:
        parameters.append(
            {"name": "api-version", "in": "query", "required": False, "schema": {"type": "string"}}
        )
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in doc.query
    ]
    return parameters


def _responses(route: Route, doc: OperationDoc) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": doc.summary}
    if doc.response is not None:
        answer["content"] = {doc.response_type: {"schema": doc.response}}
        operation = OPERATIONS.get(route.operation)
        if operation is not None and operation.streams:
            answer["content"][SSE] = {"schema": {"type": "string", "description": "Server-sent events."}}
    responses: dict[str, Any] = {"200": answer}
    if route.auth == "public":
        if route.operation == "readiness":
            responses["503"] = {
                "description": "No configuration received yet.",
                "content": _json(ref("hydite.Object")),
            }
        return responses
    error = ref("hydite.AnthropicError") if route.wire_format == "anthropic" else ref("ErrorResponse")
    for status, description in _INFERENCE_ERRORS.items():
        responses[status] = {"description": description, "content": _json(error)}
    return responses


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(route: Route) -> dict[str, Any]:
    doc = OPERATION_DOCS[route.operation]
    operation: dict[str, Any] = {
        "operationId": operation_id(route),
        "summary": doc.summary,
        "tags": [doc.tag],
    }
    if parameters := _parameters(route, doc):
        operation["parameters"] = parameters
    if doc.request is not None:
        operation["requestBody"] = {"required": True, "content": {doc.request_type: {"schema": doc.request}}}
    operation["responses"] = _responses(route, doc)
    if route.auth == "public":
        operation["security"] = []
    elif route.wire_format == "anthropic":
        operation["security"] = [{"x-api-key": []}, {"bearer": []}]
    return operation


def dataplane_document(routes: tuple[Route, ...] = ROUTES) -> dict[str, Any]:
    """The data plane's own part: every route of the table, OpenAI's schemas where OpenAI has them."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hydite",
            "version": service_version(),
            "description": "An OpenAI-compatible LLM gateway: inference routes (with and without /v1), "
            "Anthropic's Messages API, and the admin API of LiteLLM's proxy.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": {**vendored_openai_schemas(), **GATEWAY_SCHEMAS},
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def merged(
    dataplane: dict[str, Any], controlplane: dict[str, Any] | None, missing: str | None
) -> dict[str, Any]:
    """The data plane's document with the control plane's paths and schemas added (a path the data
    plane serves itself keeps the data plane's description); without the control plane's document,
    the data plane's alone, its info saying why."""
    document = copy.copy(dataplane)
    info = dict(dataplane["info"])
    if controlplane is None:
        info[CONTROLPLANE_EXTENSION] = {"included": False, "reason": missing or "unknown"}
        info["description"] = (
            f"{info['description']} The admin routes are missing: the control plane's description "
            f"was unavailable ({missing})."
        )
        document["info"] = info
        return document
    info[CONTROLPLANE_EXTENSION] = {"included": True, "version": controlplane.get("info", {}).get("version")}
    document["info"] = info
    served = dataplane["paths"]
    document["paths"] = {
        **{p: o for p, o in controlplane.get("paths", {}).items() if p not in served},
        **served,
    }
    cp_components = controlplane.get("components", {})
    components = dict(dataplane["components"])
    components["schemas"] = {**cp_components.get("schemas", {}), **components["schemas"]}
    components["securitySchemes"] = {
        **cp_components.get("securitySchemes", {}),
        **components["securitySchemes"],
    }
    document["components"] = components
    return document


def route_list(
    dataplane_routes: tuple[Route, ...], controlplane: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """/routes: each data plane route with its method and operation, then each control plane path
    the data plane does not serve itself, with its methods and (as its name) its operation id."""
    routes: list[dict[str, Any]] = [
        {"path": r.path, "methods": [r.method], "name": r.operation} for r in dataplane_routes
    ]
    served = {r.path for r in dataplane_routes}
    for path, operations in (controlplane or {}).get("paths", {}).items():
        if path in served or not isinstance(operations, dict):
            continue
        methods = sorted(m.upper() for m in operations)
        first = operations[methods[0].lower()] if methods else {}
        name = first.get("operationId", path) if isinstance(first, dict) else path
        routes.append({"path": path, "methods": methods, "name": name})
    return routes
