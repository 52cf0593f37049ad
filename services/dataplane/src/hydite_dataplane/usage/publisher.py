"""Publishing sealed usage batches to JetStream, in order, off the request path.

One sender task publishes the outbox's oldest batch and awaits its PubAck; a batch that fails
stays at the head and is retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time

from nats.js import JetStreamContext

from hydite_dataplane.usage.outbox import UsageOutbox

log = logging.getLogger(__name__)


class UsagePublisher:
    """Sends the outbox's batches to a JetStream subject once a JetStream context is attached."""

    def __init__(self, outbox: UsageOutbox, subject: str) -> None:
        self.outbox = outbox
        self._subject = subject
        self._wake = asyncio.Event()
        self._js: JetStreamContext | None = None
        self.published_batches = 0

    def wake(self) -> None:
        """Look at the outbox again (a batch was sealed)."""
        self._wake.set()

    def attach(self, js: JetStreamContext) -> None:
        """Start publishing through this JetStream context."""
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
                try:
                    await self._js.publish(
                        self._subject, batch.data, timeout=5.0, headers={"Nats-Msg-Id": batch.message_id}
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
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
