"""Data plane assembly: routes from the route table, and one cleanup context per long-lived
resource (the forwarding session, the NATS connection, usage publishing, the gateway, the config
stream)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web
from nats.aio.client import Client as NatsClient

from hydite_common.credentials import CredentialCipher
from hydite_common.http import health_routes, json_response, rendering_errors, response_for_exception
from hydite_common.usage_stream import ensure_usage_streams, usage_subject
from hydite_dataplane.caller import authenticated
from hydite_dataplane.catalog import list_models, model_metrics, retrieve_model, supported_openai_params
from hydite_dataplane.config.client import ConfigStreamClient
from hydite_dataplane.config.holder import SnapshotHolder
from hydite_dataplane.forward import ControlPlaneForwarder
from hydite_dataplane.gateway import Gateway, build_gateway
from hydite_dataplane.health import health, health_services
from hydite_dataplane.messaging import NatsLink
from hydite_dataplane.metrics import RequestMetrics
from hydite_dataplane.pipeline import handle_inference
from hydite_dataplane.request import Caller
from hydite_dataplane.resources.stored import STORED_OPERATIONS, relay_stored
from hydite_dataplane.routes import ROUTES
from hydite_dataplane.settings import DataplaneSettings
from hydite_dataplane.token_counter import token_counter
from hydite_dataplane.usage.outbox import UsageOutbox
from hydite_dataplane.usage.publisher import UsagePublisher

SETTINGS = web.AppKey("settings", DataplaneSettings)
HOLDER = web.AppKey("holder", SnapshotHolder)
OUTBOX = web.AppKey("outbox", UsageOutbox)
USAGE = web.AppKey("usage", UsagePublisher)
NATS = web.AppKey("nats", NatsLink)
GATEWAY = web.AppKey("gateway", Gateway)
FORWARDER = web.AppKey("forwarder", ControlPlaneForwarder)
METRICS = web.AppKey("metrics", RequestMetrics)
CONFIG_STREAM = web.AppKey("config_stream", ConfigStreamClient)
IN_FLIGHT = web.AppKey("in_flight", set[asyncio.Task[object]])
"""The tasks serving keyed routes right now: what a shutdown waits for, then cuts."""

SERVED_METHODS: dict[str, frozenset[str]] = {
    path: frozenset(r.method for r in ROUTES if r.path == path) for path in {r.path for r in ROUTES}
}


KeyedHandler = Callable[[Gateway, Caller, web.Request], Awaitable[web.StreamResponse]]


def _keyed(serve: KeyedHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A route the gateway answers itself, for an authenticated caller allowed the path."""

    def handler(request: web.Request) -> Awaitable[web.StreamResponse]:
        gateway = request.app[GATEWAY]
        return serve(gateway, authenticated(gateway.holder, request.headers, request.path), request)

    return handler


GATEWAY_ROUTES: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
    "models.list": _keyed(list_models),
    "models.retrieve": _keyed(retrieve_model),
    "models.metrics": _keyed(model_metrics),
    "utils.supported_params": _keyed(supported_openai_params),
    "utils.token_counter": _keyed(token_counter),
    "health.deployments": _keyed(health),
    "health.services": _keyed(health_services),
    **{
        operation: _keyed(functools.partial(relay_stored, stored))
        for operation, stored in STORED_OPERATIONS.items()
    },
}
"""Operations the gateway answers itself, without an inference call."""


def node_id(settings: DataplaneSettings) -> str:
    """This data plane's name in config status and usage batches."""
    return settings.node_id or f"{socket.gethostname()}-{os.getpid()}"


