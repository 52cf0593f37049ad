"""Publishing sealed usage batches to JetStream, in order, off the request path.

One sender task publishes the outbox's oldest batch and awaits its PubAck; a batch that fails
stays at the head and is retried with backoff, unless NATS refuses it as too large (larger than
the server's max payload, or the stream's message size): then the outbox splits it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from nats.errors import MaxPayloadError
from nats.js import JetStreamContext
from nats.js.errors import APIError

from hydite_dataplane.usage.outbox import SealedBatch, UsageOutbox

log = logging.getLogger(__name__)

HEADER_ROOM_BYTES = 4096
"""Kept under the server's max payload for the message's headers (the server counts both, and
closes a connection that sends more)."""
MESSAGE_TOO_LARGE = 10054
"""JetStream's error code for a message over the stream's max_msg_size."""


def refused_as_too_large(error: Exception) -> bool:
    """Whether a failed publish can never succeed at this size."""
    if isinstance(error, MaxPayloadError):
        return True
    return isinstance(error, APIError) and (
        error.err_code == MESSAGE_TOO_LARGE or "exceeds maximum" in (error.description or "")
    )


class UsagePublisher:
    """Sends the outbox's batches to a JetStream subject once a JetStream context is attached."""

    def __init__(self, outbox: UsageOutbox, subject: str) -> None:
        self.outbox = outbox
        self._subject = subject
        self._wake = asyncio.Event()
        self._js: JetStreamContext | None = None
        self._max_bytes = outbox.max_batch_bytes
        self.published_batches = 0
        self.failed_publishes = 0
        """Publishes that failed for a reason that may pass (NATS down, no stream yet)."""

    def wake(self) -> None:
        """Look at the outbox again (a batch was sealed)."""
        self._wake.set()

    def attach(self, js: JetStreamContext, max_payload: int) -> None:
        """Start publishing through this JetStream context, to a server that takes messages of
        up to max_payload bytes (`nc.max_payload`)."""
        self._max_bytes = max(1024, max_payload - HEADER_ROOM_BYTES)
        self.outbox.max_batch_bytes = min(self.outbox.max_batch_bytes, self._max_bytes)
        self._js = js
        self._wake.set()

    async def run(self) -> None:
        """Publish sealed batches in order, forever; retry a failed one with backoff."""
        backoff = 0.05
        outbox = self.outbox
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._js is not None and (batch := outbox.head()) is not None:
                if len(batch.data) > self._max_bytes:  # sealed before the server's limit was known
                    outbox.refused(batch)
                    continue
                try:
                    await self._publish(self._js, batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if refused_as_too_large(exc):
                        log.warning("usage batch %s refused as too large; split", batch.message_id)
                        outbox.refused(batch)
                        continue
                    self.failed_publishes += 1
                    log.warning(
                        "usage publish failed (%s); %d batches waiting",
                        type(exc).__name__,
                        outbox.pending_batches,
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.05
                outbox.published(batch)
                self.published_batches += 1

    async def _publish(self, js: JetStreamContext, batch: SealedBatch) -> None:
        await js.publish(self._subject, batch.data, timeout=5.0, headers={"Nats-Msg-Id": batch.message_id})

    async def drain(self, max_seconds: float) -> None:
        """Seal what is open and wait (bounded) until the outbox is empty."""
        outbox = self.outbox
        outbox.seal()
        deadline = time.monotonic() + max_seconds
        while outbox.pending_batches and time.monotonic() < deadline:
            self._wake.set()
            await asyncio.sleep(0.02)
        if outbox.pending_batches:
            log.error("shutting down with %d unpublished usage batches", outbox.pending_batches)
