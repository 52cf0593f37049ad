"""Customers (end users of a customer application, named by a request's `user` field): their
request schema (LiteLLM's NewCustomerRequest and UpdateCustomerRequest fields) and admin routes,
including /customer/block and /customer/unblock; every route also answers under LiteLLM's older
name, /end_user/.

A customer may link a budget (`budget_id`); its answers show that budget, or the customer's own
budget fields, as LiteLLM's `litellm_budget_table`. Null for a field means it is not set.

An end-user id is unique within its scope: a team, an organization, or global (created by an
admin). Every route works in one scope: the `team_id` or `organization_id` it is given, else the
caller's team when the caller administers a team but not the proxy, else global.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, model_validator
from sqlalchemy import ColumnElement
from sqlmodel import col, select, text
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.config_types import SCOPED_NAME_PREFIXES, customer_name
from hydite_common.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)
from hydite_controlplane.admin.auth import AdminCaller, admin_caller
from hydite_controlplane.admin.budgets import budget_public, require_budget
from hydite_controlplane.admin.entities import Entity
from hydite_controlplane.admin.live_spend import period_fields, set_spend, spend_fields
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.stored_fields import derive_stored, shown_stored, stored_names
from hydite_controlplane.admin.validation import (
    AdminRequest,
    JsonObject,
    LimitFields,
    Name,
    Timestamp,
    check_stored_windows,
    page_of,
    read_request,
)
from hydite_controlplane.appkeys import NATS, SESSIONS
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.deployments import DeploymentRow
from hydite_controlplane.models.principals import CustomerRow, OrganizationRow, TeamRow
from hydite_controlplane.spend_windows import ensure_windows
from hydite_controlplane.store import budgets as budget_store
from hydite_controlplane.store.resources import save_resources, write_resources
from hydite_controlplane.store.spend_totals import spend_of
from hydite_controlplane.store.spend_windows import row_periods


class CustomerStoredFields(AdminRequest):
    """LiteLLM's customer fields Hydite keeps and shows but does not act on yet."""

    allowed_model_region: Literal["eu", "us"] | None = None
    default_model: Name | None = None
    object_permission: JsonObject | None = None
    model_max_budget: JsonObject | None = None
    budget_reset_at: Timestamp | None = None


CUSTOMER_STORED = stored_names(CustomerStoredFields)


class CustomerFields(LimitFields, CustomerStoredFields):
    """Body of /customer/update (and, with its own checks, /customer/new); `user_id` is the end
    user's id (LiteLLM's name), `team_id` or `organization_id` the scope it is unique in."""

    user_id: Name | None = None
    team_id: Name | None = None
    organization_id: Name | None = None
    alias: Name | None = None
    allowed_models: list[str] | None = None
    blocked: bool | None = None
    budget_id: Name | None = None
    spend: float | None = Field(default=None, ge=0)


class NewCustomerFields(CustomerFields):
    """Body of /customer/new: a budget comes from budget_id or from the customer's own fields."""

    @model_validator(mode="after")
    def _one_budget(self) -> NewCustomerFields:
        if self.max_budget is not None and self.budget_id is not None:
            raise ValueError("set either 'max_budget' or 'budget_id', not both")
        return self


class CustomerRefs(AdminRequest):
    """Body naming end users of one scope."""

    user_ids: list[Name] = Field(min_length=1)
    team_id: Name | None = None
    organization_id: Name | None = None


def _shown(row: CustomerRow, data: dict[str, Any]) -> dict[str, Any]:
    return shown_stored(data)


CUSTOMERS = Entity(
    "customer", "customers", CustomerRow, "customer_id", "user_id", CustomerFields, generate_id=False,
    body_only=frozenset({"team_id", "organization_id", *CUSTOMER_STORED}), null_keeps=True,
    derive=derive_stored(CUSTOMER_STORED), shown=_shown,
)  # fmt: skip
"""How a customer row is shown, audited and updated (the scope is part of its identity)."""


