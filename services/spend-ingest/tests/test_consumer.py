"""UsageConsumer against real JetStream and Postgres: ack after the commit, nak on a database
outage, dead-letter what can never be written (a whole message only when its envelope is
unusable, else the one event), and no row written twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import orjson
import psycopg
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from psycopg.rows import TupleRow

from hydite_common.events import UsageEvent, batch_message_id, decode_batch, encode_batch
from hydite_common.usage_stream import dead_letter_stream_name, usage_stream_name, usage_subject
from hydite_spend_ingest.consumer import IngestCounters, UsageConsumer
from hydite_spend_ingest.decode import spend_log_rows
from hydite_spend_ingest.settings import IngestSettings
from hydite_spend_ingest.writer import write_rows

WAIT_SECONDS = 5.0
POISON_REASON = "Hydite-Poison-Reason"

Connection = psycopg.AsyncConnection[object]
Database = psycopg.AsyncConnection[TupleRow]
Subscription = JetStreamContext.PullSubscription


def usage_event(request_id: str, key_alias: str = "alias") -> UsageEvent:
    """A complete usage event of a successful chat call."""
    return {
        "request_id": request_id,
        "call_type": "chat_completion",
        "start_time_ms": 1_700_000_000_000.0,
        "end_time_ms": 1_700_000_000_250.0,
        "key_hash": "ab" * 32,
        "key_alias": key_alias,
        "user_id": "user-1",
        "team_id": "team-1",
        "organization_id": "org-1",
        "customer_id": "",
        "tags": ["t"],
        "model": "demo",
        "model_group": "demo",
        "deployment_id": "demo-mock",
        "provider": "mock",
        "upstream_model": "demo",
        "api_base": "",
        "stream": False,
        "status": "success",
        "http_status": 200,
        "error_code": "",
        "prompt_tokens": 3,
        "completion_tokens": 5,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "total_tokens": 8,
        "cost": 0.000125,
        "usage_estimated": False,
        "ttft_ms": 12.5,
        "attempts": 1,
    }


async def publish_batch(
    js: JetStreamContext, settings: IngestSettings, seq: int, events: list[UsageEvent]
) -> None:
    """Publish a batch envelope as a data plane does, with its deduplication id."""
    node_id = "node-a"
    await js.publish(
        usage_subject(settings),
        encode_batch(node_id, seq, events),
        headers={"Nats-Msg-Id": batch_message_id(node_id, seq)},
    )


async def fetch_exactly(subscription: Subscription, count: int) -> list[Msg]:
    """Exactly count messages (one fetch may bring fewer), or TimeoutError after WAIT_SECONDS."""

    async def collect() -> list[Msg]:
        messages: list[Msg] = []
        while len(messages) < count:
            messages += await subscription.fetch(count - len(messages), timeout=WAIT_SECONDS)
        return messages

    return await asyncio.wait_for(collect(), WAIT_SECONDS)


async def until(condition: Callable[[], bool]) -> None:
    """Return once condition() holds; TimeoutError after WAIT_SECONDS."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), WAIT_SECONDS)


async def wait_settled(js: JetStreamContext, settings: IngestSettings, consumer: UsageConsumer) -> None:
    """Return once the server holds no message of the consumer unacknowledged (acks are async)."""

    async def pending() -> int:
        info = await js.consumer_info(usage_stream_name(settings), consumer.durable_name())
        return int(info.num_ack_pending or 0) + int(info.num_pending or 0)

    async def poll() -> None:
        while await pending():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), WAIT_SECONDS)


async def assert_nothing_redelivered(subscription: Subscription, settings: IngestSettings) -> None:
    """No message comes back within one and a half ack waits (an unsettled one would be redelivered)."""
    with pytest.raises(TimeoutError):
        await subscription.fetch(1, timeout=1.5 * settings.consumer_ack_wait_seconds)


async def spend_counts(db: Database) -> dict[str, int]:
    """How many spend_logs rows each request_id has."""
    cursor = await db.execute("SELECT request_id, count(*) FROM spend_logs GROUP BY request_id")
    return {str(request_id): int(count) for request_id, count in await cursor.fetchall()}


