"""The usage outbox seals events into batches that carry their own message id, keeps them in order
until published, and drops the oldest only when full."""

from __future__ import annotations

from typing import Any, cast

import orjson

from hydite_common.events import UsageEvent, decode_batch
from hydite_dataplane.usage.outbox import SealedBatch, UsageOutbox


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


def _events_of(outbox: UsageOutbox) -> list[list[str]]:
    """The request ids of every pending batch, head first, publishing each."""
    seen: list[list[str]] = []
    while (batch := outbox.head()) is not None:
        decoded = decode_batch(batch.data)
        assert decoded.message_id == batch.message_id and len(batch.data) <= outbox.max_batch_bytes
        seen.append([e["request_id"] for e in decoded.events])
        outbox.published(batch)
    return seen


async def test_a_batch_is_sealed_by_bytes_as_well_as_by_count() -> None:
    """Events whose batch would exceed max_batch_bytes are sealed as several batches, in order."""
    outbox = UsageOutbox(
        node_id="node", flush_seconds=60, max_batch_events=100, max_batches=100, max_batch_bytes=4096
    )
    for index in range(40):
        outbox.record(_event(f"r{index}"))
    outbox.seal()
    batches = _events_of(outbox)
    assert len(batches) > 1 and outbox.split_batches >= 1
    assert [r for batch in batches for r in batch] == [f"r{index}" for index in range(40)]


async def test_an_event_too_large_alone_is_cut_and_one_too_large_even_cut_set_aside() -> None:
    """A huge key alias is cut to fit; an event that cannot fit at all is set aside, not kept at the head."""
    outbox = UsageOutbox(
        node_id="node", flush_seconds=60, max_batch_events=100, max_batches=100, max_batch_bytes=2048
    )
    outbox.record(cast(UsageEvent, {**_event("huge"), "key_alias": "A" * 100_000}))
    outbox.record(_event("after"))
    outbox.seal()
    head = outbox.head()
    assert head is not None
    assert decode_batch(head.data).events[0]["key_alias"] == "A" * 256
    _events_of(outbox)
    tiny = UsageOutbox(
        node_id="node", flush_seconds=60, max_batch_events=100, max_batches=100, max_batch_bytes=64
    )
    tiny.record(_event("never"))
    tiny.seal()
    assert tiny.pending_batches == 0 and tiny.set_aside_events == 1


async def test_a_refused_batch_is_replaced_by_its_halves_with_new_message_ids() -> None:
    """Refused as too large, a batch becomes an empty batch keeping its sequence number (so no
    number is ever skipped) and two new batches, down to single events."""
    outbox = UsageOutbox(node_id="node", flush_seconds=60, max_batch_events=4, max_batches=100)
    for request_id in ("a", "b", "c", "d", "e"):
        outbox.record(_event(request_id))
    outbox.seal()
    first = outbox.head()
    assert first is not None
    outbox.refused(first)
    assert _void_published(outbox, first)
    half = outbox.head()
    assert half is not None and half.message_id != first.message_id
    assert [e["request_id"] for e in decode_batch(half.data).events] == ["a", "b"]
    outbox.refused(half)
    assert _void_published(outbox, half)
    lone = outbox.head()
    assert lone is not None
    outbox.refused(lone)  # one event: cut (nothing to cut here), so set aside
    assert _void_published(outbox, lone)
    assert outbox.set_aside_events == 1
    assert _events_of(outbox) == [["b"], ["c", "d"], ["e"]]


def _void_published(outbox: UsageOutbox, refused: SealedBatch) -> bool:
    """Whether the head is the empty batch standing for refused (then published)."""
    void = outbox.head()
    if void is None or void.message_id != refused.message_id or decode_batch(void.data).events:
        return False
    outbox.published(void)
    return void.seq == refused.seq


async def test_no_sealed_event_carries_a_nul() -> None:
    """A NUL in any string of any event (user, tag, alias, error code) is taken out when sealed."""
    outbox = UsageOutbox(node_id="node", flush_seconds=60, max_batch_events=10, max_batches=10)
    dirty = {**_event("a"), "customer_id": "u\x00", "tags": ["t\x00"], "error_code": "\x00x"}
    outbox.record(cast(UsageEvent, dirty))
    outbox.record(_event("b"))
    outbox.seal()
    head = outbox.head()
    assert head is not None and b"\\u0000" not in head.data
    event = decode_batch(head.data).events[0]
    assert (event["customer_id"], event["tags"], event["error_code"]) == ("u", ["t"], "x")