@dataclass(frozen=True, slots=True)
class CustomerScope:
    """Where end-user ids are looked up: a team, an organization, or global (both None)."""

    team_id: str | None = None
    organization_id: str | None = None

    def name(self, customer_id: str) -> str:
        """The resource name of this scope's end user customer_id."""
        return customer_name(customer_id, self.team_id, self.organization_id)


def customer_scope(
    caller: AdminCaller, team_id: str | None, organization_id: str | None, *, write: bool
) -> CustomerScope:
    """The scope a call works in, or a 403 when the caller may not use it.

    A team's admin manages its end users; organization and global end users are for admins
    (viewers may read them). Without an explicit scope an admin means global, and an admin of
    exactly one team means that team.
    """
    if team_id and organization_id:
        raise UnprocessableEntityError(
            "an end user belongs to a team or an organization, not both", param="organization_id"
        )
    if team_id:
        if not (caller.manages_team(team_id) or (not write and caller.can_read)):
            raise PermissionDeniedError(
                "this needs an admin, or an admin of the team concerned", code="team_admin_only"
            )
        return CustomerScope(team_id=team_id)
    if not organization_id and not (caller.can_write if write else caller.can_read):
        if len(caller.admin_team_ids) == 1:
            return CustomerScope(team_id=next(iter(caller.admin_team_ids)))
        if caller.admin_team_ids:
            raise InvalidRequestError("you administer several teams: pass team_id", param="team_id")
    if write:
        caller.require_write()
    else:
        caller.require_read()
    return CustomerScope(organization_id=organization_id or None)


async def _check_scope_exists(session: AsyncSession, scope: CustomerScope) -> None:
    if scope.team_id and await session.get(TeamRow, scope.team_id) is None:
        raise NotFoundError(f"team {scope.team_id!r} does not exist", code="team_not_found", param="team_id")
    if scope.organization_id and await session.get(OrganizationRow, scope.organization_id) is None:
        raise NotFoundError(
            f"organization {scope.organization_id!r} does not exist",
            code="organization_not_found",
            param="organization_id",
        )


async def _load(
    session: AsyncSession, scope: CustomerScope, customer_id: str, *, for_update: bool
) -> CustomerRow:
    """The scope's end user customer_id, or a 404 (locked and reloaded when `for_update`)."""
    name = scope.name(customer_id)
    row = (
        await session.get(CustomerRow, name, with_for_update=True, populate_existing=True)
        if for_update
        else await session.get(CustomerRow, name)
    )
    if row is None:
        raise NotFoundError(
            f"customer {customer_id!r} does not exist", code="customer_not_found", param="user_id"
        )
    return row


async def _load_all(
    session: AsyncSession, scope: CustomerScope, customer_ids: Sequence[str]
) -> list[CustomerRow]:
    """The scope's end users (each once), locked in name order (one lock order for every writer)."""
    by_name = {scope.name(cid): cid for cid in customer_ids}
    return [await _load(session, scope, by_name[n], for_update=True) for n in sorted(by_name)]


OWN_BUDGET_FIELDS = ("max_budget", "soft_budget", "max_parallel_requests", "tpm_limit", "rpm_limit")


def _own_budget(row: CustomerRow) -> dict[str, Any] | None:
    """The customer's own budget fields in the form of a budget, or None when it sets none."""
    stored = row.extra_fields or {}
    values: dict[str, Any] = {name: getattr(row, name) for name in OWN_BUDGET_FIELDS}
    values["model_max_budget"] = stored.get("model_max_budget")
    values["budget_duration"] = row.budget_duration
    values["budget_reset_at"] = stored.get("budget_reset_at")
    if all(value is None for value in values.values()):
        return None
    return {"budget_id": None, **values}