async def dead_letters(js: JetStreamContext, settings: IngestSettings) -> list[tuple[bytes, str]]:
    """Payload and poison reason of every message on the dead-letter stream, in order."""
    stream = dead_letter_stream_name(settings)
    info = await js.stream_info(stream)
    letters: list[tuple[bytes, str]] = []
    for seq in range(1, info.state.messages + 1):
        msg = await js.get_msg(stream, seq)
        letters.append((msg.data or b"", (msg.headers or {}).get(POISON_REASON, "")))
    return letters


async def test_undecodable_messages_are_dead_lettered_and_do_not_block_the_stream(
    js: JetStreamContext,
    settings: IngestSettings,
    consumer: UsageConsumer,
    subscription: Subscription,
    conn: Connection,
    db: Database,
) -> None:
    """Non-JSON and wrong-schema messages are dead-lettered with their reason and never come back,
    and a good batch published after them is written."""
    not_json = b"{not json"
    wrong_version = orjson.dumps({"schema_version": 0, "node_id": "node-a", "seq": 1, "events": []})
    await js.publish(usage_subject(settings), not_json)
    await js.publish(usage_subject(settings), wrong_version)
    await consumer.ingest(conn, await fetch_exactly(subscription, 2))

    await publish_batch(js, settings, 1, [usage_event("req-good")])
    good = await fetch_exactly(subscription, 1)
    assert good[0].data == encode_batch("node-a", 1, [usage_event("req-good")])
    await consumer.ingest(conn, good)

    assert await dead_letters(js, settings) == [
        (not_json, "not JSON"),
        (wrong_version, "unsupported schema_version 0"),
    ]
    assert await spend_counts(db) == {"req-good": 1}
    assert consumer.counters == IngestCounters(batches=1, events_written=1, poison=2)
    await assert_nothing_redelivered(subscription, settings)


async def test_unstorable_batch_is_dead_lettered_alone(
    js: JetStreamContext,
    settings: IngestSettings,
    consumer: UsageConsumer,
    subscription: Subscription,
    conn: Connection,
    db: Database,
) -> None:
    """A batch Postgres refuses (a NUL in a string) is dead-lettered on its own, and the good
    batches fetched with it are written and acked."""
    await publish_batch(js, settings, 1, [usage_event("req-1"), usage_event("req-2")])
    await publish_batch(js, settings, 2, [usage_event("req-bad", key_alias="nul\x00alias")])
    await publish_batch(js, settings, 3, [usage_event("req-3")])
    messages = await fetch_exactly(subscription, 3)
    await consumer.ingest(conn, messages)

    assert await spend_counts(db) == {"req-1": 1, "req-2": 1, "req-3": 1}
    [(data, reason)] = await dead_letters(js, settings)
    assert data == messages[1].data
    assert reason.startswith("unstorable: ")
    assert consumer.counters == IngestCounters(batches=2, events_written=3, poison=1, write_errors=1)
    await wait_settled(js, settings, consumer)


async def test_database_outage_naks_and_the_redelivery_is_written_once(
    js: JetStreamContext,
    settings: IngestSettings,
    consumer: UsageConsumer,
    subscription: Subscription,
    conn: Connection,
    db: Database,
) -> None:
    """A broken database connection naks the fetched batches, which come back and are written
    exactly once."""
    await publish_batch(js, settings, 1, [usage_event("req-1"), usage_event("req-2")])
    await publish_batch(js, settings, 2, [usage_event("req-3")])
    messages = await fetch_exactly(subscription, 2)
    cursor = await db.execute("SELECT pg_terminate_backend(%s, 5000)", (conn.info.backend_pid,))
    assert await cursor.fetchone() == (True,)

    with pytest.raises(psycopg.OperationalError):
        await consumer.ingest(conn, messages)
    assert consumer.counters == IngestCounters(write_errors=1)
    assert await spend_counts(db) == {}

    redelivered = await fetch_exactly(subscription, 2)
    assert sorted(m.data for m in redelivered) == sorted(m.data for m in messages)
    assert [m.metadata.num_delivered for m in redelivered] == [2, 2]
    async with await psycopg.AsyncConnection.connect(settings.libpq_url) as reconnected:
        await consumer.ingest(reconnected, redelivered)

    assert await spend_counts(db) == {"req-1": 1, "req-2": 1, "req-3": 1}
    assert consumer.counters == IngestCounters(batches=2, events_written=3, write_errors=1)
    await wait_settled(js, settings, consumer)


