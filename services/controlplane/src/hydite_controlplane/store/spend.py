"""Queries on the spend log that spend-ingest writes, and on the prompts and responses stored
beside it (spend_payloads) for keys and teams that opt in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select as sqlalchemy_select
from sqlalchemy import update
from sqlmodel import col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from hydite_common.spend_tables import SPEND_PAYLOADS, SpendLog, SpendPayload
from hydite_controlplane.db import run_sql


@dataclass(frozen=True)
class SpendFilter:
    """Which spend rows to read; None matches any value."""

    api_key: str | None = None
    request_id: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    end_user: str | None = None
    model: str | None = None
    status: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    """Rows that started before `end` (exclusive)."""

    @property
    def narrowed(self) -> bool:
        """Whether anything but the time range narrows the rows."""
        narrowing = (self.api_key, self.request_id, self.user_id, self.team_id, self.end_user, self.model)
        return any(narrowing) or bool(self.status)


def _matching(where: SpendFilter) -> SelectOfScalar[SpendLog]:
    query = select(SpendLog)
    if where.api_key:
        query = query.where(SpendLog.api_key == where.api_key)
    if where.request_id:
        # Hydite's own id, or the id of the answer, which LiteLLM's clients look rows up by.
        query = query.where(
            or_(col(SpendLog.request_id) == where.request_id, col(SpendLog.response_id) == where.request_id)
        )
    if where.user_id:
        query = query.where(SpendLog.user_id == where.user_id)
    if where.team_id:
        query = query.where(SpendLog.team_id == where.team_id)
    if where.end_user:
        query = query.where(SpendLog.end_user == where.end_user)
    if where.model:
        # The requested model name, or the group that served it.
        query = query.where(or_(col(SpendLog.model) == where.model, col(SpendLog.model_group) == where.model))
    if where.status:
        query = query.where(SpendLog.status == where.status)
    if where.start is not None:
        query = query.where(col(SpendLog.start_time) >= where.start)
    if where.end is not None:
        query = query.where(col(SpendLog.start_time) < where.end)
    return query


async def recent_spend_logs(
    where: SpendFilter, *, session: AsyncSession, limit: int, offset: int = 0
) -> list[SpendLog]:
    """The spend rows matching `where`, newest first, at most `limit` after skipping `offset`.

    Ties on start_time are broken by id, so pages neither repeat nor skip a row.
    """
    query = (
        _matching(where)
        .order_by(col(SpendLog.start_time).desc(), col(SpendLog.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def count_spend_logs(where: SpendFilter, *, session: AsyncSession) -> int:
    """How many spend rows match `where`."""
    query = select(func.count()).select_from(_matching(where).subquery())
    return int((await session.exec(query)).one())


@dataclass(frozen=True, slots=True)
class SpentOnDay:
    """Spend of one key, user and model group on one UTC day."""

    day: date
    api_key: str
    user_id: str
    model: str
    spend: float


async def spend_by_day(where: SpendFilter, *, session: AsyncSession) -> list[SpentOnDay]:
    """The matching rows' spend per UTC day, key, user and model group (for narrowed filters, whose
    indexes bound the rows read; the unnarrowed summary reads the daily rollups)."""
    rows = _matching(where).subquery()
    day = func.date(func.timezone("UTC", rows.c.start_time))
    grouping = (day, rows.c.api_key, rows.c.user_id, rows.c.model_group)
    query = sqlalchemy_select(*grouping, func.sum(rows.c.spend)).group_by(*grouping).order_by(day)
    return [
        SpentOnDay(day=found[0], api_key=found[1], user_id=found[2], model=found[3], spend=float(found[4]))
        for found in (tuple(r) for r in (await run_sql(session, query)).all())
    ]


async def payloads_of(request_ids: Sequence[str], *, session: AsyncSession) -> dict[str, SpendPayload]:
    """The stored prompt and response of each of these requests that has one."""
    if not request_ids:
        return {}
    query = select(SpendPayload).where(col(SpendPayload.request_id).in_(sorted(set(request_ids))))
    return {row.request_id: row for row in (await session.exec(query)).all()}


@dataclass(frozen=True)
class PayloadSelection:
    """Which stored payloads to redact: these requests, or a key's created before a time."""

    request_ids: Sequence[str] = ()
    api_key: str | None = None
    before: datetime | None = None


async def redact_payloads(
    which: PayloadSelection, *, session: AsyncSession, now: datetime, limit: int
) -> int:
    """Empty the messages and response of at most `limit` matching payloads not yet redacted and
    stamp redacted_at; how many were redacted."""
    chosen = select(SpendPayload.request_id).where(col(SpendPayload.redacted_at).is_(None))
    if which.request_ids:
        chosen = chosen.where(col(SpendPayload.request_id).in_(list(which.request_ids)))
    if which.api_key is not None:
        chosen = chosen.where(SpendPayload.api_key == which.api_key)
    if which.before is not None:
        chosen = chosen.where(col(SpendPayload.created_at) < which.before)
    statement = (
        update(SPEND_PAYLOADS)
        .where(SPEND_PAYLOADS.c.request_id.in_(chosen.limit(limit).scalar_subquery()))
        .values(messages=None, response=None, redacted_at=now)
    )
    result = await run_sql(session, statement)
    return int(result.rowcount)  # type: ignore[attr-defined]
