"""Routes that reach an object a provider stores (GET/DELETE /v1/responses/{id}, its input_items):
one relay driven by a table. The gateway id names the deployment that holds the object; only its
owner may reach it, and only if the key may still use the deployment's model."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from aiohttp import web

from hydite_common.errors import NotFoundError
from hydite_common.http import JSON_HEADERS
from hydite_dataplane.authz import authorize_model
from hydite_dataplane.gateway import Gateway
from hydite_dataplane.providers.openai import OpenAIResponses, base_url
from hydite_dataplane.request import Caller
from hydite_dataplane.resources.ids import owner_of
from hydite_dataplane.upstream.errors import deployment_credentials, error_from_upstream
from hydite_dataplane.upstream.transport import CallTimeouts, UpstreamCall

STORED_TIMEOUT = CallTimeouts(total=60)


@dataclass(frozen=True, slots=True)
class StoredOperation:
    """One route on a stored object: where the id sits, which operation stores the kind, the path."""

    id_param: str  # the route's path parameter holding the gateway id
    kind: str  # what the object is called in a not-found message
    operation: str  # the inference operation that creates objects of this kind
    adapter: type[OpenAIResponses]  # the adapter of that operation that stores them at the provider
    upstream_path: str  # relative to the deployment's API base; {id} is the provider's id
    rewrites_id: bool = True  # the answer is the object itself, whose id becomes the gateway's


STORED_OPERATIONS: dict[str, StoredOperation] = {
    "responses.retrieve": StoredOperation(
        "response_id", "response", "responses", OpenAIResponses, "/responses/{id}"
    ),
    "responses.delete": StoredOperation(
        "response_id", "response", "responses", OpenAIResponses, "/responses/{id}"
    ),
    "responses.input_items": StoredOperation(
        "response_id",
        "response",
        "responses",
        OpenAIResponses,
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
    if not isinstance(provider.operations.get(stored.operation), stored.adapter):
        raise missing
    url = base_url(target) + stored.upstream_path.format(id=ref.upstream_id)
    if request.query_string:
        url += "?" + request.query_string
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    upstream = await provider.transport.send(UpstreamCall(request.method, url, headers, b""), STORED_TIMEOUT)
    try:
        payload = await upstream.read()
    finally:
        upstream.release()
    if upstream.status >= 400:
        raise error_from_upstream(
            upstream.status,
            payload,
            upstream.headers,
            provider.error_format,
            credentials=deployment_credentials(target),
        )
    body = orjson.loads(payload)
    if stored.rewrites_id and isinstance(body, dict) and body.get("id") == ref.upstream_id:
        body["id"] = gateway_id
    return web.Response(body=orjson.dumps(body), status=upstream.status, headers=JSON_HEADERS)
