"""GET/DELETE /v1/responses/{id} and GET /v1/responses/{id}/input_items: the gateway id names the
deployment that stores the response; only its owner may reach it."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

from hydite_common.errors import NotFoundError, ServiceUnavailableError
from hydite_common.http import JSON_HEADERS
from hydite_dataplane.auth import authenticate
from hydite_dataplane.authz import authorize_model, authorize_route
from hydite_dataplane.providers import Provider
from hydite_dataplane.providers.base import UpstreamCall
from hydite_dataplane.providers.openai import OpenAIResponses, base_url
from hydite_dataplane.resource_ids import ResourceIdCodec, owner_of
from hydite_dataplane.snapshot import SnapshotHolder
from hydite_dataplane.upstream import CallTimeouts, error_from_upstream

STORED_TIMEOUT = CallTimeouts(total=60)


async def stored_response(
    holder: SnapshotHolder,
    providers: Mapping[str, Provider],
    ids: ResourceIdCodec,
    request: web.Request,
    *,
    items: bool = False,
) -> web.Response:
    """Relay a retrieve, delete or input_items call to the deployment that holds the response."""
    if not holder.ready:
        raise ServiceUnavailableError("the gateway has not received its configuration yet")
    snapshot = holder.current
    key_hash, key = authenticate(request.headers, snapshot)
    authorize_route(key, request.path)
    gateway_id = request.match_info["response_id"]
    missing = NotFoundError(f"No response found with id '{gateway_id}'.", param="response_id")
    ref = ids.decode(gateway_id, owner_of(key, key_hash))
    target = snapshot.deployments.get(ref.deployment_id) if ref is not None else None
    if ref is None or target is None:
        raise missing
    authorize_model(key, target.model_name, snapshot)
    provider = providers[target.provider]
    if not isinstance(provider.operations.get("responses"), OpenAIResponses):
        raise missing
    url = f"{base_url(target)}/responses/{ref.upstream_id}" + ("/input_items" if items else "")
    if request.query_string:
        url += "?" + request.query_string
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    upstream = await provider.transport.send(UpstreamCall(request.method, url, headers, b""), STORED_TIMEOUT)
    try:
        payload = await upstream.read()
    finally:
        upstream.release()
    if upstream.status >= 400:
        raise error_from_upstream(upstream.status, payload, upstream.headers)
    body = orjson.loads(payload)
    if not items and isinstance(body, dict) and body.get("id") == ref.upstream_id:
        body["id"] = gateway_id
    return web.Response(body=orjson.dumps(body), status=upstream.status, headers=JSON_HEADERS)
