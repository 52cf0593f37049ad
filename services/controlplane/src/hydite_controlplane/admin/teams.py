"""Teams: their request schema (LiteLLM's team fields) and admin routes, including members
(/team/member_add, /team/member_update, /team/member_delete, by user_id or user_email) and
/team/block, /team/unblock. Users' `teams` lists follow the members.

A team's `model_aliases` (requested model name -> model name) reach the data plane, which applies
them to the team's keys. The limits of every member within the team (LiteLLM's team_member_budget,
_rpm_limit, _tpm_limit, _budget_duration) and a member's own (max_budget_in_team, rpm_limit,
tpm_limit, which fill them in) reach it too, in the team's `member_defaults` and `member_limits`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AfterValidator, Field
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.http import read_json_object
from hydite_controlplane.admin.auth import AdminCaller, admin_caller
from hydite_controlplane.admin.budgets import require_budget
from hydite_controlplane.admin.entities import Entity, entity_routes, row_public
from hydite_controlplane.admin.key_groups import require_key_group
from hydite_controlplane.admin.keys import KeyOwner
from hydite_controlplane.admin.live_spend import spend_fields
from hydite_controlplane.admin.members import MemberRef, existing_member_id, member_user_id, user_for_email
from hydite_controlplane.admin.references import require_organization
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.stored_fields import JsonList, derive_stored, shown_stored, stored_names
from hydite_controlplane.admin.validation import (
    MAX_COUNT,
    AdminRequest,
    Duration,
    JsonObject,
    LimitFields,
    Name,
    check_json_field,
    validate,
)
from hydite_controlplane.appkeys import SESSIONS
from hydite_controlplane.config.builder import (
    MEMBER_LIMIT_FIELDS,
    TEAM_MEMBER_BUDGET_DURATION,
    TEAM_MEMBER_DEFAULT_FIELDS,
)
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.principals import TeamRow, UserRow
from hydite_controlplane.spend_windows import with_period_info
from hydite_controlplane.store import keys as key_store
from hydite_controlplane.store.principals import lock_rows, users_listing_team
from hydite_controlplane.store.resources import save_resources
from hydite_controlplane.store.spend_totals import spend_of
from hydite_controlplane.team_windows import team_windows, with_team_windows

LimitType = Literal["guaranteed_throughput", "best_effort_throughput"]
ModelAliases = Annotated[dict[Name, Name], AfterValidator(check_json_field)]
"""Requested model name -> the model name a team's keys call instead."""


class TeamMember(MemberRef):
    """A member of a team and their role in it (LiteLLM's Member): by user_id or user_email."""

    role: Literal["admin", "user"] = "user"


class TeamStoredFields(AdminRequest):
    """LiteLLM's team fields Hydite keeps (in extra_fields) and shows; of them, only the
    team_member_* limits reach the data plane (the Team's member_defaults)."""

    admins: JsonList | None = None
    members: JsonList | None = None
    team_member_permissions: list[Name] | None = None
    router_settings: JsonObject | None = None
    access_group_ids: list[Name] | None = None
    tags: list[Name] | None = None
    guardrails: list[Name] | None = None
    policies: list[Name] | None = None
    prompts: list[Name] | None = None
    object_permission: JsonObject | None = None
    allowed_passthrough_routes: JsonList | None = None
    secret_manager_settings: JsonObject | None = None
    rpm_limit_type: LimitType | None = None
    tpm_limit_type: LimitType | None = None
    team_member_budget: float | None = Field(default=None, ge=0)
    team_member_rpm_limit: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    team_member_tpm_limit: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    team_member_key_duration: Duration | None = None
    team_member_budget_duration: Duration | None = None
    allowed_vector_store_indexes: JsonList | None = None
    enforced_batch_output_expires_after: JsonObject | None = None
    enforced_file_expires_after: JsonObject | None = None


TEAM_STORED = stored_names(TeamStoredFields)


class TeamFields(LimitFields, TeamStoredFields):
    """Body of /team/new and /team/update: LiteLLM's NewTeamRequest and UpdateTeamRequest fields;
    null for a field means it is not set."""

    team_id: Name | None = None
    team_alias: Name | None = None
    organization_id: Name | None = None
    key_group: Name | None = None
    models: list[str] | None = None
    members_with_roles: list[TeamMember] | None = None
    blocked: bool | None = None
    model_aliases: ModelAliases | None = None
    budget_id: Name | None = None  # a budget (/budget/new) the team links to
    store_prompts: bool | None = None  # store the prompts and responses of the team's requests


