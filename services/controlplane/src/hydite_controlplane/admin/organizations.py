"""Organizations: their request schema (LiteLLM's organization fields), admin routes, members
(/organization/member_add, /organization/member_update, /organization/member_delete, by user_id or
user_email).

Members carry their role in the organization (org_admin, internal_user, internal_user_viewer) and
their budget in it; both are kept and shown, and an org_admin may manage the members. Like
LiteLLM, /organization/update also answers PATCH, and /organization/delete and member_delete DELETE.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web
from pydantic import Field
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.errors import PermissionDeniedError
from hydite_common.http import read_json_object
from hydite_controlplane.admin.auth import AdminCaller, admin_caller
from hydite_controlplane.admin.entities import Entity, entity_routes, row_public
from hydite_controlplane.admin.members import MemberRef, existing_member_id, member_user_id
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.stored_fields import derive_stored, shown_stored, stored_names
from hydite_controlplane.admin.teams import TEAMS
from hydite_controlplane.admin.validation import AdminRequest, JsonObject, LimitFields, Name, validate
from hydite_controlplane.appkeys import SESSIONS
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.principals import OrganizationRow, TeamRow, UserRow
from hydite_controlplane.spend_windows import with_period_info, with_windows
from hydite_controlplane.store.principals import list_rows, organization_in_use
from hydite_controlplane.store.resources import save_resources

OrgRole = Literal["org_admin", "internal_user", "internal_user_viewer"]


class OrganizationStoredFields(AdminRequest):
    """LiteLLM's organization fields Hydite keeps and shows but does not act on yet."""

    budget_id: Name | None = None
    model_max_budget: JsonObject | None = None
    object_permission: JsonObject | None = None
    spend: float | None = Field(default=None, ge=0)
    updated_by: Name | None = None


ORGANIZATION_STORED = stored_names(OrganizationStoredFields)


class OrganizationFields(LimitFields, OrganizationStoredFields):
    """Body of /organization/new and /organization/update: LiteLLM's NewOrganizationRequest and
    LiteLLM_OrganizationTableUpdate fields; null for a field means it is not set."""

    organization_id: Name | None = None
    organization_alias: Name | None = None
    models: list[str] | None = None
    blocked: bool | None = None


class OrgMember(MemberRef):
    """A member of an organization and their role in it (LiteLLM's OrgMember)."""

    role: OrgRole = "internal_user"


class OrgMemberAddRequest(AdminRequest):
    """Body of POST /organization/member_add."""

    organization_id: Name = Field(min_length=1)
    member: OrgMember | list[OrgMember]
    max_budget_in_organization: float | None = Field(default=None, ge=0)


class OrgMemberDeleteRequest(MemberRef):
    """Body of /organization/member_delete: the member by user_id or user_email."""

    organization_id: Name = Field(min_length=1)


class OrgMemberUpdateRequest(OrgMemberDeleteRequest):
    """Body of /organization/member_update: what changes of one member (null: unchanged)."""

    role: OrgRole | None = None
    max_budget_in_organization: float | None = Field(default=None, ge=0)


def budget_table(org: OrganizationRow) -> dict[str, Any]:
    """LiteLLM's litellm_budget_table of an organization: its budget and limits."""
    return {
        "budget_id": org.extra_fields.get("budget_id"), "soft_budget": org.soft_budget,
        "max_budget": org.max_budget, "max_parallel_requests": org.max_parallel_requests,
        "tpm_limit": org.tpm_limit, "rpm_limit": org.rpm_limit,
        "model_max_budget": org.extra_fields.get("model_max_budget"), "budget_duration": org.budget_duration,
    }  # fmt: skip


def membership_public(org: OrganizationRow, entry: dict[str, Any]) -> dict[str, Any]:
    """A member in LiteLLM's organization membership shape (spend in the organization is not
    tracked, so it is left out)."""
    budget = entry.get("max_budget_in_organization")
    return {
        "user_id": entry["user_id"], "organization_id": org.organization_id,
        "user_role": entry.get("user_role"), "user_email": entry.get("user_email"), "budget_id": None,
        "litellm_budget_table": {"max_budget": budget} if budget is not None else None,
        "created_at": entry.get("created_at"), "updated_at": entry.get("updated_at"),
    }  # fmt: skip


def _organization_shown(org: OrganizationRow, data: dict[str, Any]) -> dict[str, Any]:
    shown = shown_stored(data)
    shown["members"] = [membership_public(org, m) for m in org.members]
    shown["litellm_budget_table"] = budget_table(org)
    return shown


async def _organization_info(
    session: AsyncSession, caller: AdminCaller, org: OrganizationRow
) -> dict[str, Any]:
    """The organization's teams, as LiteLLM's /organization/info lists them."""
    teams, _ = await list_rows(
        TeamRow, session=session, filters=[("organization_id", org.organization_id)], offset=0, limit=1000
    )
    return {"teams": [TEAMS.public(team) for team in teams]}


async def _no_companions(session: AsyncSession, org: OrganizationRow, deleting: bool) -> list[SQLModel]:
    return []


ORGANIZATIONS = Entity(
    "organization", "organizations", OrganizationRow, "organization_id", "organization_id",
    OrganizationFields, body_only=ORGANIZATION_STORED, in_use=organization_in_use,
    used_by="teams, keys or users", own_id=lambda key: key.organization_id,
    info_extra=with_period_info("organization", "organization_id", _organization_info),
    companions=with_windows("organization", "organization_id", _no_companions),
    null_keeps=True, derive=derive_stored(ORGANIZATION_STORED),
    shown=_organization_shown, spend_kind="organization",
)  # fmt: skip


