"""The usage outbox seals events into batches that carry their own message id, keeps them in order
until published, and drops the oldest only when full."""

from __future__ import annotations

from typing import Any, cast

import orjson

from hydite_common.events import UsageEvent, decode_batch
from hydite_dataplane.usage.outbox import UsageOutbox


def _event(request_id: str) -> UsageEvent:
    event: dict[str, Any] = {
        "request_id": request_id, "call_type": "chat", "start_time_ms": 1.0, "end_time_ms": 2.0,
        "key_hash": "h", "model": "m", "status": "success", "prompt_tokens": 1, "completion_tokens": 1,
        "total_tokens": 2, "cost": 0.0,
    }  # fmt: skip
    return cast(UsageEvent, event)


async def test_a_sealed_batch_is_final_and_names_its_message_id() -> None:
    """What a batch will be published as (bytes and Nats-Msg-Id) is fixed when it is sealed."""
    sealed: list[int] = []
    outbox = UsageOutbox(node_id="node", flush_seconds=60, max_batch_events=2, max_batches=10)
    outbox.on_sealed = lambda: sealed.append(outbox.pending_batches)
    outbox.record(_event("a"))
    outbox.record(_event("b"))  # full: sealed at once
    outbox.record(_event("c"))
    outbox.seal()
    assert sealed == [1, 2]
    first = outbox.head()
    assert first is not None
    decoded = decode_batch(first.data)
    assert first.message_id == decoded.message_id == f"{outbox.publisher_id}:1"
    assert [e["request_id"] for e in decoded.events] == ["a", "b"]
    outbox.published(first)
    second = outbox.head()
    assert second is not None and second.seq == 2
    assert [e["request_id"] for e in orjson.loads(second.data)["events"]] == ["c"]


async def test_a_full_outbox_drops_the_oldest_batch() -> None:
    """Past max_batches the oldest sealed batch goes, and is counted."""
    outbox = UsageOutbox(node_id="node", flush_seconds=60, max_batch_events=1, max_batches=2)
    for request_id in "abc":
        outbox.record(_event(request_id))
    assert outbox.pending_batches == 2 and outbox.dropped_batches == 1
    head = outbox.head()
    assert head is not None and head.seq == 2
