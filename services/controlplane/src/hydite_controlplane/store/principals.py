"""Queries on users, teams, organizations, customers and key groups: pages of rows, team
membership in both directions, users by email, and whether an organization or key group is still
referenced."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import text
from sqlmodel import SQLModel, col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_controlplane.models.principals import TeamRow, UserRow

Row = TypeVar("Row", bound=SQLModel)


async def list_rows(
    row_type: type[Row], *, session: AsyncSession, filters: Iterable[tuple[str, str]], offset: int, limit: int
) -> tuple[list[Row], int]:
    """A page of rows, oldest first, matching every (column, value) filter, and how many match in all."""
    query = select(row_type)
    for name, value in filters:
        query = query.where(getattr(row_type, name) == value)
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    page = query.order_by(text("created_at")).offset(offset).limit(limit)
    return list((await session.exec(page)).all()), int(total)


async def teams_administered_by(user_id: str, *, session: AsyncSession) -> frozenset[str]:
    """Ids of the teams in which this user has the role "admin"."""
    admin_of = select(TeamRow.team_id).where(
        col(TeamRow.members_with_roles).contains([{"user_id": user_id, "role": "admin"}])
    )
    return frozenset((await session.exec(admin_of)).all())


async def teams_with_member(
    user_id: str, *, session: AsyncSession, for_update: bool = False
) -> list[TeamRow]:
    """Teams whose members_with_roles name this user (`for_update`: locked, in team_id order)."""
    query = select(TeamRow).where(col(TeamRow.members_with_roles).contains([{"user_id": user_id}]))
    return await _rows(session, query.order_by(col(TeamRow.team_id)), for_update)


async def users_listing_team(
    team_id: str, *, session: AsyncSession, for_update: bool = False
) -> list[UserRow]:
    """Users whose `teams` list names this team (`for_update`: locked, in user_id order)."""
    query = select(UserRow).where(col(UserRow.teams).contains([team_id]))
    return await _rows(session, query.order_by(col(UserRow.user_id)), for_update)


async def users_with_email(email: str, *, session: AsyncSession, limit: int = 2) -> list[UserRow]:
    """Users whose user_email is this one, compared without case (at most `limit`, by user_id)."""
    query = select(UserRow).where(func.lower(col(UserRow.user_email)) == email.lower())
    return list((await session.exec(query.order_by(col(UserRow.user_id)).limit(limit))).all())


async def lock_rows(row_type: type[Row], ids: Iterable[str], *, session: AsyncSession) -> list[Row]:
    """The rows with these primary keys, locked in id order (the one order every writer uses)."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    key = col(getattr(row_type, row_type.__table__.primary_key.columns.keys()[0]))  # type: ignore[attr-defined]
    return await _rows(session, select(row_type).where(key.in_(wanted)).order_by(key), True)


async def _rows(session: AsyncSession, query: SelectOfScalar[Row], for_update: bool) -> list[Row]:
    if for_update:
        # populate_existing: a row loaded before the lock was granted shows what its last writer committed.
        query = query.with_for_update().execution_options(populate_existing=True)
    return list((await session.exec(query)).all())


async def organization_in_use(organization_id: str, *, session: AsyncSession) -> bool:
    """Whether a team, key or user still belongs to this organization."""
    return await _any_row(
        session,
        select(TeamRow.team_id).where(TeamRow.organization_id == organization_id),
        select(VirtualKeyRow.token).where(VirtualKeyRow.organization_id == organization_id),
        select(UserRow.user_id).where(UserRow.organization_id == organization_id),
    )


async def key_group_in_use(name: str, *, session: AsyncSession) -> bool:
    """Whether a key or team still names this key group."""
    return await _any_row(
        session,
        select(VirtualKeyRow.token).where(VirtualKeyRow.key_group == name),
        select(TeamRow.team_id).where(TeamRow.key_group == name),
    )


async def _any_row(session: AsyncSession, *queries: SelectOfScalar[Any]) -> bool:
    for query in queries:
        if (await session.exec(query)).first() is not None:
            return True
    return False
