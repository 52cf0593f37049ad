"""Control plane assembly: database, config follower, gRPC ConfigService and the admin HTTP app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator

import grpc
import psycopg
import sqlalchemy.exc
from aiohttp import web
from sqlalchemy.exc import IntegrityError

from hydite.config.v1 import config_pb2_grpc as pb_grpc
from hydite_common.config_types import DATA_PLANE_NODE
from hydite_common.credentials import CredentialCipher
from hydite_common.errors import ConflictError, ServiceUnavailableError
from hydite_common.grpc_keepalive import server_options
from hydite_common.http import Handler, error_middleware, health_routes
from hydite_common.keys import MASTER_KEY_SETTING, master_key_digest
from hydite_common.lifecycle import LIFECYCLE, Lifecycle
from hydite_controlplane import budget_tasks
from hydite_controlplane.admin import (
    audit,
    budgets,
    customers,
    key_groups,
    keys,
    models,
    openapi,
    organizations,
    spend,
    spend_reports,
    tags,
    teams,
    users,
)
from hydite_controlplane.appkeys import CACHE, CIPHER, NATS, NODE_STATUS, PROPAGATION, SESSIONS, SETTINGS
from hydite_controlplane.bootstrap import BootstrapFile, apply_bootstrap, read_bootstrap
from hydite_controlplane.config import status
from hydite_controlplane.config.builder import global_limits_resource, setting_resource
from hydite_controlplane.config.cache import SnapshotCache
from hydite_controlplane.config.follower import ChangeFollower
from hydite_controlplane.config.node_status import HEARTBEAT_SECONDS, STALE_AFTER_SECONDS, NodeStatusStore
from hydite_controlplane.config.propagation import Propagation, written_versions
from hydite_controlplane.config.servicer import ConfigServicer
from hydite_controlplane.db import create_engine, ensure_database, run_sql, session_factory
from hydite_controlplane.messaging import NatsLink
from hydite_controlplane.metrics import CONTROLPLANE_METRICS, ControlplaneMetrics
from hydite_controlplane.metrics import install as install_metrics
from hydite_controlplane.migrations.runner import upgrade_to_head
from hydite_controlplane.settings import ControlplaneSettings
from hydite_controlplane.spend_windows import publish_windows_middleware

log = logging.getLogger(__name__)
BOOTSTRAP: web.AppKey[BootstrapFile | None] = web.AppKey("bootstrap")
"""HYDITE_CONFIG, read once at start (None without one)."""

GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def controlplane_id() -> str:
    """Identifies this replica in node status rows."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def prepare_database(settings: ControlplaneSettings) -> None:
    """Create the database if needed and migrate it to head (safe with concurrent replicas)."""
    await asyncio.to_thread(ensure_database, settings.libpq_url)
    await asyncio.to_thread(upgrade_to_head, settings.libpq_url, settings.sqlalchemy_url)


@web.middleware
async def conflict_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A unique or foreign-key violation that slipped past the checks is a 409, never a 500.

    The one place IntegrityError is mapped: handlers pre-check what they can (with the messages
    callers see) and commit without catching.
    """
    try:
        return await handler(request)
    except IntegrityError:
        raise ConflictError("the write conflicts with existing data (a duplicate id or alias)") from None


DATABASE_OUTAGES = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
"""What reaching Postgres raises while it is down or cut off (a refused or dropped connection)."""


@web.middleware
async def database_outage_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An admin call that cannot reach Postgres answers 503 with a retry hint, never a 500: the
    data planes keep serving meanwhile, and the caller should try again."""
    try:
        return await handler(request)
    except DATABASE_OUTAGES as exc:
        log.warning(
            "database unavailable during %s %s (%s)", request.method, request.path, type(exc).__name__
        )
        raise ServiceUnavailableError(
            "the control plane cannot reach its database; retry shortly",
            code="database_unavailable",
            headers={"Retry-After": "1"},
        ) from None


@web.middleware
async def read_your_writes_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A successful admin write that committed config versions answers once every connected data
    plane applied the last of them, or the apply timeout passed; its headers say how many did."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return await handler(request)
    versions: list[int] = []
    token = written_versions.set(versions)
    try:
        response = await handler(request)
    finally:
        written_versions.reset(token)
    timeout = request.app[SETTINGS].config_apply_timeout_seconds
    if versions and response.status < 400 and timeout > 0:
        applied = await request.app[PROPAGATION].wait_applied(max(versions), timeout)
        response.headers.update(applied.headers())
    return response


