"""The usage spool and tally on a real directory, and the publisher spooling while NATS is away and
replaying in order once it is back (against a real JetStream server)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig

from hydite_common.events import UsageEvent, decode_batch, decode_tally
from hydite_dataplane.usage.outbox import SealedBatch, UsageOutbox
from hydite_dataplane.usage.publisher import UsagePublisher
from hydite_dataplane.usage.spool import SpoolFullError, UsageSpool
from hydite_dataplane.usage.tally import EmittedTally, earlier_tallies, read_tally


def _batch(seq: int, size: int = 10) -> SealedBatch:
    return SealedBatch(seq, f"node.abc:{seq}", bytes([seq % 256]) * size)


def _drain(spool: UsageSpool) -> list[int]:
    seqs = []
    while (batch := spool.head()) is not None:
        seqs.append(batch.seq)
        spool.published(batch)
    return seqs


def test_batches_come_back_in_order_across_segments_and_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appended batches replay oldest first, across segment files, and a new spool on the same
    directory (a restarted process) replays what the first left; published segments are deleted."""
    monkeypatch.setattr("hydite_dataplane.usage.spool.SEGMENT_BYTES", 100)
    spool = UsageSpool(tmp_path, max_bytes=1_000_000)
    spool.open()
    for seq in range(1, 21):
        spool.append(_batch(seq))
    assert spool.records == 20 and len(list(tmp_path.glob("*.seg"))) > 2
    first = spool.head()
    assert first is not None and first.seq == 1 and first.message_id == "node.abc:1"
    spool.published(first)
    spool.close()  # as a killed process would leave it, less the lock

    again = UsageSpool(tmp_path, max_bytes=1_000_000)
    again.open()
    assert again.records == 20  # a published record of a segment not yet done comes again (deduplicated)
    assert _drain(again) == list(range(1, 21))
    again.append(_batch(21))
    assert _drain(again) == [21]
    again.close()
    assert not list(tmp_path.glob("*.seg"))


def test_a_torn_tail_ends_its_segment_and_the_rest_replays(tmp_path: Path) -> None:
    """A record cut short (the machine died mid-write) is left; every whole record before it replays."""
    spool = UsageSpool(tmp_path, max_bytes=1_000_000)
    spool.open()
    for seq in (1, 2, 3):
        spool.append(_batch(seq))
    spool.close()
    (segment,) = tmp_path.glob("*.seg")
    with segment.open("r+b") as file:
        file.truncate(segment.stat().st_size - 4)
    again = UsageSpool(tmp_path, max_bytes=1_000_000)
    again.open()
    assert _drain(again) == [1, 2]


def test_a_full_spool_refuses_and_says_so(tmp_path: Path) -> None:
    """Past max_bytes an append is refused (counted); once published from, it takes batches again."""
    spool = UsageSpool(tmp_path, max_bytes=200)
    spool.open()
    spool.append(_batch(1, 100))
    with pytest.raises(SpoolFullError):
        spool.append(_batch(2, 100))
    assert spool.full_refusals == 1
    assert _drain(spool) == [1]
    spool.append(_batch(2, 100))
    assert _drain(spool) == [2]


def test_a_second_process_on_the_same_directory_spools_beside_it(tmp_path: Path) -> None:
    """The directory is locked: a second spool on it takes a subdirectory of its own."""
    first = UsageSpool(tmp_path, max_bytes=1_000_000)
    first.open()
    second = UsageSpool(tmp_path, max_bytes=1_000_000)
    second.open()
    assert second.directory.parent == tmp_path
    first.close()
    second.close()


def test_the_tally_survives_its_process_and_is_found_by_the_next(tmp_path: Path) -> None:
    """Counts per minute live in the mapped file: a successor reads what was counted, to the last event."""
    path = tmp_path / "tally-node.abc.bin"
    tally = EmittedTally("node.abc", path)
    for end_ms in (60_000.0, 60_500.0, 119_999.0, 120_000.0):
        tally.count(end_ms)
    assert tally.take_changed() == {60: 3, 120: 1}
    assert tally.take_changed() == {}
    tally.count(120_001.0)
    changed = tally.take_changed()
    tally.changed_again(changed)
    assert tally.take_changed() == {120: 2}
    # No close: as a process killed with -9 leaves it.
    assert earlier_tallies(tmp_path, None) == [("node.abc", path)]
    assert read_tally(path) == {60: 3, 120: 2}