async def shown_customers(session: AsyncSession, rows: Sequence[CustomerRow]) -> list[dict[str, Any]]:
    """Customers as LiteLLM shows them: with `litellm_budget_table`, the linked budget (or the
    customer's own budget fields), and their live spend (the running total of their scoped name, the
    entity usage events count a registered end user by)."""
    linked = [r.budget_id for r in rows if r.budget_id]
    budgets = {b.budget_id: b for b in await budget_store.budgets_by_id(linked, session=session)}
    spent = await spend_of("customer", [r.name for r in rows], session=session)
    shown = []
    for row in rows:
        budget = budgets.get(row.budget_id) if row.budget_id else None
        table = budget_public(budget) if budget is not None else _own_budget(row)
        live = spend_fields(spent.get(row.name))
        shown.append({**CUSTOMERS.public(row), **live, "litellm_budget_table": table})
    return shown


async def _check_links(session: AsyncSession, row: CustomerRow, body: CustomerFields) -> None:
    """The budget a customer links exists, and so does the default_model the body names (LiteLLM
    refuses a default model the gateway does not serve)."""
    await require_budget(row.budget_id, session=session)
    if body.default_model:
        served = select(DeploymentRow.model_id).where(DeploymentRow.model_name == body.default_model)
        if (await session.exec(served.limit(1))).first() is None:
            raise UnprocessableEntityError(
                f"default_model: {body.default_model!r} is not a model of this gateway", param="default_model"
            )


async def new(request: web.Request) -> web.Response:
    """POST /customer/new: an end user of the caller's scope (or of team_id / organization_id)."""
    caller = await admin_caller(request)
    body = await read_request(request, NewCustomerFields)
    scope = customer_scope(caller, body.team_id, body.organization_id, write=True)
    if body.user_id is None:
        raise InvalidRequestError("user_id is required", param="user_id")
    if body.user_id == "":
        raise UnprocessableEntityError("user_id: may not be empty", param="user_id")
    if scope == CustomerScope() and body.user_id.startswith(SCOPED_NAME_PREFIXES):
        raise UnprocessableEntityError(
            "user_id: a global end user's id may not begin with 'team:' or 'org:'", param="user_id"
        )
    row = CustomerRow(
        name=scope.name(body.user_id), customer_id=body.user_id, team_id=scope.team_id,
        organization_id=scope.organization_id, created_by=caller.identity,
    )  # fmt: skip
    CUSTOMERS.apply(row, body)
    async with request.app[SESSIONS]() as session:
        await _check_scope_exists(session, scope)
        if await session.get(CustomerRow, row.name) is not None:
            raise ConflictError(f"customer {body.user_id!r} already exists", param="user_id")
        shown = await _saved(request, session, caller, "new", row, None, body)
    return json_response(shown)


async def _saved(
    request: web.Request,
    session: AsyncSession,
    caller: AdminCaller,
    action: str,
    row: CustomerRow,
    before: Any,
    body: CustomerFields,
) -> dict[str, Any]:
    """Check the links, save and audit the end user, set its running total when the body sets
    `spend`, commit; its answer."""
    await _check_links(session, row, body)
    await save_resources(row, session=session)
    CUSTOMERS.record(session, caller, action, row, before)
    check_stored_windows(row)
    await ensure_windows(session, "customer", row.name, await row_periods(row, session=session))
    if "spend" in body.model_fields_set and body.spend is not None:
        await set_spend(request.app[NATS], "customer", row.name, body.spend, session=session)
    await session.commit()
    [shown] = await shown_customers(session, [row])
    return shown


async def update(request: web.Request) -> web.Response:
    """POST /customer/update: changes the fields given; the scope names the end user, never changes."""
    caller = await admin_caller(request)
    body = await read_request(request, CustomerFields)
    scope = customer_scope(caller, body.team_id, body.organization_id, write=True)
    if not body.user_id:
        raise InvalidRequestError("user_id is required", param="user_id")
    async with request.app[SESSIONS]() as session:
        row = await _load(session, scope, body.user_id, for_update=True)
        before = CUSTOMERS.public(row)
        CUSTOMERS.apply(row, body)
        shown = await _saved(request, session, caller, "update", row, before, body)
    return json_response(shown)