def build_app(settings: ControlplaneSettings) -> web.Application:
    """The admin HTTP app; its cleanup context owns the engine, follower and gRPC server."""
    metrics = ControlplaneMetrics()
    app = web.Application(
        middlewares=[
            metrics.middleware,
            error_middleware,
            database_outage_middleware,
            conflict_middleware,
            read_your_writes_middleware,
            publish_windows_middleware,
        ],
        client_max_size=32 * 1024 * 1024,
    )
    app[SETTINGS] = settings
    app[CIPHER] = CredentialCipher(settings.salt_key)
    app[openapi.OPENAPI_DOCUMENT] = openapi.AdminDocument()
    bootstrap = read_bootstrap(settings.config_file) if settings.config_file else None
    app[BOOTSTRAP] = bootstrap
    fixed = [setting_resource(MASTER_KEY_SETTING, master_key_digest(settings.master_key, settings.salt_key))]
    if bootstrap is not None:
        fixed += [setting_resource(name, value) for name, value in bootstrap.proxy_settings().items()]
        proxy_budget = global_limits_resource(
            bootstrap.litellm_settings.max_budget, bootstrap.litellm_settings.budget_duration
        )
        if proxy_budget is not None:
            fixed.append(proxy_budget)
    app[CACHE] = SnapshotCache(
        history=settings.delta_history, chunk_bytes=settings.snapshot_chunk_bytes, fixed=fixed
    )

    app[LIFECYCLE] = lifecycle = Lifecycle()

    async def readiness() -> str | None:
        if stopping := lifecycle.not_ready_reason():
            return stopping
        if not app[CACHE].loaded:
            return "config snapshot not loaded"
        try:
            async with app[SESSIONS]() as session:
                await run_sql(session, ("SELECT 1"))
        except Exception as exc:
            return f"database unreachable: {type(exc).__name__}"
        return None

    app.cleanup_ctx.append(_nats)
    app.cleanup_ctx.append(_database_and_streaming)
    app.cleanup_ctx.append(budget_tasks.run_budget_tasks)
    app.add_routes(health_routes(readiness))
    install_metrics(app, metrics)
    for module in (
        keys, models, users, teams, organizations, customers, budgets, key_groups, spend, spend_reports,
        audit, status, tags, openapi,
    ):  # fmt: skip
        app.add_routes(module.ROUTES)
    return app


async def _nats(app: web.Application) -> AsyncIterator[None]:
    """The NATS connection, opened in the background: the admin API serves before it is up (an
    admin change of spend answers 503 until then)."""
    link = NatsLink(app[SETTINGS], name=f"hydite-controlplane-{os.getpid()}")
    app[NATS] = link
    connecting = asyncio.create_task(link.run(), name="nats-connect")
    try:
        yield
    finally:
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
        await link.close()


async def _database_and_streaming(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.run_migrations:
        await prepare_database(settings)
    bootstrap = app[BOOTSTRAP]
    engine = create_engine(settings.sqlalchemy_url)
    app[SESSIONS] = session_factory(engine)
    if bootstrap is not None:
        changed = await apply_bootstrap(app[SESSIONS], app[CIPHER], bootstrap)
        log.info("bootstrap file applied: %d entries changed", changed)
    app[NODE_STATUS] = NodeStatusStore(app[SESSIONS], controlplane_id())
    app[PROPAGATION] = Propagation(app[SESSIONS], settings.libpq_url, STALE_AFTER_SECONDS)
    listen_task = asyncio.create_task(app[PROPAGATION].listen(), name="config-ack-listener")
    metrics = app[CONTROLPLANE_METRICS]
    follower = ChangeFollower(app[CACHE], app[SESSIONS], settings.libpq_url, on_built=metrics.snapshot_built)
    await follower.load_full()
    follow_task = asyncio.create_task(follower.run(), name="config-follower")

    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", GRPC_MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_BYTES),
            # gRPC shares a port with any earlier listener by default: a stale control plane
            # would then answer half of the data planes. Taken is an error.
            ("grpc.so_reuseport", 0),
            *server_options(settings),
        ]
    )
    servicer = ConfigServicer(app[CACHE], app[NODE_STATUS], settings.config_token)
    metrics.read_at_scrape(
        "hydite_controlplane_config_streams",
        "Data planes with a config stream open to this replica.",
        lambda: len(servicer.connected_nodes),
    )
    pb_grpc.add_ConfigServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await app[NODE_STATUS].heartbeat(servicer.connected_nodes)
                members = [r.name for r in app[CACHE].resources_of(DATA_PLANE_NODE)]
                departed = await app[NODE_STATUS].sweep_departed(members)
                if departed:
                    log.info("data planes gone stale left the snapshot: %s", ", ".join(departed))
            except Exception:
                log.warning("could not refresh node status", exc_info=True)

    heartbeat_task = asyncio.create_task(heartbeat(), name="node-heartbeat")
    server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
    await server.start()
    try:
        yield
    finally:
        servicer.release()
        await server.stop(grace=1.0)
        for task in (heartbeat_task, follow_task, listen_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await app[NODE_STATUS].release_all()
        except Exception:
            log.warning("could not mark this replica's data planes disconnected", exc_info=True)
        await engine.dispose()
