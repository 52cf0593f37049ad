"""spend-ingest assembly: NATS connection, the consumer task, and health/metrics HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import nats
from aiohttp import web
from nats.aio.client import Client as NatsClient

from hydite_common.http import error_middleware, health_routes
from hydite_common.usage_stream import ensure_usage_streams
from hydite_spend_ingest.consumer import UsageConsumer
from hydite_spend_ingest.settings import IngestSettings

SETTINGS = web.AppKey("settings", IngestSettings)
CONSUMER = web.AppKey("consumer", UsageConsumer)
NATS_CONNECTION = web.AppKey("nats", NatsClient)


def build_app(settings: IngestSettings) -> web.Application:
    """Health and metrics routes; the cleanup context runs the consumer."""
    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_consuming)

    async def readiness() -> str | None:
        if not app[NATS_CONNECTION].is_connected:
            return "NATS disconnected"
        if not app[CONSUMER].db_ok:
            return "database unavailable"
        return None

    async def metrics(request: web.Request) -> web.Response:
        counters = request.app[CONSUMER].counters
        lines = [
            "# TYPE hydite_ingest_batches_total counter",
            f"hydite_ingest_batches_total {counters.batches}",
            "# TYPE hydite_ingest_events_written_total counter",
            f"hydite_ingest_events_written_total {counters.events_written}",
            "# TYPE hydite_ingest_duplicate_events_total counter",
            f"hydite_ingest_duplicate_events_total {counters.duplicates}",
            "# TYPE hydite_ingest_poison_messages_total counter",
            f"hydite_ingest_poison_messages_total {counters.poison}",
            "# TYPE hydite_ingest_write_errors_total counter",
            f"hydite_ingest_write_errors_total {counters.write_errors}",
        ]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    app.add_routes([*health_routes(readiness), web.get("/metrics", metrics)])
    return app


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
    app[CONSUMER] = UsageConsumer(settings, js)
    task = asyncio.create_task(app[CONSUMER].run(), name="usage-consumer")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await nc.flush()
    await nc.close()
