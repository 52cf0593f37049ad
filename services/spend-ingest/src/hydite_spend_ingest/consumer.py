"""Durable pull consumer: fetch usage messages, write them in one transaction, then ack.

Batches (`<prefix>.usage.batch`) carry events and stored payloads; tallies (`<prefix>.usage.tally`)
carry a data plane's own count of the events it emitted. Crash anywhere before the ack ->
redelivery -> the unique request_id makes the second write a no-op, and rollups and totals move
only for rows actually inserted. An undecodable message goes to the dead-letter stream and is
terminated, so it never blocks the stream; an event (or payload) that can never be stored goes
there alone, and the rest of its batch is written. A message of a newer schema version than this
build knows is neither: it is offered back to the stream (nak with a delay) until an upgraded
replica takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psycopg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy

from hydite_common.events import (
    NewerSchemaVersion,
    PoisonMessage,
    UsageBatch,
    UsageEvent,
    UsagePayload,
    UsageTally,
    decode_batch,
    decode_tally,
    encode_batch,
)
from hydite_common.usage_stream import dead_letter_subject, usage_stream_name
from hydite_spend_ingest.decode import PayloadRow, payload_rows, rows_of
from hydite_spend_ingest.metrics import IngestMetrics
from hydite_spend_ingest.settings import IngestSettings
from hydite_spend_ingest.writer import CopyRow, WriteResult, WriteSet, copy_row, write

log = logging.getLogger(__name__)

NAK_DELAY_SECONDS = 1.0

TotalsChanged = Callable[[Iterable[tuple[str, str]]], None]
"""Told, after each commit, which running totals (kind, entity) it moved."""


@dataclass
class IngestCounters:
    """What the consumer has done since start (exported on /metrics)."""

    batches: int = 0
    events_written: int = 0
    duplicates: int = 0
    poison: int = 0
    write_errors: int = 0
    tallies: int = 0
    newer_schema: int = 0
    """Messages of a newer schema version offered back to the stream for an upgraded replica."""


@dataclass
class Accepted:
    """A decoded message and what it writes, piece by piece, so a piece Postgres refuses can be
    dead-lettered alone."""

    msg: Msg
    batch: UsageBatch | None = None
    tally: UsageTally | None = None
    rows: list[tuple[UsageEvent, CopyRow]] = field(default_factory=list)
    payloads: list[tuple[UsagePayload, PayloadRow]] = field(default_factory=list)

    @property
    def seqs(self) -> list[tuple[str, int]]:
        """The (publisher, seq) this message moves the watermark with."""
        return [(self.batch.node_id, self.batch.seq)] if self.batch is not None else []

    def writes(self) -> WriteSet:
        """Everything the message writes."""
        return WriteSet(
            rows=[row for _, row in self.rows],
            seqs=self.seqs,
            payloads=[row for _, row in self.payloads],
            tallies=[self.tally] if self.tally is not None else [],
        )


class UsageConsumer:
    """Moves usage messages from JetStream into the spend tables."""

    def __init__(
        self, settings: IngestSettings, js: JetStreamContext, on_totals: TotalsChanged | None = None
    ) -> None:
        self._settings = settings
        self._js = js
        self._tally_subject = settings.nats_subject("usage", "tally")
        self._on_totals = on_totals
        self.counters = IngestCounters()
        self.metrics = IngestMetrics()
        self.db_ok = False
        self._stopping = False
        self._newer_versions_seen: set[int] = set()
        self._stopped = asyncio.Event()

    def durable_name(self) -> str:
        """The durable consumer's name inside this deployment's namespace."""
        return self._settings.nats_name("SPEND_INGEST")

    async def info(self) -> ConsumerInfo:
        """The durable consumer's state on the server (pending and unacknowledged counts)."""
        info: ConsumerInfo = await self._js.consumer_info(
            usage_stream_name(self._settings), self.durable_name()
        )
        return info

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        """Bind to (creating if needed) the durable pull consumer on the usage stream."""
        settings = self._settings
        return await self._js.pull_subscribe(
            subject=settings.nats_subject("usage", ">"),
            durable=self.durable_name(),
            stream=usage_stream_name(settings),
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=settings.consumer_ack_wait_seconds,
                max_ack_pending=20_000,
            ),
        )

    async def stop(self, within_seconds: float) -> None:
        """Fetch no more; wait up to within_seconds for the batch being written to commit and be acked."""
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), within_seconds)

    async def run(self) -> None:
        """Consume until stopped; reconnect to Postgres with backoff when it goes away."""
        try:
            await self._run()
        finally:
            self._stopped.set()

    async def _run(self) -> None:
        settings = self._settings
        subscription = await self.subscribe()
        backoff = 0.2
        while not self._stopping:
            try:
                async with await psycopg.AsyncConnection.connect(settings.libpq_url) as conn:
                    self.db_ok = True
                    backoff = 0.2
                    await self._consume(conn, subscription)
            except asyncio.CancelledError:
                raise
            except psycopg.Error as exc:
                self.db_ok = False
                log.warning("spend database unavailable (%s); retrying", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:
                # A bug must not end ingestion for everyone: the unacked messages come back.
                log.exception("usage ingest failed; retrying")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def fetch(self, subscription: JetStreamContext.PullSubscription) -> list[Msg]:
        """The next messages for one transaction: up to `fetch_batch_messages` or `fetch_max_bytes`,
        pulled `fetch_chunk_messages` at a time. Small pulls keep what the server has sent but this
        process has not read yet small while the event loop is busy writing: a large backlog pulled
        at once would overflow the server's buffer for this connection, which then drops it as a
        slow consumer (and the messages come back only after the ack wait)."""
        settings = self._settings
        chunk = min(settings.fetch_chunk_messages, settings.fetch_batch_messages)
        messages = await subscription.fetch(chunk, timeout=settings.fetch_wait_seconds)
        size = sum(len(m.data) for m in messages)
        pulled = len(messages)
        while (
            pulled == chunk
            and len(messages) < settings.fetch_batch_messages
            and size < settings.fetch_max_bytes
        ):
            chunk = min(chunk, settings.fetch_batch_messages - len(messages))
            try:
                more = await subscription.fetch(chunk, timeout=settings.fetch_wait_seconds)
            except TimeoutError:
                break
            pulled = len(more)
            messages += more
            size += sum(len(m.data) for m in more)
        return messages

    async def _consume(
        self, conn: psycopg.AsyncConnection[object], subscription: JetStreamContext.PullSubscription
    ) -> None:
        """Fetch and decode the next messages while Postgres works on the previous fetch's
        transaction (one at a time on the connection, in fetch order), so the two overlap."""
        writing: asyncio.Task[None] | None = None
        try:
            while not self._stopping:
                try:
                    messages = await self.fetch(subscription)
                except TimeoutError:
                    if writing is not None:
                        await writing
                        writing = None
                    continue
                accepted = await self.accept(messages)
                if writing is not None:
                    try:
                        await writing
                    except BaseException:
                        for message in accepted:
                            await message.msg.nak(delay=NAK_DELAY_SECONDS)
                        raise
                    # They waited for the previous write: their ack wait starts again with their own.
                    for message in accepted:
                        await message.msg.in_progress()
                writing = asyncio.create_task(self.write_accepted(conn, accepted)) if accepted else None
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writing

    async def ingest(self, conn: psycopg.AsyncConnection[object], messages: list[Msg]) -> None:
        """Write one fetch's messages in one transaction and settle each: ack once committed, nak
        on a database outage (re-raised, so the caller reconnects), dead-letter what is poison: a
        message whose envelope is unusable (then termed), or single events and payloads (the rest of
        the batch is written)."""
        await self.write_accepted(conn, await self.accept(messages))

    async def accept(self, messages: list[Msg]) -> list[Accepted]:
        """The fetched messages decoded; the poison ones dead-lettered and termed, and left out."""
        return [a for a in [await self._accept(msg) for msg in messages] if a is not None]

    async def write_accepted(self, conn: psycopg.AsyncConnection[object], accepted: list[Accepted]) -> None:
        """Write decoded messages in one transaction and settle each (see `ingest`)."""
        if not accepted:
            return
        writes = WriteSet()
        for message in accepted:
            writes.extend(message.writes())
        started = time.perf_counter()
        try:
            result = await write(conn, writes)
        except psycopg.OperationalError:
            self.counters.write_errors += 1
            for message in accepted:
                await message.msg.nak(delay=NAK_DELAY_SECONDS)
            raise
        except psycopg.Error:
            # Something in the data is unstorable: find it by writing one message, then one piece, at a time.
            self.counters.write_errors += 1
            for message in accepted:
                await self._ingest_alone(conn, message)
            return
        self._committed(result)
        newest = max((event["end_time_ms"] for a in accepted for event, _ in a.rows), default=0.0)
        self.metrics.written(len(writes.rows), time.perf_counter() - started, newest)
        self._count(
            sum(1 for a in accepted if a.batch is not None), len(writes.rows), result.inserted, accepted
        )
        for message in accepted:
            await message.msg.ack()

    async def _accept(self, msg: Msg) -> Accepted | None:
        """The message decoded into what it writes, or None once it is dead-lettered and termed."""
        with contextlib.suppress(Exception):  # a message not from JetStream has no metadata
            if msg.metadata.num_delivered > 1:
                self.metrics.redeliveries.inc()
        try:
            if msg.subject == self._tally_subject:
                return Accepted(msg, tally=decode_tally(msg.data))
            batch = decode_batch(msg.data)
        except NewerSchemaVersion as exc:
            await self._leave_for_upgraded(msg, exc)
            return None
        except PoisonMessage as exc:
            await self._dead_letter(msg.data, str(exc))
            await msg.term()
            return None
        rows, rejected = rows_of(batch)
        for event in rejected:
            await self._dead_letter_piece(batch, event.raw, event.reason)
        payloads, unusable = payload_rows(batch)
        for payload in unusable:
            await self._dead_letter_piece(batch, payload.raw, payload.reason, payload=True)
        return Accepted(
            msg,
            batch=batch,
            rows=[(event, copy_row(row)) for event, row in rows],
            payloads=payloads,
        )

    async def _leave_for_upgraded(self, msg: Msg, exc: NewerSchemaVersion) -> None:
        """Offer the message back after a while: during a rolling upgrade the data planes move
        first, and an upgraded replica of this consumer will decode it."""
        self.counters.newer_schema += 1
        if exc.version not in self._newer_versions_seen:
            self._newer_versions_seen.add(exc.version)
            log.warning("usage messages of %s wait in the stream for an upgraded spend-ingest", exc)
        await msg.nak(delay=self._settings.newer_schema_retry_seconds)

    async def _ingest_alone(self, conn: psycopg.AsyncConnection[object], message: Accepted) -> None:
        """One message on its own; if Postgres refuses it, each event, payload or tally on its own (a
        piece it still refuses is dead-lettered alone), then the envelope's watermark move."""
        try:
            result = await self._write_or_nak(conn, message, message.writes())
            self._committed(result)
            self._count(1 if message.batch else 0, len(message.rows), result.inserted, [message])
            await message.msg.ack()
            return
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            pass
        inserted = stored = 0
        pieces: list[tuple[object, WriteSet, bool]] = [
            (event, WriteSet(rows=[row]), False) for event, row in message.rows
        ]
        pieces += [(payload, WriteSet(payloads=[row]), True) for payload, row in message.payloads]
        for piece, writes, is_payload in pieces:
            try:
                result = await self._write_or_nak(conn, message, writes)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                assert message.batch is not None  # only batches carry events and payloads
                reason = f"unstorable: {type(exc).__name__}"
                await self._dead_letter_piece(message.batch, piece, reason, payload=is_payload)
                continue
            self._committed(result)
            inserted += result.inserted
            stored += 0 if is_payload else 1
        rest = WriteSet(seqs=message.seqs, tallies=[message.tally] if message.tally is not None else [])
        counted = [message]
        try:
            self._committed(await self._write_or_nak(conn, message, rest))
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            # Its pieces are stored or dead-lettered; a replay from the dead-letter stream adds nothing twice.
            await self._dead_letter(message.msg.data, f"unstorable envelope: {type(exc).__name__}")
            counted = []
        self._count(1 if stored else 0, stored, inserted, counted)
        await message.msg.ack()

    async def _write_or_nak(
        self, conn: psycopg.AsyncConnection[object], message: Accepted, writes: WriteSet
    ) -> WriteResult:
        try:
            return await write(conn, writes)
        except psycopg.OperationalError:
            await message.msg.nak(delay=NAK_DELAY_SECONDS)
            raise

    def _committed(self, result: WriteResult) -> None:
        if result.changed_totals and self._on_totals is not None:
            self._on_totals(result.changed_totals)

    def _count(self, batches: int, events: int, inserted: int, messages: list[Accepted]) -> None:
        self.counters.batches += batches
        self.counters.events_written += inserted
        self.counters.duplicates += events - inserted
        self.counters.tallies += sum(1 for m in messages if m.tally is not None)

    async def _dead_letter_piece(
        self, batch: UsageBatch, piece: object, reason: str, *, payload: bool = False
    ) -> None:
        """One event (or payload), as a batch of its own with its batch's node and sequence (so it can
        be replayed)."""
        if payload:
            data = encode_batch(batch.node_id, batch.seq, [], [piece])  # type: ignore[list-item]
        else:
            data = encode_batch(batch.node_id, batch.seq, [piece])  # type: ignore[list-item]
        await self._dead_letter(data, reason, source=batch.message_id)

    async def _dead_letter(self, data: bytes, reason: str, source: str = "") -> None:
        self.counters.poison += 1
        log.error("usage data can never be billed (%s); moved to the dead-letter stream", reason)
        headers = {"Hydite-Poison-Reason": reason[:200]}
        if source:
            headers["Hydite-Source-Msg-Id"] = source
        await self._js.publish(dead_letter_subject(self._settings), data, headers=headers)
