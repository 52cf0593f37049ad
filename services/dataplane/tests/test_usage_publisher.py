"""The usage publisher against a real JetStream server: a batch the server refuses as too large is
split down to single events and a hopeless one set aside, so every other event is published in
order; a stream that is not there yet (a transient failure) is retried, in order."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig

from hydite_common.events import UsageEvent, decode_batch
from hydite_dataplane.usage.outbox import UsageOutbox
from hydite_dataplane.usage.publisher import UsagePublisher


@pytest.fixture
async def stream(nc: NatsClient) -> AsyncIterator[tuple[str, str]]:
    """A unique stream name and its subject; the stream is deleted afterwards."""
    name = f"HYDITE_TEST_PUB_{uuid.uuid4().hex[:10].upper()}"
    yield name, f"{name.lower()}.usage.batch"
    with contextlib.suppress(Exception):
        await nc.jetstream().delete_stream(name)


def _event(request_id: str, **fields: Any) -> UsageEvent:
    event: dict[str, Any] = {
        "request_id": request_id, "call_type": "chat", "start_time_ms": 1.0, "end_time_ms": 2.0,
        "key_hash": "h" * 64, "model": "m", "status": "success", "prompt_tokens": 1,
        "completion_tokens": 1, "total_tokens": 2, "cost": 0.0, "tags": [], **fields,
    }  # fmt: skip
    return cast(UsageEvent, event)


async def _published(nc: NatsClient, name: str) -> list[str]:
    """The request ids in the stream, in message order."""
    js = nc.jetstream()
    state = (await js.stream_info(name)).state
    ids: list[str] = []
    for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
        message = await js.get_msg(name, seq)
        ids += [e["request_id"] for e in decode_batch(message.data or b"").events]
    return ids


async def _until_empty(outbox: UsageOutbox, publisher: UsagePublisher) -> None:
    async def empty() -> None:
        while outbox.pending_batches:
            publisher.wake()
            await asyncio.sleep(0.01)

    await asyncio.wait_for(empty(), timeout=15)


@contextlib.asynccontextmanager
async def _running(publisher: UsagePublisher) -> AsyncIterator[None]:
    task = asyncio.create_task(publisher.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_batch_the_stream_refuses_is_split_and_a_hopeless_event_set_aside(
    nc: NatsClient, stream: tuple[str, str]
) -> None:
    """Over the stream's max_msg_size: batches are split to what fits, the one event too large even
    cut is set aside, and every other event is published, in order."""
    name, subject = stream
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[subject], max_msg_size=3000))
    outbox = UsageOutbox(node_id="node", flush_seconds=60, max_batch_events=50, max_batches=100)
    publisher = UsagePublisher(outbox, subject)
    outbox.on_sealed = publisher.wake
    wanted = [f"r{index}" for index in range(40)]
    for request_id in wanted[:20]:
        outbox.record(_event(request_id))
    outbox.record(_event("hopeless", tags=["t" * 128] * 32))
    for request_id in wanted[20:]:
        outbox.record(_event(request_id))
    outbox.seal()
    publisher.attach(js, nc.max_payload)
    async with _running(publisher):
        await _until_empty(outbox, publisher)
    assert await _published(nc, name) == wanted
    assert outbox.set_aside_events == 1 and outbox.split_batches >= 1


async def test_a_batch_over_the_servers_max_payload_is_split(nc: NatsClient, stream: tuple[str, str]) -> None:
    """A batch larger than the server's max payload (NATS raises MaxPayloadError) goes out in halves."""
    name, subject = stream
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[subject]))
    big = nc.max_payload * 4
    outbox = UsageOutbox(
        node_id="node", flush_seconds=60, max_batch_events=1000, max_batches=100, max_batch_bytes=big
    )
    publisher = UsagePublisher(outbox, subject)
    outbox.on_sealed = publisher.wake
    wanted = [f"r{index}" for index in range(400)]
    for request_id in wanted:
        outbox.record(_event(request_id, key_alias="a" * 4000))
    outbox.seal()
    assert outbox.pending_batches == 1
    head = outbox.head()
    assert head is not None and len(head.data) > nc.max_payload
    publisher.attach(js, big)  # as if the server took more: NATS itself refuses it
    async with _running(publisher):
        await _until_empty(outbox, publisher)
    assert await _published(nc, name) == wanted
    assert outbox.split_batches >= 1 and outbox.set_aside_events == 0


async def test_a_missing_stream_is_retried_in_order(nc: NatsClient, stream: tuple[str, str]) -> None:
    """No stream yet: batches wait at the head and go out, in order, once it exists."""
    name, subject = stream
    js = nc.jetstream()
    outbox = UsageOutbox(node_id="node", flush_seconds=60, max_batch_events=2, max_batches=100)
    publisher = UsagePublisher(outbox, subject)
    outbox.on_sealed = publisher.wake
    publisher.attach(js, nc.max_payload)
    wanted = [f"r{index}" for index in range(6)]
    async with _running(publisher):
        for request_id in wanted:
            outbox.record(_event(request_id))

        async def failed_twice() -> None:
            while publisher.failed_publishes < 2:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(failed_twice(), timeout=10)
        assert outbox.pending_batches == 3 and publisher.published_batches == 0
        await js.add_stream(StreamConfig(name=name, subjects=[subject]))
        await _until_empty(outbox, publisher)
    assert await _published(nc, name) == wanted
    assert outbox.split_batches == 0 and outbox.set_aside_events == 0
