"""Routes that reach an object a provider stores (GET/DELETE /v1/responses/{id}, its input_items):
one relay driven by a table. The gateway id names the deployment that holds the object; only its
owner may reach it, and only if the key may still use the deployment's model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import orjson
from aiohttp import web

from hydite_common.errors import NotFoundError
from hydite_common.http import JSON_HEADERS
from hydite_dataplane.authz import authorize_model
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.gateway import Gateway
from hydite_dataplane.request import Caller
from hydite_dataplane.resources.ids import owner_of
from hydite_dataplane.upstream.transport import CallTimeouts, UpstreamCall

STORED_TIMEOUT = CallTimeouts(total=60)


@runtime_checkable
class StoresObjects(Protocol):
    """An operation adapter whose provider stores what it creates (OpenAI's Responses API)."""

    def stored_call(self, method: str, path: str, target: DeploymentTarget) -> UpstreamCall:
        """A bodiless call on a stored object, path (and query) relative to the deployment's API
        root, with the deployment's key as the provider takes it."""
        ...


@dataclass(frozen=True, slots=True)
class StoredOperation:
    """One route on a stored object: where the id sits, which operation stores the kind, the path."""

    id_param: str  # the route's path parameter holding the gateway id
    kind: str  # what the object is called in a not-found message
    operation: str  # the inference operation that creates objects of this kind
    upstream_path: str  # relative to the deployment's API base; {id} is the provider's id
    rewrites_id: bool = True  # the answer is the object itself, whose id becomes the gateway's


STORED_OPERATIONS: dict[str, StoredOperation] = {
    "responses.retrieve": StoredOperation("response_id", "response", "responses", "/responses/{id}"),
    "responses.delete": StoredOperation("response_id", "response", "responses", "/responses/{id}"),
    "responses.input_items": StoredOperation(
        "response_id",
        "response",
        "responses",
        "/responses/{id}/input_items",
        rewrites_id=False,
    ),
}
"""Route operation -> how to relay it."""


async def relay_stored(
    stored: StoredOperation, gateway: Gateway, caller: Caller, request: web.Request
) -> web.Response:
    """Relay the request (its method and query) to the deployment that holds the object."""
    gateway_id = request.match_info[stored.id_param]
    missing = NotFoundError(f"No {stored.kind} found with id '{gateway_id}'.", param=stored.id_param)
    ref = gateway.resource_ids.decode(gateway_id, owner_of(caller.key, caller.key_hash))
    target = caller.snapshot.deployments.get(ref.deployment_id) if ref is not None else None
    if ref is None or target is None:
        raise missing
    authorize_model(caller, target.model_name)
    provider = gateway.providers[target.provider]
    adapter = provider.operations.get(stored.operation)
    if not isinstance(adapter, StoresObjects):
        raise missing
    path = stored.upstream_path.format(id=ref.upstream_id)
    if request.query_string:
        path += "?" + request.query_string
    call = adapter.stored_call(request.method, path, target)
    upstream, payload = await provider.answer(call, target, STORED_TIMEOUT)
    body = orjson.loads(payload)
    if stored.rewrites_id and isinstance(body, dict) and body.get("id") == ref.upstream_id:
        body["id"] = gateway_id
    return web.Response(body=orjson.dumps(body), status=upstream.status, headers=JSON_HEADERS)
