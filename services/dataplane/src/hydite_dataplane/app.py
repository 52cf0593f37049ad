"""Data plane assembly: routes from the route table, and one cleanup context per long-lived
resource (the forwarding session, the NATS connection, usage publishing, the gateway, the config
stream)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import aiohttp
import swagger_ui_bundle  # type: ignore[import-untyped]
from aiohttp import web
from nats.aio.client import Client as NatsClient

from hydite_common.credentials import CredentialCipher
from hydite_common.errors import HyditeError
from hydite_common.http import health_routes, rendering_errors, response_for_exception
from hydite_common.lifecycle import LIFECYCLE, Lifecycle
from hydite_common.usage_stream import ensure_usage_streams, usage_subject, usage_tally_subject
from hydite_dataplane.caller import authenticated
from hydite_dataplane.catalog import list_models, model_metrics, retrieve_model, supported_openai_params
from hydite_dataplane.config.client import ConfigStreamClient
from hydite_dataplane.config.holder import SnapshotHolder
from hydite_dataplane.errors import ERROR_RENDERERS
from hydite_dataplane.forward import ControlPlaneForwarder
from hydite_dataplane.gateway import Gateway, build_gateway
from hydite_dataplane.health import health, health_caller, health_services
from hydite_dataplane.limits import ClusterLimits
from hydite_dataplane.limits.gossip import LimitGossip
from hydite_dataplane.limits.shares import ClusterShares
from hydite_dataplane.limits.spend_view import SpendView
from hydite_dataplane.messages_count_tokens import count_message_tokens
from hydite_dataplane.messaging import NatsLink
from hydite_dataplane.metrics import RequestMetrics
from hydite_dataplane.openapi.controlplane import ControlPlaneDocument
from hydite_dataplane.openapi.description import ApiDescription
from hydite_dataplane.openapi.docs import SwaggerUI
from hydite_dataplane.pipeline import handle_inference
from hydite_dataplane.request import Caller
from hydite_dataplane.resources.stored import STORED_OPERATIONS, relay_stored
from hydite_dataplane.routes import ROUTES
from hydite_dataplane.settings import DataplaneSettings
from hydite_dataplane.token_counter import token_counter
from hydite_dataplane.usage.outbox import UsageOutbox
from hydite_dataplane.usage.publisher import UsagePublisher
from hydite_dataplane.usage.spool import UsageSpool, default_spool_dir
from hydite_dataplane.usage.tally import EmittedTally, earlier_tallies

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", DataplaneSettings)
HOLDER = web.AppKey("holder", SnapshotHolder)
OUTBOX = web.AppKey("outbox", UsageOutbox)
USAGE = web.AppKey("usage", UsagePublisher)
NATS = web.AppKey("nats", NatsLink)
GATEWAY = web.AppKey("gateway", Gateway)
FORWARDER = web.AppKey("forwarder", ControlPlaneForwarder)
API_DESCRIPTION = web.AppKey("api_description", ApiDescription)
METRICS = web.AppKey("metrics", RequestMetrics)
CONFIG_STREAM = web.AppKey("config_stream", ConfigStreamClient)
LIMITS = web.AppKey("limits", ClusterLimits)
LIMIT_TASKS = web.AppKey("limit_tasks", list[asyncio.Task[None]])
IN_FLIGHT = web.AppKey("in_flight", set[asyncio.Task[object]])
"""The tasks serving keyed routes right now: what a shutdown waits for, then cuts."""

SERVED_METHODS: dict[str, frozenset[str]] = {
    path: frozenset(r.method for r in ROUTES if r.path == path) for path in {r.path for r in ROUTES}
}


KeyedHandler = Callable[[Gateway, Caller, web.Request], Awaitable[web.StreamResponse]]
CallerPrelude = Callable[[SnapshotHolder, Mapping[str, str], str], Caller]


def _keyed(
    serve: KeyedHandler, prelude: CallerPrelude = authenticated
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A route the gateway answers itself, for an authenticated caller allowed the path."""

    def handler(request: web.Request) -> Awaitable[web.StreamResponse]:
        gateway = request.app[GATEWAY]
        return serve(gateway, prelude(gateway.holder, request.headers, request.path), request)

    return handler