async def delete(request: web.Request) -> web.Response:
    """POST /customer/delete {"user_ids": [...]}."""
    caller = await admin_caller(request)
    body = await read_request(request, CustomerRefs)
    scope = customer_scope(caller, body.team_id, body.organization_id, write=True)
    async with request.app[SESSIONS]() as session:
        rows = await _load_all(session, scope, body.user_ids)
        for row in rows:
            CUSTOMERS.record(session, caller, "delete", row, CUSTOMERS.public(row))
            await ensure_windows(session, "customer", row.name, [])
        await write_resources(session=session, removals=rows)
        await session.commit()
    return json_response(
        {"deleted_customers": body.user_ids, "message": f"deleted customers with ids: {body.user_ids}"}
    )


async def info(request: web.Request) -> web.Response:
    """GET /customer/info?user_id= (or end_user_id=), within the caller's scope."""
    caller = await admin_caller(request)
    customer_id = request.query.get("user_id") or request.query.get("end_user_id")
    scope = customer_scope(
        caller, request.query.get("team_id"), request.query.get("organization_id"), write=False
    )
    if not customer_id:
        raise InvalidRequestError("pass ?user_id=", param="user_id")
    async with request.app[SESSIONS]() as session:
        row = await _load(session, scope, customer_id, for_update=False)
        [shown] = await shown_customers(session, [row])
        shown.update(await period_fields("customer", row.name, row, session=session))
    return json_response(shown)


async def list_(request: web.Request) -> web.Response:
    """GET /customer/list: every end user for readers (?team_id= or ?organization_id= narrows it),
    the end users of the caller's teams for a team admin."""
    caller = await admin_caller(request)
    team_id, organization_id = request.query.get("team_id"), request.query.get("organization_id")
    where: list[ColumnElement[bool]] = []
    if team_id:
        customer_scope(caller, team_id, None, write=False)
        where.append(col(CustomerRow.team_id) == team_id)
    elif caller.can_read:
        if organization_id:
            where.append(col(CustomerRow.organization_id) == organization_id)
    elif caller.admin_team_ids:
        where.append(col(CustomerRow.team_id).in_(sorted(caller.admin_team_ids)))
    else:
        caller.require_read()
    paging = "page" in request.query or "page_size" in request.query
    page, size = page_of(request, size_param="page_size", default_size=25) if paging else (1, 1_000_000)
    query = select(CustomerRow).where(*where).order_by(text("created_at"), col(CustomerRow.name))
    async with request.app[SESSIONS]() as session:
        rows = (await session.exec(query.offset((page - 1) * size).limit(size))).all()
        shown = await shown_customers(session, rows)
    return json_response(shown)


async def _set_blocked(request: web.Request, blocked: bool) -> web.Response:
    caller = await admin_caller(request)
    body = await read_request(request, CustomerRefs)
    scope = customer_scope(caller, body.team_id, body.organization_id, write=True)
    async with request.app[SESSIONS]() as session:
        rows = await _load_all(session, scope, body.user_ids)
        for row in rows:
            before = CUSTOMERS.public(row)
            row.blocked = blocked
            row.updated_at = utcnow()
            CUSTOMERS.record(session, caller, "block" if blocked else "unblock", row, before)
        await save_resources(*rows, session=session)
        await session.commit()
    return json_response({"blocked_users" if blocked else "unblocked_users": body.user_ids})


async def block(request: web.Request) -> web.Response:
    """POST /customer/block: requests naming these end users are refused."""
    return await _set_blocked(request, True)


async def unblock(request: web.Request) -> web.Response:
    """POST /customer/unblock."""
    return await _set_blocked(request, False)


ROUTES = [
    route
    for prefix in ("/customer", "/end_user")
    for route in (
        web.post(f"{prefix}/new", new),
        web.post(f"{prefix}/update", update),
        web.post(f"{prefix}/delete", delete),
        web.get(f"{prefix}/info", info),
        web.get(f"{prefix}/list", list_),
        web.post(f"{prefix}/block", block),
        web.post(f"{prefix}/unblock", unblock),
    )
]
