"""Spend log retention: rows older than `spend_log_retention` are deleted in bounded batches.

spend_logs (by start time), spend_payloads (by creation) and spend_reconciliation (by minute) are
trimmed; daily rollups and running totals are kept, so reports and budgets do not change. Each
statement deletes at most `retention_batch_rows` rows and the loop pauses between statements, so
ingestion and readers never wait long on it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from hydite_spend_ingest.settings import IngestSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Trimmed:
    """A table retention trims: the columns that name a row, and the time it is judged by."""

    table: str
    key: str
    time_column: str

    def statement(self) -> str:
        """DELETE of at most %(limit)s rows older than %(cutoff)s."""
        return (
            f"DELETE FROM {self.table} WHERE ({self.key}) IN ("
            f"SELECT {self.key} FROM {self.table} WHERE {self.time_column} < %(cutoff)s LIMIT %(limit)s)"
        )


TRIMMED = (
    Trimmed("spend_logs", "id", "start_time"),
    Trimmed("spend_payloads", "request_id", "created_at"),
    Trimmed("spend_reconciliation", "publisher_id, minute", "minute"),
)


@dataclass
class RetentionCounters:
    """Rows deleted since start, per table (exported on /metrics)."""

    deleted: dict[str, int] = field(default_factory=lambda: {t.table: 0 for t in TRIMMED})
    statements: int = 0
    passes: int = 0
    failures: int = 0


async def delete_older_than(
    conn: psycopg.AsyncConnection[Any],
    cutoff: datetime,
    *,
    batch_rows: int,
    pause_seconds: float,
    counters: RetentionCounters,
) -> None:
    """Delete every trimmed table's rows older than cutoff, batch_rows per statement; conn is in
    autocommit mode, so each statement commits on its own and holds its locks briefly."""
    for trimmed in TRIMMED:
        statement = trimmed.statement()
        while True:
            cursor = await conn.execute(statement, {"cutoff": cutoff, "limit": batch_rows})
            counters.deleted[trimmed.table] += cursor.rowcount
            counters.statements += 1
            if cursor.rowcount < batch_rows:
                break
            await asyncio.sleep(pause_seconds)


class SpendRetention:
    """Runs the retention pass every `retention_interval_seconds` (nothing when retention is off)."""

    def __init__(self, settings: IngestSettings) -> None:
        self._settings = settings
        self.counters = RetentionCounters()

    @property
    def retention(self) -> timedelta | None:
        """How long rows are kept; None: forever."""
        return self._settings.spend_log_retention

    async def run_once(self) -> None:
        """One pass: delete what is older than the retention now."""
        settings = self._settings
        if settings.spend_log_retention is None:
            return
        cutoff = datetime.now(UTC) - settings.spend_log_retention
        async with await psycopg.AsyncConnection.connect(settings.libpq_url, autocommit=True) as conn:
            await delete_older_than(
                conn,
                cutoff,
                batch_rows=settings.retention_batch_rows,
                pause_seconds=settings.retention_pause_seconds,
                counters=self.counters,
            )
        self.counters.passes += 1

    async def run(self) -> None:
        """Pass after pass until cancelled; a failed pass is logged and the next one tries again."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.counters.failures += 1
                log.warning("spend log retention pass failed (%s)", type(exc).__name__)
            await asyncio.sleep(self._settings.retention_interval_seconds)
