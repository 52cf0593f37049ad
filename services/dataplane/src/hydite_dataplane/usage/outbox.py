"""Usage events gathering for the next batch, and sealed batches waiting for JetStream, in order.

Events of a few milliseconds share one message (a publish per request would cost a third of the
proxy's CPU). A sealed batch is final: its bytes and its message id never change, so whoever
sends it (the publisher now, a replay later) sends the same message and JetStream deduplicates.

No event can hold the others back. A batch is sealed by count or time, and by bytes: once
encoded, one larger than `max_batch_bytes` (under the server's max payload) is sealed as several.
A batch NATS still refuses as too large is replaced by its halves, each a new batch with its own
message id, down to single events; a single event is cut (`shrunk`) once, and if even that is
refused it is set aside (counted and logged by request id), never retried at the head. The
refused batch's own sequence number still goes out, as an empty batch, so the ingest side sees
every sequence number of this publisher arrive and can tell a gap from a skip.

Every recorded event is counted in the tally (per minute, kept where a kill -9 cannot take it).
While NATS is away the publisher moves sealed batches to the spool as they are sealed (`spill`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from hydite_common.events import UsageEvent, UsagePayload, batch_message_id, encode_batch
from hydite_dataplane.usage.event import shrunk, without_nul

if TYPE_CHECKING:
    from hydite_dataplane.usage.tally import EmittedTally

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_BYTES = 1_000_000
"""Under NATS's default max payload (1 MiB) with room for the headers."""
_ENCODED_NUL = b"\\u0000"


