"""Rollups, running totals, publisher watermarks, reconciliation counts and stored payloads move
exactly once per request, whatever is redelivered, re-published or consumed by two replicas; tallies
keep the largest count; a poison tally is dead-lettered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from psycopg.rows import TupleRow

from hydite_common.events import (
    UsageEvent,
    UsagePayload,
    batch_message_id,
    decode_batch,
    encode_batch,
    encode_tally,
)
from hydite_common.usage_stream import dead_letter_stream_name, usage_subject
from hydite_spend_ingest.consumer import IngestCounters, UsageConsumer
from hydite_spend_ingest.decode import rows_of
from hydite_spend_ingest.settings import IngestSettings
from hydite_spend_ingest.writer import WriteSet, copy_row, write

WAIT_SECONDS = 10.0
PUBLISHER = "node-a.0a1b2c3d"
START_MS = 1_700_000_000_000.0
"""2023-11-14 22:13:20 UTC."""
END_MINUTE = datetime(2023, 11, 14, 22, 13, tzinfo=UTC)
DAY = date(2023, 11, 14)

Connection = psycopg.AsyncConnection[object]
Database = psycopg.AsyncConnection[TupleRow]
Subscription = JetStreamContext.PullSubscription


def usage_event(request_id: str, **fields: Any) -> UsageEvent:
    """A complete usage event of a successful chat call of key ab.., user u1, team t1, org o1."""
    event: dict[str, Any] = {
        "request_id": request_id,
        "call_type": "chat_completion",
        "start_time_ms": START_MS,
        "end_time_ms": START_MS + 250,
        "key_hash": "ab" * 32,
        "key_alias": "alias",
        "user_id": "u1",
        "team_id": "t1",
        "organization_id": "o1",
        "customer_id": "",
        "tags": [],
        "model": "demo",
        "model_group": "g1",
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
        "cached_tokens": 1,
        "reasoning_tokens": 2,
        "total_tokens": 8,
        "cost": 0.25,
        "usage_estimated": False,
        "ttft_ms": 12.5,
        "attempts": 1,
    }
    event.update(fields)
    return event  # type: ignore[return-value]


def payload(request_id: str) -> UsagePayload:
    """A stored prompt and response."""
    return {
        "request_id": request_id,
        "key_hash": "ab" * 32,
        "team_id": "t1",
        "created_ms": START_MS,
        "messages": [{"role": "user", "content": "hi"}],
        "response": {"content": "hello"},
        "truncated": False,
    }


async def publish(
    js: JetStreamContext,
    settings: IngestSettings,
    seq: int,
    events: list[UsageEvent],
    *,
    publisher: str = PUBLISHER,
    payloads: list[UsagePayload] | None = None,
) -> None:
    """Publish a batch envelope as a data plane does, with its deduplication id."""
    await js.publish(
        usage_subject(settings),
        encode_batch(publisher, seq, events, payloads),
        headers={"Nats-Msg-Id": batch_message_id(publisher, seq)},
    )


def tally_subject(settings: IngestSettings) -> str:
    """Where data planes publish tallies."""
    return settings.nats_subject("usage", "tally")


async def fetch_exactly(subscription: Subscription, count: int) -> list[Msg]:
    """Exactly count messages, or TimeoutError after WAIT_SECONDS."""

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


async def rows(db: Database, query: str) -> list[tuple[Any, ...]]:
    """Every row a query returns."""
    cursor = await db.execute(query)
    return list(await cursor.fetchall())


async def totals(db: Database) -> dict[tuple[str, str, str], tuple[Decimal, int, int, int]]:
    """(kind, entity, currency) -> (spend, requests, total_tokens, version) of every running total."""
    found = await rows(
        db, "SELECT kind, entity, currency, spend, requests, total_tokens, version FROM spend_totals"
    )
    return {(k, e, c): (s, r, t, v) for k, e, c, s, r, t, v in found}


async def daily(db: Database) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """(day, kind, entity, model_group, provider, currency) -> the sums of every rollup row."""
    found = await rows(
        db,
        "SELECT day, kind, entity, model_group, provider, currency, requests, failures, prompt_tokens,"
        " completion_tokens, total_tokens, cached_tokens, reasoning_tokens, spend FROM spend_daily",
    )
    return {tuple(row[:6]): tuple(row[6:]) for row in found}


async def reconciliation(db: Database) -> dict[tuple[str, datetime], tuple[str, int, int]]:
    """(publisher, minute) -> (node, emitted, ingested)."""
    found = await rows(
        db, "SELECT publisher_id, minute, node_id, emitted, ingested FROM spend_reconciliation"
    )
    return {(p, m): (n, e, i) for p, m, n, e, i in found}


async def publishers(db: Database) -> dict[str, tuple[str, int, int, list[int]]]:
    """publisher -> (node, watermark, max_seq, pending)."""
    found = await rows(db, "SELECT publisher_id, node_id, watermark, max_seq, pending FROM spend_publishers")
    return {p: (n, w, m, list(pending)) for p, n, w, m, pending in found}


async def test_rollups_and_totals_move_once_per_inserted_row(
    js: JetStreamContext, settings: IngestSettings, consumer: UsageConsumer, subscription: Subscription,
    conn: Connection, db: Database,
) -> None:  # fmt: skip
    """A batch adds to the daily rollups of each entity kind (team members only to their totals)
    and to the running totals; the same
    requests published again (another sequence, past deduplication) change neither."""
    first = [
        usage_event("req-1", tags=["a", "b", "a"], customer_id="c1"),
        usage_event("req-2", status="failure", model_group="g2", user_id="", cost=0.5, total_tokens=10),
    ]
    await publish(js, settings, 1, first)
    await consumer.ingest(conn, await fetch_exactly(subscription, 1))

    usd = "USD"
    key = "ab" * 32
    rollups = await daily(db)
    one = (1, 0, 3, 5, 8, 1, 2, Decimal("0.25"))
    assert rollups == {
        (DAY, "key", key, "g1", "mock", usd): one,
        (DAY, "key", key, "g2", "mock", usd): (1, 1, 3, 5, 10, 1, 2, Decimal("0.5")),
        (DAY, "user", "u1", "g1", "mock", usd): one,
        (DAY, "team", "t1", "g1", "mock", usd): one,
        (DAY, "team", "t1", "g2", "mock", usd): (1, 1, 3, 5, 10, 1, 2, Decimal("0.5")),
        (DAY, "organization", "o1", "g1", "mock", usd): one,
        (DAY, "organization", "o1", "g2", "mock", usd): (1, 1, 3, 5, 10, 1, 2, Decimal("0.5")),
        (DAY, "customer", "c1", "g1", "mock", usd): one,
        (DAY, "model", "g1", "g1", "mock", usd): one,
        (DAY, "model", "g2", "g2", "mock", usd): (1, 1, 3, 5, 10, 1, 2, Decimal("0.5")),
        (DAY, "tag", "a", "g1", "mock", usd): one,
        (DAY, "tag", "b", "g1", "mock", usd): one,
    }
    running = await totals(db)
    assert running == {
        ("key", key, usd): (Decimal("0.75"), 2, 18, 1),
        ("user", "u1", usd): (Decimal("0.25"), 1, 8, 1),
        ("team", "t1", usd): (Decimal("0.75"), 2, 18, 1),
        ("team_member", "t1:u1", usd): (Decimal("0.25"), 1, 8, 1),
        ("organization", "o1", usd): (Decimal("0.75"), 2, 18, 1),
        ("customer", "c1", usd): (Decimal("0.25"), 1, 8, 1),
        ("tag", "a", usd): (Decimal("0.25"), 1, 8, 1),
        ("tag", "b", usd): (Decimal("0.25"), 1, 8, 1),
        ("global", "", usd): (Decimal("0.75"), 2, 18, 1),
    }
    assert await reconciliation(db) == {(PUBLISHER, END_MINUTE): ("node-a", 0, 2)}

    await publish(js, settings, 2, first)
    await consumer.ingest(conn, await fetch_exactly(subscription, 1))

    assert await daily(db) == rollups
    assert await totals(db) == running
    assert await reconciliation(db) == {(PUBLISHER, END_MINUTE): ("node-a", 0, 2)}
    assert (await publishers(db))[PUBLISHER] == ("node-a", 2, 2, [])
    assert consumer.counters == IngestCounters(batches=2, events_written=2, duplicates=2)


async def test_redelivery_after_a_crash_between_commit_and_ack_leaves_the_totals(
    js: JetStreamContext, settings: IngestSettings, consumer: UsageConsumer, subscription: Subscription,
    conn: Connection, db: Database,
) -> None:  # fmt: skip
    """A batch committed but never acked comes back after the ack wait and is ingested again:
    rows, rollups, totals, reconciliation and the watermark are what the first commit left."""
    await publish(js, settings, 1, [usage_event("req-1"), usage_event("req-2")])
    [first] = await fetch_exactly(subscription, 1)
    batch = decode_batch(first.data)
    written, _ = rows_of(batch)
    committed = WriteSet(rows=[copy_row(row) for _, row in written], seqs=[(batch.node_id, batch.seq)])
    assert (await write(conn, committed)).inserted == 2
    after_commit = (await daily(db), await totals(db), await reconciliation(db), await publishers(db))

    [again] = await fetch_exactly(subscription, 1)
    assert again.metadata.num_delivered == 2
    await consumer.ingest(conn, [again])

    assert (await daily(db), await totals(db), await reconciliation(db), await publishers(db)) == after_commit
    assert after_commit[1][("global", "", "USD")] == (Decimal("0.5"), 2, 16, 1)
    assert consumer.counters == IngestCounters(batches=1, duplicates=2)


async def test_two_consumers_on_one_durable_count_every_request_once(
    js: JetStreamContext, settings: IngestSettings, db: Database
) -> None:
    """Two replicas pulling from the same durable consumer, with redeliveries on the way: every
    request is counted once in the totals, rollups and reconciliation."""
    replicas = [UsageConsumer(settings, js), UsageConsumer(settings, js)]
    tasks = [asyncio.create_task(replica.run()) for replica in replicas]
    try:
        for seq in range(1, 21):
            for publisher in (PUBLISHER, "node-b.00000001"):
                events = [usage_event(f"{publisher}-{seq}-{i}") for i in range(5)]
                await publish(js, settings, seq, events, publisher=publisher)
                # The same requests again under another sequence, as a re-sent batch would be.
                await publish(js, settings, 100 + seq, events[:2], publisher=publisher)
        await until(lambda: sum(r.counters.events_written for r in replicas) >= 200)
        await until(lambda: sum(r.counters.batches for r in replicas) == 80)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert sum(r.counters.events_written for r in replicas) == 200
    assert sum(r.counters.duplicates for r in replicas) == 80
    running = await totals(db)
    assert running[("global", "", "USD")][:3] == (Decimal("50"), 200, 1600)
    assert running[("team", "t1", "USD")][:3] == (Decimal("50"), 200, 1600)
    assert (await daily(db))[(DAY, "model", "g1", "g1", "mock", "USD")][0] == 200
    assert {key: value[2] for key, value in (await reconciliation(db)).items()} == {
        (PUBLISHER, END_MINUTE): 100,
        ("node-b.00000001", END_MINUTE): 100,
    }
    watermarks = {p: (w, m, len(pending)) for p, (_, w, m, pending) in (await publishers(db)).items()}
    assert watermarks == {PUBLISHER: (20, 120, 20), "node-b.00000001": (20, 120, 20)}


async def test_void_and_payload_only_envelopes_advance_the_watermark(
    js: JetStreamContext, settings: IngestSettings, consumer: UsageConsumer, subscription: Subscription,
    conn: Connection, db: Database,
) -> None:  # fmt: skip
    """An empty envelope (a sequence the data plane skipped) and one carrying only payloads count
    as ingested; the payload is stored once."""
    await publish(js, settings, 1, [usage_event("req-1")])
    await publish(js, settings, 2, [])
    await publish(js, settings, 3, [], payloads=[payload("req-1")])
    await consumer.ingest(conn, await fetch_exactly(subscription, 3))
    await publish(js, settings, 4, [], payloads=[{**payload("req-1"), "response": {"content": "other"}}])
    await consumer.ingest(conn, await fetch_exactly(subscription, 1))

    assert await publishers(db) == {PUBLISHER: ("node-a", 4, 4, [])}
    stored = await rows(
        db,
        "SELECT request_id, api_key, team_id, messages, response, truncated, created_at FROM spend_payloads",
    )
    assert stored == [
        (
            "req-1", "ab" * 32, "t1", [{"role": "user", "content": "hi"}], {"content": "hello"}, False,
            datetime.fromtimestamp(START_MS / 1000, UTC),
        )
    ]  # fmt: skip
    assert consumer.counters == IngestCounters(batches=4, events_written=1)


async def test_out_of_order_sequences_hold_the_watermark_at_the_gap(
    js: JetStreamContext, settings: IngestSettings, consumer: UsageConsumer, subscription: Subscription,
    conn: Connection, db: Database,
) -> None:  # fmt: skip
    """Sequences 1, 3, 5 leave the watermark at 1 with 3 and 5 pending; 2 moves it to 3, and 4 to 5."""
    for seq in (1, 3, 5):
        await publish(js, settings, seq, [usage_event(f"req-{seq}")])
    await consumer.ingest(conn, await fetch_exactly(subscription, 3))
    assert await publishers(db) == {PUBLISHER: ("node-a", 1, 5, [3, 5])}

    await publish(js, settings, 2, [usage_event("req-2")])
    await consumer.ingest(conn, await fetch_exactly(subscription, 1))
    assert await publishers(db) == {PUBLISHER: ("node-a", 3, 5, [5])}

    await publish(js, settings, 4, [])
    await consumer.ingest(conn, await fetch_exactly(subscription, 1))
    assert await publishers(db) == {PUBLISHER: ("node-a", 5, 5, [])}


async def test_tallies_keep_the_largest_count_per_minute(
    js: JetStreamContext, settings: IngestSettings, consumer: UsageConsumer, subscription: Subscription,
    conn: Connection, db: Database,
) -> None:  # fmt: skip
    """A tally sets emitted to the larger of what is stored and what it says, beside the ingested
    count of the same minute; a later, smaller tally (an older one redelivered) lowers nothing."""
    minute = int(END_MINUTE.timestamp())
    following = datetime.fromtimestamp(minute + 60, UTC)
    await publish(js, settings, 1, [usage_event("req-1"), usage_event("req-2")])
    await js.publish(tally_subject(settings), encode_tally("node-a", PUBLISHER, {minute: 3, minute + 60: 1}))
    await consumer.ingest(conn, await fetch_exactly(subscription, 2))
    assert await reconciliation(db) == {
        (PUBLISHER, END_MINUTE): ("node-a", 3, 2),
        (PUBLISHER, following): ("node-a", 1, 0),
    }

    await js.publish(tally_subject(settings), encode_tally("node-a", PUBLISHER, {minute: 2, minute + 60: 4}))
    await js.publish(tally_subject(settings), encode_tally("node-a", PUBLISHER, {minute + 60: 5}))
    await consumer.ingest(conn, await fetch_exactly(subscription, 2))
    assert await reconciliation(db) == {
        (PUBLISHER, END_MINUTE): ("node-a", 3, 2),
        (PUBLISHER, following): ("node-a", 5, 0),
    }
    assert consumer.counters == IngestCounters(batches=1, events_written=2, tallies=3)


async def test_a_poison_tally_is_dead_lettered_and_does_not_block(
    js: JetStreamContext, settings: IngestSettings, consumer: UsageConsumer, subscription: Subscription,
    conn: Connection, db: Database,
) -> None:  # fmt: skip
    """Malformed tallies (not JSON, a minute that is no epoch second, a negative count) are
    dead-lettered and termed; the batch and the good tally fetched with them are written."""
    minute = int(END_MINUTE.timestamp())
    bad = [
        b"{nope",
        orjson.dumps(
            {"schema_version": 2, "kind": "tally", "node_id": "n", "publisher_id": "p", "minutes": {"x": 1}}
        ),
        encode_tally("node-a", PUBLISHER, {minute: -1}),
    ]
    for data in bad:
        await js.publish(tally_subject(settings), data)
    await js.publish(tally_subject(settings), encode_tally("node-a", PUBLISHER, {minute: 7}))
    await publish(js, settings, 1, [usage_event("req-1")])
    await consumer.ingest(conn, await fetch_exactly(subscription, 5))

    stream = dead_letter_stream_name(settings)
    letters = [(await js.get_msg(stream, seq)).data for seq in range(1, 4)]
    assert letters == bad
    assert await reconciliation(db) == {(PUBLISHER, END_MINUTE): ("node-a", 7, 1)}
    assert consumer.counters == IngestCounters(batches=1, events_written=1, poison=3, tallies=1)


async def test_one_transaction_gathers_small_pulls_up_to_its_bounds(
    js: JetStreamContext, settings: IngestSettings, subscription: Subscription
) -> None:
    """The consumer pulls a few messages at a time and gathers them for one transaction until it
    holds fetch_batch_messages, or fetch_max_bytes, or the stream has no more."""
    for seq in range(1, 26):
        await publish(js, settings, seq, [usage_event(f"req-{seq}")])
    bounded = settings.model_copy(update={"fetch_chunk_messages": 4, "fetch_batch_messages": 10})
    consumer = UsageConsumer(bounded, js)
    assert len(await consumer.fetch(subscription)) == 10
    size = len(encode_batch(PUBLISHER, 11, [usage_event("req-11")]))
    by_bytes = UsageConsumer(bounded.model_copy(update={"fetch_max_bytes": 5 * size}), js)
    assert len(await by_bytes.fetch(subscription)) == 8  # two pulls of 4 pass 5 messages' bytes
    assert len(await consumer.fetch(subscription)) == 7  # what is left


async def test_a_connection_whose_first_write_has_no_events(
    js: JetStreamContext, settings: IngestSettings, consumer: UsageConsumer, subscription: Subscription,
    conn: Connection, db: Database,
) -> None:  # fmt: skip
    """A void envelope and a tally as the very first write of a fresh connection are stored, not
    dead-lettered."""
    await publish(js, settings, 1, [])
    await js.publish(
        tally_subject(settings), encode_tally("node-a", PUBLISHER, {int(END_MINUTE.timestamp()): 2})
    )
    await consumer.ingest(conn, await fetch_exactly(subscription, 2))

    assert await publishers(db) == {PUBLISHER: ("node-a", 1, 1, [])}
    assert await reconciliation(db) == {(PUBLISHER, END_MINUTE): ("node-a", 2, 0)}
    assert consumer.counters == IngestCounters(batches=1, tallies=1)
