"""Users, teams, organizations, customers (end users) and key groups: new, update, delete, info, list.

One generic set of handlers serves all five, driven by an `Entity` description;
what differs (team members, a user's first key, what a delete does to keys) is
written out below the generic part.
"""

from __future__ import annotations

import typing
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, create_model, field_validator
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)
from hydite_common.http import json_response, read_json_object
from hydite_common.keys import generate_key, hash_key, mask_key
from hydite_controlplane.admin.auth import USER_ROLES, AdminCaller, admin_caller
from hydite_controlplane.admin.keys import delete_keys, key_public
from hydite_controlplane.admin.validation import (
    AdminRequest,
    Duration,
    LimitFields,
    page_of,
    parse_duration,
    read_request,
    validate,
)
from hydite_controlplane.appkeys import SESSIONS
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_controlplane.models.principals import CustomerRow, KeyGroupRow, OrganizationRow, TeamRow, UserRow
from hydite_controlplane.store import keys as key_store
from hydite_controlplane.store.audit import record_audit
from hydite_controlplane.store.resources import save_resources, write_resources

ROUTING_STRATEGIES = frozenset(
    {"simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing"}
)


class TeamMember(AdminRequest):
    """A member of a team and their role in it."""

    user_id: str = Field(min_length=1)
    role: Literal["admin", "user"] = "user"
    user_email: str | None = None


class UserFields(LimitFields):
    """Body of /user/new and /user/update."""

    user_id: str | None = None
    user_email: str | None = None
    user_role: str | None = None
    teams: list[str] | None = None
    organization_id: str | None = None
    models: list[str] | None = None
    blocked: bool | None = None
    auto_create_key: bool = True
    key_alias: str | None = None
    duration: Duration | None = None

    @field_validator("user_role")
    @classmethod
    def _known_role(cls, value: str | None) -> str | None:
        if value is not None and value not in USER_ROLES:
            raise ValueError(f"user_role must be one of {sorted(USER_ROLES)}")
        return value


class TeamFields(LimitFields):
    """Body of /team/new and /team/update."""

    team_id: str | None = None
    team_alias: str | None = None
    organization_id: str | None = None
    key_group: str | None = None
    models: list[str] | None = None
    members_with_roles: list[TeamMember] | None = None
    blocked: bool | None = None


class OrganizationFields(LimitFields):
    """Body of /organization/new and /organization/update."""

    organization_id: str | None = None
    organization_alias: str | None = None
    models: list[str] | None = None
    blocked: bool | None = None


class CustomerFields(LimitFields):
    """Body of /customer/new and /customer/update; `user_id` is the end user's id (LiteLLM's name)."""

    user_id: str | None = None
    alias: str | None = None
    allowed_models: list[str] | None = None
    blocked: bool | None = None


class KeyGroupFields(LimitFields):
    """Body of /group/new and /group/update."""

    name: str | None = None
    models: list[str] | None = None
    routing_strategy: str | None = None

    @field_validator("routing_strategy")
    @classmethod
    def _known_strategy(cls, value: str | None) -> str | None:
        if value is not None and value not in ROUTING_STRATEGIES:
            raise ValueError(f"routing_strategy must be one of {sorted(ROUTING_STRATEGIES)}")
        return value


def row_public(row: SQLModel) -> dict[str, Any]:
    """A row as JSON-ready public fields (metadata under its API name, times as ISO strings)."""
    data = row.model_dump()
    data["metadata"] = data.pop("metadata_", {})
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}


CheckRefs = Callable[[AsyncSession, Any], Awaitable[None]]


async def _no_refs(session: AsyncSession, row: Any) -> None:
    return None


Companions = Callable[[AsyncSession, Any, bool], Awaitable[list[SQLModel]]]
"""Rows that must change with this one (row, being deleted) — written in the same version."""


async def _no_companions(session: AsyncSession, row: Any, deleting: bool) -> list[SQLModel]:
    return []


@dataclass(frozen=True)
class Entity:
    """How one kind of principal is stored and shown."""

    kind: str  # user, team, organization, customer, group
    plural: str  # users, teams, ...
    row: type[SQLModel]
    id_column: str  # primary key column of the row
    id_field: str  # body / query field that names it
    fields: type[LimitFields]
    renames: dict[str, str] = field(default_factory=dict)  # body field -> column
    generate_id: bool = True
    body_only: frozenset[str] = frozenset()  # request fields that are not columns
    check_refs: CheckRefs = _no_refs
    companions: Companions = _no_companions

    def public(self, row: Any) -> dict[str, Any]:
        """The row as the API shows it."""
        data = row_public(row)
        if self.id_field != self.id_column:
            data[self.id_field] = data[self.id_column]
        return data

    def row_id(self, row: Any) -> str:
        """The row's id."""
        return str(getattr(row, self.id_column))


