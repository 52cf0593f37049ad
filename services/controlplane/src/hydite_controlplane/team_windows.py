"""The budget windows of a team and of its members within it (`team_member` `team_id:user_id`):
their periods are the team's limits and each member's limits as the snapshot carries them (the
team's member defaults, filled in by the member's own entry). Call `team_windows` in the
transaction of every write that changes a team, its members or their limits."""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite.config.v1 import config_pb2 as pb
from hydite_controlplane.admin.entities import Companions
from hydite_controlplane.admin.validation import check_stored_windows
from hydite_controlplane.budget_periods import periods_of_limits
from hydite_controlplane.config.builder import UnbuildableRow, team_member_defaults, team_member_limits
from hydite_controlplane.db import run_sql
from hydite_controlplane.models.principals import TeamRow
from hydite_controlplane.spend_windows import ensure_windows
from hydite_controlplane.store.spend_windows import row_periods

log = logging.getLogger(__name__)

_MEMBERS_WITH_WINDOWS = """
SELECT DISTINCT entity FROM spend_windows
WHERE kind = 'team_member' AND left(entity, :length) = :prefix
"""


def member_entity(team_id: str, user_id: str) -> str:
    """A team member's budget entity, as spend-ingest keys its running total."""
    return f"{team_id}:{user_id}"


def members_limits(team: TeamRow) -> dict[str, pb.Limits]:
    """Each member's limits within the team: the member defaults with its own entry over them."""
    defaults = team_member_defaults(team) or pb.Limits()
    own = team_member_limits(team)
    found = {}
    for entry in team.members_with_roles:
        user_id = str(entry["user_id"])
        limits = pb.Limits()
        limits.CopyFrom(defaults)
        if user_id in own:
            limits.MergeFrom(own[user_id])
        found[user_id] = limits
    return found


async def team_windows(session: AsyncSession, team: TeamRow, *, deleting: bool = False) -> None:
    """Give the team and each of its members one window per period (none once the team is deleted
    or the member left), in the caller's transaction; a team whose stored limits no snapshot can
    carry keeps the windows it had (the snapshot quarantines it)."""
    try:
        members = {} if deleting else members_limits(team)
    except UnbuildableRow:
        log.warning("team %s has limits the snapshot cannot carry; its windows stay", team.team_id)
        return
    periods = [] if deleting else await row_periods(team, session=session)
    await ensure_windows(session, "team", team.team_id, periods)
    prefix = member_entity(team.team_id, "")
    found = await run_sql(session, _MEMBERS_WITH_WINDOWS, {"length": len(prefix), "prefix": prefix})
    entities = {member_entity(team.team_id, user_id): limits for user_id, limits in members.items()}
    stale = {str(entity) for entity in found.scalars().all()} - entities.keys()
    for entity in sorted(stale | entities.keys()):
        limits = entities.get(entity)
        await ensure_windows(session, "team_member", entity, periods_of_limits(limits) if limits else [])


def with_team_windows(companions: Companions) -> Companions:
    """The TEAMS entity's companions hook that also keeps the team's and its members' windows."""

    async def companions_and_windows(session: AsyncSession, team: Any, deleting: bool) -> list[SQLModel]:
        if not deleting:
            check_stored_windows(team)
        await team_windows(session, team, deleting=deleting)
        return await companions(session, team, deleting)

    return companions_and_windows
