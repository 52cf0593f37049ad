"""UsageConsumer.stop against real JetStream and Postgres: the batch being written when the stop
comes is committed and acked before the consumer ends; a stop that runs out of time leaves it
uncommitted and unacked, and it is written once on redelivery. Never half a batch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import psycopg
from nats.js import JetStreamContext
from psycopg.rows import TupleRow

from hydite_common.events import UsageEvent, batch_message_id, encode_batch
from hydite_common.usage_stream import usage_stream_name, usage_subject
from hydite_spend_ingest.consumer import UsageConsumer
from hydite_spend_ingest.settings import IngestSettings

WAIT_SECONDS = 10.0


def _event(request_id: str) -> UsageEvent:
    return {  # type: ignore[typeddict-item]
        "request_id": request_id, "call_type": "chat_completion", "start_time_ms": 1_700_000_000_000.0,
        "end_time_ms": 1_700_000_000_100.0, "key_hash": "ef" * 32, "model": "m", "status": "success",
        "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "cost": 0.25,
    }  # fmt: skip


async def _until(condition: Callable[[], Awaitable[bool]]) -> None:
    async def poll() -> None:
        while not await condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), WAIT_SECONDS)


async def _rows(db: psycopg.AsyncConnection[TupleRow]) -> list[str]:
    cursor = await db.execute("SELECT request_id FROM spend_logs ORDER BY request_id")
    return [str(row[0]) for row in await cursor.fetchall()]


async def _write_blocked(db: psycopg.AsyncConnection[TupleRow]) -> bool:
    """Whether a session waits for a lock on spend_logs (the consumer's insert, behind ours)."""
    cursor = await db.execute(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'spend_logs'::regclass"
    )
    row = await cursor.fetchone()
    return bool(row and row[0])


async def _settled(js: JetStreamContext, settings: IngestSettings, consumer: UsageConsumer) -> bool:
    info = await js.consumer_info(usage_stream_name(settings), consumer.durable_name())
    return not info.num_pending and not info.num_ack_pending


async def _publish(js: JetStreamContext, settings: IngestSettings, request_id: str) -> None:
    await js.publish(
        usage_subject(settings),
        encode_batch("node-stop", 1, [_event(request_id)]),
        headers={"Nats-Msg-Id": batch_message_id("node-stop", 1)},
    )


async def test_a_stop_waits_for_the_batch_being_written_and_acks_it(
    js: JetStreamContext,
    settings: IngestSettings,
    consumer: UsageConsumer,
    db: psycopg.AsyncConnection[TupleRow],
) -> None:
    """Stopped while its insert waits behind a lock, the consumer commits and acks the batch once
    the lock goes, then ends on its own."""
    await _publish(js, settings, "req-stop-finished")
    async with await psycopg.AsyncConnection.connect(settings.libpq_url) as locker:
        await locker.execute("LOCK TABLE spend_logs IN ACCESS EXCLUSIVE MODE")
        running = asyncio.create_task(consumer.run())
        await _until(lambda: _write_blocked(db))
        stopping = asyncio.create_task(consumer.stop(WAIT_SECONDS))
        await locker.rollback()
    await asyncio.wait_for(stopping, WAIT_SECONDS)
    await asyncio.wait_for(running, WAIT_SECONDS)
    assert await _rows(db) == ["req-stop-finished"]
    await _until(lambda: _settled(js, settings, consumer))


async def test_a_stop_out_of_time_leaves_the_batch_unacked_and_it_is_written_once(
    js: JetStreamContext,
    settings: IngestSettings,
    consumer: UsageConsumer,
    db: psycopg.AsyncConnection[TupleRow],
) -> None:
    """A stop whose bound passes while the insert still waits is followed by the cancel: nothing is
    committed, and a new consumer gets the batch again and writes it once."""
    await _publish(js, settings, "req-stop-cut")
    async with await psycopg.AsyncConnection.connect(settings.libpq_url) as locker:
        await locker.execute("LOCK TABLE spend_logs IN ACCESS EXCLUSIVE MODE")
        running = asyncio.create_task(consumer.run())
        await _until(lambda: _write_blocked(db))
        await consumer.stop(0.2)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await locker.rollback()
    assert await _rows(db) == []
    again = UsageConsumer(settings, js)
    rerun = asyncio.create_task(again.run())
    try:
        await _until(lambda: _settled(js, settings, again))
    finally:
        await again.stop(WAIT_SECONDS)
        rerun.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rerun
    assert await _rows(db) == ["req-stop-cut"]
