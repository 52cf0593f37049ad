"""Customers (end users of a customer application, named by a request's `user` field): their
request schema and admin routes, including /customer/block and /customer/unblock."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from hydite_controlplane.admin.auth import admin_caller
from hydite_controlplane.admin.entities import Entity, entity_routes
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.validation import AdminRequest, LimitFields, Name, read_request
from hydite_controlplane.appkeys import SESSIONS
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.principals import CustomerRow
from hydite_controlplane.store.resources import save_resources


class CustomerFields(LimitFields):
    """Body of /customer/new and /customer/update; `user_id` is the end user's id (LiteLLM's name)."""

    user_id: Name | None = None
    alias: Name | None = None
    allowed_models: list[str] | None = None
    blocked: bool | None = None


class CustomerRefs(AdminRequest):
    """Body naming end users."""

    user_ids: list[str] = Field(min_length=1)


CUSTOMERS = Entity(
    "customer", "customers", CustomerRow, "customer_id", "user_id", CustomerFields, generate_id=False,
    info_alias="end_user_id",
)  # fmt: skip


async def _set_blocked(request: web.Request, blocked: bool) -> web.Response:
    caller = await admin_caller(request)
    caller.require_write()
    body = await read_request(request, CustomerRefs)
    async with request.app[SESSIONS]() as session:
        rows = [await CUSTOMERS.load(session, cid) for cid in body.user_ids]
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
    *entity_routes(CUSTOMERS),
    web.post("/customer/block", block),
    web.post("/customer/unblock", unblock),
]
