"""Usage events gathering for the next batch, and sealed batches waiting for JetStream, in order.

Events of a few milliseconds share one message (a publish per request would cost a third of the
proxy's CPU). A sealed batch is final: its bytes and its message id never change, so whoever
sends it (the publisher now, a replay later) sends the same message and JetStream deduplicates.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from hydite_common.events import UsageEvent, batch_message_id, encode_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SealedBatch:
    """One usage message, ready to publish as it is."""

    seq: int
    message_id: str  # Nats-Msg-Id: publisher id and sequence
    data: bytes


class UsageOutbox:
    """Seals events into batches (by count or after flush_seconds) and keeps them until published."""

    def __init__(
        self,
        *,
        node_id: str,
        flush_seconds: float,
        max_batch_events: int,
        max_batches: int,
    ) -> None:
        # A fresh publisher id per process keeps node_id:seq unique across restarts,
        # so the stream's dedup window never drops a restarted node's batches.
        self.publisher_id = f"{node_id}.{uuid.uuid4().hex[:8]}"
        self._flush_seconds = flush_seconds
        self._max_batch_events = max_batch_events
        self._max_batches = max_batches
        self.on_sealed: Callable[[], None] = lambda: None
        """Called after every seal (the publisher's wake-up)."""
        self._current: list[UsageEvent] = []
        self._sealed: deque[SealedBatch] = deque()
        self._seq = 0
        self._flush_handle: asyncio.TimerHandle | None = None
        self.dropped_batches = 0

    def record(self, event: UsageEvent) -> None:
        """Queue one event; it is sealed into a batch within flush_seconds."""
        self._current.append(event)
        if len(self._current) >= self._max_batch_events:
            self.seal()
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(self._flush_seconds, self.seal)

    def seal(self) -> None:
        """Seal the events gathered so far into the next batch."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._current:
            return
        self._seq += 1
        data = encode_batch(self.publisher_id, self._seq, self._current)
        self._sealed.append(SealedBatch(self._seq, batch_message_id(self.publisher_id, self._seq), data))
        self._current = []
        if len(self._sealed) > self._max_batches:
            self._sealed.popleft()
            self.dropped_batches += 1
            log.error(
                "usage outbox full: dropped the oldest batch (%d dropped so far)",
                self.dropped_batches,
            )
        self.on_sealed()

    def head(self) -> SealedBatch | None:
        """The oldest batch not yet published."""
        return self._sealed[0] if self._sealed else None

    def published(self, batch: SealedBatch) -> None:
        """JetStream acknowledged batch: it leaves the outbox."""
        if self._sealed and self._sealed[0] is batch:
            self._sealed.popleft()

    @property
    def pending_batches(self) -> int:
        """Sealed batches not yet acknowledged by JetStream."""
        return len(self._sealed)
