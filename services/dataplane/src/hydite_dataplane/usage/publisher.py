"""Publishing sealed usage batches to JetStream, in order, off the request path; the spool while
NATS is away; the tally of emitted events.

One sender task publishes the oldest batch and awaits its PubAck; a batch that fails stays at the
head and is retried with backoff, unless NATS refuses it as too large (larger than the server's max
payload, or the stream's message size): then the outbox splits it.

With a spool, a failed publish or a lost connection turns spooling on: every batch in memory, and
from then on every batch as it is sealed, is appended to the spool, and the sender replays the
spool from its oldest record. Once the spool is empty, batches stay in memory again. So a batch
waits in memory only while NATS answers, and a data plane killed while NATS is away loses at most
the batch still gathering. At shutdown what is left after the bounded drain is spooled for the
next process on the same directory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from nats.errors import MaxPayloadError
from nats.js import JetStreamContext
from nats.js.errors import APIError

from hydite_common.events import encode_tally
from hydite_dataplane.usage.outbox import SealedBatch, UsageOutbox
from hydite_dataplane.usage.spool import SpoolFullError, UsageSpool
from hydite_dataplane.usage.tally import read_tally

log = logging.getLogger(__name__)

HEADER_ROOM_BYTES = 4096
"""Kept under the server's max payload for the message's headers (the server counts both, and
closes a connection that sends more)."""
MESSAGE_TOO_LARGE = 10054
"""JetStream's error code for a message over the stream's max_msg_size."""
MAINTENANCE_SECONDS = 0.2
"""How often the spool is fsynced and the sender woken while batches wait."""
TALLY_SECONDS = 1.0
"""How often the tally's changed minutes are published."""
SPILL_AT = 0.5
"""Share of the outbox's room at which batches go to the spool although NATS answers (it is slow)."""
PUBLISH_TIMEOUT_SECONDS = 5.0


def refused_as_too_large(error: Exception) -> bool:
    """Whether a failed publish can never succeed at this size."""
    if isinstance(error, MaxPayloadError):
        return True
    return isinstance(error, APIError) and (
        error.err_code == MESSAGE_TOO_LARGE or "exceeds maximum" in (error.description or "")
    )


