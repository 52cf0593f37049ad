"""Data plane assembly: routes, middleware and the I/O objects owned by cleanup contexts."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web
from nats.aio.client import Client as NatsClient

from hydite_common.credentials import CredentialCipher
from hydite_common.http import health_routes, rendering_errors, response_for_exception
from hydite_common.usage_stream import ensure_usage_streams, usage_subject
from hydite_dataplane.config_client import ConfigStreamClient
from hydite_dataplane.forward import ControlPlaneForwarder
from hydite_dataplane.health import health, health_services
from hydite_dataplane.hooks import Hooks, PostCallHook
from hydite_dataplane.http_client import HttpClient
from hydite_dataplane.limits import RateLimiter
from hydite_dataplane.metrics import RequestMetrics
from hydite_dataplane.models import list_models, model_metrics, retrieve_model, supported_openai_params
from hydite_dataplane.pipeline import Gateway, handle_inference
from hydite_dataplane.providers import build_providers
from hydite_dataplane.resource_ids import ResourceIdCodec
from hydite_dataplane.router import CooldownTracker, RetryPolicy
from hydite_dataplane.routes import ROUTES
from hydite_dataplane.settings import DataplaneSettings
from hydite_dataplane.snapshot import SnapshotHolder
from hydite_dataplane.stats import LiveStats
from hydite_dataplane.stored_responses import stored_response
from hydite_dataplane.token_counter import token_counter
from hydite_dataplane.tracing import RequestTracer
from hydite_dataplane.usage import UsagePublisher, UsageRecorder, connect_nats

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", DataplaneSettings)
HOLDER = web.AppKey("holder", SnapshotHolder)
USAGE = web.AppKey("usage", UsagePublisher)
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)
GATEWAY = web.AppKey("gateway", Gateway)
FORWARDER = web.AppKey("forwarder", ControlPlaneForwarder)
METRICS = web.AppKey("metrics", RequestMetrics)

SERVED_METHODS: dict[str, frozenset[str]] = {
    path: frozenset(r.method for r in ROUTES if r.path == path) for path in {r.path for r in ROUTES}
}

USAGE_DRAIN_SECONDS = 10.0


GATEWAY_ROUTES: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
    "models.list": lambda r: list_models(r.app[HOLDER], r),
    "models.retrieve": lambda r: retrieve_model(r.app[HOLDER], r),
    "models.metrics": lambda r: model_metrics(r.app[HOLDER], r.app[GATEWAY].stats, r),
    "utils.supported_params": lambda r: supported_openai_params(r.app[HOLDER], r.app[GATEWAY].providers, r),
    "utils.token_counter": lambda r: token_counter(r.app[HOLDER], r),
    "health.deployments": lambda r: health(r.app[HOLDER], r.app[GATEWAY].providers, r),
    "responses.retrieve": lambda r: stored_response(
        r.app[HOLDER], r.app[GATEWAY].providers, r.app[GATEWAY].resource_ids, r
    ),
    "responses.delete": lambda r: stored_response(
        r.app[HOLDER], r.app[GATEWAY].providers, r.app[GATEWAY].resource_ids, r
    ),
    "responses.input_items": lambda r: stored_response(
        r.app[HOLDER], r.app[GATEWAY].providers, r.app[GATEWAY].resource_ids, r, items=True
    ),
    "health.services": lambda r: health_services(
        r.app[HOLDER], r.app[GATEWAY].stats, r.app[GATEWAY].cooldowns, r
    ),
}
"""Operations the gateway answers itself, without a provider call."""


def node_id(settings: DataplaneSettings) -> str:
    """This data plane's name in config status and usage batches."""
    return settings.node_id or f"{socket.gethostname()}-{os.getpid()}"


def build_app(settings: DataplaneSettings) -> web.Application:
    """The data plane HTTP app."""
    # No middlewares: each costs a coroutine layer per request; every handler renders its own errors.
    app = web.Application(client_max_size=settings.max_request_body_mb * 1024 * 1024)
    app[SETTINGS] = settings
    app[HOLDER] = SnapshotHolder()
    app[USAGE] = UsagePublisher(
        node_id=node_id(settings),
        subject=usage_subject(settings),
        flush_seconds=settings.usage_flush_ms / 1000,
        max_batch_events=settings.usage_batch_max_events,
        max_outbox_batches=settings.usage_outbox_max_batches,
    )
    app[METRICS] = _metrics(app[HOLDER], app[USAGE])
    app.cleanup_ctx.extend([_http_session, _config_stream, _usage_publishing])

    async def readiness() -> str | None:
        return None if app[HOLDER].ready else "no config snapshot received yet"

    for health_route in health_routes(readiness):
        app.router.add_route(health_route.method, health_route.path, rendering_errors(health_route.handler))
    app.router.add_get("/metrics", rendering_errors(app[METRICS].handle))

    async def dispatch(route_index: int, request: web.Request) -> web.StreamResponse:
        try:
            route = ROUTES[route_index]
            serve = GATEWAY_ROUTES.get(route.operation)
            if serve is not None:
                return await serve(request)
            return await handle_inference(request.app[GATEWAY], route, request)
        except Exception as exc:
            return response_for_exception(request, exc)

    for index, route in enumerate(ROUTES):
        if route.auth == "inference":
            app.router.add_route(route.method, route.path, functools.partial(dispatch, index))

    async def forward(request: web.Request) -> web.StreamResponse:
        return await request.app[FORWARDER].handle(request)

    app.router.add_route("*", "/{tail:.*}", rendering_errors(forward))
    return app


