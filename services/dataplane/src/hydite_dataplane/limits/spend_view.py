"""Committed spend, as spend-ingest's running totals say: the JetStream KV bucket watched whole, in
memory (one float per entity and one per budget period). Off the request path: the watch delivers
every entry once and then each change; a lookup is two dict reads.

Each entry also says up to which of this replica's usage batches it counts (`ingested`), which
releases the settled costs the budget ledger holds until then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from nats.aio.client import Client as NatsClient

from hydite_common.settings import BaseServiceSettings
from hydite_common.spend_totals import TotalEntry, totals_bucket

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


def _sum(amounts: dict[str, str]) -> float:
    """The sum over currencies of decimal strings (a bad one counts as nothing)."""
    total = Decimal(0)
    for amount in amounts.values():
        try:
            total += Decimal(amount)
        except InvalidOperation:
            continue
    return float(total)


class SpendView:
    """Every entity's committed spend, kept current by watching the totals bucket."""

    def __init__(self, publisher_id: str) -> None:
        self._publisher_id = publisher_id
        self._totals: dict[str, tuple[float, dict[str, float]]] = {}
        self.on_ingested: Callable[[str, int], None] = lambda kv_key, watermark: None
        self.loaded = False
        """Whether every entry present when the watch began has been read."""
        self.malformed = 0

    def committed(self, kv_key: str, duration: str) -> float:
        """The entity's spend in the current period of duration ("" : all time); without a window
        for it in the entry, the entity's whole total."""
        found = self._totals.get(kv_key)
        if found is None:
            return 0.0
        total, baselines = found
        return total - baselines.get(duration, 0.0) if duration else total

    def apply(self, kv_key: str, value: bytes | None) -> None:
        """One entry as the watch delivered it (None: deleted)."""
        if not value:
            self._totals.pop(kv_key, None)
            return
        try:
            entry = TotalEntry.decode(value)
        except ValueError:
            self.malformed += 1
            return
        total = _sum(entry.spend)
        baselines = {duration: _sum(window.baseline) for duration, window in entry.windows.items()}
        self._totals[kv_key] = (total, baselines)
        watermark = entry.ingested.get(self._publisher_id)
        if watermark is not None:
            self.on_ingested(kv_key, watermark)

    async def watch(self, client: NatsClient, settings: BaseServiceSettings) -> None:
        """Follow the bucket until cancelled, starting over after any failure."""
        while True:
            try:
                bucket = await totals_bucket(client.jetstream(), settings)
                watcher = await bucket.watchall()
                async for entry in watcher:
                    if entry is None:
                        self.loaded = True
                        continue
                    self.apply(entry.key, entry.value if entry.operation is None else None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("spend totals watch interrupted (%s); starting over", type(exc).__name__)
            await asyncio.sleep(RETRY_SECONDS)

    @property
    def entities(self) -> int:
        """Entities with a committed total."""
        return len(self._totals)
