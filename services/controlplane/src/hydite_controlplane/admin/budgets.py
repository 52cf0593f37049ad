"""Budgets (LiteLLM's budget objects): /budget/new, /budget/update, /budget/delete, /budget/info,
/budget/list, and the check that a budget a customer, key or team links to exists.

A budget is a named set of limits (max_budget, soft_budget, rpm/tpm, max_parallel_requests, a
per-model budget, a reset period, further periods). A key, team or end user linking a budget takes
its periods where it sets none (their budget windows follow a change of the budget).
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from pydantic import Field, model_validator
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.errors import ConflictError, InvalidRequestError, NotFoundError
from hydite_controlplane.admin.auth import AdminCaller, admin_caller
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.updates import UpdateRules, apply_update
from hydite_controlplane.admin.validation import (
    MAX_COUNT,
    AdminRequest,
    BudgetWindowField,
    Duration,
    JsonObject,
    Name,
    Timestamp,
    check_budget_windows,
    check_stored_windows,
    parse_duration,
    read_request,
)
from hydite_controlplane.appkeys import SESSIONS
from hydite_controlplane.budget_periods import periods_of
from hydite_controlplane.models.budgets import BudgetRow
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_controlplane.models.principals import CustomerRow, TeamRow
from hydite_controlplane.spend_windows import ensure_windows
from hydite_controlplane.store import budgets as budget_store
from hydite_controlplane.store.audit import record_audit
from hydite_controlplane.store.resources import delete_resources, save_resources


class BudgetFields(AdminRequest):
    """Body of /budget/new and /budget/update (LiteLLM's BudgetNewRequest)."""

    budget_id: Name | None = Field(default=None, min_length=1)
    max_budget: float | None = Field(default=None, ge=0)
    soft_budget: float | None = Field(default=None, ge=0)
    max_parallel_requests: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    tpm_limit: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    rpm_limit: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    budget_duration: Duration | None = None
    model_max_budget: JsonObject | None = None
    budget_reset_at: Timestamp | None = None
    budget_windows: list[BudgetWindowField] | None = None
    """Further budgets over their own periods, for every key, team and end user linking it."""

    @model_validator(mode="after")
    def _distinct_windows(self) -> BudgetFields:
        check_budget_windows(self.budget_windows, self.budget_duration)
        return self


class BudgetIds(AdminRequest):
    """Body of POST /budget/info."""

    budgets: list[Name] = Field(min_length=1)


class BudgetRef(AdminRequest):
    """Body of POST /budget/delete."""

    id: Name = Field(min_length=1)


BUDGET_UPDATES = UpdateRules(not_columns=frozenset({"budget_id"}), null_clears=True)
"""A budget's fields land on its row by name; null unsets one (a per-model budget becomes empty)."""

BUDGET_LIMITS = (
    "max_budget", "soft_budget", "max_parallel_requests", "tpm_limit", "rpm_limit", "budget_duration",
    "model_max_budget", "budget_reset_at", "budget_windows",
)  # fmt: skip
"""A budget's limits, in LiteLLM's order."""


def budget_public(row: BudgetRow) -> dict[str, Any]:
    """A budget as LiteLLM shows it (its litellm_budget_table form)."""
    data: dict[str, Any] = {"budget_id": row.budget_id}
    for name in BUDGET_LIMITS:
        data[name] = getattr(row, name)
    data["budget_reset_at"] = row.budget_reset_at.isoformat() if row.budget_reset_at else None
    return {
        **data,
        "created_at": row.created_at.isoformat(),
        "created_by": row.created_by,
        "updated_at": row.updated_at.isoformat(),
        "updated_by": row.updated_by or row.created_by,
    }


def _not_found(budget_id: str, param: str = "budget_id") -> NotFoundError:
    return NotFoundError(f"budget {budget_id!r} does not exist", code="budget_not_found", param=param)


async def require_budget(budget_id: str | None, *, session: AsyncSession, param: str = "budget_id") -> None:
    """A 400 naming budget_id unless it is unset or the budget exists; the budget stays locked
    against deletion until the transaction ends (the row linking it is written first)."""
    if budget_id and await budget_store.get_budget(budget_id, session=session, lock="share") is None:
        raise InvalidRequestError(f"budget {budget_id!r} does not exist", param=param)


def _record(session: AsyncSession, caller: AdminCaller, action: str, row: BudgetRow, before: Any) -> None:
    record_audit(
        session=session, actor=caller.identity, action=f"budget.{action}", object_type="budget",
        object_id=row.budget_id, before=before, after=budget_public(row) if action != "delete" else None,
    )  # fmt: skip


async def new(request: web.Request) -> web.Response:
    """POST /budget/new: a budget (its id generated unless given); a budget_duration without a
    budget_reset_at starts the first period now."""
    caller = await admin_caller(request)
    caller.require_write()
    body = await read_request(request, BudgetFields)
    row = BudgetRow(
        budget_id=body.budget_id or str(uuid.uuid4()), created_by=caller.identity, updated_by=caller.identity
    )
    apply_update(row, body, BUDGET_UPDATES)
    if row.budget_duration and row.budget_reset_at is None:
        row.budget_reset_at = utcnow() + parse_duration(row.budget_duration)
    async with request.app[SESSIONS]() as session:
        if await budget_store.get_budget(row.budget_id, session=session) is not None:
            raise ConflictError(f"budget {row.budget_id!r} already exists", param="budget_id")
        await save_resources(row, session=session)
        _record(session, caller, "new", row, None)
        await session.commit()
    return json_response(budget_public(row))


async def update(request: web.Request) -> web.Response:
    """POST /budget/update: change the fields given of budget_id."""
    caller = await admin_caller(request)
    caller.require_write()
    body = await read_request(request, BudgetFields)
    if not body.budget_id:
        raise InvalidRequestError("budget_id is required", param="budget_id")
    async with request.app[SESSIONS]() as session:
        row = await budget_store.get_budget(body.budget_id, session=session, lock="update")
        if row is None:
            raise _not_found(body.budget_id)
        before = budget_public(row)
        apply_update(row, body, BUDGET_UPDATES)
        row.updated_by = caller.identity
        check_stored_windows(row)
        await save_resources(row, session=session)
        _record(session, caller, "update", row, before)
        await _linked_windows(session, row)
        await session.commit()
    return json_response(budget_public(row))


async def _linked_windows(session: AsyncSession, budget: BudgetRow) -> None:
    """The budget windows of every key, team and end user linking the budget, after its change."""
    linked: list[tuple[str, str, Any]] = []
    for kind, model, id_column in (
        ("key", VirtualKeyRow, "token"), ("team", TeamRow, "team_id"), ("customer", CustomerRow, "name"),
    ):  # fmt: skip
        rows = (await session.exec(select(model).where(model.budget_id == budget.budget_id))).all()
        linked += [(kind, str(getattr(row, id_column)), row) for row in rows]
    for kind, entity, row in sorted(linked, key=lambda item: item[:2]):
        await ensure_windows(session, kind, entity, periods_of(row, budget))


async def delete(request: web.Request) -> web.Response:
    """POST /budget/delete {"id": ...}: the budget, unless a customer, key or team links to it."""
    caller = await admin_caller(request)
    caller.require_write()
    body = await read_request(request, BudgetRef)
    async with request.app[SESSIONS]() as session:
        row = await budget_store.get_budget(body.id, session=session, lock="update")
        if row is None:
            raise _not_found(body.id, param="id")
        if await budget_store.budget_in_use(body.id, session=session):
            raise ConflictError(
                f"{body.id!r} is still linked by customers, keys or teams; unlink them first", param="id"
            )
        answer = budget_public(row)
        _record(session, caller, "delete", row, answer)
        await delete_resources(row, session=session)
        await session.commit()
    return json_response(answer)


async def info(request: web.Request) -> web.Response:
    """POST /budget/info {"budgets": [...]}: the budgets of these ids that exist (LiteLLM's form);
    GET /budget/info?budget_id=: one budget, or a 404."""
    caller = await admin_caller(request)
    caller.require_read()
    async with request.app[SESSIONS]() as session:
        if request.method == "GET":
            budget_id = request.query.get("budget_id")
            if not budget_id:
                raise InvalidRequestError("pass ?budget_id=", param="budget_id")
            row = await budget_store.get_budget(budget_id, session=session)
            if row is None:
                raise _not_found(budget_id)
            return json_response(budget_public(row))
        body = await read_request(request, BudgetIds)
        rows = await budget_store.budgets_by_id(body.budgets, session=session)
    return json_response([budget_public(r) for r in rows])


async def list_(request: web.Request) -> web.Response:
    """GET /budget/list: every budget."""
    caller = await admin_caller(request)
    caller.require_read()
    async with request.app[SESSIONS]() as session:
        rows = await budget_store.all_budgets(session=session)
    return json_response([budget_public(r) for r in rows])


ROUTES = [
    web.post("/budget/new", new),
    web.post("/budget/update", update),
    web.post("/budget/delete", delete),
    web.post("/budget/info", info),
    web.get("/budget/info", info),
    web.get("/budget/list", list_),
]
