"""Keeps the snapshot cache at the database's head: full load, then LISTEN/NOTIFY catch-up.

Every control-plane replica follows the same change log, so a write committed
through one replica reaches data planes connected to any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import psycopg
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane.config.builder import RESOURCE_TABLES, load_resources
from hydite_controlplane.config.cache import Changes, SnapshotCache
from hydite_controlplane.config.changelog import NOTIFY_CHANNEL
from hydite_controlplane.db import run_sql
from hydite_controlplane.models.config import ConfigChange

log = logging.getLogger(__name__)

SAFETY_POLL_SECONDS = 5.0


class ChangeFollower:
    """Loads the snapshot and applies every committed config change to the cache."""

    def __init__(
        self, cache: SnapshotCache, sessions: async_sessionmaker[AsyncSession], libpq_url: str
    ) -> None:
        self._cache = cache
        self._sessions = sessions
        self._libpq_url = libpq_url
        self._lock = asyncio.Lock()

    async def load_full(self) -> None:
        """Read the head version and every resource in one consistent read."""
        async with self._lock, self._sessions() as session:
            await run_sql(session, ("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            head = await self._head(session)
            resources = {t: await load_resources(session, t) for t in RESOURCE_TABLES}
            self._cache.reset(head, resources)

    async def catch_up(self) -> None:
        """Apply the changes committed since the cache's version, read consistently."""
        async with self._lock, self._sessions() as session:
            await run_sql(session, ("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            head = await self._head(session)
            if head <= self._cache.version:
                return
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
            for type_url, names in touched.items():
                found = {r.name: r for r in await load_resources(session, type_url, names)}
                for name in names:
                    changes[(type_url, name)] = found.get(name)
            self._cache.apply(head, changes)

    @staticmethod
    async def _head(session: AsyncSession) -> int:
        value = (
            await run_sql(session, ("SELECT coalesce(max(version), 0) FROM config_changes"))
        ).scalar_one()
        return int(value)

    async def run(self) -> None:
        """Follow NOTIFYs forever; reconnect with backoff; poll now and then as a safety net."""
        backoff = 0.2
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._libpq_url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    backoff = 0.2
                    await self.catch_up()
                    while True:
                        async for _ in conn.notifies(timeout=SAFETY_POLL_SECONDS, stop_after=1):
                            pass
                        await self.catch_up()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("config change listener lost its connection; retrying", exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