class UsagePublisher:
    """Sends the outbox's batches (and the spool's, first) to a JetStream subject once a JetStream
    context is attached; publishes the tally."""

    def __init__(
        self,
        outbox: UsageOutbox,
        subject: str,
        *,
        spool: UsageSpool | None = None,
        tally_subject: str = "",
        node_id: str = "",
        earlier_tallies: list[tuple[str, Path]] | None = None,
    ) -> None:
        self.outbox = outbox
        self.spool = spool
        self._subject = subject
        self._tally_subject = tally_subject
        self._node_id = node_id
        self._earlier_tallies = list(earlier_tallies or [])
        self._wake = asyncio.Event()
        self._js: JetStreamContext | None = None
        self._connected: Callable[[], bool] = lambda: self._js is not None
        self._max_bytes = outbox.max_batch_bytes
        self._spill_at = max(1, int(outbox.max_batches * SPILL_AT))
        self.spooling = False
        """Whether sealed batches go to the spool (NATS away, or the spool not yet replayed)."""
        self._spool_full_logged = False
        self.published_batches = 0
        self.failed_publishes = 0
        """Publishes that failed for a reason that may pass (NATS down, no stream yet)."""
        self.spooled_batches = 0
        self.replayed_batches = 0
        if spool is not None and spool.pending:
            self.spooling = True

    def wake(self) -> None:
        """Look at the outbox again (a batch was sealed)."""
        self._wake.set()

    def sealed(self) -> None:
        """A batch was sealed: spooled at once while spooling (or when memory fills), then the
        sender is woken."""
        if self.spool is not None and (
            self.spooling or not self._connected() or self.outbox.pending_batches >= self._spill_at
        ):
            self.spooling = True
            self._spill()
        self._wake.set()

    def attach(
        self, js: JetStreamContext, max_payload: int, connected: Callable[[], bool] | None = None
    ) -> None:
        """Start publishing through this JetStream context, to a server that takes messages of
        up to max_payload bytes (`nc.max_payload`); connected says whether the connection is up."""
        self._max_bytes = max(1024, max_payload - HEADER_ROOM_BYTES)
        self.outbox.max_batch_bytes = min(self.outbox.max_batch_bytes, self._max_bytes)
        self._js = js
        if connected is not None:
            self._connected = connected
        self._wake.set()

    def _spill(self) -> None:
        """Move every batch in memory to the spool (those that fit)."""
        spool = self.spool
        assert spool is not None

        def keep(batch: SealedBatch) -> bool:
            try:
                spool.append(batch)
            except SpoolFullError:
                if not self._spool_full_logged:
                    self._spool_full_logged = True
                    log.error(
                        "usage spool %s is full (%d bytes): batches wait in memory, and the oldest are "
                        "dropped once memory is full too",
                        spool.directory,
                        spool.bytes,
                    )
                return False
            return True

        self.spooled_batches += self.outbox.spill(keep)

    def _next(self) -> tuple[SealedBatch, bool] | None:
        """The batch to send next and whether it comes from the spool."""
        spool = self.spool
        if spool is not None and spool.pending:
            batch = spool.head()
            if batch is not None:
                return batch, True
        if self.spooling and (spool is None or not spool.pending):
            self.spooling = False
            self._spool_full_logged = False
            log.info("usage spool replayed: batches stay in memory again")
        batch = self.outbox.head()
        return (batch, False) if batch is not None else None

    async def run(self) -> None:
        """Publish batches in order, forever; retry a failed one with backoff."""
        backoff = 0.05
        outbox = self.outbox
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._js is not None and (item := self._next()) is not None:
                batch, spooled = item
                if not self._connected():
                    if self.spool is not None:
                        self.spooling = True
                        self._spill()
                    break  # woken again by maintenance once the connection is back
                if len(batch.data) > self._max_bytes:  # sealed before the server's limit was known
                    self._refused(batch, spooled)
                    continue
                try:
                    await self._publish(self._js, batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if refused_as_too_large(exc):
                        log.warning("usage batch %s refused as too large; split", batch.message_id)
                        self._refused(batch, spooled)
                        continue
                    self.failed_publishes += 1
                    if self.spool is not None:
                        self.spooling = True
                        self._spill()
                    log.warning(
                        "usage publish failed (%s); %d batches in memory, %d spooled",
                        type(exc).__name__,
                        outbox.pending_batches,
                        self.spool.records if self.spool is not None else 0,
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.05
                if spooled:
                    assert self.spool is not None
                    self.spool.published(batch)
                    self.replayed_batches += 1
                else:
                    outbox.published(batch)
                self.published_batches += 1

    def _refused(self, batch: SealedBatch, spooled: bool) -> None:
        if spooled:
            assert self.spool is not None
            self.spool.published(batch)
            self.outbox.put_back(batch)
        self.outbox.refused(batch)
        if self.spooling:
            self._spill()

    async def _publish(self, js: JetStreamContext, batch: SealedBatch) -> None:
        await js.publish(
            self._subject,
            batch.data,
            timeout=PUBLISH_TIMEOUT_SECONDS,
            headers={"Nats-Msg-Id": batch.message_id},
        )

    async def maintain(self) -> None:
        """Forever: fsync the spool, wake the sender while batches wait, publish the tally."""
        tally_due = 0.0
        while True:
            await asyncio.sleep(MAINTENANCE_SECONDS)
            spool = self.spool
            if spool is not None and spool.unsynced:
                await asyncio.to_thread(spool.sync)
            if self.outbox.pending_batches or (spool is not None and spool.pending):
                self._wake.set()
            if time.monotonic() >= tally_due:
                tally_due = time.monotonic() + TALLY_SECONDS
                await self.publish_tallies()

    async def publish_tallies(self) -> bool:
        """Publish the minutes counted since the last time, and what earlier processes counted;
        whether all of it went out."""
        js, tally = self._js, self.outbox.tally
        if js is None or tally is None or not self._tally_subject or not self._connected():
            return False
        changed = tally.take_changed()
        try:
            if changed:
                await self._publish_tally(js, tally.publisher_id, changed)
            while self._earlier_tallies:
                publisher_id, path = self._earlier_tallies[0]
                counts = read_tally(path)
                if counts:
                    await self._publish_tally(js, publisher_id, counts)
                path.unlink(missing_ok=True)
                self._earlier_tallies.pop(0)
        except asyncio.CancelledError:
            tally.changed_again(changed)
            raise
        except Exception as exc:
            tally.changed_again(changed)
            log.warning("usage tally not published (%s); retried", type(exc).__name__)
            return False
        return True

    async def _publish_tally(self, js: JetStreamContext, publisher_id: str, counts: dict[int, int]) -> None:
        data = encode_tally(self._node_id, publisher_id, counts)
        await js.publish(self._tally_subject, data, timeout=PUBLISH_TIMEOUT_SECONDS)

    async def drain(self, max_seconds: float) -> bool:
        """Seal what is open and wait (bounded) until everything is published, then publish the
        tally; whether the tally went out. The sender must still run; `close` follows it."""
        outbox = self.outbox
        outbox.seal()
        deadline = time.monotonic() + max_seconds
        spool = self.spool
        while (
            (outbox.pending_batches or (spool is not None and spool.pending))
            and self._connected()
            and time.monotonic() < deadline
        ):
            self._wake.set()
            await asyncio.sleep(0.02)
        return await self.publish_tallies()

    def close(self, tally_published: bool) -> None:
        """Once the sender has stopped: spool what is left for the next start, and close."""
        outbox, spool = self.outbox, self.spool
        if spool is not None:
            self.spooling = True
            self._spill()
            if spool.pending:
                log.warning(
                    "shutting down with %d usage batches spooled in %s for the next start",
                    spool.records,
                    spool.directory,
                )
            spool.close()
        if outbox.pending_batches:
            log.error("shutting down with %d unpublished usage batches", outbox.pending_batches)
        if outbox.tally is not None:
            # Every count is out and every batch too: a successor has nothing to add.
            outbox.tally.close(
                remove=tally_published and not outbox.pending_batches and not (spool and spool.pending)
            )