class MemberAddRequest(AdminRequest):
    """Body of POST /team/member_add."""

    team_id: Name = Field(min_length=1)
    member: TeamMember | list[TeamMember]
    max_budget_in_team: float | None = Field(default=None, ge=0)


class MemberDeleteRequest(MemberRef):
    """Body of POST /team/member_delete: the member by user_id or user_email."""

    team_id: Name = Field(min_length=1)


class MemberUpdateRequest(MemberDeleteRequest):
    """Body of POST /team/member_update: what changes of one member (null: unchanged)."""

    role: Literal["admin", "user"] | None = None
    max_budget_in_team: float | None = Field(default=None, ge=0)
    tpm_limit: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    rpm_limit: int | None = Field(default=None, ge=0, le=MAX_COUNT)


class TeamRef(AdminRequest):
    """Body naming one team."""

    team_id: Name = Field(min_length=1)


MEMBER_LIMITS = ("max_budget_in_team", "tpm_limit", "rpm_limit")
"""A member's budget and rate limits within a team (kept under "limits" in its entry)."""


def member_public(entry: dict[str, Any]) -> dict[str, Any]:
    """A members_with_roles entry in LiteLLM's Member shape."""
    return {
        "user_id": entry["user_id"],
        "user_email": entry.get("user_email"),
        "role": entry.get("role", "user"),
    }


def _budget_table(limits: dict[str, Any], duration: str | None) -> dict[str, Any]:
    """LiteLLM's LiteLLM_BudgetTable shape of a member's budget and limits (as member limits name them)."""
    return {
        "budget_id": None, "max_budget": limits.get("max_budget_in_team"), "soft_budget": None,
        "max_parallel_requests": None, "tpm_limit": limits.get("tpm_limit"),
        "rpm_limit": limits.get("rpm_limit"), "model_max_budget": None, "budget_duration": duration,
    }  # fmt: skip


def member_defaults(team: TeamRow) -> dict[str, Any]:
    """The team's limits of every member, named as a member's own are (unset ones left out)."""
    stored = team.extra_fields or {}
    member_name = {target: name for name, target in MEMBER_LIMIT_FIELDS.items()}
    return {
        member_name[target]: stored[source]
        for source, target in TEAM_MEMBER_DEFAULT_FIELDS.items()
        if stored.get(source) is not None
    }


def member_budget_table(team: TeamRow) -> dict[str, Any] | None:
    """LiteLLM's team_member_budget_table of /team/info: the limits every member has, or None."""
    defaults = member_defaults(team)
    if not defaults:
        return None
    return _budget_table(defaults, (team.extra_fields or {}).get(TEAM_MEMBER_BUDGET_DURATION))