async def test_redelivered_written_batch_inserts_nothing_twice(
    js: JetStreamContext,
    settings: IngestSettings,
    consumer: UsageConsumer,
    subscription: Subscription,
    conn: Connection,
    db: Database,
) -> None:
    """A batch committed but never acked (a crash before the ack) is redelivered, counted as
    duplicates and inserts nothing twice."""
    await publish_batch(js, settings, 1, [usage_event("req-1"), usage_event("req-2")])
    [first] = await fetch_exactly(subscription, 1)
    assert await write_rows(conn, spend_log_rows([decode_batch(first.data)])) == 2

    [again] = await fetch_exactly(subscription, 1)
    assert again.data == first.data
    assert again.metadata.num_delivered == 2
    await consumer.ingest(conn, [again])

    assert await spend_counts(db) == {"req-1": 1, "req-2": 1}
    assert consumer.counters == IngestCounters(batches=1, events_written=0, duplicates=2)
    await wait_settled(js, settings, consumer)


async def test_run_loop_reconnects_after_a_database_outage(
    js: JetStreamContext, settings: IngestSettings, consumer: UsageConsumer, db: Database
) -> None:
    """The run loop survives its database connection being killed: it reconnects and writes the
    batch it had to nak exactly once."""
    task = asyncio.create_task(consumer.run())
    try:
        await publish_batch(js, settings, 1, [usage_event("req-1")])
        await until(lambda: consumer.counters.events_written == 1)
        await db.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        await publish_batch(js, settings, 2, [usage_event("req-2")])
        await until(lambda: consumer.counters.events_written == 2)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    assert await spend_counts(db) == {"req-1": 1, "req-2": 1}
    assert consumer.counters == IngestCounters(batches=2, events_written=2, write_errors=1)
    assert consumer.db_ok
    await wait_settled(js, settings, consumer)


async def dead_letter_sources(js: JetStreamContext, settings: IngestSettings) -> list[str]:
    """The Hydite-Source-Msg-Id header of every dead letter, in order."""
    stream = dead_letter_stream_name(settings)
    info = await js.stream_info(stream)
    sources = []
    for seq in range(1, info.state.messages + 1):
        msg = await js.get_msg(stream, seq)
        sources.append((msg.headers or {}).get("Hydite-Source-Msg-Id", ""))
    return sources


async def test_a_poison_event_inside_a_good_batch_is_set_aside_and_its_neighbours_billed(
    js: JetStreamContext,
    settings: IngestSettings,
    consumer: UsageConsumer,
    subscription: Subscription,
    conn: Connection,
    db: Database,
) -> None:
    """Events that can never be billed (a missing field, a NUL Postgres refuses, a time no row can
    hold) go to the dead-letter stream one by one; every good event of their batches is billed and
    the messages are acked, not redelivered."""
    missing_cost = {k: v for k, v in usage_event("req-no-cost").items() if k != "cost"}
    far_future = {**usage_event("req-far-future"), "start_time_ms": 1e20}
    first: list[object] = [usage_event("req-1"), missing_cost, usage_event("req-2"), far_future]
    await js.publish(
        usage_subject(settings),
        orjson.dumps({"schema_version": 1, "node_id": "node-a", "seq": 1, "events": first}),
        headers={"Nats-Msg-Id": batch_message_id("node-a", 1)},
    )
    await publish_batch(
        js,
        settings,
        2,
        [usage_event("req-3"), usage_event("req-nul", key_alias="a\x00b"), usage_event("req-4")],
    )
    await consumer.ingest(conn, await fetch_exactly(subscription, 2))

    assert await spend_counts(db) == {"req-1": 1, "req-2": 1, "req-3": 1, "req-4": 1}
    letters = await dead_letters(js, settings)
    assert [orjson.loads(data)["events"][0]["request_id"] for data, _ in letters] == [
        "req-no-cost",
        "req-far-future",
        "req-nul",
    ]
    assert [reason.split(":")[0] for _, reason in letters] == ["event 1", "unusable", "unstorable"]
    assert await dead_letter_sources(js, settings) == ["node-a:1", "node-a:1", "node-a:2"]
    assert consumer.counters == IngestCounters(batches=2, events_written=4, poison=3, write_errors=1)
    await wait_settled(js, settings, consumer)
    await assert_nothing_redelivered(subscription, settings)
