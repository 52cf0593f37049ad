"""UsageConsumer across a rolling upgrade, against real JetStream and Postgres: a batch of a newer
schema version is offered back to the stream (never dead-lettered, never lost) until an upgraded
replica takes it, and batches of older versions or with unknown fields are written."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import psycopg
import pytest
from nats.js import JetStreamContext
from psycopg.rows import TupleRow

from hydite_common.events import DECODABLE_SCHEMA_VERSIONS
from hydite_common.usage_stream import dead_letter_stream_name, usage_subject
from hydite_spend_ingest.consumer import UsageConsumer
from hydite_spend_ingest.settings import IngestSettings

NEXT_VERSION = max(DECODABLE_SCHEMA_VERSIONS) + 1
RETRY_SECONDS = 0.2


@pytest.fixture
def settings(settings: IngestSettings) -> IngestSettings:
    """The test's settings, with a newer-version message offered back after RETRY_SECONDS."""
    return settings.model_copy(update={"newer_schema_retry_seconds": RETRY_SECONDS})


def _envelope(version: int, request_id: str, **extra: Any) -> bytes:
    event = {
        "request_id": request_id, "call_type": "chat_completion", "start_time_ms": 1_700_000_000_000.0,
        "end_time_ms": 1_700_000_000_100.0, "key_hash": "ab" * 32, "model": "m", "status": "success",
        "prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "cost": 0.5, **extra,
    }  # fmt: skip
    return orjson.dumps(
        {"schema_version": version, "node_id": "node-u", "seq": 1, "events": [event], **extra}
    )


async def _dead_letter_count(js: JetStreamContext, settings: IngestSettings) -> int:
    return int((await js.stream_info(dead_letter_stream_name(settings))).state.messages)


async def _rows(db: psycopg.AsyncConnection[TupleRow]) -> list[str]:
    cursor = await db.execute("SELECT request_id FROM spend_logs ORDER BY request_id")
    return [str(row[0]) for row in await cursor.fetchall()]


async def test_a_newer_batch_waits_in_the_stream_and_others_are_written(
    js: JetStreamContext,
    settings: IngestSettings,
    consumer: UsageConsumer,
    subscription: JetStreamContext.PullSubscription,
    conn: psycopg.AsyncConnection[object],
    db: psycopg.AsyncConnection[TupleRow],
) -> None:
    """Of a version-1 batch, a current one with fields this build does not know, and a newer one,
    the first two are written and acked; the newer one is counted, not dead-lettered, and offered
    again after the retry delay (the same message, delivered a second time)."""
    newer = _envelope(NEXT_VERSION, "req-newer")
    for data in (_envelope(1, "req-v1"), _envelope(2, "req-extra", carbon_grams=2.5), newer):
        await js.publish(usage_subject(settings), data)
    messages = await asyncio.wait_for(_fetch(subscription, 3), 5)
    await consumer.ingest(conn, messages)

    assert await _rows(db) == ["req-extra", "req-v1"]
    assert consumer.counters.newer_schema == 1 and consumer.counters.poison == 0
    assert await _dead_letter_count(js, settings) == 0
    again = await subscription.fetch(1, timeout=5)
    assert again[0].data == newer and again[0].metadata.num_delivered == 2
    await consumer.ingest(conn, again)
    assert consumer.counters.newer_schema == 2 and await _rows(db) == ["req-extra", "req-v1"]


async def _fetch(subscription: JetStreamContext.PullSubscription, count: int) -> list[Any]:
    messages: list[Any] = []
    while len(messages) < count:
        messages += await subscription.fetch(count - len(messages), timeout=5)
    return messages
