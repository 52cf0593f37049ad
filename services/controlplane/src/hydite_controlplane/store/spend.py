"""Queries on the spend log that spend-ingest writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from hydite_common.spend_tables import SpendLog


@dataclass(frozen=True)
class SpendFilter:
    """Which spend rows to read; None matches any value."""

    api_key: str | None = None
    request_id: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None


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
    if where.start is not None:
        query = query.where(col(SpendLog.start_time) >= where.start)
    if where.end is not None:
        query = query.where(col(SpendLog.start_time) <= where.end)
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