def publisher_id_of(node_id: str) -> str:
    """A new publisher id for this process: the node id (as a file name may hold it) and a suffix
    of its own."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', node_id)[:200]}.{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class SealedBatch:
    """One usage message, ready to publish as it is."""

    seq: int
    message_id: str  # Nats-Msg-Id: publisher id and sequence
    data: bytes


class UsageOutbox:
    """Seals events into batches (by count, bytes or after flush_seconds) and keeps them until
    published."""

    def __init__(
        self,
        *,
        node_id: str,
        flush_seconds: float,
        max_batch_events: int,
        max_batches: int,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        tally: EmittedTally | None = None,
    ) -> None:
        # A fresh publisher id per process keeps node_id:seq unique across restarts,
        # so the stream's dedup window never drops a restarted node's batches.
        self.publisher_id = publisher_id_of(node_id)
        self.tally = tally
        self._flush_seconds = flush_seconds
        self._max_batch_events = max_batch_events
        self.max_batches = max_batches
        self.max_batch_bytes = max_batch_bytes
        """The largest batch sealed; the publisher lowers it to what the server takes."""
        self.on_sealed: Callable[[], None] = lambda: None
        """Called after every seal (the publisher's wake-up)."""
        self.on_sequence: Callable[[int], None] = lambda seq: None
        """Called after every seal with the last batch number used: every event recorded before
        is in a batch numbered at most that (budgets release a settled cost once it is ingested)."""
        self._current: list[UsageEvent] = []
        self._payloads: list[UsagePayload] = []
        """Prompts and responses stored out of band, sealed into batches of their own."""
        self._sealed: deque[SealedBatch] = deque()
        self._seq = 0
        self._flush_handle: asyncio.TimerHandle | None = None
        self.dropped_batches = 0
        self.split_batches = 0
        """Batches sealed as several, or replaced by their halves, for their size."""
        self.set_aside_events = 0
        """Events that could not be published at any size."""

    def record(self, event: UsageEvent) -> None:
        """Queue one event; it is sealed into a batch within flush_seconds."""
        if self.tally is not None:
            self.tally.count(event["end_time_ms"])
        self._current.append(event)
        if len(self._current) >= self._max_batch_events:
            self.seal()
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(self._flush_seconds, self.seal)

    def record_payload(self, payload: UsagePayload) -> None:
        """Queue one request's stored prompt and response (never in its event); sealed with the events."""
        self._payloads.append(payload)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(self._flush_seconds, self.seal)

    def seal(self) -> None:
        """Seal the events gathered so far into the next batch (or batches, by bytes), and the
        payloads gathered into batches of their own."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._current and not self._payloads:
            return
        # Payloads first: a spend row never shows before the prompt and answer stored with it.
        if self._payloads:
            payloads, self._payloads = self._payloads, []
            self._sealed.extend(self._payload_batches(payloads))
        if self._current:
            events, self._current = self._current, []
            data = encode_batch(self.publisher_id, self._seq + 1, events)
            if _ENCODED_NUL in data:  # one scan per batch: no event may reach Postgres with a NUL
                events = [without_nul(event) for event in events]
                data = encode_batch(self.publisher_id, self._seq + 1, events)
            self._sealed.extend(self._batches(events, data))
        self.on_sequence(self._seq)
        self.on_sealed()
        while len(self._sealed) > self.max_batches:
            self._sealed.popleft()
            self.dropped_batches += 1
            log.error(
                "usage outbox full: dropped the oldest batch (%d dropped so far)",
                self.dropped_batches,
            )

    def head(self) -> SealedBatch | None:
        """The oldest batch not yet published."""
        return self._sealed[0] if self._sealed else None

    def published(self, batch: SealedBatch) -> None:
        """JetStream acknowledged batch: it leaves the outbox."""
        if self._sealed and self._sealed[0] is batch:
            self._sealed.popleft()

    def refused(self, batch: SealedBatch) -> None:
        """NATS refused batch as too large: at the head it is replaced by its halves, each a new
        batch; a single event is cut once, then set aside."""
        if not self._sealed or self._sealed[0] is not batch:
            return
        self._sealed.popleft()
        self.split_batches += 1
        void = SealedBatch(batch.seq, batch.message_id, encode_batch(self.publisher_id, batch.seq, []))
        envelope = orjson.loads(batch.data)
        events: list[UsageEvent] = envelope["events"]
        if envelope.get("payloads"):
            payloads: list[UsagePayload] = envelope["payloads"]
            middle = len(payloads) // 2
            halves = [payloads[:middle], payloads[middle:]] if len(payloads) > 1 else []
            if not halves:
                self._set_aside_payload(payloads[0], len(batch.data))
            replacements = [b for half in halves for b in self._payload_batches(half)]
        elif len(events) > 1:
            middle = len(events) // 2
            replacements = [
                *self._batches(events[:middle], self._encoded(events[:middle])),
                *self._batches(events[middle:], self._encoded(events[middle:])),
            ]
        else:
            event = shrunk(events[0])
            data = self._encoded([event])
            if len(data) < len(batch.data) and len(data) <= self.max_batch_bytes:
                replacements = [self._accepted(data)]
            else:
                self._set_aside(event, len(batch.data))
                replacements = []
        self._sealed.extendleft(reversed([void, *replacements]))

    def put_back(self, batch: SealedBatch) -> None:
        """batch (taken from the spool) at the head again, to be split by `refused`."""
        self._sealed.appendleft(batch)

    def spill(self, keep: Callable[[SealedBatch], bool]) -> int:
        """Hand sealed batches, oldest first, to keep until it returns False; how many it took."""
        taken = 0
        while self._sealed and keep(self._sealed[0]):
            self._sealed.popleft()
            taken += 1
        return taken

    @property
    def pending_batches(self) -> int:
        """Sealed batches not yet acknowledged by JetStream."""
        return len(self._sealed)

    def _encoded(self, events: list[UsageEvent]) -> bytes:
        """events as the next batch would carry them."""
        return encode_batch(self.publisher_id, self._seq + 1, events)

    def _accepted(self, data: bytes) -> SealedBatch:
        """data (encoded with the next sequence number) as the next sealed batch."""
        self._seq += 1
        return SealedBatch(self._seq, batch_message_id(self.publisher_id, self._seq), data)

    def _batches(self, events: list[UsageEvent], data: bytes) -> list[SealedBatch]:
        """events (data: their encoding with the next sequence number) as batches of at most
        max_batch_bytes, in order."""
        limit = self.max_batch_bytes
        if len(data) <= limit:
            return [self._accepted(data)]
        if len(events) == 1:
            event = shrunk(events[0])
            data = self._encoded([event])
            if len(data) <= limit:
                return [self._accepted(data)]
            self._set_aside(event, len(data))
            return []
        self.split_batches += 1
        parts = min(len(events), max(2, -(-len(data) * 10 // (limit * 9))))
        size = -(-len(events) // parts)
        batches: list[SealedBatch] = []
        for start in range(0, len(events), size):
            part = events[start : start + size]
            batches += self._batches(part, self._encoded(part))
        return batches

    def _payload_batches(self, payloads: list[UsagePayload]) -> list[SealedBatch]:
        """payloads as batches of at most max_batch_bytes, in order (one too large alone is set aside)."""
        data = encode_batch(self.publisher_id, self._seq + 1, [], payloads)
        if len(data) <= self.max_batch_bytes:
            return [self._accepted(data)]
        if len(payloads) == 1:
            self._set_aside_payload(payloads[0], len(data))
            return []
        middle = len(payloads) // 2
        return [*self._payload_batches(payloads[:middle]), *self._payload_batches(payloads[middle:])]

    def _set_aside_payload(self, payload: UsagePayload, size: int) -> None:
        log.error(
            "stored payload of request %s set aside: %d bytes, too large to publish",
            str(payload.get("request_id", ""))[:128],
            size,
        )

    def _set_aside(self, event: UsageEvent, size: int) -> None:
        self.set_aside_events += 1
        log.error(
            "usage event of request %s set aside: %d bytes, too large to publish (%d set aside so far)",
            str(event.get("request_id", ""))[:128],
            size,
            self.set_aside_events,
        )
