"""Users: their request schema (LiteLLM's NewUserRequest and UpdateUserRequest fields) and admin
routes; /user/new also makes the user's first key, and the teams a user's `teams` list (or
`team_id`) names follow it in their members.

A user's `aliases` (requested model name -> model name) apply to every key of the user (the key's
team's and the key's own aliases win); `spend` is set as given. Null for a field means it is not
set.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, PrivateAttr, field_validator, model_validator
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.errors import ConflictError, InvalidRequestError
from hydite_common.http import read_json_object
from hydite_common.keys import generate_key, hash_key, mask_key
from hydite_controlplane.admin.auth import USER_ROLES, AdminCaller
from hydite_controlplane.admin.entities import Entity, entity_routes, stage_new
from hydite_controlplane.admin.keys import KeyOwner, key_public
from hydite_controlplane.admin.references import require_organization
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.stored_fields import derive_stored, shown_stored, stored_names
from hydite_controlplane.admin.teams import TEAMS, team_memberships
from hydite_controlplane.admin.validation import (
    AdminRequest,
    Duration,
    JsonObject,
    LimitFields,
    ModelAliases,
    Name,
    parse_duration,
    validate,
)
from hydite_controlplane.appkeys import SESSIONS
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_controlplane.models.principals import TeamRow, UserRow
from hydite_controlplane.spend_windows import with_period_info, with_windows
from hydite_controlplane.store import keys as key_store
from hydite_controlplane.store.audit import record_audit
from hydite_controlplane.store.principals import lock_rows, teams_with_member
from hydite_controlplane.store.resources import save_resources


class UserStoredFields(AdminRequest):
    """LiteLLM's user fields Hydite keeps and shows but does not act on yet."""

    user_alias: Name | None = None
    sso_user_id: Name | None = None
    send_invite_email: bool | None = None
    organizations: list[Name] | None = None
    agent_id: Name | None = None
    allowed_cache_controls: list[Name] | None = None
    config: JsonObject | None = None
    permissions: JsonObject | None = None
    model_max_budget: JsonObject | None = None
    guardrails: list[Name] | None = None
    policies: list[Name] | None = None
    prompts: list[Name] | None = None
    object_permission: JsonObject | None = None


USER_STORED = stored_names(UserStoredFields)


class TeamJoin(AdminRequest):
    """A team a new user joins, with its role and budget there (LiteLLM's NewUserRequestTeam)."""

    team_id: Name = Field(min_length=1)
    max_budget_in_team: float | None = Field(default=None, ge=0)
    user_role: Literal["user", "admin"] = "user"


class UserFields(LimitFields, UserStoredFields):
    """Body of /user/new and /user/update. `teams` names teams by id or as TeamJoin objects (kept
    as the ids; the objects' roles and budgets apply to the memberships /user/new creates);
    `team_id` joins one more team as a member; `password` is checked and not kept (Hydite has no
    password sign-in)."""

    user_id: Name | None = None
    user_email: Name | None = None
    user_role: str | None = None
    teams: list[Name | TeamJoin] | None = None
    team_id: Name | None = Field(default=None, min_length=1)
    organization_id: Name | None = None
    models: list[str] | None = None
    blocked: bool | None = None
    aliases: ModelAliases | None = None
    spend: float | None = Field(default=None, ge=0)
    auto_create_key: bool | None = True
    key_alias: Name | None = None
    duration: Duration | None = None
    password: str | None = Field(default=None, min_length=8, max_length=128)
    _joins: dict[str, dict[str, Any]] = PrivateAttr(default_factory=dict)

    @field_validator("user_role")
    @classmethod
    def _known_role(cls, value: str | None) -> str | None:
        if value is not None and value not in USER_ROLES:
            raise ValueError(f"user_role must be one of {sorted(USER_ROLES)}")
        return value

    @model_validator(mode="after")
    def _team_ids(self) -> UserFields:
        """Keep `teams` as ids; remember what the TeamJoin objects (and team_id) ask of each
        membership."""
        for entry in self.teams or ():
            if isinstance(entry, TeamJoin):
                join: dict[str, Any] = {"role": entry.user_role}
                if entry.max_budget_in_team is not None:
                    join["limits"] = {"max_budget_in_team": entry.max_budget_in_team}
                self._joins[entry.team_id] = join
        if self.teams is not None:
            self.teams = [e.team_id if isinstance(e, TeamJoin) else e for e in self.teams]
        if self.team_id:
            self._joins.setdefault(self.team_id, {"role": "user"})
        return self

    @property
    def team_ids(self) -> list[str]:
        """Every team the body names (teams and team_id)."""
        named = [str(t) for t in self.teams or ()]
        return named + ([self.team_id] if self.team_id and self.team_id not in named else [])

    @property
    def joins(self) -> Mapping[str, Mapping[str, Any]]:
        """Team id -> the role (and limits) a membership this body creates gets."""
        return self._joins


