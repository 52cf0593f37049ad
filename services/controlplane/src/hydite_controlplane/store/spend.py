"""Queries on the spend log that spend-ingest writes."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.spend_tables import SpendLog


async def recent_spend_logs(
    *,
    session: AsyncSession,
    api_key: str | None,
    request_id: str | None,
    user_id: str | None,
    team_id: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[SpendLog]:
    """The newest spend rows matching every filter given (None: any), at most `limit`."""
    query = select(SpendLog).order_by(col(SpendLog.start_time).desc()).limit(limit)
    if api_key:
        query = query.where(SpendLog.api_key == api_key)
    if request_id:
        query = query.where(SpendLog.request_id == request_id)
    if user_id:
        query = query.where(SpendLog.user_id == user_id)
    if team_id:
        query = query.where(SpendLog.team_id == team_id)
    if start is not None:
        query = query.where(col(SpendLog.start_time) >= start)
    if end is not None:
        query = query.where(col(SpendLog.start_time) <= end)
    return list((await session.exec(query)).all())
