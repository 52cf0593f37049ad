"""GET /openapi.json of the control plane: an OpenAPI 3.1 description of every route the admin
app registered, with each JSON body's schema taken from the request model that validates it.

The data plane merges this document into its own /openapi.json (the admin API is reached through
the data plane's base URL too), so component names carry an `admin.` prefix that cannot collide
with OpenAI's.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from hydite_common.http import json_response, service_version
from hydite_controlplane.admin import (
    budgets,
    customers,
    entities,
    key_groups,
    keys,
    models,
    organizations,
    spend,
    tags,
    teams,
    users,
)

COMPONENT_PREFIX = "admin."
ERROR_SCHEMA = f"{COMPONENT_PREFIX}ErrorResponse"


def _entity_bodies(entity: entities.Entity) -> dict[str, type[BaseModel]]:
    """The bodies of an entity's generic routes (entity_routes)."""
    prefix = f"/{entity.kind}"
    return {
        f"{prefix}/new": entity.fields,
        f"{prefix}/update": entity.fields,
        f"{prefix}/delete": entities.delete_request_model(entity),
    }


REQUEST_BODIES: dict[str, type[BaseModel]] = {
    "/key/generate": keys.GenerateKeyRequest,
    "/key/update": keys.UpdateKeyRequest,
    "/key/delete": keys.DeleteKeysRequest,
    "/key/regenerate": keys.RegenerateKeyRequest,
    "/key/{key}/regenerate": keys.RegenerateKeyRequest,
    "/key/block": keys.KeyRef,
    "/key/unblock": keys.KeyRef,
    "/key/{key}/reset_spend": keys.ResetSpendRequest,
    "/model/new": models.NewModelRequest,
    "/model/update": models.UpdateModelRequest,
    "/model/delete": models.DeleteModelRequest,
    **_entity_bodies(users.USERS),
    **_entity_bodies(teams.TEAMS),
    "/team/member_add": teams.MemberAddRequest,
    "/team/member_update": teams.MemberUpdateRequest,
    "/team/member_delete": teams.MemberDeleteRequest,
    "/team/block": teams.TeamRef,
    "/team/unblock": teams.TeamRef,
    **_entity_bodies(organizations.ORGANIZATIONS),
    "/organization/member_add": organizations.OrgMemberAddRequest,
    "/organization/member_update": organizations.OrgMemberUpdateRequest,
    "/organization/member_delete": organizations.OrgMemberDeleteRequest,
    **{
        f"{prefix}/{action}": model
        for prefix in ("/customer", "/end_user")
        for action, model in (
            ("new", customers.NewCustomerFields),
            ("update", customers.CustomerFields),
            ("delete", customers.CustomerRefs),
            ("block", customers.CustomerRefs),
            ("unblock", customers.CustomerRefs),
        )
    },
    "/budget/new": budgets.BudgetFields,
    "/budget/update": budgets.BudgetFields,
    "/budget/delete": budgets.BudgetRef,
    "/budget/info": budgets.BudgetIds,
    **_entity_bodies(key_groups.KEY_GROUPS),
    "/spend/logs/redact": spend.RedactRequest,
    "/tag/new": tags.TagFields,
    "/tag/update": tags.TagFields,
    "/tag/delete": tags.TagRef,
    "/tag/info": tags.TagNames,
}
"""The request model each admin path validates its JSON body with (every method that has a body)."""


def _entity_queries(entity: entities.Entity) -> dict[str, tuple[str, ...]]:
    """The query parameters of an entity's generic /info and /list (entity_routes)."""
    prefix = f"/{entity.kind}"
    info = (entity.id_field, *((entity.info_alias,) if entity.info_alias else ()))
    return {f"{prefix}/info": info, f"{prefix}/list": (*entity.list_filters, "page", "page_size")}


PAGE = ("page", "page_size")
DATES = ("start_date", "end_date")
QUERY_PARAMETERS: dict[str, tuple[str, ...]] = {
    **_entity_queries(users.USERS),
    **_entity_queries(teams.TEAMS),
    **_entity_queries(organizations.ORGANIZATIONS),
    **_entity_queries(key_groups.KEY_GROUPS),
    "/key/info": ("key",),
    "/key/list": ("team_id", "user_id", "organization_id", "key_alias", "return_full_object", "page", "size"),
    "/model/info": ("litellm_model_id", "model_id"),
    "/v1/model/info": ("litellm_model_id", "model_id"),
    "/v2/model/info": ("page", "size", "sortBy", "sortOrder", "model", "modelId", "teamId", "search"),
    "/model_group/info": ("model_group",),
    **{
        f"{prefix}/info": ("user_id", "end_user_id", "team_id", "organization_id")
        for prefix in ("/customer", "/end_user")
    },
    **{f"{prefix}/list": ("team_id", "organization_id", *PAGE) for prefix in ("/customer", "/end_user")},
    "/budget/info": ("budget_id",),
    "/spend/logs": (
        "api_key",
        "request_id",
        "user_id",
        "team_id",
        "end_user",
        "model",
        "status",
        *DATES,
        "summarize",
        *PAGE,
    ),
    "/spend/tags": DATES,
    "/spend/users": ("user_id",),
    "/global/spend/report": (*DATES, "group_by", "api_key", "team_id", "customer_id"),
    "/spend/reconciliation": ("start", "end", "node_id"),
    "/global/activity": DATES,
    "/tag/list": DATES,
    "/audit": ("object_type", "object_id"),
}
"""Query parameters each GET route reads (all optional strings; a handler refuses what it cannot use)."""

