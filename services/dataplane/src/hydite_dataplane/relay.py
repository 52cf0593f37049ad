"""Stage 7 (relay), complete and binary answers: the provider's answer to the client, the
request settled with its usage. Streams are `stream`'s."""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from hydite_common.errors import HyditeError, UpstreamError
from hydite_common.http import JSON_HEADERS
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.hooks import CallHooks
from hydite_dataplane.providers.base import OperationAdapter, billed_usage, response_id_of
from hydite_dataplane.request import NO_USAGE, InferenceRequest, TokenUsage, outcome_of
from hydite_dataplane.upstream.transport import UpstreamResponse


def gateway_headers(request: InferenceRequest, target: DeploymentTarget) -> dict[str, str]:
    """The x-request-id and x-hydite-* headers of an answer from target (LiteLLM's
    x-litellm-model-region when the deployment has a region, and OpenAI's x-ratelimit-* when a
    limit applies)."""
    headers = {
        "x-request-id": request.request_id,
        "x-hydite-deployment": target.deployment_id,
        "x-hydite-attempts": str(request.attempts),
    }
    if target.region:
        headers["x-litellm-model-region"] = target.region
    if request.limit_headers:
        headers.update(request.limit_headers)
    return headers


OVERHEAD_HEADER = "x-hydite-overhead-ms"


def mark_overhead(request: InferenceRequest, headers: dict[str, str], until: float) -> None:
    """The gateway's own time up to `until` (perf_counter), recorded on the request and in its
    x-hydite-overhead-ms header: the request's time not spent waiting for providers (a wait the
    router chose between retries counts as the gateway's)."""
    seconds = until - request.start_perf - request.upstream_seconds
    request.overhead_seconds = seconds
    headers[OVERHEAD_HEADER] = f"{seconds * 1000:.3f}"


async def relay_complete(
    request: InferenceRequest,
    call: CallHooks,
    target: DeploymentTarget,
    upstream: UpstreamResponse,
    adapter: OperationAdapter,
    headers: dict[str, str],
    sent_at: float,
) -> web.Response:
    """A complete answer: read whole, usage taken, translated if the adapter says so, shown to the
    before-response hooks; the request is settled before the answer is returned."""
    try:
        raw = await upstream.read()
    finally:
        upstream.release()
    request.upstream_seconds += time.perf_counter() - sent_at
    content_type = upstream.content_type or "application/json"
    if not content_type.startswith("application/json"):
        # Text answers (transcripts as text, srt, vtt) pass as they are; they report no usage, so
        # what they are billed by comes from the request (a WAV upload's length).
        usage = billed_usage(adapter, request, None) if upstream.status < 300 else NO_USAGE
        mark_overhead(request, headers, time.perf_counter())
        call.after_call(outcome_of(target, usage=usage, http_status=upstream.status))
        return web.Response(
            body=raw, status=upstream.status, headers={"Content-Type": content_type, **headers}
        )
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise UpstreamError("the provider's answer is not a JSON object")
    usage = billed_usage(adapter, request, parsed)
    translated = adapter.translate_response(request, parsed)
    if call.hooks.before_response:
        translated = await call.before_response(translated if translated is not None else parsed)
    if translated is not None:
        raw = orjson.dumps(translated)
    shown = translated if translated is not None else parsed
    mark_overhead(request, headers, time.perf_counter())
    call.after_call(
        outcome_of(
            target,
            usage=usage,
            http_status=upstream.status,
            response_id=response_id_of(shown),
            answer=shown if request.caller.store_prompts else None,
        )
    )
    return web.Response(body=raw, status=upstream.status, headers={**JSON_HEADERS, **headers})


async def relay_bytes(
    http_request: web.Request,
    call: CallHooks,
    target: DeploymentTarget,
    upstream: UpstreamResponse,
    headers: dict[str, str],
    usage: TokenUsage = NO_USAGE,
) -> web.StreamResponse:
    """A binary answer (audio), written to the client chunk by chunk as the provider sends it;
    usage is what the request is billed by (speech: the characters of its input)."""
    content_type = upstream.content_type or "application/octet-stream"
    response = web.StreamResponse(status=upstream.status, headers={"Content-Type": content_type, **headers})
    outcome = outcome_of(target, usage=usage, http_status=upstream.status)
    try:
        await response.prepare(http_request)
        async for chunk in upstream.chunks():
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        outcome = outcome_of(target, usage=usage, http_status=upstream.status, client_gone=True)
    except HyditeError as exc:
        # Bytes already went out: the client sees a truncated body; the usage event says why.
        outcome = outcome_of(target, usage=NO_USAGE, error=exc)
    finally:
        upstream.release()
    call.after_call(outcome)
    return response