GATEWAY_ROUTES: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
    "models.list": _keyed(list_models),
    "models.retrieve": _keyed(retrieve_model),
    "models.metrics": _keyed(model_metrics),
    "utils.supported_params": _keyed(supported_openai_params),
    "utils.token_counter": _keyed(token_counter),
    "health.deployments": _keyed(health, health_caller),
    "health.services": _keyed(health_services, health_caller),
    "messages.count_tokens": _keyed(count_message_tokens),
    **{
        operation: _keyed(functools.partial(relay_stored, stored))
        for operation, stored in STORED_OPERATIONS.items()
    },
}
"""Operations the gateway answers itself, without an inference call."""


def node_id(settings: DataplaneSettings) -> str:
    """This data plane's name in config status and usage batches."""
    return settings.node_id or f"{socket.gethostname()}-{os.getpid()}"


def _usage_spool(
    settings: DataplaneSettings, outbox: UsageOutbox
) -> tuple[UsageSpool | None, list[tuple[str, Path]]]:
    """The opened spool, with the outbox's tally in its directory, and the tallies earlier
    processes left there; without a usable directory, no spool and a tally in memory."""
    directory = (
        Path(settings.usage_spool_dir) if settings.usage_spool_dir else default_spool_dir(node_id(settings))
    )
    spool = UsageSpool(directory, max_bytes=settings.usage_spool_max_mb * 1024 * 1024)
    try:
        spool.open()
        own = spool.directory / f"tally-{outbox.publisher_id}.bin"
        earlier = earlier_tallies(spool.directory, own)
        outbox.tally = EmittedTally(outbox.publisher_id, own)
    except OSError as exc:
        log.error(
            "usage spool %s unusable (%s): usage waits in memory only while NATS is away", directory, exc
        )
        outbox.tally = EmittedTally(outbox.publisher_id, None)
        return None, []
    return spool, earlier


