"""The inference request path, in stage order (the README's stage list):

1. decode (`inbound/`)       the client's body into an InferenceRequest, gateway options apart
2. authenticate (`caller`)   the key and its owners, from the headers before the body is read
3. authorize (`authz`)       the route, the model and the end user against every allowlist
4. admit (`limits/`)         the pre-call hooks: rate limits (budgets next)
5. route (`router`)          deployment choice, retries and fallbacks
6. call provider             the adapter builds the call (`providers/`), `upstream/` carries it
7. relay (`relay`, `stream`) the answer to the client, whole, as bytes or event by event
8. account (`usage/`)        the post-call hooks, settled once with the request's Outcome
"""

from __future__ import annotations

import asyncio
import functools
import time

from aiohttp import web

from hydite_common.errors import HyditeError, RequestTimeoutError
from hydite_common.telemetry import LOGGED_REQUEST_ID
from hydite_dataplane.authz import authorize_customer, authorize_model, in_customer_region, key_group_strategy
from hydite_dataplane.batch import batch_models, run_batch
from hydite_dataplane.caller import authenticated
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.errors import ERROR_RENDERERS
from hydite_dataplane.gateway import Gateway
from hydite_dataplane.hooks import CallHooks
from hydite_dataplane.inbound import InboundFormat
from hydite_dataplane.inbound.anthropic import ANTHROPIC
from hydite_dataplane.inbound.openai import OPENAI
from hydite_dataplane.params import for_provider
from hydite_dataplane.providers.base import billed_usage
from hydite_dataplane.relay import (
    OVERHEAD_HEADER,
    gateway_headers,
    mark_overhead,
    relay_bytes,
    relay_complete,
)
from hydite_dataplane.request import Caller, InferenceRequest, outcome_of
from hydite_dataplane.routes import OPERATIONS, Route
from hydite_dataplane.stream import relay_stream
from hydite_dataplane.tracing import TRACEPARENT_LENGTH
from hydite_dataplane.upstream.transport import call_timeouts

INBOUND: dict[str, InboundFormat] = {"openai": OPENAI, "anthropic": ANTHROPIC}
"""Decoders by the route's wire format."""


async def handle_inference(gateway: Gateway, route: Route, http_request: web.Request) -> web.StreamResponse:
    """Serve one inference request end to end; errors are rendered in the route's wire format."""
    try:
        return await _serve(gateway, route, http_request)
    except HyditeError as exc:
        return ERROR_RENDERERS[route.wire_format].response(exc)


async def _serve(gateway: Gateway, route: Route, http_request: web.Request) -> web.StreamResponse:
    caller = authenticated(gateway.holder, http_request.headers, http_request.path)
    inbound = INBOUND[route.wire_format]
    request = await _decoded(gateway, inbound, route, http_request, caller)
    traceparent = http_request.headers.get("traceparent")
    if gateway.tracer is not None:
        gateway.tracer.decide(request, traceparent)
    elif traceparent is not None and len(traceparent) == TRACEPARENT_LENGTH:
        request.upstream_traceparent = traceparent
    models = batch_models(request)
    if models is not None:
        return await run_batch(
            request, models, gateway.next_request_id, functools.partial(_run, gateway, http_request)
        )
    return await _run(gateway, http_request, request)


async def _run(gateway: Gateway, http_request: web.Request, request: InferenceRequest) -> web.StreamResponse:
    """Admission, routing, the provider's call and the relay, settled once by the post-call hooks."""
    call = gateway.hooks.start(request)
    try:
        request.model = request.requested_model = INBOUND[request.wire_format].requested_model(
            http_request, OPERATIONS[request.operation], request.body
        )
        deployments = _authorized(request, request.model)
        await call.before_call()
        return await gateway.router.call(
            request,
            deployments,
            key_group_strategy(request.caller),
            functools.partial(_authorized, request),
            functools.partial(_call_provider, gateway, http_request, request, call),
        )
    except HyditeError as exc:
        exc.headers.setdefault("x-request-id", request.request_id)
        if request.overhead_seconds < 0:
            mark_overhead(request, exc.headers, time.perf_counter())
        else:
            exc.headers.setdefault(OVERHEAD_HEADER, f"{request.overhead_seconds * 1000:.3f}")
        call.after_call(outcome_of(request.deployment, error=exc))
        raise
    except BaseException as exc:
        # Still one usage event, and any reservation settled, for a request that hit a bug or was
        # cancelled (shutdown).
        code = "request_cancelled" if isinstance(exc, asyncio.CancelledError) else "internal_error"
        call.after_call(outcome_of(request.deployment, error=HyditeError("request failed", code=code)))
        raise


async def _decoded(
    gateway: Gateway, inbound: InboundFormat, route: Route, http_request: web.Request, caller: Caller
) -> InferenceRequest:
    """The decoded request; a body still arriving must arrive within the body timeout (a body
    that came with its head, as almost all do, costs no timer)."""
    request_id = gateway.next_request_id()
    LOGGED_REQUEST_ID.set(request_id)
    if http_request.content.is_eof():
        return await inbound.decode(http_request, route, caller, request_id)
    try:
        async with asyncio.timeout(gateway.settings.request_body_timeout_seconds):
            return await inbound.decode(http_request, route, caller, request_id)
    except TimeoutError:
        raise RequestTimeoutError("the request body did not arrive in time") from None


def _authorized(request: InferenceRequest, model: str) -> tuple[DeploymentTarget, ...]:
    """The deployments of model, if the caller and the request's end user may use it."""
    deployments = authorize_model(request.caller, model)
    authorize_customer(request.customer, model)
    return in_customer_region(request.customer, deployments)


async def _call_provider(
    gateway: Gateway,
    http_request: web.Request,
    request: InferenceRequest,
    call: CallHooks,
    target: DeploymentTarget,
) -> web.StreamResponse:
    """One attempt: the adapter's call to target, then the relay of its answer."""
    provider = gateway.providers[target.provider].for_deployment(target)
    adapter = provider.operations.get(request.operation)
    if adapter is None:
        raise provider.refusal(target.provider, request.operation)
    upstream_call = adapter.build_call(for_provider(request, adapter, target), target)
    if request.upstream_traceparent is not None:
        upstream_call.headers["traceparent"] = request.upstream_traceparent
    settings = gateway.settings
    timeouts = call_timeouts(
        request.stream,
        target.timeout_seconds,
        target.stream_timeout_seconds,
        settings.upstream_timeout_seconds,
    )
    sent_at = time.perf_counter()
    try:
        upstream = await provider.send(upstream_call, target, timeouts)
    except HyditeError:
        request.upstream_seconds += time.perf_counter() - sent_at
        raise
    headers = gateway_headers(request, target)
    if upstream.status >= 400:
        try:
            error_body = await upstream.read()
        finally:
            upstream.release()
            request.upstream_seconds += time.perf_counter() - sent_at
        raise provider.error_of(upstream, error_body, target)
    if OPERATIONS[request.operation].binary_response:
        mark_overhead(request, headers, sent_at)
        usage = billed_usage(adapter, request, None)
        return await relay_bytes(http_request, call, target, upstream, headers, usage)
    if request.stream:
        mark_overhead(request, headers, sent_at)
        return await relay_stream(
            http_request,
            request,
            call,
            target,
            upstream,
            adapter,
            headers,
            error_event=ERROR_RENDERERS[request.wire_format].stream_event,
            drain_seconds=settings.stream_drain_max_seconds,
            drain_bytes=settings.stream_drain_max_bytes,
        )
    return await relay_complete(request, call, target, upstream, adapter, headers, sent_at)