def _event(request_id: str) -> UsageEvent:
    event: dict[str, Any] = {
        "request_id": request_id, "call_type": "chat", "start_time_ms": 1.0,
        "end_time_ms": time.time() * 1000, "key_hash": "h" * 64, "model": "m", "status": "success",
        "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "cost": 0.0, "tags": [],
    }  # fmt: skip
    return cast(UsageEvent, event)


async def _stream_ids(nc: NatsClient, name: str) -> list[str]:
    js = nc.jetstream()
    state = (await js.stream_info(name)).state
    ids: list[str] = []
    for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
        message = await js.get_msg(name, seq)
        if message.subject and message.subject.endswith(".batch"):
            ids += [e["request_id"] for e in decode_batch(message.data or b"").events]
    return ids


async def test_while_nats_is_away_batches_are_spooled_then_replayed_in_order(
    nc: NatsClient, tmp_path: Path
) -> None:
    """Disconnected, every sealed batch goes to disk at once (memory stays empty); a process
    started on the same directory (the first one killed) replays them first, then its own, in order,
    and publishes the tallies of both."""
    name = f"HYDITE_TEST_SPOOL_{uuid.uuid4().hex[:10].upper()}"
    subject, tally_subject = f"{name.lower()}.usage.batch", f"{name.lower()}.usage.tally"
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name.lower()}.usage.>"]))
    try:
        spool = UsageSpool(tmp_path, max_bytes=10_000_000)
        spool.open()
        outbox = UsageOutbox(node_id="node", flush_seconds=60, max_batch_events=2, max_batches=100)
        outbox.tally = EmittedTally(outbox.publisher_id, tmp_path / f"tally-{outbox.publisher_id}.bin")
        publisher = UsagePublisher(outbox, subject, spool=spool, tally_subject=tally_subject, node_id="node")
        outbox.on_sealed = publisher.sealed
        publisher.attach(js, nc.max_payload, connected=lambda: False)
        for index in range(6):
            outbox.record(_event(f"r{index}"))
        assert outbox.pending_batches == 0 and spool.records == 3 and publisher.spooling
        # Killed: nothing closed. The next process on the directory takes over.
        os.close(spool._lock_fd)

        spool2 = UsageSpool(tmp_path, max_bytes=10_000_000)
        spool2.open()
        outbox2 = UsageOutbox(node_id="node", flush_seconds=60, max_batch_events=2, max_batches=100)
        own = tmp_path / f"tally-{outbox2.publisher_id}.bin"
        earlier = earlier_tallies(tmp_path, own)
        outbox2.tally = EmittedTally(outbox2.publisher_id, own)
        publisher2 = UsagePublisher(
            outbox2,
            subject,
            spool=spool2,
            tally_subject=tally_subject,
            node_id="node",
            earlier_tallies=earlier,
        )
        outbox2.on_sealed = publisher2.sealed
        assert publisher2.spooling  # the spool holds batches: they go first
        publisher2.attach(js, nc.max_payload, connected=lambda: True)
        task = asyncio.create_task(publisher2.run())
        try:
            for index in range(6, 8):
                outbox2.record(_event(f"r{index}"))

            async def replayed() -> None:
                while spool2.pending or outbox2.pending_batches:
                    publisher2.wake()
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(replayed(), timeout=10)
            assert not publisher2.spooling
            assert await publisher2.publish_tallies()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert await _stream_ids(nc, name) == [f"r{index}" for index in range(8)]
        tallies = []
        state = (await js.stream_info(name)).state
        for seq in range(state.first_seq, state.last_seq + 1):
            message = await js.get_msg(name, seq)
            if message.subject == tally_subject:
                tallies.append(decode_tally(message.data or b""))
        counted = {t.publisher_id: sum(t.minutes.values()) for t in tallies}
        assert counted == {outbox.publisher_id: 6, outbox2.publisher_id: 2}
        assert not (tmp_path / f"tally-{outbox.publisher_id}.bin").exists()
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
