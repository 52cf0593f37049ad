"""Teams: their request schema and admin routes, including members (/team/member_add,
/team/member_delete) and /team/block, /team/unblock. Users' `teams` lists follow the members."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from aiohttp import web
from pydantic import Field
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.errors import NotFoundError
from hydite_common.http import read_json_object
from hydite_controlplane.admin.auth import admin_caller
from hydite_controlplane.admin.entities import Entity, entity_routes
from hydite_controlplane.admin.key_groups import require_key_group
from hydite_controlplane.admin.keys import KeyOwner
from hydite_controlplane.admin.organizations import require_organization
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.validation import AdminRequest, LimitFields, Name, validate
from hydite_controlplane.appkeys import SESSIONS
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.principals import TeamRow, UserRow
from hydite_controlplane.store import keys as key_store
from hydite_controlplane.store.principals import lock_rows, users_listing_team
from hydite_controlplane.store.resources import save_resources


class TeamMember(AdminRequest):
    """A member of a team and their role in it."""

    user_id: Name = Field(min_length=1)
    role: Literal["admin", "user"] = "user"
    user_email: Name | None = None


class TeamFields(LimitFields):
    """Body of /team/new and /team/update."""

    team_id: Name | None = None
    team_alias: Name | None = None
    organization_id: Name | None = None
    key_group: Name | None = None
    models: list[str] | None = None
    members_with_roles: list[TeamMember] | None = None
    blocked: bool | None = None


class MemberAddRequest(AdminRequest):
    """Body of POST /team/member_add."""

    team_id: str = Field(min_length=1)
    member: TeamMember | list[TeamMember]


class MemberDeleteRequest(AdminRequest):
    """Body of POST /team/member_delete."""

    team_id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)


class TeamRef(AdminRequest):
    """Body naming one team."""

    team_id: str = Field(min_length=1)


async def _check_refs(session: AsyncSession, team: TeamRow) -> None:
    await require_organization(team.organization_id, session=session)
    await require_key_group(team.key_group, session=session)


async def members_follow(session: AsyncSession, team: TeamRow, deleting: bool) -> list[SQLModel]:
    """Users' `teams` lists follow the team's members (existing users only); the users changed.

    The team row is locked already; the users are locked after it, in user_id order (Entity.lock).
    While the team is locked no other write can add it to or drop it from a user's list, so the
    users found before their locks are the ones to change.
    """
    members = set() if deleting else {m["user_id"] for m in team.members_with_roles}
    listing = {u.user_id for u in await users_listing_team(team.team_id, session=session)}
    users = {u.user_id: u for u in await lock_rows(UserRow, listing | members, session=session)}
    changed: list[SQLModel] = []
    for uid, user in users.items():
        teams = set(user.teams) - {team.team_id} | ({team.team_id} if uid in members else set())
        if teams != set(user.teams):
            user.teams = sorted(teams)
            changed.append(user)
    return changed


async def team_companions(session: AsyncSession, team: TeamRow, deleting: bool) -> list[SQLModel]:
    """What changes with a team: its members' `teams` lists, and its keys' organization (a team key
    belongs to its team's organization)."""
    changed = await members_follow(session, team, deleting)
    if deleting:
        return changed
    owned = await key_store.keys_owned_by("team_id", [team.team_id], session=session)
    stale = [k.token for k in owned if k.organization_id != team.organization_id]
    for key in await key_store.lock_keys(stale, session=session):
        if key.team_id == team.team_id:
            key.organization_id = team.organization_id
            changed.append(key)
    return changed


_KEYS = KeyOwner("team_id", info_field="team_info")

TEAMS = Entity(
    "team", "teams", TeamRow, "team_id", "team_id", TeamFields,
    check_refs=_check_refs, companions=team_companions, on_delete=_KEYS.delete_keys, info_extra=_KEYS.info,
    own_id=lambda key: key.team_id, managed_by=lambda caller, team_id: caller.manages_team(team_id),
    list_filters=("organization_id",),
)  # fmt: skip


async def _change_team(
    request: web.Request,
    model: type[MemberAddRequest | MemberDeleteRequest | TeamRef],
    action: str,
    change: Callable[[TeamRow, Any], None],
) -> web.Response:
    caller = await admin_caller(request)
    body = validate(model, await read_json_object(request))
    team_id = str(body.team_id)
    if action in ("block", "unblock"):
        caller.require_write()
    else:
        caller.require_team(team_id)
    async with request.app[SESSIONS]() as session:
        [team] = await TEAMS.lock(session, [team_id])
        before = TEAMS.public(team)
        change(team, body)
        team.updated_at = utcnow()
        await save_resources(team, *await members_follow(session, team, False), session=session)
        TEAMS.record(session, caller, action, team, before)
        await session.commit()
    return json_response(TEAMS.public(team))


def _add_members(team: TeamRow, body: Any) -> None:
    members = body.member if isinstance(body.member, list) else [body.member]
    by_user = {m["user_id"]: m for m in team.members_with_roles}
    for member in members:
        by_user[member.user_id] = member.model_dump(exclude_none=True)
    team.members_with_roles = list(by_user.values())


def _remove_member(team: TeamRow, body: Any) -> None:
    remaining = [m for m in team.members_with_roles if m["user_id"] != body.user_id]
    if len(remaining) == len(team.members_with_roles):
        raise NotFoundError(f"{body.user_id!r} is not a member of this team", param="user_id")
    team.members_with_roles = remaining


async def member_add(request: web.Request) -> web.Response:
    """POST /team/member_add: add members (or change their role)."""
    return await _change_team(request, MemberAddRequest, "member_add", _add_members)


async def member_delete(request: web.Request) -> web.Response:
    """POST /team/member_delete: remove a member."""
    return await _change_team(request, MemberDeleteRequest, "member_delete", _remove_member)


async def block(request: web.Request) -> web.Response:
    """POST /team/block: every key of the team is refused."""
    return await _change_team(request, TeamRef, "block", lambda team, _: setattr(team, "blocked", True))


async def unblock(request: web.Request) -> web.Response:
    """POST /team/unblock."""
    return await _change_team(request, TeamRef, "unblock", lambda team, _: setattr(team, "blocked", False))


ROUTES = [
    *entity_routes(TEAMS),
    web.post("/team/member_add", member_add),
    web.post("/team/member_delete", member_delete),
    web.post("/team/block", block),
    web.post("/team/unblock", unblock),
]
