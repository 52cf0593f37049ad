"""The data plane's OpenAPI document: generated for every route of the table, valid OpenAPI 3.1
alone and merged with an admin document, and served without the control plane, saying so."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web
from openapi_spec_validator import validate

from hydite_common.devstack import free_port
from hydite_dataplane.openapi.controlplane import ControlPlaneDocument
from hydite_dataplane.openapi.document import CONTROLPLANE_EXTENSION, dataplane_document, merged, route_list
from hydite_dataplane.openapi.operations import OPERATION_DOCS
from hydite_dataplane.routes import ROUTES

ADMIN_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "admin", "version": "1"},
    "paths": {
        "/key/generate": {
            "post": {
                "operationId": "post_key_generate",
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/admin.Body"}}}
                },
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/health/readiness": {
            "get": {"operationId": "readiness", "responses": {"200": {"description": "ok"}}}
        },
    },
    "components": {"schemas": {"admin.Body": {"type": "object"}}},
}


def test_every_route_of_the_table_is_an_operation_with_a_doc() -> None:
    """Each (method, path) of ROUTES is in the document, each operation has its description."""
    assert {r.operation for r in ROUTES} <= set(OPERATION_DOCS)
    document = dataplane_document()
    described = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert described == {(r.method, r.path) for r in ROUTES}
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_the_merged_document_is_valid() -> None:
    """openapi-spec-validator accepts the data plane's part merged with an admin document (the part
    alone: the next test); the data plane's own description of a path it serves wins."""
    own = dataplane_document()
    whole = merged(own, ADMIN_DOCUMENT, None)
    validate(whole)
    assert whole["paths"]["/key/generate"] == ADMIN_DOCUMENT["paths"]["/key/generate"]
    assert whole["paths"]["/health/readiness"] == own["paths"]["/health/readiness"]
    assert whole["info"][CONTROLPLANE_EXTENSION]["included"] is True
    chat = whole["paths"]["/v1/chat/completions"]["post"]
    schema = chat["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/CreateChatCompletionRequest"}
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    assert whole["paths"]["/v1/messages"]["post"]["security"] == [{"x-api-key": []}, {"bearer": []}]
    assert whole["paths"]["/health/liveliness"]["get"]["security"] == []


def test_routes_lists_the_control_planes_paths_it_does_not_serve() -> None:
    """/routes: the data plane's routes, then admin paths (never one the data plane serves)."""
    routes = route_list(ROUTES, ADMIN_DOCUMENT)
    assert {"path": "/v1/chat/completions", "methods": ["POST"], "name": "chat"} in routes
    assert {"path": "/key/generate", "methods": ["POST"], "name": "post_key_generate"} in routes
    assert [r for r in routes if r["path"] == "/health/readiness"] == [
        {"path": "/health/readiness", "methods": ["GET"], "name": "readiness"}
    ]


async def test_without_the_control_plane_the_data_planes_part_is_served() -> None:
    """An unreachable control plane leaves the admin routes out, and info says why."""
    async with aiohttp.ClientSession() as session:
        controlplane = ControlPlaneDocument(session, f"http://127.0.0.1:{free_port()}")
        document, missing = await controlplane.current()
    assert document is None and missing == "the control plane is unreachable"
    alone = merged(dataplane_document(), document, missing)
    validate(alone)
    assert alone["info"][CONTROLPLANE_EXTENSION] == {"included": False, "reason": missing}
    assert "/key/generate" not in alone["paths"]


async def test_the_control_planes_document_is_kept_for_a_while() -> None:
    """Callers within the keep time share one fetch; after it, the next caller fetches again."""
    fetches: list[int] = []

    async def openapi(_: web.Request) -> web.Response:
        fetches.append(1)
        return web.json_response(ADMIN_DOCUMENT)

    app = web.Application()
    app.router.add_get("/openapi.json", openapi)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session:
            kept = ControlPlaneDocument(session, f"http://127.0.0.1:{port}")
            first, _ = await kept.current()
            second, _ = await kept.current()
            assert first == ADMIN_DOCUMENT and second is first and len(fetches) == 1
            fresh = ControlPlaneDocument(session, f"http://127.0.0.1:{port}", keep_seconds=0)
            await fresh.current()
            await fresh.current()
            assert len(fetches) == 3
    finally:
        await runner.cleanup()