def apply_fields(entity: Entity, row: Any, body: LimitFields) -> None:
    """Copy the fields the body set onto the row; unset fields keep their value."""
    skip = {entity.id_field, *entity.body_only}
    for name in body.model_fields_set - skip:
        value = getattr(body, name)
        column = "metadata_" if name == "metadata" else entity.renames.get(name, name)
        current = getattr(row, column)
        if value is None and not _nullable(type(row), column):
            raise UnprocessableEntityError(f"{name}: may not be null", param=name)
        if isinstance(current, list):
            value = [m.model_dump(exclude_none=True) if isinstance(m, BaseModel) else m for m in value or []]
        elif isinstance(current, dict):
            value = value or {}
        elif isinstance(current, bool):
            value = bool(value)
        setattr(row, column, value)
    row.updated_at = utcnow()


def _nullable(row_class: type[SQLModel], column: str) -> bool:
    annotation = row_class.model_fields[column].annotation
    return type(None) in typing.get_args(annotation)


async def _load(session: AsyncSession, entity: Entity, entity_id: str) -> Any:
    row = await session.get(entity.row, entity_id)
    if row is None:
        raise NotFoundError(
            f"{entity.kind} {entity_id!r} does not exist",
            code=f"{entity.kind}_not_found",
            param=entity.id_field,
        )
    return row


async def _commit(session: AsyncSession, entity: Entity) -> None:
    try:
        await session.commit()
    except IntegrityError:
        raise ConflictError(f"this {entity.kind} conflicts with an existing one") from None


def _audit(
    session: AsyncSession, caller: AdminCaller, action: str, entity: Entity, row: Any, before: Any
) -> None:
    after = entity.public(row) if action != "delete" else None
    record_audit(
        session, actor=caller.identity, action=f"{entity.kind}.{action}", object_type=entity.kind,
        object_id=entity.row_id(row), before=before, after=after,
    )  # fmt: skip


async def stage_new(
    request: web.Request, session: AsyncSession, entity: Entity
) -> tuple[AdminCaller, Any, LimitFields]:
    """Validate and stage a new row in session (not committed); the caller finishes the write."""
    caller = await admin_caller(request)
    caller.require_write()
    body = await read_request(request, entity.fields)
    entity_id = getattr(body, entity.id_field)
    if entity_id == "":
        raise UnprocessableEntityError(f"{entity.id_field}: may not be empty", param=entity.id_field)
    if entity_id is None:
        if not entity.generate_id:
            raise InvalidRequestError(f"{entity.id_field} is required", param=entity.id_field)
        entity_id = str(uuid.uuid4())
    row = entity.row(**{entity.id_column: entity_id, "created_by": caller.identity})
    apply_fields(entity, row, body)
    if await session.get(entity.row, entity_id) is not None:
        raise ConflictError(f"{entity.kind} {entity_id!r} already exists", param=entity.id_field)
    await entity.check_refs(session, row)
    await save_resources(session, row, *await entity.companions(session, row, False))
    _audit(session, caller, "new", entity, row, None)
    return caller, row, body