def build_app(settings: DataplaneSettings) -> web.Application:
    """The data plane HTTP app."""
    # No middlewares: each costs a coroutine layer per request; every handler renders its own errors.
    app = web.Application(client_max_size=settings.max_request_body_mb * 1024 * 1024)
    app[SETTINGS] = settings
    app[HOLDER] = SnapshotHolder()
    app[OUTBOX] = outbox = UsageOutbox(
        node_id=node_id(settings),
        flush_seconds=settings.usage_flush_ms / 1000,
        max_batch_events=settings.usage_batch_max_events,
        max_batches=settings.usage_outbox_max_batches,
    )
    spool, earlier = _usage_spool(settings, outbox)
    app[USAGE] = publisher = UsagePublisher(
        outbox,
        usage_subject(settings),
        spool=spool,
        tally_subject=usage_tally_subject(settings),
        node_id=node_id(settings),
        earlier_tallies=earlier,
    )
    outbox.on_sealed = publisher.sealed  # a sealed batch wakes the sender at once (or is spooled)
    app[NATS] = NatsLink(settings.nats_url, f"hydite-dataplane-{node_id(settings)}")

    async def publish_usage(nc: NatsClient) -> None:
        js = nc.jetstream()
        await ensure_usage_streams(js, settings)
        publisher.attach(js, nc.max_payload, lambda: nc.is_connected)

    app[NATS].when_connected("usage stream setup", publish_usage)
    app[LIMITS] = limits = _cluster_limits(settings, app[HOLDER], outbox.publisher_id)
    app[LIMIT_TASKS] = limit_tasks = []

    async def follow_spend_totals(nc: NatsClient) -> None:
        limit_tasks.append(asyncio.create_task(limits.spend.watch(nc, settings), name="spend-totals-watch"))

    app[NATS].when_connected("limit gossip", limits.gossip.subscribe)
    app[NATS].when_connected("spend totals watch", follow_spend_totals)
    app[CONFIG_STREAM] = ConfigStreamClient(
        settings.controlplane_grpc,
        node_id(settings),
        app[HOLDER],
        CredentialCipher(settings.salt_key),
        settings.config_token,
        keepalive=settings,
    )
    app[METRICS] = _metrics(app[HOLDER], app[OUTBOX], publisher, app[CONFIG_STREAM], settings)
    _limit_metrics(app[METRICS], limits)
    app.cleanup_ctx.extend(
        [_forwarding, _nats_connection, _usage_publishing, _gateway, _limit_gossip, _config_stream]
    )

    app[LIFECYCLE] = lifecycle = Lifecycle()

    async def readiness() -> str | None:
        if stopping := lifecycle.not_ready_reason():
            return stopping
        if app[HOLDER].ready:
            return None
        refused = app[CONFIG_STREAM].last_refusal
        return (
            f"no config snapshot applied yet (refused {refused})"
            if refused
            else "no config snapshot received yet"
        )

    def details() -> dict[str, object]:
        return {"limits": limits.status(), "config": app[CONFIG_STREAM].status()}

    for health_route in health_routes(readiness, details):
        app.router.add_route(health_route.method, health_route.path, rendering_errors(health_route.handler))
    app.router.add_get("/metrics", rendering_errors(app[METRICS].handle))

    async def openapi_json(request: web.Request) -> web.Response:
        return await request.app[API_DESCRIPTION].openapi_json(request)

    async def route_table(request: web.Request) -> web.Response:
        return await request.app[API_DESCRIPTION].routes(request)

    docs = SwaggerUI(Path(swagger_ui_bundle.swagger_ui_path), exposed=settings.expose_docs)
    app.router.add_get("/routes", rendering_errors(route_table))
    app.router.add_get("/openapi.json", rendering_errors(openapi_json))
    app.router.add_get("/docs", rendering_errors(docs.page))
    app.router.add_get("/docs/{asset}", rendering_errors(docs.asset))

    in_flight = app[IN_FLIGHT] = set()
    app[METRICS].add_gauge(
        "hydite_requests_in_flight", "Requests on keyed routes being served now.", lambda: len(in_flight)
    )

    async def dispatch(route_index: int, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        in_flight.add(task)
        route = ROUTES[route_index]
        try:
            serve = GATEWAY_ROUTES.get(route.operation)
            if serve is not None:
                return await serve(request)
            return await handle_inference(request.app[GATEWAY], route, request)
        except HyditeError as exc:
            # A route the gateway answers itself renders in its own wire format (Anthropic's count_tokens).
            return ERROR_RENDERERS[route.wire_format].response(exc)
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


def _cluster_limits(settings: DataplaneSettings, holder: SnapshotHolder, publisher_id: str) -> ClusterLimits:
    shares = ClusterShares(
        node_id(settings),
        epoch_seconds=settings.limits_epoch_seconds,
        peer_timeout_seconds=settings.limits_peer_timeout_ms / 1000,
        fallback=settings.limits_fallback,
    )
    gossip = LimitGossip(
        shares,
        settings.nats_subject("limits", "reports"),
        settings.limits_gossip_interval_ms / 1000,
        lambda: holder.current.nodes.keys(),
    )
    return ClusterLimits(shares, gossip, SpendView(publisher_id))


def _limit_metrics(metrics: RequestMetrics, limits: ClusterLimits) -> None:
    shares, gossip = limits.shares, limits.gossip
    metrics.add_gauge(
        "hydite_limits_fallback",
        "1 while NATS is lost and every limit is enforced by this replica's fallback share alone.",
        lambda: int(not shares.connected),
    )
    metrics.add_gauge(
        "hydite_limits_members", "Data planes the limits are shared among.", lambda: len(shares.members)
    )
    metrics.add_gauge(
        "hydite_limits_peers_heard",
        "Peers whose limit reports arrived lately.",
        lambda: len(shares.peers_heard()),
    )
    metrics.add_gauge("hydite_limits_shares", "Limits this replica holds a share of.", lambda: shares.tracked)
    metrics.add_gauge(
        "hydite_limits_reports_sent_total", "Limit reports sent.", lambda: gossip.counters.sent, "counter"
    )
    metrics.add_gauge(
        "hydite_limits_reports_received_total",
        "Limit reports received from peers.",
        lambda: gossip.counters.received,
        "counter",
    )
    metrics.add_gauge(
        "hydite_limits_reports_malformed_total",
        "Limit report messages dropped as malformed.",
        lambda: gossip.counters.malformed,
        "counter",
    )
    metrics.add_gauge(
        "hydite_limits_report_entries_malformed_total",
        "Entries of limit reports dropped as malformed (the rest of their report applied).",
        lambda: gossip.malformed_entries,
        "counter",
    )
    metrics.add_gauge(
        "hydite_limits_epochs_total",
        "Times the shares started over (members changed, or the epoch ended).",
        lambda: shares.epochs_started,
        "counter",
    )
    metrics.add_gauge(
        "hydite_spend_totals_entities",
        "Entities whose committed spend this replica follows.",
        lambda: limits.spend.entities,
    )


def _metrics(
    holder: SnapshotHolder,
    outbox: UsageOutbox,
    publisher: UsagePublisher,
    config_stream: ConfigStreamClient,
    settings: DataplaneSettings,
) -> RequestMetrics:
    metrics = RequestMetrics(max_key_aliases=settings.metrics_max_key_aliases)
    metrics.add_gauge(
        "hydite_config_version", "The config version this data plane serves.", lambda: holder.current.version
    )
    metrics.add_gauge(
        "hydite_config_snapshot_age_seconds",
        "Seconds since the served config version was applied (the snapshot carries no time of its own).",
        holder.seconds_since_swap,
    )
    metrics.add_gauge(
        "hydite_config_streams_total",
        "Config streams opened to the control plane (each one after the first is a reconnect).",
        lambda: config_stream.streams_opened,
        "counter",
    )
    metrics.add_gauge(
        "hydite_config_refused_total",
        "Config versions this data plane refused (NACKed), e.g. of a newer schema; it kept the one before.",
        lambda: config_stream.refused_versions,
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
        "hydite_usage_spooling",
        "1 while usage batches go to the local spool (NATS away, or the spool being replayed).",
        lambda: int(publisher.spooling),
    )
    metrics.add_gauge(
        "hydite_usage_spool_batches",
        "Usage batches in the local spool, waiting for JetStream.",
        lambda: publisher.spool.records if publisher.spool is not None else 0,
    )
    metrics.add_gauge(
        "hydite_usage_spool_bytes",
        "Bytes the local usage spool holds.",
        lambda: publisher.spool.bytes if publisher.spool is not None else 0,
    )
    metrics.add_gauge(
        "hydite_usage_spool_full_total",
        "Usage batches the spool refused because it was full (they waited in memory).",
        lambda: publisher.spool.full_refusals if publisher.spool is not None else 0,
        "counter",
    )
    metrics.add_gauge(
        "hydite_usage_batches_spooled_total",
        "Usage batches written to the local spool.",
        lambda: publisher.spooled_batches,
        "counter",
    )
    metrics.add_gauge(
        "hydite_usage_batches_replayed_total",
        "Usage batches published from the local spool.",
        lambda: publisher.replayed_batches,
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
        app[API_DESCRIPTION] = ApiDescription(ControlPlaneDocument(session, settings.controlplane_url))
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
    upkeep = asyncio.create_task(publisher.maintain(), name="usage-upkeep")
    try:
        yield
    finally:
        await _cancelled(upkeep)
        tally_published = await publisher.drain(app[SETTINGS].usage_drain_seconds)
        await _cancelled(sender)
        publisher.close(tally_published)


async def _limit_gossip(app: web.Application) -> AsyncIterator[None]:
    tasks = app[LIMIT_TASKS]
    tasks.append(asyncio.create_task(app[LIMITS].gossip.run(), name="limit-gossip"))
    try:
        yield
    finally:
        for task in tasks:
            await _cancelled(task)


async def _gateway(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    built = build_gateway(settings, app[HOLDER], app[OUTBOX], app[METRICS], node_id(settings), app[LIMITS])
    async with built as gateway:
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
