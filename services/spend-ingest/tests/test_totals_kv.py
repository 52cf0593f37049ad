"""Running totals reach the JetStream KV bucket after the commit: absolute values, the version sum
and the publishers' watermarks; an older entry never replaces a newer one; a failed write is
retried, and a restart writes the recently changed totals again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue
from psycopg.rows import TupleRow

from hydite_common.events import UsageBatch, UsageEvent
from hydite_common.spend_totals import TotalEntry, put_if_newer, totals_bucket, totals_bucket_name
from hydite_spend_ingest.decode import spend_log_row
from hydite_spend_ingest.settings import IngestSettings
from hydite_spend_ingest.totals import TotalsWriter
from hydite_spend_ingest.writer import WriteSet, copy_row, write

WAIT_SECONDS = 10.0
PUBLISHER = "node-a.0a1b2c3d"
TEAM_KEY = "team.t1"

Connection = psycopg.AsyncConnection[object]
Database = psycopg.AsyncConnection[TupleRow]


def usage_event(request_id: str, cost: float, currency: str = "USD") -> UsageEvent:
    """A usage event of team t1."""
    event: dict[str, Any] = {
        "request_id": request_id, "call_type": "chat_completion", "start_time_ms": 1_700_000_000_000.0,
        "end_time_ms": 1_700_000_000_250.0, "key_hash": "cd" * 32, "key_alias": "", "user_id": "",
        "team_id": "t1", "organization_id": "", "customer_id": "", "tags": [], "model": "demo",
        "model_group": "demo", "deployment_id": "d", "provider": "mock", "upstream_model": "demo",
        "api_base": "", "stream": False, "status": "success", "http_status": 200, "error_code": "",
        "prompt_tokens": 1, "completion_tokens": 2, "cached_tokens": 0, "reasoning_tokens": 0,
        "total_tokens": 3, "cost": cost, "usage_estimated": False, "ttft_ms": 1.0, "attempts": 1,
        "currency": currency,
    }  # fmt: skip
    return event  # type: ignore[return-value]


async def ingest(conn: Connection, seq: int, events: list[UsageEvent]) -> frozenset[tuple[str, str]]:
    """Write a batch of the publisher as the consumer does; the totals it changed."""
    batch = UsageBatch(2, PUBLISHER, seq, events)
    writes = WriteSet(rows=[copy_row(spend_log_row(batch, e)) for e in events], seqs=[(PUBLISHER, seq)])
    return (await write(conn, writes)).changed_totals


@pytest.fixture
async def kv(js: JetStreamContext, settings: IngestSettings) -> AsyncIterator[KeyValue]:
    """The test's totals bucket; deleted afterwards."""
    bucket = await totals_bucket(js, settings)
    try:
        yield bucket
    finally:
        with contextlib.suppress(NotFoundError):
            await js.delete_key_value(totals_bucket_name(settings))


async def entry(kv: KeyValue, key: str) -> TotalEntry:
    """The entry under key."""
    found = await kv.get(key)
    assert found.value is not None
    return TotalEntry.decode(found.value)


async def test_entry_holds_absolute_values_version_and_watermarks(
    js: JetStreamContext, settings: IngestSettings, kv: KeyValue, conn: Connection, db: Database
) -> None:
    """After each commit the entity's entry says its whole total per currency, its version sum and
    the publisher's watermark, never an increment."""
    writer = TotalsWriter(settings, js)
    async with await psycopg.AsyncConnection.connect(settings.libpq_url, autocommit=True) as reader:
        writer.mark(await ingest(conn, 1, [usage_event("r1", 0.25), usage_event("r2", 0.5)]))
        await writer.flush(reader, kv)
        first = await entry(kv, TEAM_KEY)
        assert (first.kind, first.entity, first.spend, first.requests, first.total_tokens, first.version) == (
            "team", "t1", {"USD": "0.750000000000"}, 2, 6, 1,
        )  # fmt: skip
        assert first.ingested == {PUBLISHER: 1}

        writer.mark(await ingest(conn, 2, [usage_event("r3", 1.0), usage_event("r4", 2.0, "EUR")]))
        await writer.flush(reader, kv)
        second = await entry(kv, TEAM_KEY)
        assert (second.spend, second.requests, second.total_tokens, second.version) == (
            {"USD": "1.750000000000", "EUR": "2.000000000000"}, 4, 12, 3,
        )  # fmt: skip
        assert second.ingested == {PUBLISHER: 2}
        assert (await entry(kv, "global._")).requests == 4
    assert writer.counters.written == 2 * 3  # team, key and global, twice
    assert writer.dirty == 0


async def test_an_older_entry_never_replaces_a_newer_one(
    js: JetStreamContext, settings: IngestSettings, kv: KeyValue, conn: Connection, db: Database
) -> None:
    """put_if_newer refuses an entry whose version is not above the stored one, and the writer
    counts an entity whose bucket entry is already newer as stale, leaving it."""
    newer = TotalEntry("team", "t1", {"USD": "9"}, 9, 9, version=50, reset_at_ms=None, updated_ms=1.0)
    assert await put_if_newer(kv, newer)
    older = TotalEntry("team", "t1", {"USD": "1"}, 1, 1, version=49, reset_at_ms=None, updated_ms=2.0)
    assert not await put_if_newer(kv, older)
    assert await entry(kv, TEAM_KEY) == newer

    writer = TotalsWriter(settings, js)
    writer.mark(await ingest(conn, 1, [usage_event("r1", 0.25)]))
    async with await psycopg.AsyncConnection.connect(settings.libpq_url, autocommit=True) as reader:
        await writer.flush(reader, kv)
    assert await entry(kv, TEAM_KEY) == newer
    assert writer.counters.stale == 1


async def test_a_failed_kv_write_is_retried_until_it_lands(
    js: JetStreamContext, settings: IngestSettings, kv: KeyValue, conn: Connection, db: Database
) -> None:
    """With the bucket gone the entries stay marked; once it is back the next flush writes them."""
    await js.delete_key_value(totals_bucket_name(settings))
    writer = TotalsWriter(settings, js)
    writer.mark(await ingest(conn, 1, [usage_event("r1", 0.25)]))
    async with await psycopg.AsyncConnection.connect(settings.libpq_url, autocommit=True) as reader:
        await writer.flush(reader, kv)
        assert writer.counters.failures == 3
        assert writer.dirty == 3

        kv = await totals_bucket(js, settings)
        await writer.flush(reader, kv)
    assert writer.dirty == 0
    assert (await entry(kv, TEAM_KEY)).spend == {"USD": "0.250000000000"}


async def test_a_restarted_writer_writes_recently_changed_totals(
    js: JetStreamContext, settings: IngestSettings, kv: KeyValue, conn: Connection, db: Database
) -> None:
    """Totals committed while no writer ran (a crash after the commit) reach the bucket once a
    writer starts."""
    await ingest(conn, 1, [usage_event("r1", 0.25)])
    writer = TotalsWriter(settings, js)
    task = asyncio.create_task(writer.run())
    try:

        async def written() -> TotalEntry:
            while True:
                with contextlib.suppress(KeyNotFoundError):
                    return await entry(kv, TEAM_KEY)
                await asyncio.sleep(0.02)

        found = await asyncio.wait_for(written(), WAIT_SECONDS)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert (found.spend, found.requests, found.version) == ({"USD": "0.250000000000"}, 1, 1)
    cursor = await db.execute("SELECT spend FROM spend_totals WHERE kind = 'team' AND entity = 't1'")
    assert await cursor.fetchone() == (Decimal("0.250000000000"),)