OPTIONAL_BODIES = frozenset({"/key/{key}/regenerate"})
"""Paths whose body may be left out (the key comes from the path)."""

PUBLIC_PATHS = frozenset(
    {
        "/health/liveliness",
        "/health/liveness",
        "/health/readiness",
        "/health/readiness/details",
        "/metrics",
        "/openapi.json",
    }
)
"""Paths answered without a key."""

ERROR_STATUSES = {
    "400": "Malformed request (bad JSON, a bad query parameter).",
    "401": "No key, or an invalid, blocked or expired one.",
    "403": "The key may not do this.",
    "404": "Nothing by that id.",
    "409": "The write conflicts with existing data.",
    "422": "A field is missing, unknown or out of bounds.",
}

_ERROR_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An error in OpenAI's shape.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": ["string", "null"]},
                "param": {"type": ["string", "null"]},
            },
        }
    },
}

_PATH_PARAMETER = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def operation_id(method: str, path: str) -> str:
    """A unique operation id for method + path (e.g. post_key_generate)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"
    return f"{method.lower()}_{slug}"


def _component_schemas() -> tuple[dict[type[BaseModel], dict[str, Any]], dict[str, Any]]:
    """The reference to each request model's schema, and the schemas themselves by component name."""
    unique = sorted(set(REQUEST_BODIES.values()), key=lambda m: f"{m.__module__}.{m.__qualname__}")
    refs, definitions = models_json_schema(
        [(model, "validation") for model in unique],
        ref_template=f"#/components/schemas/{COMPONENT_PREFIX}{{model}}",
    )
    schemas = {f"{COMPONENT_PREFIX}{name}": schema for name, schema in definitions.get("$defs", {}).items()}
    return {model: refs[(model, "validation")] for model in unique}, schemas


def _summary(handler: Any) -> str | None:
    doc = getattr(handler, "__doc__", None)
    return doc.strip().splitlines()[0] if doc else None


def _operation(method: str, path: str, handler: Any, body_refs: dict[type[BaseModel], Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id(method, path),
        "tags": [path.strip("/").split("/")[0] or "root"],
    }
    if (summary := _summary(handler)) is not None:
        operation["summary"] = summary
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(path)
    ]
    if method == "GET":
        parameters += [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            for name in QUERY_PARAMETERS.get(path, ())
        ]
    if parameters:
        operation["parameters"] = parameters
    model = REQUEST_BODIES.get(path)
    if method not in ("GET", "HEAD"):
        schema = body_refs[model] if model is not None else {"type": "object"}
        operation["requestBody"] = {
            "required": path not in OPTIONAL_BODIES,
            "content": {"application/json": {"schema": schema}},
        }
    responses: dict[str, Any] = {"200": {"description": "The answer (LiteLLM's shape for this route)."}}
    if path not in PUBLIC_PATHS:
        operation["security"] = [{"bearer": []}]
        for status, description in ERROR_STATUSES.items():
            responses[status] = {
                "description": description,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}},
            }
    else:
        operation["security"] = []
    operation["responses"] = responses
    return operation


def admin_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of every route registered on app (HEAD routes aiohttp adds aside)."""
    body_refs, schemas = _component_schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        if route.method in ("HEAD", "*") or route.resource is None:
            continue
        path = route.resource.canonical
        paths.setdefault(path, {})[route.method.lower()] = _operation(
            route.method, path, route.handler, body_refs
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hydite control plane",
            "version": service_version(),
            "description": "The admin API (LiteLLM's proxy admin routes): keys, users, teams, "
            "organizations, customers, budgets, models, spend, audit and config status.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {**schemas, ERROR_SCHEMA: _ERROR_RESPONSE_SCHEMA},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The master key, or a virtual key (its user's role decides).",
                }
            },
        },
    }


class AdminDocument:
    """The control plane's OpenAPI document, built from the app's routes on first use (they are
    fixed once the app runs)."""

    def __init__(self) -> None:
        self._document: dict[str, Any] | None = None

    def of(self, app: web.Application) -> dict[str, Any]:
        """The document of app's routes."""
        if self._document is None:
            self._document = admin_document(app)
        return self._document


OPENAPI_DOCUMENT = web.AppKey("openapi_document", AdminDocument)


async def openapi_json(request: web.Request) -> web.Response:
    """GET /openapi.json: the admin API's OpenAPI 3.1 document (no key needed)."""
    return json_response(request.app[OPENAPI_DOCUMENT].of(request.app))


ROUTES = [web.get("/openapi.json", openapi_json)]