def build_app(settings: DataplaneSettings) -> web.Application:
    """The data plane HTTP app."""
    # No middlewares: each costs a coroutine layer per request; every handler renders its own errors.
    app = web.Application(client_max_size=settings.max_request_body_mb * 1024 * 1024)
    app[SETTINGS] = settings
    app[HOLDER] = SnapshotHolder()
    app[OUTBOX] = UsageOutbox(
        node_id=node_id(settings),
        flush_seconds=settings.usage_flush_ms / 1000,
        max_batch_events=settings.usage_batch_max_events,
        max_batches=settings.usage_outbox_max_batches,
    )
    app[USAGE] = publisher = UsagePublisher(app[OUTBOX], usage_subject(settings))
    app[OUTBOX].on_sealed = publisher.wake  # a sealed batch wakes the sender at once
    app[NATS] = NatsLink(settings.nats_url, f"hydite-dataplane-{node_id(settings)}")

    async def publish_usage(nc: NatsClient) -> None:
        js = nc.jetstream()
        await ensure_usage_streams(js, settings)
        publisher.attach(js, nc.max_payload)

    app[NATS].when_connected("usage stream setup", publish_usage)
    app[CONFIG_STREAM] = ConfigStreamClient(
        settings.controlplane_grpc,
        node_id(settings),
        app[HOLDER],
        CredentialCipher(settings.salt_key),
        settings.config_token,
        keepalive=settings,
    )
    app[METRICS] = _metrics(app[HOLDER], app[OUTBOX], publisher, app[CONFIG_STREAM])
    app.cleanup_ctx.extend([_forwarding, _nats_connection, _usage_publishing, _gateway, _config_stream])

    async def readiness() -> str | None:
        return None if app[HOLDER].ready else "no config snapshot received yet"

    for health_route in health_routes(readiness):
        app.router.add_route(health_route.method, health_route.path, rendering_errors(health_route.handler))
    app.router.add_get("/metrics", rendering_errors(app[METRICS].handle))
    app.router.add_get("/routes", rendering_errors(route_table))

    in_flight = app[IN_FLIGHT] = set()

    async def dispatch(route_index: int, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        in_flight.add(task)
        try:
            route = ROUTES[route_index]
            serve = GATEWAY_ROUTES.get(route.operation)
            if serve is not None:
                return await serve(request)
            return await handle_inference(request.app[GATEWAY], route, request)
        except Exception as exc:
            return response_for_exception(request, exc)
        finally:
            in_flight.discard(task)

    for index, route in enumerate(ROUTES):
        if route.auth == "inference":
            app.router.add_route(route.method, route.path, functools.partial(dispatch, index))

    async def forward(request: web.Request) -> web.StreamResponse:
        return await request.app[FORWARDER].handle(request)

    app.router.add_route("*", "/{tail:.*}", rendering_errors(forward))
    return app


async def route_table(_: web.Request) -> web.Response:
    """GET /routes: the paths this data plane serves itself, with their methods and operation
    (every other path is the control plane's admin API, forwarded)."""
    routes = [{"path": r.path, "methods": [r.method], "name": r.operation} for r in ROUTES]
    return json_response({"routes": routes})


def _metrics(
    holder: SnapshotHolder, outbox: UsageOutbox, publisher: UsagePublisher, config_stream: ConfigStreamClient
) -> RequestMetrics:
    metrics = RequestMetrics()
    metrics.add_gauge(
        "hydite_config_version", "The config version this data plane serves.", lambda: holder.current.version
    )
    metrics.add_gauge(
        "hydite_config_streams_total",
        "Config streams opened to the control plane (each one after the first is a reconnect).",
        lambda: config_stream.streams_opened,
        "counter",
    )
    metrics.add_gauge(
        "hydite_usage_batches_pending",
        "Usage batches not yet acknowledged by JetStream.",
        lambda: outbox.pending_batches,
    )
    metrics.add_gauge(
        "hydite_usage_batches_published_total",
        "Usage batches JetStream acknowledged.",
        lambda: publisher.published_batches,
        "counter",
    )
    metrics.add_gauge(
        "hydite_usage_batches_dropped_total",
        "Usage batches dropped because the outbox was full.",
        lambda: outbox.dropped_batches,
        "counter",
    )
    metrics.add_gauge(
        "hydite_usage_batches_split_total",
        "Usage batches sealed as several, or split after NATS refused them, for their size.",
        lambda: outbox.split_batches,
        "counter",
    )
    metrics.add_gauge(
        "hydite_usage_events_set_aside_total",
        "Usage events too large to publish even when cut down, set aside (logged by request id).",
        lambda: outbox.set_aside_events,
        "counter",
    )
    return metrics


async def _forwarding(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        settings = app[SETTINGS]
        app[FORWARDER] = ControlPlaneForwarder(
            session,
            settings.controlplane_url,
            SERVED_METHODS,
            max_body_bytes=settings.max_admin_body_kb * 1024,
            body_timeout_seconds=settings.request_body_timeout_seconds,
        )
        yield


async def _nats_connection(app: web.Application) -> AsyncIterator[None]:
    link = app[NATS]
    task = asyncio.create_task(link.run(), name="nats-connect")
    try:
        yield
    finally:
        await _cancelled(task)
        await link.close()


async def _usage_publishing(app: web.Application) -> AsyncIterator[None]:
    publisher = app[USAGE]
    sender = asyncio.create_task(publisher.run(), name="usage-publisher")
    try:
        yield
    finally:
        await publisher.drain(app[SETTINGS].usage_drain_seconds)
        await _cancelled(sender)


async def _gateway(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with build_gateway(settings, app[HOLDER], app[OUTBOX], app[METRICS], node_id(settings)) as gateway:
        app[GATEWAY] = gateway
        yield


async def _config_stream(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[CONFIG_STREAM].run(), name="config-stream")
    try:
        yield
    finally:
        await _cancelled(task)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
