"""Durable pull consumer: fetch envelopes, write them in one transaction, then ack.

Crash anywhere before the ack -> redelivery -> the unique request_id makes the
second write a no-op. An undecodable message goes to the dead-letter stream and
is terminated, so it never blocks the stream.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import psycopg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from hydite_common.events import PoisonMessage, UsageBatch, decode_batch
from hydite_common.usage_stream import dead_letter_subject, usage_stream_name
from hydite_spend_ingest.settings import IngestSettings
from hydite_spend_ingest.writer import write_batches

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

    async def ingest(self, conn: psycopg.AsyncConnection[object], messages: list[Msg]) -> None:
        """Write one fetch's messages and settle each: ack once committed, nak on a database
        outage (re-raised, so the caller reconnects), dead-letter and term what is poison."""
        decoded: list[tuple[Msg, UsageBatch]] = []
        for msg in messages:
            try:
                decoded.append((msg, decode_batch(msg.data)))
            except PoisonMessage as exc:
                await self._dead_letter(msg, str(exc))
        if not decoded:
            return
        try:
            inserted = await write_batches(conn, [batch for _, batch in decoded])
        except psycopg.OperationalError:
            self.counters.write_errors += 1
            for msg, _ in decoded:
                await msg.nak(delay=NAK_DELAY_SECONDS)
            raise
        except psycopg.Error:
            # Something in the data is unstorable: find the message(s) by writing one at a time.
            self.counters.write_errors += 1
            for msg, batch in decoded:
                await self._ingest_one(conn, msg, batch)
            return
        self._count([batch for _, batch in decoded], inserted)
        for msg, _ in decoded:
            await msg.ack()

    async def _ingest_one(self, conn: psycopg.AsyncConnection[object], msg: Msg, batch: UsageBatch) -> None:
        try:
            inserted = await write_batches(conn, [batch])
        except psycopg.OperationalError:
            await msg.nak(delay=NAK_DELAY_SECONDS)
            raise
        except psycopg.Error as exc:
            await self._dead_letter(msg, f"unstorable: {type(exc).__name__}")
            return
        self._count([batch], inserted)
        await msg.ack()

    def _count(self, batches: list[UsageBatch], inserted: int) -> None:
        events = sum(len(b.events) for b in batches)
        self.counters.batches += len(batches)
        self.counters.events_written += inserted
        self.counters.duplicates += events - inserted

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        self.counters.poison += 1
        log.error("usage message is undecodable (%s); moved to the dead-letter stream", reason)
        await self._js.publish(
            dead_letter_subject(self._settings),
            msg.data,
            headers={"Hydite-Poison-Reason": reason[:200]},
        )
        await msg.term()
