"""The inference request path, top to bottom: auth, parse, authz, hooks, route, provider, relay."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from hydite.config.v1 import config_pb2 as pb
from hydite_common.errors import (
    HyditeError,
    InvalidRequestError,
    ServiceUnavailableError,
    UpstreamError,
    UpstreamTimeoutError,
)
from hydite_common.http import JSON_HEADERS, read_json_object
from hydite_dataplane.auth import authenticate
from hydite_dataplane.authz import authorize_customer, authorize_model, authorize_route
from hydite_dataplane.errors import ERROR_RENDERERS
from hydite_dataplane.hooks import CallRecord, Hooks
from hydite_dataplane.http_client import HttpClientError
from hydite_dataplane.providers import Provider
from hydite_dataplane.providers.base import OperationAdapter
from hydite_dataplane.providers.multipart import UploadedFile
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.resource_ids import ResourceIdCodec
from hydite_dataplane.router import (
    CooldownTracker,
    RetryPolicy,
    fallback_models,
    is_retryable,
    pick_deployment,
    routing_strategy,
)
from hydite_dataplane.routes import OPERATIONS, Operation, Route
from hydite_dataplane.settings import DataplaneSettings
from hydite_dataplane.snapshot import DeploymentTarget, Snapshot, SnapshotHolder
from hydite_dataplane.stats import LiveStats
from hydite_dataplane.stream import StreamOutcome, relay_stream
from hydite_dataplane.tracing import RequestTracer
from hydite_dataplane.upstream import CallTimeouts, UpstreamResponse, error_from_upstream


@dataclass
class Gateway:
    """Everything the request path needs, built once at start-up."""

    settings: DataplaneSettings
    holder: SnapshotHolder
    providers: dict[str, Provider]
    hooks: Hooks
    retry_policy: RetryPolicy
    cooldowns: CooldownTracker
    stats: LiveStats
    resource_ids: ResourceIdCodec
    tracer: RequestTracer | None = None
    rng: random.Random = field(default_factory=random.Random)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _id_prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def next_request_id(self) -> str:
        """Unique across nodes and restarts without a uuid4 per request."""
        return f"{self._id_prefix}-{next(self._ids)}"


def _model_of(http_request: web.Request, operation: Operation, body: dict[str, Any]) -> str:
    """The requested model (path beats body), after checking the body's basic shape."""
    model = http_request.match_info.get("model") or body.get("model") or operation.default_model
    if not isinstance(model, str) or not model:
        raise InvalidRequestError(
            "you must provide a model parameter", code="missing_required_parameter", param="model"
        )
    for name in operation.required:
        value = body.get(name)
        if value is None or value == "" or value == []:
            raise InvalidRequestError(
                f"you must provide a non-empty '{name}' parameter",
                code="missing_required_parameter",
                param=name,
            )
    if operation.name == "chat" and not isinstance(body["messages"], list):
        raise InvalidRequestError("'messages' must be an array", param="messages")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidRequestError("'stream' must be a boolean", param="stream")
    return model


async def read_form(http_request: web.Request) -> dict[str, Any]:
    """A multipart/form-data request as a dict: text fields as str, files as UploadedFile,
    repeated fields (image[]) as lists."""
    if not http_request.content_type.startswith("multipart/form-data"):
        raise InvalidRequestError("this route takes multipart/form-data", code="invalid_content_type")
    try:
        form = await http_request.post()
    except ValueError as exc:
        raise InvalidRequestError(
            f"the multipart body cannot be read: {exc}", code="invalid_multipart"
        ) from None
    body: dict[str, Any] = {}
    for name, value in form.items():
        item: Any = (
            UploadedFile(value.filename, value.content_type, value.file.read())
            if isinstance(value, web.FileField)
            else str(value)
        )
        if name in body:
            body[name] = [*body[name], item] if isinstance(body[name], list) else [body[name], item]
        else:
            body[name] = item
    return body