def handlers(entity: Entity) -> list[web.RouteDef]:
    """The five routes of an entity."""
    prefix = f"/{entity.kind}"

    async def new(request: web.Request) -> web.Response:
        async with request.app[SESSIONS]() as session:
            _, row, _ = await stage_new(request, session, entity)
            await _commit(session, entity)
        return json_response(entity.public(row))

    async def update(request: web.Request) -> web.Response:
        caller = await admin_caller(request)
        caller.require_write()
        body = await read_request(request, entity.fields)
        entity_id = getattr(body, entity.id_field)
        if not entity_id:
            raise InvalidRequestError(f"{entity.id_field} is required", param=entity.id_field)
        async with request.app[SESSIONS]() as session:
            row = await _load(session, entity, entity_id)
            before = entity.public(row)
            apply_fields(entity, row, body)
            await entity.check_refs(session, row)
            await save_resources(session, row, *await entity.companions(session, row, False))
            _audit(session, caller, "update", entity, row, before)
            await _commit(session, entity)
        return json_response(entity.public(row))

    async def delete(request: web.Request) -> web.Response:
        caller = await admin_caller(request)
        caller.require_write()
        body = await read_request(request, _delete_model(entity))
        ids: list[str] = getattr(body, f"{entity.id_field}s")
        async with request.app[SESSIONS]() as session:
            rows = [await _load(session, entity, entity_id) for entity_id in ids]
            result = await DELETE_EFFECTS.get(entity.kind, _no_delete_effect)(session, caller, rows)
            companions: list[SQLModel] = []
            for row in rows:
                _audit(session, caller, "delete", entity, row, entity.public(row))
                companions += await entity.companions(session, row, True)
            await write_resources(session, removals=rows, upserts=companions)
            await session.commit()
        return json_response({f"deleted_{entity.plural}": ids, **result})

    async def info(request: web.Request) -> web.Response:
        caller = await admin_caller(request)
        entity_id = request.query.get(entity.id_field) or request.query.get(
            _INFO_ALIASES.get(entity.kind, "")
        )
        async with request.app[SESSIONS]() as session:
            entity_id = entity_id or _own_id(caller, entity)
            if not entity_id:
                raise InvalidRequestError(f"pass ?{entity.id_field}=", param=entity.id_field)
            if not (caller.can_read or _is_own(caller, entity, entity_id)):
                raise PermissionDeniedError(f"you may not read this {entity.kind}", code="admin_only")
            row = await _load(session, entity, entity_id)
            extra = await INFO_EXTRAS.get(entity.kind, _no_info_extra)(session, row)
        return json_response({**entity.public(row), **extra})

    async def list_(request: web.Request) -> web.Response:
        caller = await admin_caller(request)
        caller.require_read()
        # LiteLLM's plain lists return everything; the user list and explicit paging page.
        paging = entity.kind == "user" or "page" in request.query or "page_size" in request.query
        page, size = page_of(request, size_param="page_size", default_size=25) if paging else (1, 1_000_000)
        async with request.app[SESSIONS]() as session:
            query = select(entity.row)
            for name, value in request.query.items():
                if name in _LIST_FILTERS.get(entity.kind, ()):
                    query = query.where(getattr(entity.row, name) == value)
            total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
            page_query = query.order_by(text("created_at")).offset((page - 1) * size).limit(size)
            rows = (await session.exec(page_query)).all()
        items = [entity.public(r) for r in rows]
        if entity.kind != "user":
            return json_response(items)
        return json_response(
            {
                "users": items,
                "total": total,
                "page": page,
                "page_size": size,
                "total_pages": max(1, -(-total // size)),
            }
        )

    return [
        web.post(f"{prefix}/new", new),
        web.post(f"{prefix}/update", update),
        web.post(f"{prefix}/delete", delete),
        web.get(f"{prefix}/info", info),
        web.get(f"{prefix}/list", list_),
    ]


_DELETE_MODELS: dict[str, type[AdminRequest]] = {}


def _delete_model(entity: Entity) -> type[AdminRequest]:
    """{"<id_field>s": [...]} with at least one id."""
    name = f"{entity.id_field}s"
    if entity.kind not in _DELETE_MODELS:
        _DELETE_MODELS[entity.kind] = create_model(  # type: ignore[call-overload]
            f"Delete{entity.kind.title()}Request",
            __base__=AdminRequest,
            **{name: (list[str], Field(min_length=1))},
        )
    return _DELETE_MODELS[entity.kind]


_INFO_ALIASES = {"customer": "end_user_id"}
_LIST_FILTERS = {
    "user": ("user_role", "organization_id"),
    "team": ("organization_id",),
}


def _own_id(caller: AdminCaller, entity: Entity) -> str | None:
    """What a key reads when it asks for 'its' user, team, organization or group."""
    key = caller.key
    if key is None:
        return None
    return {
        "user": key.user_id,
        "team": key.team_id,
        "organization": key.organization_id,
        "group": key.key_group,
    }.get(entity.kind)


def _is_own(caller: AdminCaller, entity: Entity, entity_id: str) -> bool:
    return entity_id == _own_id(caller, entity) or (entity.kind == "team" and caller.manages_team(entity_id))


# ---------------------------------------------------------------- what differs per entity


async def _no_delete_effect(session: AsyncSession, caller: AdminCaller, rows: list[Any]) -> dict[str, Any]:
    return {}


async def _delete_owned_keys(session: AsyncSession, caller: AdminCaller, rows: list[Any]) -> dict[str, Any]:
    """Like LiteLLM: deleting users or teams deletes the keys they own."""
    kind_is_team = isinstance(rows[0], TeamRow)
    ids = [r.team_id if kind_is_team else r.user_id for r in rows]
    keys = await key_store.keys_owned_by(
        session, **({"team_ids": ids} if kind_is_team else {"user_ids": ids})
    )
    await delete_keys(session, caller, keys, action="key.delete_with_owner")
    return {"deleted_keys": sorted(k.token for k in keys)}


async def _refuse_if_referenced(
    session: AsyncSession, caller: AdminCaller, rows: list[Any]
) -> dict[str, Any]:
    """Organizations and key groups still in use cannot be deleted (that would widen access)."""
    for row in rows:
        if isinstance(row, OrganizationRow):
            org_id = row.organization_id
            queries = [
                select(TeamRow.team_id).where(TeamRow.organization_id == org_id),
                select(VirtualKeyRow.token).where(VirtualKeyRow.organization_id == org_id),
                select(UserRow.user_id).where(UserRow.organization_id == org_id),
            ]
            what, name = "teams, keys or users", org_id
        else:
            queries = [
                select(VirtualKeyRow.token).where(VirtualKeyRow.key_group == row.name),
                select(TeamRow.team_id).where(TeamRow.key_group == row.name),
            ]
            what, name = "keys or teams", row.name
        for used in queries:
            if (await session.exec(used)).first() is None:
                continue
            raise ConflictError(f"{name!r} is still used by {what}; move or delete them first")
    return {}


DELETE_EFFECTS: dict[str, Callable[[AsyncSession, AdminCaller, list[Any]], Awaitable[dict[str, Any]]]] = {
    "user": _delete_owned_keys,
    "team": _delete_owned_keys,
    "organization": _refuse_if_referenced,
    "group": _refuse_if_referenced,
}


async def _no_info_extra(session: AsyncSession, row: Any) -> dict[str, Any]:
    return {}


async def _with_keys(session: AsyncSession, row: Any) -> dict[str, Any]:
    is_team = isinstance(row, TeamRow)
    owned = await key_store.keys_owned_by(
        session, **({"team_ids": [row.team_id]} if is_team else {"user_ids": [row.user_id]})
    )
    extra: dict[str, Any] = {"keys": [key_public(k) for k in owned]}
    if is_team:
        extra["team_info"] = row_public(row)
    else:
        extra["user_info"] = row_public(row)
    return extra


INFO_EXTRAS: dict[str, Callable[[AsyncSession, Any], Awaitable[dict[str, Any]]]] = {
    "user": _with_keys,
    "team": _with_keys,
}


async def _check_org_and_group(session: AsyncSession, row: Any) -> None:
    org_id = getattr(row, "organization_id", None)
    if org_id and await session.get(OrganizationRow, org_id) is None:
        raise InvalidRequestError(f"organization {org_id!r} does not exist", param="organization_id")
    group = getattr(row, "key_group", None)
    if group and await session.get(KeyGroupRow, group) is None:
        raise InvalidRequestError(f"key group {group!r} does not exist", param="key_group")
    for team_id in getattr(row, "teams", None) or ():
        if await session.get(TeamRow, team_id) is None:
            raise InvalidRequestError(f"team {team_id!r} does not exist", param="teams")


async def _team_members_follow(session: AsyncSession, team: TeamRow, deleting: bool) -> list[SQLModel]:
    """Users' `teams` lists follow the team's members (existing users only)."""
    members = set() if deleting else {m["user_id"] for m in team.members_with_roles}
    listed = await session.exec(select(UserRow).where(col(UserRow.teams).contains([team.team_id])))
    users = {u.user_id: u for u in listed}
    for uid in members - users.keys():
        if (user := await session.get(UserRow, uid)) is not None:
            users[uid] = user
    changed: list[SQLModel] = []
    for uid, user in users.items():
        teams = set(user.teams) - {team.team_id} | ({team.team_id} if uid in members else set())
        if teams != set(user.teams):
            user.teams = sorted(teams)
            changed.append(user)
    return changed


async def _user_teams_follow(session: AsyncSession, user: UserRow, deleting: bool) -> list[SQLModel]:
    """Teams' members follow the user's `teams` list; a deleted user leaves every team."""
    wanted = set() if deleting else set(user.teams)
    member_of = await session.exec(
        select(TeamRow).where(col(TeamRow.members_with_roles).contains([{"user_id": user.user_id}]))
    )
    teams = {t.team_id: t for t in member_of}
    for team_id in wanted - teams.keys():
        if (team := await session.get(TeamRow, team_id)) is not None:
            teams[team_id] = team
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


USERS = Entity(
    "user", "users", UserRow, "user_id", "user_id", UserFields,
    body_only=frozenset({"auto_create_key", "key_alias", "duration"}), check_refs=_check_org_and_group,
    companions=_user_teams_follow,
)  # fmt: skip
TEAMS = Entity(
    "team", "teams", TeamRow, "team_id", "team_id", TeamFields,
    check_refs=_check_org_and_group, companions=_team_members_follow,
)  # fmt: skip
ORGANIZATIONS = Entity(
    "organization", "organizations", OrganizationRow, "organization_id", "organization_id", OrganizationFields
)
CUSTOMERS = Entity(
    "customer", "customers", CustomerRow, "customer_id", "user_id", CustomerFields, generate_id=False
)
KEY_GROUPS = Entity("group", "groups", KeyGroupRow, "name", "name", KeyGroupFields, generate_id=False)


# ---------------------------------------------------------------- routes beyond the five


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
            if key_row.key_alias and await key_store.alias_taken(session, key_row.key_alias):
                raise ConflictError(f"key_alias {key_row.key_alias!r} is already used", param="key_alias")
            await save_resources(session, key_row)
            record_audit(
                session, actor=caller.identity, action="key.generate", object_type="key",
                object_id=key_row.token, before=None, after=key_public(key_row),
            )  # fmt: skip
            response.update(key=key, token=key_row.token, key_name=key_row.key_name, expires=key_row.expires)
        await _commit(session, USERS)
    return json_response({k: v.isoformat() if isinstance(v, datetime) else v for k, v in response.items()})


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


class CustomerRefs(AdminRequest):
    """Body naming end users."""

    user_ids: list[str] = Field(min_length=1)


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
        team = await _load(session, TEAMS, team_id)
        before = TEAMS.public(team)
        change(team, body)
        team.updated_at = utcnow()
        await save_resources(session, team, *await _team_members_follow(session, team, False))
        _audit(session, caller, action, TEAMS, team, before)
        await _commit(session, TEAMS)
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


async def team_block(request: web.Request) -> web.Response:
    """POST /team/block: every key of the team is refused."""
    return await _change_team(request, TeamRef, "block", lambda team, _: setattr(team, "blocked", True))


async def team_unblock(request: web.Request) -> web.Response:
    """POST /team/unblock."""
    return await _change_team(request, TeamRef, "unblock", lambda team, _: setattr(team, "blocked", False))


async def _set_customers_blocked(request: web.Request, blocked: bool) -> web.Response:
    caller = await admin_caller(request)
    caller.require_write()
    body = await read_request(request, CustomerRefs)
    async with request.app[SESSIONS]() as session:
        rows = [await _load(session, CUSTOMERS, cid) for cid in body.user_ids]
        for row in rows:
            before = CUSTOMERS.public(row)
            row.blocked = blocked
            row.updated_at = utcnow()
            _audit(session, caller, "block" if blocked else "unblock", CUSTOMERS, row, before)
        await save_resources(session, *rows)
        await session.commit()
    return json_response({"blocked_users" if blocked else "unblocked_users": body.user_ids})


async def customer_block(request: web.Request) -> web.Response:
    """POST /customer/block: requests naming these end users are refused."""
    return await _set_customers_blocked(request, True)


async def customer_unblock(request: web.Request) -> web.Response:
    """POST /customer/unblock."""
    return await _set_customers_blocked(request, False)


def _routes() -> list[web.RouteDef]:
    return [
        web.post("/user/new", new_user),
        *[r for r in handlers(USERS) if r.path != "/user/new"],
        *handlers(TEAMS),
        web.post("/team/member_add", member_add),
        web.post("/team/member_delete", member_delete),
        web.post("/team/block", team_block),
        web.post("/team/unblock", team_unblock),
        *handlers(ORGANIZATIONS),
        *handlers(CUSTOMERS),
        web.post("/customer/block", customer_block),
        web.post("/customer/unblock", customer_unblock),
        *handlers(KEY_GROUPS),
    ]


ROUTES = _routes()