def team_memberships(team: TeamRow, user_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """LiteLLM's team_memberships: the members with a budget or limits in the team, their own
    over the team's member defaults (those of user_ids only, when given); their spend within the
    team is filled in by /team/info (null here)."""
    defaults = member_defaults(team)
    duration = (team.extra_fields or {}).get(TEAM_MEMBER_BUDGET_DURATION) if defaults else None
    rows = []
    for entry in team.members_with_roles:
        own = {k: v for k, v in (entry.get("limits") or {}).items() if v is not None}
        if not (own or defaults) or (user_ids is not None and entry["user_id"] not in user_ids):
            continue
        rows.append(
            {"user_id": entry["user_id"], "team_id": team.team_id, "budget_id": None, "spend": None,
             "litellm_budget_table": _budget_table({**defaults, **own}, duration)}
        )  # fmt: skip
    return rows


async def _check_refs(session: AsyncSession, team: TeamRow) -> None:
    await require_organization(team.organization_id, session=session)
    await require_key_group(team.key_group, session=session)
    await require_budget(team.budget_id, session=session)


async def members_by_email(session: AsyncSession, caller: AdminCaller, team: TeamRow) -> list[SQLModel]:
    """Members named by email only become the user with that email, created when there is none
    (LiteLLM's /team/new does the same); entries naming one user twice become one (the last)."""
    created: list[SQLModel] = []
    entries: dict[str, dict[str, Any]] = {}
    for entry in team.members_with_roles:
        if not entry.get("user_id"):
            user, new = await user_for_email(session, caller, entry["user_email"])
            entry = {**entry, "user_id": user.user_id}
            if new:
                user.teams = [team.team_id]  # so members_follow finds nothing left to change
                created.append(user)
        entries[entry["user_id"]] = entry
    team.members_with_roles = list(entries.values())
    return created


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


def _team_shown(team: TeamRow, data: dict[str, Any]) -> dict[str, Any]:
    shown = shown_stored(data)
    shown["members_with_roles"] = [member_public(m) for m in team.members_with_roles]
    return shown


_KEYS = KeyOwner("team_id", info_field="team_info")


def team_member_entity(team_id: str, user_id: str) -> str:
    """How spend totals name a member within a team (their `team_member` kind)."""
    return f"{team_id}:{user_id}"


async def _team_info(session: AsyncSession, caller: AdminCaller, team: TeamRow) -> dict[str, Any]:
    """LiteLLM's /team/info: the team's keys, the team (team_info) and its members' budgets, each
    membership with the member's live spend within the team."""
    info = await _KEYS.info(session, caller, team)
    team_info = {**TEAMS.public(team), "team_member_budget_table": member_budget_table(team)}
    memberships = team_memberships(team)
    entities = {m["user_id"]: team_member_entity(team.team_id, m["user_id"]) for m in memberships}
    spent = await spend_of("team_member", entities.values(), session=session)
    for membership in memberships:
        membership["spend"] = spend_fields(spent.get(entities[membership["user_id"]]))["spend"]
    return {**info, "team_info": team_info, "team_memberships": memberships}


TEAMS = Entity(
    "team", "teams", TeamRow, "team_id", "team_id", TeamFields,
    body_only=TEAM_STORED, check_refs=_check_refs, companions=with_team_windows(team_companions),
    on_delete=_KEYS.delete_keys, info_extra=with_period_info("team", "team_id", _team_info, "team_info"),
    own_id=lambda key: key.team_id, managed_by=lambda caller, team_id: caller.manages_team(team_id),
    list_filters=("organization_id",), null_keeps=True, prepare=members_by_email,
    derive=derive_stored(TEAM_STORED), shown=_team_shown,
    update_answer=lambda public: {**public, "data": public},  # LiteLLM answers {team_id, data}
    spend_kind="team",
)  # fmt: skip


@dataclass
class MemberChange:
    """What a member route changed: users it created for emails, and the members it touched."""

    created: list[SQLModel] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)


ChangeTeam = Callable[[AsyncSession, AdminCaller, TeamRow, Any], Awaitable[MemberChange]]
Answer = Callable[[TeamRow, Any, MemberChange], dict[str, Any]]


def _team_answer(team: TeamRow, body: Any, change: MemberChange) -> dict[str, Any]:
    return TEAMS.public(team)


async def _change_team(
    request: web.Request,
    model: type[MemberAddRequest | MemberDeleteRequest | TeamRef],
    action: str,
    change: ChangeTeam,
    answer: Answer = _team_answer,
) -> web.Response:
    caller = await admin_caller(request)
    body = validate(model, await read_json_object(request))
    team_id = body.team_id
    if action in ("block", "unblock"):
        caller.require_write()
    else:
        caller.require_team(team_id)
    async with request.app[SESSIONS]() as session:
        [team] = await TEAMS.lock(session, [team_id])
        before = TEAMS.public(team)
        changed = await change(session, caller, team, body)
        team.updated_at = utcnow()
        followed = [u for u in await members_follow(session, team, False) if u not in changed.created]
        await save_resources(team, *changed.created, *followed, session=session)
        await team_windows(session, team)
        TEAMS.record(session, caller, action, team, before)
        result = answer(team, body, changed)
        if action == "member_add":
            # The members' users are in the session already (members_follow locked them).
            users = [await session.get(UserRow, user_id) for user_id in changed.user_ids]
            result["updated_users"] = [row_public(user) for user in users if user is not None]
        await session.commit()
    return json_response(result)


