"""Running totals to the JetStream KV bucket, after the commit that changed them and off the ack path.

The consumer marks the (kind, entity) of every total a commit moved; this task reads their rows and
the publishers' watermarks from Postgres in one consistent read, and writes each entity's entry with
compare-and-set (`put_if_newer`), so an entry only ever moves forward. An entity whose write fails
stays marked and is retried; on start, the entities changed in the last `totals_recent_seconds` are
written again, so a write the previous process never made is not lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from psycopg.rows import tuple_row

from hydite_common.spend_totals import (
    KnownRevisions,
    TotalEntry,
    TotalRow,
    WindowBaseline,
    entries_of,
    put_if_newer_known,
    totals_bucket,
    window_baseline,
    with_windows,
)
from hydite_spend_ingest.settings import IngestSettings

log = logging.getLogger(__name__)

Entity = tuple[str, str]
READ_CHUNK = 1_000
"""Entities read per query."""
CONCURRENT_WRITES = 32
WATERMARK_PUBLISHERS = 1_000
WATERMARK_WINDOW = timedelta(hours=24)

_TOTAL_ROWS = """
SELECT t.kind, t.entity, t.currency, t.spend, t.requests, t.total_tokens, t.version, t.reset_at
FROM spend_totals AS t JOIN unnest(%s::text[], %s::text[]) AS e(kind, entity) USING (kind, entity)
"""
_WINDOW_ROWS = """
SELECT w.kind, w.entity, w.duration, w.start_at, w.reset_at, w.baseline
FROM spend_windows AS w JOIN unnest(%s::text[], %s::text[]) AS e(kind, entity) USING (kind, entity)
"""
_WATERMARKS = """
SELECT publisher_id, watermark FROM spend_publishers
WHERE updated_at > now() - %s ORDER BY updated_at DESC LIMIT %s
"""
_RECENT = "SELECT DISTINCT kind, entity FROM spend_totals WHERE updated_at > now() - %s"


@dataclass
class TotalsCounters:
    """What the KV writer has done since start (exported on /metrics)."""

    written: int = 0
    stale: int = 0
    """Entries not written because the bucket already held one at least as new."""
    failures: int = 0


async def read_entries(conn: psycopg.AsyncConnection[object], entities: Iterable[Entity]) -> list[TotalEntry]:
    """The KV entries of the entities, from one snapshot of their totals, budget windows and the
    watermarks."""
    wanted = sorted(set(entities))
    if not wanted:
        return []
    async with conn.transaction(), conn.cursor(row_factory=tuple_row) as cursor:
        await cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        rows: list[TotalRow] = []
        windows: dict[Entity, dict[str, WindowBaseline]] = {}
        for start in range(0, len(wanted), READ_CHUNK):
            chunk = wanted[start : start + READ_CHUNK]
            ids = ([k for k, _ in chunk], [e for _, e in chunk])
            await cursor.execute(_TOTAL_ROWS, ids)
            rows += [TotalRow(*row) for row in await cursor.fetchall()]
            await cursor.execute(_WINDOW_ROWS, ids)
            for kind, entity, duration, start_at, reset_at, baseline in await cursor.fetchall():
                windows.setdefault((kind, entity), {})[duration] = window_baseline(
                    start_at, reset_at, baseline
                )
        await cursor.execute(_WATERMARKS, (WATERMARK_WINDOW, WATERMARK_PUBLISHERS))
        ingested = {str(publisher): int(watermark) for publisher, watermark in await cursor.fetchall()}
    return with_windows(entries_of(rows, updated_ms=time.time() * 1000, ingested=ingested), windows)


class TotalsWriter:
    """Keeps the KV bucket's totals in step with spend_totals."""

    def __init__(self, settings: IngestSettings, js: JetStreamContext) -> None:
        self._settings = settings
        self._js = js
        self._dirty: set[Entity] = set()
        self._wake = asyncio.Event()
        self._in_flight = 0
        self._known: KnownRevisions = {}
        self._bucket: KeyValue | None = None
        self.counters = TotalsCounters()

    @property
    def dirty(self) -> int:
        """Entities whose entry is still to be written (or is being written)."""
        return len(self._dirty) + self._in_flight

    def mark(self, entities: Iterable[Entity]) -> None:
        """These totals changed in a committed transaction: their entries are to be written."""
        self._dirty.update(entities)
        self._wake.set()

    async def run(self) -> None:
        """Write marked entries until cancelled; reconnect and retry after any failure."""
        settings = self._settings
        kv: KeyValue | None = None
        recovered = False
        while True:
            try:
                if kv is None:
                    kv = await totals_bucket(self._js, settings)
                async with await psycopg.AsyncConnection.connect(settings.libpq_url, autocommit=True) as conn:
                    if not recovered:
                        self.mark(await self._recent(conn))
                        recovered = True
                    while True:
                        await self._wake.wait()
                        self._wake.clear()
                        started = time.monotonic()
                        await self.flush(conn, kv)
                        if self._dirty:
                            await asyncio.sleep(settings.totals_retry_seconds)
                            self._wake.set()
                        # Under load, an entity's changes gather between flushes: one write for many commits.
                        await asyncio.sleep(
                            settings.totals_flush_interval_seconds - (time.monotonic() - started)
                        )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("spend totals not written to KV (%s); retrying", type(exc).__name__)
                await asyncio.sleep(settings.totals_retry_seconds)

    async def _recent(self, conn: psycopg.AsyncConnection[object]) -> list[Entity]:
        recent = timedelta(seconds=self._settings.totals_recent_seconds)
        async with conn.cursor(row_factory=tuple_row) as cursor:
            await cursor.execute(_RECENT, (recent,))
            return [(str(kind), str(entity)) for kind, entity in await cursor.fetchall()]

    async def flush(self, conn: psycopg.AsyncConnection[object], kv: KeyValue) -> None:
        """Write the entries of every marked entity; one that fails stays marked."""
        taken, self._dirty = self._dirty, set()
        self._in_flight = len(taken)
        try:
            entries = await read_entries(conn, taken)
            await self._put_all(kv, entries)
        except BaseException:
            self._dirty |= taken
            raise
        finally:
            self._in_flight = 0

    async def _put_all(self, kv: KeyValue, entries: list[TotalEntry]) -> None:
        gate = asyncio.Semaphore(CONCURRENT_WRITES)
        if kv is not self._bucket:
            # Another bucket object (recreated): what was known of the old one's revisions may not hold.
            self._known.clear()
            self._bucket = kv

        async def put(entry: TotalEntry) -> None:
            async with gate:
                try:
                    if await put_if_newer_known(kv, entry, self._known):
                        self.counters.written += 1
                    else:
                        self.counters.stale += 1
                except Exception as exc:
                    self.counters.failures += 1
                    self._dirty.add((entry.kind, entry.entity))
                    log.warning("spend total %s not written (%s); will retry", entry.key, type(exc).__name__)

        await asyncio.gather(*(put(entry) for entry in entries))
