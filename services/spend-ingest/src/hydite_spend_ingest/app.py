"""spend-ingest assembly: NATS connection, the consumer, KV totals and retention tasks, and
health/metrics HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator

import nats
from aiohttp import web
from nats.aio.client import Client as NatsClient

from hydite_common.http import error_middleware, health_routes
from hydite_common.lifecycle import LIFECYCLE, Lifecycle
from hydite_common.usage_stream import ensure_usage_streams
from hydite_spend_ingest.consumer import UsageConsumer
from hydite_spend_ingest.retention import SpendRetention
from hydite_spend_ingest.settings import IngestSettings
from hydite_spend_ingest.totals import TotalsWriter

SETTINGS = web.AppKey("settings", IngestSettings)
CONSUMER = web.AppKey("consumer", UsageConsumer)
TOTALS = web.AppKey("totals", TotalsWriter)
RETENTION = web.AppKey("retention", SpendRetention)
NATS_CONNECTION = web.AppKey("nats", NatsClient)


def metric_lines(app: web.Application) -> list[str]:
    """The Prometheus text lines of every counter of the running service."""
    counters = app[CONSUMER].counters
    totals = app[TOTALS]
    retention = app[RETENTION].counters
    values: list[tuple[str, str, str, int]] = [
        ("batches_total", "counter", "", counters.batches),
        ("events_written_total", "counter", "", counters.events_written),
        ("duplicate_events_total", "counter", "", counters.duplicates),
        # Dead-lettered: undecodable messages, and events or payloads Postgres refuses.
        ("poison_messages_total", "counter", "", counters.poison),
        ("write_errors_total", "counter", "", counters.write_errors),
        ("tallies_total", "counter", "", counters.tallies),
        ("newer_schema_messages_total", "counter", "", counters.newer_schema),
        ("totals_kv_written_total", "counter", "", totals.counters.written),
        ("totals_kv_stale_total", "counter", "", totals.counters.stale),
        ("totals_kv_failures_total", "counter", "", totals.counters.failures),
        ("totals_kv_pending", "gauge", "", totals.dirty),
        ("retention_passes_total", "counter", "", retention.passes),
        ("retention_failures_total", "counter", "", retention.failures),
    ]
    values += [
        ("retention_deleted_rows_total", "counter", f'{{table="{table}"}}', deleted)
        for table, deleted in retention.deleted.items()
    ]
    lines: list[str] = []
    for name, kind, labels, value in values:
        if (declaration := f"# TYPE hydite_ingest_{name} {kind}") not in lines:
            lines.append(declaration)
        lines.append(f"hydite_ingest_{name}{labels} {value}")
    return lines


def build_app(settings: IngestSettings) -> web.Application:
    """Health and metrics routes; the cleanup context runs the consumer and its background tasks."""
    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_consuming)

    app[LIFECYCLE] = lifecycle = Lifecycle()

    async def readiness() -> str | None:
        if stopping := lifecycle.not_ready_reason():
            return stopping
        if not app[NATS_CONNECTION].is_connected:
            return "NATS disconnected"
        if not app[CONSUMER].db_ok:
            return "database unavailable"
        return None

    async def metrics(request: web.Request) -> web.Response:
        consumer = request.app[CONSUMER]
        await _read_pending(consumer)
        text = "\n".join(metric_lines(request.app)) + "\n" + consumer.metrics.exposition()
        return web.Response(text=text, content_type="text/plain")

    app.add_routes([*health_routes(readiness), web.get("/metrics", metrics)])
    return app


PENDING_READ_SECONDS = 1.0


async def _read_pending(consumer: UsageConsumer) -> None:
    """Refresh the consumer's pending counts from JetStream (kept as they were if it does not answer)."""
    try:
        async with asyncio.timeout(PENDING_READ_SECONDS):
            info = await consumer.info()
    except Exception as exc:
        logging.getLogger(__name__).debug("consumer info unavailable for /metrics (%s)", type(exc).__name__)
        return
    consumer.metrics.pending.set(info.num_pending or 0)
    consumer.metrics.ack_pending.set(info.num_ack_pending or 0)


FLUSH_AT_EXIT_SECONDS = 1
CONSUMER_STOP_SECONDS = 1.5
"""How long the consumer gets to commit and ack the batch it is writing before it is cancelled."""
TASKS_STOP_SECONDS = 2.0
"""How long the consumer and writers get to finish once cancelled."""
CLOSE_SECONDS = 1.0
STOP_BOUND_SECONDS = 5.0
"""After this the process exits whatever is still running: a Postgres or NATS going away at the
same moment (a whole stack stopped at once) can leave a cancelled query waiting on its server, and
ingest is crash-safe (a message is acked only once its transaction committed)."""


def _abandon_stop() -> None:
    logging.getLogger(__name__).warning("stop still unfinished after %.0f s; exiting", STOP_BOUND_SECONDS)
    os._exit(1)


async def _consuming(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    nc = await nats.connect(
        settings.nats_url,
        name="hydite-spend-ingest",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
    )
    js = nc.jetstream()
    await ensure_usage_streams(js, settings)
    app[NATS_CONNECTION] = nc
    app[TOTALS] = TotalsWriter(settings, js)
    app[RETENTION] = SpendRetention(settings)
    app[CONSUMER] = UsageConsumer(settings, js, on_totals=app[TOTALS].mark)
    tasks = [
        asyncio.create_task(app[TOTALS].run(), name="spend-totals-kv"),
        asyncio.create_task(app[CONSUMER].run(), name="usage-consumer"),
    ]
    if settings.spend_log_retention is not None:
        tasks.append(asyncio.create_task(app[RETENTION].run(), name="spend-log-retention"))
    yield
    watchdog = threading.Timer(STOP_BOUND_SECONDS, _abandon_stop)
    watchdog.daemon = True
    watchdog.start()
    try:
        # The batch being written commits and is acked (or the cancel below rolls it back and it
        # stays unacked): a batch is never half written.
        await app[CONSUMER].stop(CONSUMER_STOP_SECONDS)
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=TASKS_STOP_SECONDS)
        if nc.is_connected:
            # Bounded: a server that went away at the same moment must not hold the exit for nats-py's 10 s.
            with contextlib.suppress(Exception):
                await nc.flush(timeout=FLUSH_AT_EXIT_SECONDS)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), CLOSE_SECONDS)
    finally:
        if all(task.done() for task in tasks):
            # A stop that finished in time: the process (a test's, say) goes on living. A task
            # still running would hold the event loop's own last wait: the watchdog stays.
            watchdog.cancel()