async def _add_members(session: AsyncSession, caller: AdminCaller, team: TeamRow, body: Any) -> MemberChange:
    members: list[TeamMember] = body.member if isinstance(body.member, list) else [body.member]
    entries = {m["user_id"]: m for m in team.members_with_roles}
    change = MemberChange()
    for member in members:
        user_id, created = await member_user_id(session, caller, member)
        if created is not None:
            created.teams = [team.team_id]
            change.created.append(created)
        entry = {**entries.get(user_id, {}), "user_id": user_id, "role": member.role}
        if member.user_email is not None:
            entry["user_email"] = member.user_email
        if body.max_budget_in_team is not None:
            entry["limits"] = {**entry.get("limits", {}), "max_budget_in_team": body.max_budget_in_team}
        entries[user_id] = entry
        change.user_ids.append(user_id)
    team.members_with_roles = list(entries.values())
    return change


def _added_answer(team: TeamRow, body: Any, change: MemberChange) -> dict[str, Any]:
    """LiteLLM's TeamAddMemberResponse: the team, the members' users (added by the route) and
    the memberships with a budget."""
    return {**TEAMS.public(team), "updated_team_memberships": team_memberships(team, set(change.user_ids))}


async def _remove_member(
    session: AsyncSession, caller: AdminCaller, team: TeamRow, body: Any
) -> MemberChange:
    user_id = await existing_member_id(session, team.members_with_roles, body, "team")
    team.members_with_roles = [m for m in team.members_with_roles if m["user_id"] != user_id]
    return MemberChange(user_ids=[user_id])


async def _update_member(
    session: AsyncSession, caller: AdminCaller, team: TeamRow, body: Any
) -> MemberChange:
    user_id = await existing_member_id(session, team.members_with_roles, body, "team")
    entries = []
    for entry in team.members_with_roles:
        if entry["user_id"] == user_id:
            entry = dict(entry)
            if body.role is not None:
                entry["role"] = body.role
            if body.user_email is not None:
                entry["user_email"] = body.user_email
            limits = {**entry.get("limits", {})}
            limits.update(
                {name: getattr(body, name) for name in MEMBER_LIMITS if getattr(body, name) is not None}
            )
            if limits:
                entry["limits"] = limits
        entries.append(entry)
    team.members_with_roles = entries
    return MemberChange(user_ids=[user_id])


def _updated_answer(team: TeamRow, body: Any, change: MemberChange) -> dict[str, Any]:
    """LiteLLM's TeamMemberUpdateResponse, with the member's values after the update."""
    [entry] = [m for m in team.members_with_roles if m["user_id"] == change.user_ids[0]]
    limits = entry.get("limits") or {}
    return {
        "team_id": team.team_id, "user_id": entry["user_id"], "user_email": entry.get("user_email"),
        "role": entry.get("role", "user"), **{name: limits.get(name) for name in MEMBER_LIMITS},
    }  # fmt: skip


async def member_add(request: web.Request) -> web.Response:
    """POST /team/member_add: add members by user_id or user_email (or change their role)."""
    return await _change_team(request, MemberAddRequest, "member_add", _add_members, _added_answer)


async def member_update(request: web.Request) -> web.Response:
    """POST /team/member_update: a member's role, budget and rate limits in the team."""
    return await _change_team(request, MemberUpdateRequest, "member_update", _update_member, _updated_answer)


async def member_delete(request: web.Request) -> web.Response:
    """POST /team/member_delete: remove a member, named by user_id or user_email."""
    return await _change_team(request, MemberDeleteRequest, "member_delete", _remove_member)


def _blocking(blocked: bool) -> ChangeTeam:
    async def change(session: AsyncSession, caller: AdminCaller, team: TeamRow, body: Any) -> MemberChange:
        team.blocked = blocked
        return MemberChange()

    return change


async def block(request: web.Request) -> web.Response:
    """POST /team/block: every key of the team is refused."""
    return await _change_team(request, TeamRef, "block", _blocking(True))


async def unblock(request: web.Request) -> web.Response:
    """POST /team/unblock."""
    return await _change_team(request, TeamRef, "unblock", _blocking(False))


ROUTES = [
    *entity_routes(TEAMS),
    web.post("/team/member_add", member_add),
    web.post("/team/member_update", member_update),
    web.post("/team/member_delete", member_delete),
    web.post("/team/block", block),
    web.post("/team/unblock", unblock),
]