def _client_wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _request_tags(body: dict[str, Any], key_tags: list[str]) -> list[str]:
    tags = body.get("tags")
    if tags is None:
        metadata = body.get("metadata")
        tags = metadata.get("tags") if isinstance(metadata, dict) else None
    request_tags = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
    return [*key_tags, *(t for t in request_tags if t not in key_tags)]


def _prompt_estimate(body: dict[str, Any]) -> int:
    return max(1, len(orjson.dumps(body.get("messages") or body.get("prompt") or "")) // 4)


async def handle_inference(gateway: Gateway, route: Route, http_request: web.Request) -> web.StreamResponse:
    """Serve one inference request end to end; errors are rendered in the route's wire format."""
    try:
        return await _serve(gateway, route, http_request)
    except HyditeError as exc:
        return ERROR_RENDERERS[route.wire_format].response(exc)


async def _serve(gateway: Gateway, route: Route, http_request: web.Request) -> web.StreamResponse:
    holder = gateway.holder
    if not holder.ready:
        raise ServiceUnavailableError("the gateway has not received its configuration yet")
    snapshot = holder.current
    key_hash, key = authenticate(http_request.headers, snapshot)
    authorize_route(key, http_request.path)
    operation = OPERATIONS[route.operation]
    body = await read_form(http_request) if operation.multipart else await read_json_object(http_request)
    request = InferenceRequest(
        request_id=gateway.next_request_id(),
        operation=route.operation,
        wire_format=route.wire_format,
        model=str(body.get("model") or http_request.match_info.get("model") or ""),
        body=body,
        stream=operation.streams and body.get("stream") is True,
        key_hash=key_hash,
        key=key,
        start_time=time.time(),
        start_perf=time.perf_counter(),
        client_wants_stream_usage=_client_wants_usage(body),
        customer_id=body["user"] if isinstance(body.get("user"), str) else "",
        tags=_request_tags(body, list(key.tags)),
    )
    if gateway.tracer is not None:
        request.trace_parent = gateway.tracer.trace_parent(http_request.headers.get("traceparent"))
    try:
        request.model = request.requested_model = _model_of(http_request, operation, body)
        deployments = authorize_model(key, request.model, snapshot)
        authorize_customer(request.customer_id, request.model, snapshot)
        await gateway.hooks.before_call(request, snapshot)
        return await _route(
            gateway, http_request, request, snapshot, deployments, _key_group_strategy(key, snapshot)
        )
    except HyditeError as exc:
        exc.headers.setdefault("x-request-id", request.request_id)
        gateway.hooks.after_call(request, CallRecord.failure(request.deployment, exc))
        raise
    except BaseException as exc:
        # Still one usage event, and any limit slots released, for a request that hit a bug
        # or was cancelled (shutdown).
        code = "request_cancelled" if isinstance(exc, asyncio.CancelledError) else "internal_error"
        gateway.hooks.after_call(request, CallRecord(request.deployment, TokenUsage(), "failure", 500, code))
        raise


def _key_group_strategy(key: pb.VirtualKey, snapshot: Snapshot) -> str:
    """The routing strategy of the key's key group (directly or through its team), if any."""
    group_name = key.key_group
    if not group_name and key.team_id and (team := snapshot.teams.get(key.team_id)) is not None:
        group_name = team.key_group
    group = snapshot.key_groups.get(group_name) if group_name else None
    return group.routing_strategy if group is not None else ""


async def _route(
    gateway: Gateway,
    http_request: web.Request,
    request: InferenceRequest,
    snapshot: Snapshot,
    deployments: Sequence[DeploymentTarget],
    key_group_strategy: str,
) -> web.StreamResponse:
    """The model group, then its fallbacks (each authorized like the model itself) until one answers."""
    tried_models = {request.model}
    while True:
        try:
            strategy = routing_strategy(deployments, key_group_strategy)
            return await _try_model_group(gateway, http_request, request, deployments, strategy)
        except HyditeError as error:
            for candidate in fallback_models(request, deployments, error):
                if candidate in tried_models:
                    continue
                tried_models.add(candidate)
                try:
                    deployments = authorize_model(request.key, candidate, snapshot)
                    authorize_customer(request.customer_id, candidate, snapshot)
                except HyditeError:
                    continue
                request.model = candidate
                break
            else:
                raise


async def _try_model_group(
    gateway: Gateway,
    http_request: web.Request,
    request: InferenceRequest,
    deployments: Sequence[DeploymentTarget],
    strategy: str,
) -> web.StreamResponse:
    """Call the group's deployments, retrying retryable failures with backoff; no retry once a
    response has started."""
    policy = gateway.retry_policy
    retries = policy.retries_for(request, deployments)
    failed: set[str] = set()
    for attempt in itertools.count(1):
        eligible = gateway.hooks.eligible(request, deployments)
        target = pick_deployment(eligible, gateway.rng, frozenset(failed), strategy, gateway.stats)
        request.deployment = target
        request.attempts += 1
        try:
            response = await _attempt(gateway, http_request, request, target)
        except HyditeError as error:
            gateway.cooldowns.record_failure(target, error)
            failed.add(target.deployment_id)
            if not is_retryable(error) or attempt > retries:
                raise
            # Another deployment is tried at once; the same one only after a backoff.
            fresh = any(d.deployment_id not in failed for d in eligible)
            delay = 0.0 if fresh else policy.delay(attempt, error, gateway.rng)
            if delay is None:
                raise
            if delay:
                await asyncio.sleep(delay)
            continue
        gateway.cooldowns.record_success(target)
        return response
    raise AssertionError("unreachable")


async def _attempt(
    gateway: Gateway, http_request: web.Request, request: InferenceRequest, target: DeploymentTarget
) -> web.StreamResponse:
    """One upstream call, counted in the deployment's live statistics however it ends."""
    stats = gateway.stats
    stats.started(target.deployment_id)
    started, ok = time.perf_counter(), False
    try:
        response = await _call_provider(gateway, http_request, request, target)
        ok = True
        return response
    finally:
        stats.finished(target.deployment_id, time.perf_counter() - started, ok)


async def _call_provider(
    gateway: Gateway, http_request: web.Request, request: InferenceRequest, target: DeploymentTarget
) -> web.StreamResponse:
    settings = gateway.settings
    provider = gateway.providers[target.provider]
    adapter = provider.operations.get(request.operation)
    if adapter is None:
        raise InvalidRequestError(f"provider {target.provider!r} does not support {request.operation}")
    call = adapter.build_call(request, target)
    upstream_seconds = target.timeout_seconds or settings.upstream_timeout_seconds
    timeouts = (
        CallTimeouts(None, target.stream_timeout_seconds or upstream_seconds)
        if request.stream
        else CallTimeouts(upstream_seconds)
    )
    sent_at = time.perf_counter()
    upstream = await provider.transport.send(call, timeouts)
    headers = {
        "x-request-id": request.request_id,
        "x-hydite-deployment": target.deployment_id,
        "x-hydite-attempts": str(request.attempts),
    }
    if upstream.status >= 400:
        error_body = await upstream.read()
        upstream.release()
        raise error_from_upstream(upstream.status, error_body, upstream.headers)
    if OPERATIONS[request.operation].binary_response:
        return await _relay_bytes(gateway, http_request, request, target, upstream, headers)
    if request.stream:
        headers["x-hydite-overhead-ms"] = f"{(sent_at - request.start_perf) * 1000:.3f}"
        return await _relay(gateway, http_request, request, target, upstream, adapter, headers)
    return await _complete(gateway, request, target, upstream, adapter, headers, sent_at)


async def _complete(
    gateway: Gateway,
    request: InferenceRequest,
    target: DeploymentTarget,
    upstream: UpstreamResponse,
    adapter: OperationAdapter,
    headers: dict[str, str],
    sent_at: float,
) -> web.Response:
    try:
        raw = await upstream.read()
    except TimeoutError:
        raise UpstreamTimeoutError("the provider did not finish its answer in time") from None
    except HttpClientError as exc:
        raise UpstreamError(f"the provider's answer broke off: {type(exc).__name__}") from None
    finally:
        upstream.release()
    received_at = time.perf_counter()
    content_type = upstream.content_type or "application/json"
    if not content_type.startswith("application/json"):
        # Text answers (transcripts as text, srt, vtt) pass as they are; they report no tokens.
        gateway.hooks.after_call(request, CallRecord(target, TokenUsage(), "success", upstream.status))
        return web.Response(
            body=raw, status=upstream.status, headers={"Content-Type": content_type, **headers}
        )
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise UpstreamError("the provider's answer is not a JSON object")
    usage = adapter.usage_from_response(parsed)
    if (translated := adapter.translate_response(request, parsed)) is not None:
        raw = orjson.dumps(translated)
    gateway.hooks.after_call(request, CallRecord(target, usage, "success", upstream.status))
    overhead = (time.perf_counter() - request.start_perf) - (received_at - sent_at)
    headers["x-hydite-overhead-ms"] = f"{overhead * 1000:.3f}"
    return web.Response(body=raw, status=upstream.status, headers={**JSON_HEADERS, **headers})


async def _relay_bytes(
    gateway: Gateway,
    http_request: web.Request,
    request: InferenceRequest,
    target: DeploymentTarget,
    upstream: UpstreamResponse,
    headers: dict[str, str],
) -> web.StreamResponse:
    """A binary answer (audio), written to the client chunk by chunk as the provider sends it."""
    content_type = upstream.content_type or "application/octet-stream"
    response = web.StreamResponse(status=upstream.status, headers={"Content-Type": content_type, **headers})
    record = CallRecord(target, TokenUsage(), "success", upstream.status)
    try:
        await response.prepare(http_request)
        async for chunk in upstream.chunks():
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        record = CallRecord(target, TokenUsage(), "success", upstream.status, "client_disconnected")
    except (TimeoutError, HttpClientError) as exc:
        # Bytes already went out: the client sees a truncated body; the log says why.
        failure = UpstreamError(f"the provider's answer broke off: {type(exc).__name__}")
        record = CallRecord(target, TokenUsage(), "failure", failure.status, failure.code)
    finally:
        upstream.release()
    gateway.hooks.after_call(request, record)
    return response


async def _relay(
    gateway: Gateway,
    http_request: web.Request,
    request: InferenceRequest,
    target: DeploymentTarget,
    upstream: UpstreamResponse,
    adapter: OperationAdapter,
    headers: dict[str, str],
) -> web.StreamResponse:
    def on_done(outcome: StreamOutcome) -> None:
        usage = outcome.usage
        if usage is None:
            usage = TokenUsage(
                prompt_tokens=_prompt_estimate(request.body), completion_tokens=outcome.event_count
            )
        error = outcome.error
        if error is not None:
            status, http_status, code = "failure", error.status, error.code
        else:
            status, http_status = "success", 200
            code = "client_disconnected" if outcome.client_gone_at else ""
        ttft = (outcome.first_event_at - request.start_perf) * 1000 if outcome.first_event_at else 0.0
        record = CallRecord(target, usage, status, http_status, code, outcome.usage is None, ttft)
        gateway.hooks.after_call(request, record)

    settings = gateway.settings
    return await relay_stream(
        http_request,
        request,
        upstream,
        adapter,
        headers,
        error_event=ERROR_RENDERERS[request.wire_format].stream_event,
        drain_seconds=settings.stream_drain_max_seconds,
        drain_bytes=settings.stream_drain_max_bytes,
        on_done=on_done,
    )
