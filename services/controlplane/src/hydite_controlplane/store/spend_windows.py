"""Queries on budget windows (spend_windows): creating and removing an entity's windows, resetting
due ones, and the KV entry of an entity as its totals and windows stand.

Lock order, the same everywhere so nothing deadlocks: an entity's spend_windows rows, then its
spend_totals rows (sorted by kind, entity, currency, as spend-ingest locks them). Every change of a
window adds one to the version of each of the entity's totals rows, so the entry written after it
is newer than any written before (the KV bucket's compare-and-set only accepts newer ones).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.spend_totals import TotalEntry, TotalRow, WindowBaseline, entries_of, window_baseline
from hydite_controlplane.budget_periods import Period, ResetPolicy, following_reset, next_reset, periods_of
from hydite_controlplane.db import run_sql
from hydite_controlplane.models.budgets import BudgetRow
from hydite_controlplane.store.spend_totals import DEFAULT_CURRENCY

Entity = tuple[str, str]
WATERMARK_PUBLISHERS = 1_000
"""The publishers' watermarks an entry carries (the most recently active), as spend-ingest's."""
WINDOWS_CHANNEL = "hydite_spend_windows"
"""Postgres NOTIFY channel: a window was created or reset (reset tasks re-plan their sleep)."""

_LOCK_WINDOWS = """
SELECT duration, start_at, reset_at FROM spend_windows WHERE kind = :kind AND entity = :entity
ORDER BY duration FOR UPDATE
"""
_LOCK_TOTALS = """
SELECT currency, spend FROM spend_totals WHERE kind = :kind AND entity = :entity
ORDER BY currency FOR UPDATE
"""
_NEW_TOTAL = """
INSERT INTO spend_totals (kind, entity, currency, spend, version, updated_at)
VALUES (:kind, :entity, :currency, 0, 0, now()) ON CONFLICT DO NOTHING
"""
_BUMP = (
    "UPDATE spend_totals SET version = version + 1, updated_at = now() "
    "WHERE kind = :kind AND entity = :entity"
)
_NEW_WINDOW = """
INSERT INTO spend_windows (kind, entity, duration, start_at, reset_at, baseline, updated_at)
VALUES (:kind, :entity, :duration, :start_at, :reset_at, CAST(:baseline AS jsonb), now())
ON CONFLICT (kind, entity, duration) DO NOTHING
"""
_DROP_WINDOW = "DELETE FROM spend_windows WHERE kind = :kind AND entity = :entity AND duration = :duration"
_DUE = """
SELECT kind, entity, duration, reset_at FROM spend_windows WHERE reset_at <= :now
ORDER BY kind, entity, duration LIMIT :limit FOR UPDATE SKIP LOCKED
"""
_RESET = """
UPDATE spend_windows SET start_at = :start_at, reset_at = :reset_at,
    baseline = CAST(:baseline AS jsonb), updated_at = now()
WHERE kind = :kind AND entity = :entity AND duration = :duration
"""
_REBASE = (
    "UPDATE spend_windows SET baseline = '{}'::jsonb, updated_at = now() "
    "WHERE kind = :kind AND entity = :entity"
)
_TOTAL_ROWS = """
SELECT kind, entity, currency, spend, requests, total_tokens, version, reset_at FROM spend_totals
WHERE kind = :kind AND entity = :entity ORDER BY currency
"""
_WINDOW_ROWS = """
SELECT duration, start_at, reset_at, baseline FROM spend_windows WHERE kind = :kind AND entity = :entity
"""
_WATERMARKS = """
SELECT publisher_id, watermark FROM spend_publishers
WHERE updated_at > now() - interval '24 hours' ORDER BY updated_at DESC LIMIT :limit
"""
_WINDOWS_OF = """
SELECT kind, entity, duration, start_at, reset_at, baseline FROM spend_windows
WHERE kind = :kind AND entity = ANY(:entities)
"""


async def _rows(session: AsyncSession, statement: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in (await run_sql(session, statement, params)).all()]


def _json(spends: dict[str, Decimal]) -> str:
    return orjson.dumps({currency: str(amount) for currency, amount in spends.items()}).decode()


async def lock_windows(kind: str, entity: str, *, session: AsyncSession) -> dict[str, datetime]:
    """Lock the entity's windows until the transaction ends (first in the lock order); their
    reset times by duration."""
    found = await _rows(session, _LOCK_WINDOWS, {"kind": kind, "entity": entity})
    return {str(duration): reset_at for duration, _, reset_at in found}


async def _locked_spends(kind: str, entity: str, *, session: AsyncSession) -> dict[str, Decimal]:
    """Lock the entity's totals rows, creating one (0 in the default currency) when it has none."""
    ids = {"kind": kind, "entity": entity}
    rows = await _rows(session, _LOCK_TOTALS, ids)
    if not rows:
        await run_sql(session, _NEW_TOTAL, {**ids, "currency": DEFAULT_CURRENCY})
        rows = await _rows(session, _LOCK_TOTALS, ids)
    return {str(currency): Decimal(spend) for currency, spend in rows}