def _metrics(holder: SnapshotHolder, usage: UsagePublisher) -> RequestMetrics:
    metrics = RequestMetrics()
    metrics.add_gauge(
        "hydite_config_version", "The config version this data plane serves.", lambda: holder.current.version
    )
    metrics.add_gauge(
        "hydite_usage_batches_pending",
        "Usage batches not yet acknowledged by JetStream.",
        lambda: usage.pending_batches,
    )
    metrics.add_gauge(
        "hydite_usage_batches_published_total",
        "Usage batches JetStream acknowledged.",
        lambda: usage.published_batches,
        "counter",
    )
    metrics.add_gauge(
        "hydite_usage_batches_dropped_total",
        "Usage batches dropped because the outbox was full.",
        lambda: usage.dropped_batches,
        "counter",
    )
    return metrics


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
    settings = app[SETTINGS]
    cooldowns = CooldownTracker(
        allowed_fails=settings.cooldown_allowed_fails,
        window_seconds=settings.cooldown_window_seconds,
        cooldown_seconds=settings.cooldown_seconds,
    )
    stats = LiveStats()
    rate_limiter = RateLimiter()
    app[METRICS].add_gauge(
        "hydite_rate_limit_entities",
        "Keys and owners with live rate-limit counters.",
        lambda: rate_limiter.tracked_entities,
    )
    resource_ids = ResourceIdCodec(settings.salt_key)
    provider_client = HttpClient(connect_timeout=settings.upstream_connect_timeout_seconds)
    tracer = (
        RequestTracer(settings.tracing_otlp_endpoint, settings.tracing_sample_ratio, node_id(settings))
        if settings.tracing_otlp_endpoint
        else None
    )
    post_call: list[PostCallHook] = [rate_limiter, UsageRecorder(app[USAGE]), stats, app[METRICS]]
    if tracer is not None:
        post_call.append(tracer)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        app[HTTP_SESSION] = session
        app[GATEWAY] = Gateway(
            settings=settings,
            holder=app[HOLDER],
            providers=build_providers(provider_client, resource_ids),
            hooks=Hooks(
                pre_call=[rate_limiter],
                deployment_filters=[cooldowns],
                post_call=post_call,
            ),
            retry_policy=RetryPolicy(
                num_retries=settings.num_retries,
                backoff_base_seconds=settings.retry_backoff_base_seconds,
                backoff_max_seconds=settings.retry_backoff_max_seconds,
                max_retry_after_seconds=settings.max_retry_after_seconds,
            ),
            cooldowns=cooldowns,
            stats=stats,
            resource_ids=resource_ids,
            tracer=tracer,
        )
        app[FORWARDER] = ControlPlaneForwarder(session, app[SETTINGS].controlplane_url, SERVED_METHODS)
        try:
            yield
        finally:
            await provider_client.close()
            if tracer is not None:
                await asyncio.get_running_loop().run_in_executor(None, tracer.shutdown)


async def _config_stream(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = ConfigStreamClient(
        settings.controlplane_grpc,
        node_id(settings),
        app[HOLDER],
        CredentialCipher(settings.salt_key),
    )
    task = asyncio.create_task(client.run(), name="config-stream")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _usage_publishing(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    publisher = app[USAGE]

    connections: list[NatsClient] = []

    async def connect_and_attach() -> None:
        delay = 0.2
        while True:
            try:
                nc = await connect_nats(settings.nats_url, f"hydite-dataplane-{node_id(settings)}")
                connections.append(nc)
                js = nc.jetstream()
                await ensure_usage_streams(js, settings)
                publisher.attach(js)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("NATS not reachable yet (%s); usage is kept in memory", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    connector = asyncio.create_task(connect_and_attach(), name="nats-connect")
    sender = asyncio.create_task(publisher.run(), name="usage-publisher")
    yield
    connector.cancel()
    await publisher.drain(USAGE_DRAIN_SECONDS)
    sender.cancel()
    for task in (sender, connector):
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for nc in connections:
        await nc.close()
