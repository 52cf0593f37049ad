"""The control plane's store: every query takes the session by keyword and none commits; the
principal queries (membership, references, pages) against a real, freshly migrated database."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane import store
from hydite_controlplane.models import KeyGroupRow, OrganizationRow, TeamRow, UserRow, VirtualKeyRow
from hydite_controlplane.store.principals import (
    key_group_in_use,
    list_rows,
    organization_in_use,
    teams_administered_by,
    teams_with_member,
    users_listing_team,
)
from hydite_controlplane.store.resources import save_resources

START = datetime(2024, 1, 1, tzinfo=UTC)


def test_every_store_function_takes_the_session_by_keyword() -> None:
    """Each public function of each store module has a keyword-only `session` parameter."""
    functions = [
        function
        for info in pkgutil.iter_modules(store.__path__)
        for name, function in inspect.getmembers(importlib.import_module(f"{store.__name__}.{info.name}"))
        if inspect.isfunction(function)
        and not name.startswith("_")
        and function.__module__.startswith(store.__name__)
    ]
    assert len(functions) >= 15
    for function in functions:
        session = inspect.signature(function).parameters.get("session")
        assert session is not None and session.kind is inspect.Parameter.KEYWORD_ONLY, function.__qualname__


async def test_writes_through_the_store_are_not_committed(sessions: async_sessionmaker[AsyncSession]) -> None:
    """A row saved through the store is gone when the session ends without the handler's commit."""
    async with sessions() as session:
        await save_resources(TeamRow(team_id="uncommitted"), session=session)
    async with sessions() as session:
        assert await session.get(TeamRow, "uncommitted") is None


async def test_team_membership_is_found_from_both_sides(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Teams a user administers or belongs to, and users whose `teams` list names a team."""
    async with sessions() as session:
        session.add_all(
            [
                TeamRow(team_id="t1", members_with_roles=[{"user_id": "u1", "role": "admin"}]),
                TeamRow(team_id="t2", members_with_roles=[{"user_id": "u1", "role": "user"}]),
                TeamRow(team_id="t3", members_with_roles=[{"user_id": "u2", "role": "admin"}]),
                UserRow(user_id="u1", teams=["t1", "t2"]),
                UserRow(user_id="u2", teams=["t3"]),
            ]
        )
        await session.commit()
        assert await teams_administered_by("u1", session=session) == {"t1"}
        assert {t.team_id for t in await teams_with_member("u1", session=session)} == {"t1", "t2"}
        assert [u.user_id for u in await users_listing_team("t3", session=session)] == ["u2"]
        assert await teams_administered_by("nobody", session=session) == frozenset()


async def test_references_to_organizations_and_key_groups(sessions: async_sessionmaker[AsyncSession]) -> None:
    """An organization is in use while a team, key or user names it; a key group while a key or team does."""
    async with sessions() as session:
        session.add_all(
            [OrganizationRow(organization_id=org) for org in ("by-team", "by-key", "by-user", "unused")]
            + [KeyGroupRow(name=group) for group in ("g-key", "g-team", "g-unused")]
            + [
                TeamRow(team_id="t", organization_id="by-team", key_group="g-team"),
                VirtualKeyRow(token="k", key_name="sk-...k", organization_id="by-key", key_group="g-key"),
                UserRow(user_id="u", organization_id="by-user"),
            ]
        )
        await session.commit()
        for org in ("by-team", "by-key", "by-user"):
            assert await organization_in_use(org, session=session), org
        assert not await organization_in_use("unused", session=session)
        assert await key_group_in_use("g-key", session=session)
        assert await key_group_in_use("g-team", session=session)
        assert not await key_group_in_use("g-unused", session=session)


async def test_list_rows_filters_and_pages_oldest_first(sessions: async_sessionmaker[AsyncSession]) -> None:
    """list_rows keeps rows matching every filter, oldest first, and counts all matches."""
    async with sessions() as session:
        session.add_all(
            [
                TeamRow(
                    team_id=f"t{n}", organization_id="o" if n % 2 else "p", created_at=START + timedelta(n)
                )
                for n in range(5)
            ]
        )
        await session.commit()
        rows, total = await list_rows(
            TeamRow, session=session, filters=[("organization_id", "p")], offset=1, limit=1
        )
        assert ([r.team_id for r in rows], total) == (["t2"], 3)
        both = [("organization_id", "o"), ("organization_id", "p")]
        assert await list_rows(TeamRow, session=session, filters=both, offset=0, limit=10) == ([], 0)