async def sync_windows(
    kind: str, entity: str, periods: Iterable[Period], *, session: AsyncSession, now: datetime,
    policy: ResetPolicy,
) -> bool:  # fmt: skip
    """Give the entity one window per period duration, in the session's transaction: a new one
    begins now with the entity's current total as its baseline, one whose period went away is
    removed, one that stays keeps its start and baseline. True if any window changed."""
    wanted = {period.duration for period in periods}
    existing = await lock_windows(kind, entity, session=session)
    if wanted == set(existing):
        return False
    ids = {"kind": kind, "entity": entity}
    spends = await _locked_spends(kind, entity, session=session)
    for duration in set(existing) - wanted:
        await run_sql(session, _DROP_WINDOW, {**ids, "duration": duration})
    for duration in sorted(wanted - set(existing)):
        await run_sql(
            session,
            _NEW_WINDOW,
            {
                **ids, "duration": duration, "start_at": now,
                "reset_at": next_reset(duration, now, policy), "baseline": _json(spends),
            },
        )  # fmt: skip
    await run_sql(session, _BUMP, ids)
    await run_sql(session, f"NOTIFY {WINDOWS_CHANNEL}")
    return True


async def rebase_windows(kind: str, entity: str, *, session: AsyncSession) -> bool:
    """After an admin set the entity's total: its windows count from zero, so spend in each is the
    total just set (the caller holds the windows' locks, see lock_windows). True if it has any."""
    result = await run_sql(session, _REBASE, {"kind": kind, "entity": entity})
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def reset_due(
    *, session: AsyncSession, now: datetime, policy: ResetPolicy, limit: int = 500
) -> list[Entity]:
    """Reset the windows due at `now` that no other transaction holds (FOR UPDATE SKIP LOCKED, so
    replicas racing reset each window once): baseline := the current total, the period begins at
    its reset time and resets at the next. The entities whose windows were reset."""
    due = await _rows(session, _DUE, {"now": now, "limit": limit})
    by_entity: dict[Entity, list[tuple[str, datetime]]] = {}
    for kind, entity, duration, reset_at in due:
        by_entity.setdefault((str(kind), str(entity)), []).append((str(duration), reset_at))
    for (kind, entity), windows in sorted(by_entity.items()):
        ids = {"kind": kind, "entity": entity}
        baseline = _json(await _locked_spends(kind, entity, session=session))
        for duration, reset_at in windows:
            await run_sql(
                session,
                _RESET,
                {
                    **ids, "duration": duration, "start_at": reset_at, "baseline": baseline,
                    "reset_at": following_reset(duration, reset_at, now, policy),
                },
            )  # fmt: skip
        await run_sql(session, _BUMP, ids)
    return sorted(by_entity)


async def earliest_reset(*, session: AsyncSession) -> datetime | None:
    """When the next window is due, if any."""
    return (await run_sql(session, "SELECT min(reset_at) FROM spend_windows")).scalar()


async def entry_of(
    kind: str, entity: str, *, session: AsyncSession, rows: Sequence[TotalRow] | None = None
) -> TotalEntry | None:
    """The entity's KV entry as the session's transaction sees its totals (or `rows`, the ones it
    just wrote), windows and the publishers' watermarks (read them in one snapshot, or under the
    entity's locks)."""
    ids = {"kind": kind, "entity": entity}
    if rows is None:
        rows = [TotalRow(*row) for row in await _rows(session, _TOTAL_ROWS, ids)]
    if not rows:
        return None
    watermarks = await _rows(session, _WATERMARKS, {"limit": WATERMARK_PUBLISHERS})
    ingested = {str(publisher): int(mark) for publisher, mark in watermarks}
    [entry] = entries_of(rows, updated_ms=time.time() * 1000, ingested=ingested)
    windows = {
        str(duration): window_baseline(start_at, reset_at, baseline)
        for duration, start_at, reset_at, baseline in await _rows(session, _WINDOW_ROWS, ids)
    }
    return replace(entry, windows=windows)


async def windows_of(
    kind: str, entities: Sequence[str], *, session: AsyncSession
) -> dict[str, dict[str, WindowBaseline]]:
    """The windows of entities of one kind: entity -> duration -> window."""
    found: dict[str, dict[str, WindowBaseline]] = {}
    if not entities:
        return found
    rows = await _rows(session, _WINDOWS_OF, {"kind": kind, "entities": list(entities)})
    for _, entity, duration, start_at, reset_at, baseline in rows:
        found.setdefault(str(entity), {})[str(duration)] = window_baseline(start_at, reset_at, baseline)
    return found


async def row_periods(row: Any, *, session: AsyncSession) -> list[Period]:
    """The periods of a row with limit columns, its linked Budget's filling what it sets none of."""
    budget_id = getattr(row, "budget_id", None)
    linked = await session.get(BudgetRow, budget_id) if budget_id else None
    return periods_of(row, linked)
