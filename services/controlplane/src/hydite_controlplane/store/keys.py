"""Queries on virtual key rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane.models.keys import VirtualKeyRow


async def alias_taken(alias: str, *, session: AsyncSession, other_than: str | None = None) -> bool:
    """Whether a key (other than the one named) already uses this alias."""
    query = select(VirtualKeyRow.token).where(VirtualKeyRow.key_alias == alias)
    if other_than is not None:
        query = query.where(VirtualKeyRow.token != other_than)
    return (await session.exec(query)).first() is not None


async def get_key(token: str, *, session: AsyncSession, for_update: bool = False) -> VirtualKeyRow | None:
    """A key by its hash; `for_update` locks its row until the transaction ends (and reloads it, so
    a write that waited for the lock changes what the previous writer committed)."""
    if for_update:
        return await session.get(VirtualKeyRow, token, with_for_update=True, populate_existing=True)
    return await session.get(VirtualKeyRow, token)


async def lock_keys(tokens: Sequence[str], *, session: AsyncSession) -> list[VirtualKeyRow]:
    """The keys with these hashes, their rows locked in token order (so two writers of the same keys
    cannot deadlock)."""
    if not tokens:
        return []
    query = (
        select(VirtualKeyRow)
        .where(col(VirtualKeyRow.token).in_(sorted(set(tokens))))
        .order_by(col(VirtualKeyRow.token))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(query)).all())


async def keys_by_alias(aliases: Sequence[str], *, session: AsyncSession) -> list[VirtualKeyRow]:
    """Keys with any of these aliases."""
    if not aliases:
        return []
    query = select(VirtualKeyRow).where(col(VirtualKeyRow.key_alias).in_(aliases))
    return list((await session.exec(query)).all())


async def keys_owned_by(
    owner_column: Literal["user_id", "team_id"], owner_ids: Sequence[str], *, session: AsyncSession
) -> list[VirtualKeyRow]:
    """Keys whose user_id (or team_id) is any of these."""
    if not owner_ids:
        return []
    query = select(VirtualKeyRow).where(col(getattr(VirtualKeyRow, owner_column)).in_(owner_ids))
    return list((await session.exec(query)).all())


async def list_keys(
    *,
    session: AsyncSession,
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