async def _check_refs(session: AsyncSession, user: UserRow) -> None:
    await require_organization(user.organization_id, session=session)
    for team_id in user.teams:
        if await session.get(TeamRow, team_id) is None:
            raise InvalidRequestError(f"team {team_id!r} does not exist", param="teams")


async def _teams_follow(
    session: AsyncSession,
    user: UserRow,
    deleting: bool,
    joins: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[SQLModel]:
    """Teams' members follow the user's `teams` list; a deleted user leaves every team. A
    membership created here gets the role (and limits) `joins` asks for, else role "user"; an
    existing one is kept as it is.

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
        joined = {"user_id": user.user_id, "role": "user", **(joins or {}).get(team_id, {})}
        members = others + ((mine or [joined]) if team_id in wanted else [])
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
    if isinstance(body, UserFields):
        team_ids |= set(body.team_ids)
    await lock_rows(TeamRow, team_ids, session=session)


_derive_stored = derive_stored(USER_STORED)


def _derive(user: UserRow, body: LimitFields) -> Mapping[str, Any]:
    """The stored LiteLLM fields, and `teams` with team_id joined (null teams: unchanged)."""
    assert isinstance(body, UserFields)
    derived = dict(_derive_stored(user, body))
    if body.teams is not None or body.team_id:
        teams = list(body.teams) if body.teams is not None else list(user.teams)
        derived["teams"] = [*teams, *([body.team_id] if body.team_id and body.team_id not in teams else [])]
    return derived


def _shown(user: UserRow, data: dict[str, Any]) -> dict[str, Any]:
    return shown_stored(data)


def _public(user: UserRow) -> dict[str, Any]:
    return USERS.public(user)


_KEYS = KeyOwner("user_id", info_field="user_info", public=_public)


async def _user_info(session: AsyncSession, caller: AdminCaller, user: UserRow) -> dict[str, Any]:
    """LiteLLM's /user/info: the user's keys, the user (user_info), its teams as team objects and
    its budgets within them (team_memberships)."""
    teams = await teams_with_member(user.user_id, session=session)
    return {
        **await _KEYS.info(session, caller, user),
        "teams": [TEAMS.public(team) for team in teams],
        "team_memberships": [m for team in teams for m in team_memberships(team, {user.user_id})],
    }


USER_BODY_ONLY = frozenset({"auto_create_key", "key_alias", "duration", "teams", "team_id", "password"})
"""Fields of a user's body that are no column of its own (the first key's, or derived)."""

USERS = Entity(
    "user", "users", UserRow, "user_id", "user_id", UserFields, body_only=USER_BODY_ONLY | USER_STORED,
    check_refs=_check_refs, companions=with_windows("user", "user_id", _teams_follow),
    on_delete=_KEYS.delete_keys, info_extra=with_period_info("user", "user_id", _user_info, "user_info"),
    lock_first=_lock_teams_first, own_id=lambda key: key.user_id,
    list_filters=("user_role", "organization_id"), paged_list=True, null_keeps=True, derive=_derive,
    shown=_shown, update_creates=True,  # LiteLLM's /user/update creates a user it does not know
    spend_kind="user",
)  # fmt: skip


async def new_user(request: web.Request) -> web.Response:
    """POST /user/new: a user and, unless auto_create_key is false, their first key (as LiteLLM does:
    in the team team_id names, if any)."""
    # The memberships this body creates take the roles it asks for; stage_new reads it again.
    joins = validate(UserFields, await read_json_object(request)).joins
    entity = replace(
        USERS, companions=with_windows("user", "user_id", functools.partial(_teams_follow, joins=joins))
    )
    async with request.app[SESSIONS]() as session:
        caller, user, body = await stage_new(request, session, entity)
        assert isinstance(body, UserFields)
        response = USERS.public(user)
        if body.auto_create_key is not False:
            team = await session.get(TeamRow, body.team_id) if body.team_id else None
            key = generate_key()
            key_row = VirtualKeyRow(
                token=hash_key(key), key_name=mask_key(key), key_alias=body.key_alias, user_id=user.user_id,
                team_id=team.team_id if team else None,
                organization_id=team.organization_id if team else user.organization_id,
                models=list(user.models), created_by=caller.identity,
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
