"""Virtual key rows."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane.models.keys import VirtualKeyRow


async def alias_taken(session: AsyncSession, alias: str, *, other_than: str | None = None) -> bool:
    """Whether a key (other than the one named) already uses this alias."""
    query = select(VirtualKeyRow.token).where(VirtualKeyRow.key_alias == alias)
    if other_than is not None:
        query = query.where(VirtualKeyRow.token != other_than)
    return (await session.exec(query)).first() is not None


async def get_key(session: AsyncSession, token: str) -> VirtualKeyRow | None:
    """A key by its hash."""
    return await session.get(VirtualKeyRow, token)


async def keys_by_alias(session: AsyncSession, aliases: Sequence[str]) -> list[VirtualKeyRow]:
    """Keys with any of these aliases."""
    if not aliases:
        return []
    query = select(VirtualKeyRow).where(col(VirtualKeyRow.key_alias).in_(aliases))
    return list((await session.exec(query)).all())


async def keys_owned_by(
    session: AsyncSession, *, user_ids: Sequence[str] = (), team_ids: Sequence[str] = ()
) -> list[VirtualKeyRow]:
    """Keys belonging to any of these users or teams."""
    conditions = []
    if user_ids:
        conditions.append(col(VirtualKeyRow.user_id).in_(user_ids))
    if team_ids:
        conditions.append(col(VirtualKeyRow.team_id).in_(team_ids))
    if not conditions:
        return []
    return list((await session.exec(select(VirtualKeyRow).where(or_(*conditions)))).all())


async def list_keys(
    session: AsyncSession,
    *,
    user_id: str | None,
    team_ids: Sequence[str] | None,
    organization_id: str | None,
    key_alias: str | None,
    offset: int,
    limit: int,
) -> tuple[list[VirtualKeyRow], int]:
    """A page of keys matching the filters (team_ids None: any team), and the total count."""
    query = select(VirtualKeyRow)
    if user_id is not None:
        query = query.where(VirtualKeyRow.user_id == user_id)
    if team_ids is not None:
        query = query.where(col(VirtualKeyRow.team_id).in_(team_ids))
    if organization_id is not None:
        query = query.where(VirtualKeyRow.organization_id == organization_id)
    if key_alias is not None:
        query = query.where(VirtualKeyRow.key_alias == key_alias)
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    page = query.order_by(col(VirtualKeyRow.created_at).desc()).offset(offset).limit(limit)
    return list((await session.exec(page)).all()), int(total)
