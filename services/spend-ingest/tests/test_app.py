"""The assembled service: the consumer, the KV totals writer and the metrics route run together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import psycopg
import pytest
from aiohttp import web
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from psycopg.rows import TupleRow

from hydite_common.events import UsageEvent, batch_message_id, encode_batch
from hydite_common.spend_totals import TotalEntry, totals_bucket_name
from hydite_common.usage_stream import usage_subject
from hydite_spend_ingest.app import build_app
from hydite_spend_ingest.settings import IngestSettings

WAIT_SECONDS = 10.0
EVENT: UsageEvent = {
    "request_id": "req-app", "call_type": "chat_completion", "start_time_ms": 1_700_000_000_000.0,
    "end_time_ms": 1_700_000_000_250.0, "key_hash": "ab" * 32, "key_alias": "", "user_id": "",
    "team_id": "t-app", "organization_id": "", "customer_id": "", "tags": [], "model": "demo",
    "model_group": "demo", "deployment_id": "d", "provider": "mock", "upstream_model": "demo",
    "api_base": "", "stream": False, "status": "success", "http_status": 200, "error_code": "",
    "prompt_tokens": 1, "completion_tokens": 2, "cached_tokens": 0, "reasoning_tokens": 0,
    "total_tokens": 3, "cost": 0.5, "usage_estimated": False, "ttft_ms": 1.0, "attempts": 1,
}  # fmt: skip


@pytest.fixture
async def service_url(
    settings: IngestSettings, js: JetStreamContext, db: psycopg.AsyncConnection[TupleRow]
) -> AsyncIterator[str]:
    """spend-ingest's app served on a free port (its bucket deleted afterwards)."""
    runner = web.AppRunner(build_app(settings.model_copy(update={"spend_log_retention": None})))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        with contextlib.suppress(NotFoundError):
            await js.delete_key_value(totals_bucket_name(settings))


async def metrics(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """The /metrics lines as name -> value."""
    async with session.get(url + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    pairs = (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {name: float(value) for name, value in pairs}


async def test_a_batch_reaches_spend_logs_the_kv_bucket_and_the_metrics(
    js: JetStreamContext, settings: IngestSettings, service_url: str
) -> None:
    """One published batch is written, its team's total lands in the KV bucket, and /metrics
    counts both."""
    await js.publish(
        usage_subject(settings),
        encode_batch("node-a.00000001", 1, [EVENT]),
        headers={"Nats-Msg-Id": batch_message_id("node-a.00000001", 1)},
    )
    async with aiohttp.ClientSession() as session:

        async def settled() -> dict[str, float]:
            while True:
                found = await metrics(session, service_url)
                if found.get("hydite_ingest_totals_kv_written_total", 0) >= 3:
                    return found
                await asyncio.sleep(0.02)

        found = await asyncio.wait_for(settled(), WAIT_SECONDS)
    assert found["hydite_ingest_events_written_total"] == 1
    assert found["hydite_ingest_batches_total"] == 1
    assert found['hydite_ingest_retention_deleted_rows_total{table="spend_logs"}'] == 0
    kv = await js.key_value(totals_bucket_name(settings))
    entry = await kv.get("team.t-app")
    assert entry.value is not None
    written = TotalEntry.decode(entry.value)
    assert (written.spend, written.requests, written.ingested) == (
        {"USD": "0.500000000000"}, 1, {"node-a.00000001": 1},
    )  # fmt: skip
