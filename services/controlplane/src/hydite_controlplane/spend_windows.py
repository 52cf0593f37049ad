"""Budget windows kept in step with the entities' periods, reset on time, and carried in the KV
entries the data planes read.

An admin write that configures periods calls `ensure_windows` inside its transaction; the
request's middleware writes the entries once the handler committed, so the entry carries the
window before the call answers. The
reset task runs on every control-plane replica: it sleeps until the earliest reset (woken by a
Postgres NOTIFY when a window is created), resets what is due with FOR UPDATE SKIP LOCKED (each
window once across replicas) and writes the entries. An entry that cannot be written (NATS down)
is kept and written again until it is; Postgres already holds the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

import psycopg
from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.http import Handler
from hydite_common.spend_totals import put_if_newer
from hydite_controlplane.admin.auth import AdminCaller
from hydite_controlplane.admin.entities import Companions, InfoExtra
from hydite_controlplane.admin.live_spend import period_fields
from hydite_controlplane.admin.validation import check_stored_windows
from hydite_controlplane.budget_periods import Period, ResetPolicy
from hydite_controlplane.db import listen_forever, run_sql
from hydite_controlplane.messaging import NatsLink
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.store.spend_windows import (
    WINDOWS_CHANNEL,
    Entity,
    earliest_reset,
    entry_of,
    reset_due,
    row_periods,
    sync_windows,
)

log = logging.getLogger(__name__)

LONGEST_SLEEP_SECONDS = 30.0
"""The reset task looks again at least this often (a window another replica created while this
one's notification listener was reconnecting)."""
RETRY_SECONDS = 1.0
SHORTEST_SLEEP_SECONDS = 0.02
RECENT_WINDOWS = timedelta(hours=24)
"""On start, entries of windows changed this recently are written again (one a previous process
committed but never wrote is not lost)."""


class BudgetWindows:
    """Creates, resets and publishes budget windows for one control-plane replica."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], nats: NatsLink, policy: ResetPolicy, libpq_url: str
    ) -> None:
        self._sessions = sessions
        self._nats = nats
        self.policy = policy
        self._libpq_url = libpq_url
        self._unwritten: set[Entity] = set()
        self._wake = asyncio.Event()
        self.resets = 0
        """Windows-reset transactions this replica committed (for /metrics)."""
        self.passes = 0
        """Times the reset task looked for due windows (for /metrics)."""

    async def ensure(
        self,
        session: AsyncSession,
        kind: str,
        entity: str,
        periods: Iterable[Period],
        *,
        changed: set[Entity],
    ) -> bool:
        """Give the entity exactly one window per period (in the caller's transaction), adding it
        to `changed` if a window changed; the caller calls `published(changed)` after it commits."""
        if await sync_windows(kind, entity, periods, session=session, now=utcnow(), policy=self.policy):
            changed.add((kind, entity))
            return True
        return False

    async def published(self, changed: Iterable[Entity]) -> None:
        """After a commit that changed these entities' windows: write their entries (and let the
        reset task plan for the new windows)."""
        self._wake.set()
        await self.publish(changed)

    async def publish(self, entities: Iterable[Entity]) -> None:
        """Write the entities' entries as Postgres holds them now; one that cannot be written is
        written again by the background task until it is."""
        wanted = set(entities)
        try:
            bucket = self._nats.totals()
            async with self._sessions() as session:
                _ = await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                entries = [await entry_of(kind, entity, session=session) for kind, entity in sorted(wanted)]
            for entry in entries:
                if entry is not None:
                    await put_if_newer(bucket, entry)
                    wanted.discard((entry.kind, entry.entity))
            wanted.clear()
        except Exception as exc:
            log.warning("budget window entries not written yet (%s); will retry", type(exc).__name__)
        finally:
            self._unwritten |= wanted

    async def reset_once(self) -> list[Entity]:
        """Reset every window due now (those no other replica is resetting) and write their entries."""
        reset: list[Entity] = []
        self.passes += 1
        while True:
            async with self._sessions() as session:
                batch = await reset_due(session=session, now=utcnow(), policy=self.policy)
                await session.commit()
            if not batch:
                break
            self.resets += 1
            reset += batch
            await self.publish(batch)
        return reset

    async def _sleep_until_due(self) -> None:
        async with self._sessions() as session:
            due = await earliest_reset(session=session)
        wait = LONGEST_SLEEP_SECONDS
        if due is not None:
            # Not 0: a due window another replica is resetting stays due until it commits.
            wait = min(wait, max(SHORTEST_SLEEP_SECONDS, (due - utcnow()).total_seconds()))
        if self._unwritten:
            wait = min(wait, RETRY_SECONDS)
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait)

    async def run(self) -> None:
        """Reset due windows on time and retry unwritten entries, until cancelled."""
        listener = asyncio.create_task(listen_forever(self._libpq_url, WINDOWS_CHANNEL, self._listen))
        try:
            await self._recover()
            while True:
                try:
                    await self.reset_once()
                    if self._unwritten:
                        retry, self._unwritten = self._unwritten, set()
                        await self.publish(retry)
                    await self._sleep_until_due()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("budget window resets failed (%s); retrying", type(exc).__name__)
                    await asyncio.sleep(RETRY_SECONDS)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _recover(self) -> None:
        while True:
            try:
                async with self._sessions() as session:
                    since = utcnow() - RECENT_WINDOWS
                    result = await run_sql(
                        session,
                        "SELECT DISTINCT kind, entity FROM spend_windows WHERE updated_at > :since",
                        {"since": since},
                    )
                    self._unwritten |= {(str(kind), str(entity)) for kind, entity in map(tuple, result.all())}
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("budget windows not readable yet (%s); retrying", type(exc).__name__)
                await asyncio.sleep(RETRY_SECONDS)

    async def _listen(self, conn: psycopg.AsyncConnection[object]) -> None:
        self._wake.set()  # a notification missed while reconnecting
        async for _ in conn.notifies():
            self._wake.set()


BUDGET_WINDOWS = web.AppKey("budget_windows", BudgetWindows)


class RequestWindows:
    """The windows an admin request changed, written to KV once its handler returns."""

    def __init__(self, windows: BudgetWindows) -> None:
        self.windows = windows
        self.changed: set[Entity] = set()


_REQUEST: ContextVar[RequestWindows | None] = ContextVar("budget_windows_request", default=None)
DEFAULT_POLICY = ResetPolicy()


async def ensure_windows(session: AsyncSession, kind: str, entity: str, periods: Iterable[Period]) -> bool:
    """Give the entity exactly one budget window per period, in the caller's transaction (call it
    before the commit, with the entity's final limits; no periods removes its windows). Within an
    admin request the KV entry is written once the handler returns, before the answer goes out.
    True if a window changed."""
    request = _REQUEST.get()
    if request is not None:
        return await request.windows.ensure(session, kind, entity, periods, changed=request.changed)
    return await sync_windows(kind, entity, periods, session=session, now=utcnow(), policy=DEFAULT_POLICY)


@web.middleware
async def publish_windows_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Writes the KV entries of the windows a request changed after its handler committed them."""
    windows = request.app.get(BUDGET_WINDOWS)
    if windows is None or request.method in ("GET", "HEAD", "OPTIONS"):
        return await handler(request)
    changes = RequestWindows(windows)
    token = _REQUEST.set(changes)
    try:
        return await handler(request)
    finally:
        _REQUEST.reset(token)
        if changes.changed:
            await windows.published(changes.changed)


def with_windows(kind: str, id_column: str, companions: Companions) -> Companions:
    """An Entity's companions hook that also keeps the row's budget windows in step with its
    periods (none once it is deleted)."""

    async def companions_and_windows(session: AsyncSession, row: Any, deleting: bool) -> list[SQLModel]:
        if not deleting:
            check_stored_windows(row)
        periods = [] if deleting else await row_periods(row, session=session)
        await ensure_windows(session, kind, str(getattr(row, id_column)), periods)
        return await companions(session, row, deleting)

    return companions_and_windows


def with_period_info(
    kind: str, id_column: str, info_extra: InfoExtra, nested: str | None = None
) -> InfoExtra:
    """An Entity's info_extra hook that also answers the row's `budget_reset_at` and
    `budget_periods` (at the top, and in the `nested` form of the row when the answer has one)."""

    async def info_and_periods(session: AsyncSession, caller: AdminCaller, row: Any) -> dict[str, Any]:
        extra = await info_extra(session, caller, row)
        periods = await period_fields(kind, str(getattr(row, id_column)), row, session=session)
        if nested is not None and isinstance(extra.get(nested), dict):
            extra = {**extra, nested: {**extra[nested], **periods}}
        return {**extra, **periods}

    return info_and_periods
