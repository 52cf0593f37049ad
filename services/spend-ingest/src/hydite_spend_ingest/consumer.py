"""Durable pull consumer: fetch envelopes, write them in one transaction, then ack.

Crash anywhere before the ack -> redelivery -> the unique request_id makes the
second write a no-op. An undecodable message goes to the dead-letter stream and
is terminated, so it never blocks the stream; an event that can never be billed
goes there alone, and the rest of its batch is written.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import psycopg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from hydite_common.events import PoisonMessage, UsageBatch, UsageEvent, decode_batch, encode_batch
from hydite_common.usage_stream import dead_letter_subject, usage_stream_name
from hydite_spend_ingest.decode import Row, rows_of
from hydite_spend_ingest.settings import IngestSettings
from hydite_spend_ingest.writer import write_rows

log = logging.getLogger(__name__)

NAK_DELAY_SECONDS = 1.0


@dataclass
class IngestCounters:
    """What the consumer has done since start (exported on /metrics)."""

    batches: int = 0
    events_written: int = 0
    duplicates: int = 0
    poison: int = 0
    write_errors: int = 0


class UsageConsumer:
    """Moves usage envelopes from JetStream into spend_logs."""

    def __init__(self, settings: IngestSettings, js: JetStreamContext) -> None:
        self._settings = settings
        self._js = js
        self.counters = IngestCounters()
        self.db_ok = False

    def durable_name(self) -> str:
        """The durable consumer's name inside this deployment's namespace."""
        return self._settings.nats_name("SPEND_INGEST")

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
                max_ack_pending=10_000,
            ),
        )

    async def run(self) -> None:
        """Consume forever; reconnect to Postgres with backoff when it goes away."""
        settings = self._settings
        subscription = await self.subscribe()
        backoff = 0.2
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(settings.libpq_url) as conn:
                    self.db_ok = True
                    backoff = 0.2
                    while True:
                        try:
                            messages = await subscription.fetch(
                                settings.fetch_batch_messages, timeout=settings.fetch_wait_seconds
                            )
                        except TimeoutError:
                            continue
                        await self.ingest(conn, messages)
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

    async def ingest(self, conn: psycopg.AsyncConnection[object], messages: list[Msg]) -> None:
        """Write one fetch's messages and settle each: ack once committed, nak on a database
        outage (re-raised, so the caller reconnects), dead-letter what is poison: a message whose
        envelope is unusable (then termed), or single events (the rest of the batch is written)."""
        accepted: list[tuple[Msg, UsageBatch, list[tuple[UsageEvent, Row]]]] = []
        for msg in messages:
            try:
                batch = decode_batch(msg.data)
            except PoisonMessage as exc:
                await self._dead_letter(msg.data, str(exc))
                await msg.term()
                continue
            rows, rejected = rows_of(batch)
            for event in rejected:
                await self._dead_letter_event(batch, event.raw, event.reason)
            accepted.append((msg, batch, rows))
        if not accepted:
            return
        try:
            inserted = await write_rows(conn, [row for _, _, rows in accepted for _, row in rows])
        except psycopg.OperationalError:
            self.counters.write_errors += 1
            for msg, _, _ in accepted:
                await msg.nak(delay=NAK_DELAY_SECONDS)
            raise
        except psycopg.Error:
            # Something in the data is unstorable: find it by writing one message, then one event, at a time.
            self.counters.write_errors += 1
            for msg, batch, rows in accepted:
                await self._ingest_alone(conn, msg, batch, rows)
            return
        self._count(len(accepted), sum(len(rows) for _, _, rows in accepted), inserted)
        for msg, _, _ in accepted:
            await msg.ack()

    async def _ingest_alone(
        self,
        conn: psycopg.AsyncConnection[object],
        msg: Msg,
        batch: UsageBatch,
        rows: list[tuple[UsageEvent, Row]],
    ) -> None:
        """One message's rows on their own; if Postgres refuses them, each row on its own, and a
        row it still refuses is dead-lettered alone."""
        try:
            inserted = await write_rows(conn, [row for _, row in rows])
            stored = len(rows)
        except psycopg.OperationalError:
            await msg.nak(delay=NAK_DELAY_SECONDS)
            raise
        except psycopg.Error:
            inserted = stored = 0
            for event, row in rows:
                try:
                    inserted += await write_rows(conn, [row])
                    stored += 1
                except psycopg.OperationalError:
                    await msg.nak(delay=NAK_DELAY_SECONDS)
                    raise
                except psycopg.Error as exc:
                    await self._dead_letter_event(batch, event, f"unstorable: {type(exc).__name__}")
        self._count(1 if stored else 0, stored, inserted)
        await msg.ack()

    def _count(self, batches: int, events: int, inserted: int) -> None:
        self.counters.batches += batches
        self.counters.events_written += inserted
        self.counters.duplicates += events - inserted

    async def _dead_letter_event(self, batch: UsageBatch, event: object, reason: str) -> None:
        """One event, as a batch of its own with its batch's node and sequence (so it can be replayed)."""
        data = encode_batch(batch.node_id, batch.seq, [event])  # type: ignore[list-item]
        await self._dead_letter(data, reason, source=batch.message_id)

    async def _dead_letter(self, data: bytes, reason: str, source: str = "") -> None:
        self.counters.poison += 1
        log.error("usage data can never be billed (%s); moved to the dead-letter stream", reason)
        headers = {"Hydite-Poison-Reason": reason[:200]}
        if source:
            headers["Hydite-Source-Msg-Id"] = source
        await self._js.publish(dead_letter_subject(self._settings), data, headers=headers)
