"""Users: their request schema and admin routes; /user/new also makes the user's first key, and
the teams a user's `teams` list names follow it in their members."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import field_validator
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.errors import ConflictError, InvalidRequestError
from hydite_common.keys import generate_key, hash_key, mask_key
from hydite_controlplane.admin.auth import USER_ROLES
from hydite_controlplane.admin.entities import Entity, entity_routes, stage_new
from hydite_controlplane.admin.keys import KeyOwner, key_public
from hydite_controlplane.admin.organizations import require_organization
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.validation import Duration, LimitFields, Name, parse_duration
from hydite_controlplane.appkeys import SESSIONS
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_controlplane.models.principals import TeamRow, UserRow
from hydite_controlplane.store import keys as key_store
from hydite_controlplane.store.audit import record_audit
from hydite_controlplane.store.principals import lock_rows, teams_with_member
from hydite_controlplane.store.resources import save_resources


class UserFields(LimitFields):
    """Body of /user/new and /user/update."""

    user_id: Name | None = None
    user_email: Name | None = None
    user_role: str | None = None
    teams: list[Name] | None = None
    organization_id: Name | None = None
    models: list[str] | None = None
    blocked: bool | None = None
    auto_create_key: bool = True
    key_alias: Name | None = None
    duration: Duration | None = None

    @field_validator("user_role")
    @classmethod
    def _known_role(cls, value: str | None) -> str | None:
        if value is not None and value not in USER_ROLES:
            raise ValueError(f"user_role must be one of {sorted(USER_ROLES)}")
        return value


async def _check_refs(session: AsyncSession, user: UserRow) -> None:
    await require_organization(user.organization_id, session=session)
    for team_id in user.teams:
        if await session.get(TeamRow, team_id) is None:
            raise InvalidRequestError(f"team {team_id!r} does not exist", param="teams")


async def _teams_follow(session: AsyncSession, user: UserRow, deleting: bool) -> list[SQLModel]:
    """Teams' members follow the user's `teams` list; a deleted user leaves every team.

    The teams are locked before the user (_lock_teams_first); locking them again here is free, and
    a team that was not foreseen (a new user's, or one that gained the user before the user's lock)
    is locked late rather than changed unlocked (if that deadlocks, Postgres aborts one writer).
    """
    wanted = set() if deleting else set(user.teams)
    teams = {t.team_id: t for t in await teams_with_member(user.user_id, session=session, for_update=True)}
    for team in await lock_rows(TeamRow, wanted - teams.keys(), session=session):
        teams[team.team_id] = team
    changed: list[SQLModel] = []
    for team_id, team in teams.items():
        others = [m for m in team.members_with_roles if m["user_id"] != user.user_id]
        mine = [m for m in team.members_with_roles if m["user_id"] == user.user_id]
        members = others + (
            (mine or [{"user_id": user.user_id, "role": "user"}]) if team_id in wanted else []
        )
        if members != team.members_with_roles:
            team.members_with_roles = members
            changed.append(team)
    return changed


async def _lock_teams_first(session: AsyncSession, user_ids: list[str], body: LimitFields | None) -> None:
    """Lock the teams a write of these users may change (those listing them and those the body names)
    before the users themselves: teams come before users in every admin write."""
    team_ids: set[str] = set()
    for user_id in user_ids:
        team_ids |= {t.team_id for t in await teams_with_member(user_id, session=session)}
    if isinstance(body, UserFields) and body.teams:
        team_ids |= set(body.teams)
    await lock_rows(TeamRow, team_ids, session=session)


_KEYS = KeyOwner("user_id", info_field="user_info")

USERS = Entity(
    "user", "users", UserRow, "user_id", "user_id", UserFields,
    body_only=frozenset({"auto_create_key", "key_alias", "duration"}), check_refs=_check_refs,
    companions=_teams_follow, on_delete=_KEYS.delete_keys, info_extra=_KEYS.info,
    lock_first=_lock_teams_first,
    own_id=lambda key: key.user_id, list_filters=("user_role", "organization_id"), paged_list=True,
)  # fmt: skip


async def new_user(request: web.Request) -> web.Response:
    """POST /user/new: a user and, unless auto_create_key is false, their first key (as LiteLLM does)."""
    async with request.app[SESSIONS]() as session:
        caller, user, body = await stage_new(request, session, USERS)
        assert isinstance(body, UserFields)
        response = USERS.public(user)
        if body.auto_create_key:
            key = generate_key()
            key_row = VirtualKeyRow(
                token=hash_key(key), key_name=mask_key(key), key_alias=body.key_alias, user_id=user.user_id,
                organization_id=user.organization_id, models=list(user.models), created_by=caller.identity,
                expires=utcnow() + parse_duration(body.duration) if body.duration else None,
            )  # fmt: skip
            if key_row.key_alias and await key_store.alias_taken(key_row.key_alias, session=session):
                raise ConflictError(f"key_alias {key_row.key_alias!r} is already used", param="key_alias")
            await save_resources(key_row, session=session)
            record_audit(
                session=session, actor=caller.identity, action="key.generate", object_type="key",
                object_id=key_row.token, before=None, after=key_public(key_row),
            )  # fmt: skip
            response.update(key=key, token=key_row.token, key_name=key_row.key_name, expires=key_row.expires)
        await session.commit()
    return json_response({k: v.isoformat() if isinstance(v, datetime) else v for k, v in response.items()})


ROUTES = entity_routes(USERS, new=new_user)