OrgAnswer = dict[str, Any]
ChangeMembers = Callable[
    [AsyncSession, AdminCaller, OrganizationRow, Any], Awaitable[tuple[list[SQLModel], OrgAnswer]]
]


def _is_org_admin(caller: AdminCaller, org: OrganizationRow) -> bool:
    user_id = caller.key.user_id if caller.key is not None else None
    return bool(user_id) and any(
        m["user_id"] == user_id and m.get("user_role") == "org_admin" for m in org.members
    )


async def _change_members(
    request: web.Request,
    model: type[OrgMemberAddRequest | OrgMemberDeleteRequest],
    action: str,
    change: ChangeMembers,
) -> web.Response:
    """Change an organization's members: for admins and the organization's org_admins."""
    caller = await admin_caller(request)
    body = validate(model, await read_json_object(request))
    if not caller.can_write and (caller.key is None or not caller.key.user_id):
        caller.require_write()
    async with request.app[SESSIONS]() as session:
        [org] = await ORGANIZATIONS.lock(session, [body.organization_id])
        if not (caller.can_write or _is_org_admin(caller, org)):
            raise PermissionDeniedError(
                "this needs an admin, or an org_admin of the organization", code="org_admin_only"
            )
        before = ORGANIZATIONS.public(org)
        created, answer = await change(session, caller, org, body)
        org.updated_at = utcnow()
        await save_resources(org, *created, session=session)
        ORGANIZATIONS.record(session, caller, action, org, before)
        await session.commit()
    return json_response(answer)


async def _add_members(
    session: AsyncSession, caller: AdminCaller, org: OrganizationRow, body: Any
) -> tuple[list[SQLModel], OrgAnswer]:
    members: list[OrgMember] = body.member if isinstance(body.member, list) else [body.member]
    entries = {m["user_id"]: m for m in org.members}
    now = utcnow().isoformat()
    created: list[SQLModel] = []
    added: list[str] = []
    for member in members:
        user_id, new_user = await member_user_id(session, caller, member)
        if new_user is not None:
            created.append(new_user)
        entry = {"created_at": now, **entries.get(user_id, {}), "user_id": user_id, "user_role": member.role}
        entry["updated_at"] = now
        if member.user_email is not None:
            entry["user_email"] = member.user_email
        if body.max_budget_in_organization is not None:
            entry["max_budget_in_organization"] = body.max_budget_in_organization
        entries[user_id] = entry
        added.append(user_id)
    org.members = list(entries.values())
    users = [await session.get(UserRow, user_id) for user_id in added]
    return created, {
        "organization_id": org.organization_id,
        "updated_users": [row_public(user) for user in users if user is not None],
        "updated_organization_memberships": [membership_public(org, entries[u]) for u in added],
    }


async def _update_member(
    session: AsyncSession, caller: AdminCaller, org: OrganizationRow, body: Any
) -> tuple[list[SQLModel], OrgAnswer]:
    user_id = await existing_member_id(session, org.members, body, "organization")
    entries, updated = [], {}
    for entry in org.members:
        if entry["user_id"] == user_id:
            entry = {**entry, "updated_at": utcnow().isoformat()}
            if body.role is not None:
                entry["user_role"] = body.role
            if body.max_budget_in_organization is not None:
                entry["max_budget_in_organization"] = body.max_budget_in_organization
            updated = entry
        entries.append(entry)
    org.members = entries
    return [], membership_public(org, updated)


async def _remove_member(
    session: AsyncSession, caller: AdminCaller, org: OrganizationRow, body: Any
) -> tuple[list[SQLModel], OrgAnswer]:
    user_id = await existing_member_id(session, org.members, body, "organization")
    [removed] = [m for m in org.members if m["user_id"] == user_id]
    org.members = [m for m in org.members if m["user_id"] != user_id]
    return [], membership_public(org, removed)


async def member_add(request: web.Request) -> web.Response:
    """POST /organization/member_add: add members by user_id or user_email (or change their role)."""
    return await _change_members(request, OrgMemberAddRequest, "member_add", _add_members)


async def member_update(request: web.Request) -> web.Response:
    """PATCH (or POST) /organization/member_update: a member's role and budget in the organization."""
    return await _change_members(request, OrgMemberUpdateRequest, "member_update", _update_member)


async def member_delete(request: web.Request) -> web.Response:
    """DELETE (or POST) /organization/member_delete: remove a member, by user_id or user_email."""
    return await _change_members(request, OrgMemberDeleteRequest, "member_delete", _remove_member)


def _with_other_methods(routes: list[web.RouteDef], methods: dict[str, str]) -> list[web.RouteDef]:
    """The routes, and the same handler under another method for the paths in methods."""
    extra = [
        web.route(methods[r.path], r.path, r.handler)
        for r in routes
        if r.path in methods and r.method == "POST"
    ]
    return [*routes, *extra]


ROUTES = _with_other_methods(
    [
        *entity_routes(ORGANIZATIONS),
        web.post("/organization/member_add", member_add),
        web.post("/organization/member_update", member_update),
        web.post("/organization/member_delete", member_delete),
    ],
    {
        "/organization/update": "PATCH",
        "/organization/delete": "DELETE",
        "/organization/member_update": "PATCH",
        "/organization/member_delete": "DELETE",
    },
)
