"""Keeps the snapshot cache at the database's head: full load, then LISTEN/NOTIFY catch-up.

Every control-plane replica follows the same change log, so a write committed
through one replica reaches data planes connected to any other.

Rows are read and built one resource at a time: a row that cannot be read or built is
quarantined (see `builder`), reported in the cache, and everything else keeps propagating.
A resource that becomes unbuildable is removed in the delta of the version that broke it, so a
data plane never keeps serving its older version.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane.config.builder import RESOURCE_TABLES, Built, build_resources
from hydite_controlplane.config.cache import Changes, ResourceId, SnapshotCache
from hydite_controlplane.config.changelog import NOTIFY_CHANNEL, ResourceChange, record_changes
from hydite_controlplane.config.reader import read_rows
from hydite_controlplane.db import listen_forever, run_sql
from hydite_controlplane.models.config import ConfigChange

log = logging.getLogger(__name__)

SAFETY_POLL_SECONDS = 5.0


class ChangeFollower:
    """Loads the snapshot and applies every committed config change to the cache."""

    def __init__(
        self,
        cache: SnapshotCache,
        sessions: async_sessionmaker[AsyncSession],
        libpq_url: str,
        on_built: Callable[[str, float], None] | None = None,
    ) -> None:
        """on_built: told ("full" or "delta", seconds) after each read and build from Postgres."""
        self._cache = cache
        self._sessions = sessions
        self._libpq_url = libpq_url
        self._lock = asyncio.Lock()
        self._on_built = on_built

    async def load_full(self) -> None:
        """Read the head version and every resource in one consistent read.

        Rows quarantined here may have been broken without a change-log entry (by hand) while
        data planes still hold their last good version at this very head: they are announced
        as a new version, so every data plane drops them.
        """
        started = time.perf_counter()
        async with self._lock, self._sessions() as session:
            await run_sql(session, ("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            head = await self._head(session)
            resources = {}
            quarantined: dict[ResourceId, str] = {}
            for type_url in RESOURCE_TABLES:
                built = await self._build(session, type_url)
                resources[type_url] = built.resources
                quarantined.update({(type_url, name): r for name, r in built.quarantined.items()})
            for (type_url, name), reason in sorted(quarantined.items()):
                log.warning("config resource %s %s left out of the snapshot: %s", type_url, name, reason)
            self._cache.reset(head, resources, quarantined)
        if self._on_built is not None:
            self._on_built("full", time.perf_counter() - started)
        if quarantined:
            try:
                await self._announce(quarantined)
            except Exception:
                # Best effort: the data planes that connect now get the snapshot without them.
                log.warning("could not announce the quarantined resources", exc_info=True)

    async def catch_up(self) -> None:
        """Apply the changes committed since the cache's version, read consistently.

        With nothing new, re-check quarantined rows: one fixed without a change-log entry (by
        hand) is announced as a new version, which this call's next run then applies.
        """
        recovered: list[ResourceId] = []
        async with self._lock, self._sessions() as session:
            await run_sql(session, ("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            head = await self._head(session)
            if head <= self._cache.version:
                recovered = await self._recovered(session)
            else:
                started = time.perf_counter()
                await self._apply_changes_up_to(session, head)
                if self._on_built is not None:
                    self._on_built("delta", time.perf_counter() - started)
        if recovered:
            await self._announce(recovered)

    async def _apply_changes_up_to(self, session: AsyncSession, head: int) -> None:
        rows = (
            await session.exec(
                select(col(ConfigChange.type_url), col(ConfigChange.name))
                .where(col(ConfigChange.version) > self._cache.version)
                .order_by(col(ConfigChange.version))
            )
        ).all()
        touched: dict[str, set[str]] = defaultdict(set)
        for type_url, name in rows:
            if type_url in RESOURCE_TABLES:
                touched[type_url].add(name)
        changes: Changes = {}
        quarantine: dict[ResourceId, str | None] = {}
        for type_url, names in touched.items():
            built = await self._build(session, type_url, names)
            found = {r.name: r for r in built.resources}
            for name in names:
                # Absent (deleted, or quarantined without a stand-in) is a removal: never the
                # resource's previous version.
                changes[(type_url, name)] = found.get(name)
                quarantine[(type_url, name)] = built.quarantined.get(name)
        self._log_quarantine_changes(quarantine)
        self._cache.apply(head, changes, quarantine)

    async def _build(self, session: AsyncSession, type_url: str, names: Iterable[str] | None = None) -> Built:
        table = RESOURCE_TABLES[type_url]
        read = await read_rows(session, table, names)
        return build_resources(table, read.rows, read.unreadable)

    async def _recovered(self, session: AsyncSession) -> list[ResourceId]:
        """Quarantined resources whose row now builds, or is gone."""
        by_type: dict[str, list[str]] = defaultdict(list)
        for entry in self._cache.quarantined():
            by_type[entry.type_url].append(entry.name)
        recovered: list[ResourceId] = []
        for type_url, names in by_type.items():
            if type_url not in RESOURCE_TABLES:
                continue
            built = await self._build(session, type_url, names)
            recovered.extend((type_url, n) for n in names if n not in built.quarantined)
        return recovered

    async def _announce(self, resource_ids: Iterable[ResourceId]) -> None:
        """Record a config version touching these resources, so every replica re-reads them and
        every data plane receives what the head now says about them."""
        changes = [ResourceChange(type_url, name) for type_url, name in sorted(resource_ids)]
        async with self._sessions() as session:
            version = await record_changes(session, changes)
            await session.commit()
        log.info(
            "config version %d re-announces %d quarantined or recovered resources", version, len(changes)
        )

    def _log_quarantine_changes(self, quarantine: dict[ResourceId, str | None]) -> None:
        for (type_url, name), reason in sorted(quarantine.items()):
            was = self._cache.is_quarantined((type_url, name))
            if reason is not None:
                log.warning("config resource %s %s left out of the snapshot: %s", type_url, name, reason)
            elif was:
                log.info("config resource %s %s builds again and is back in the snapshot", type_url, name)

    @staticmethod
    async def _head(session: AsyncSession) -> int:
        value = (
            await run_sql(session, ("SELECT coalesce(max(version), 0) FROM config_changes"))
        ).scalar_one()
        return int(value)

    async def run(self) -> None:
        """Follow NOTIFYs forever; reconnect with backoff; poll now and then as a safety net."""
        await listen_forever(self._libpq_url, NOTIFY_CHANNEL, self._follow)

    async def _follow(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await self.catch_up()
        while True:
            async for _ in conn.notifies(timeout=SAFETY_POLL_SECONDS, stop_after=1):
                pass
            await self.catch_up()
