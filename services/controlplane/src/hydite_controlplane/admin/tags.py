"""Tags (LiteLLM's tag management): /tag/new, /tag/update, /tag/info, /tag/list, /tag/delete.

A tag is a label requests carry (a key's tags, or the request's metadata.tags) with its own budget
and rate limits, kept on the tag itself (LiteLLM keeps them in a linked budget, and shows them as
the tag's litellm_budget_table, as these routes do). Every tag is in the config snapshot, so the
data plane can count and limit requests by tag; its spend is the tag's live running total.
/tag/list also lists, as LiteLLM does, the tags requests carried that are not stored ("dynamic").
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web
from pydantic import Field
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.errors import ConflictError, InvalidRequestError, NotFoundError
from hydite_common.spend_tables import SpendDaily
from hydite_controlplane.admin.auth import AdminCaller, admin_caller
from hydite_controlplane.admin.live_spend import one_with_spend, period_fields, shown_with_spend
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.spend_dates import parse_day
from hydite_controlplane.admin.updates import UpdateRules, apply_update
from hydite_controlplane.admin.validation import (
    MAX_STRING,
    AdminRequest,
    JsonObject,
    LimitFields,
    Name,
    read_request,
)
from hydite_controlplane.appkeys import SESSIONS
from hydite_controlplane.models.deployments import DeploymentRow
from hydite_controlplane.models.tags import TagRow
from hydite_controlplane.spend_windows import ensure_windows
from hydite_controlplane.store.audit import record_audit
from hydite_controlplane.store.resources import delete_resources, save_resources
from hydite_controlplane.store.spend_windows import row_periods

SPEND_KIND = "tag"
"""The running totals' kind of a tag's spend."""


class TagFields(LimitFields):
    """Body of /tag/new and /tag/update (LiteLLM's TagNewRequest / TagUpdateRequest, with the
    budget fields on the tag itself); on update, fields left out keep their value, null unsets."""

    name: Name = Field(min_length=1)
    description: str | None = Field(default=None, max_length=MAX_STRING)
    models: list[Name] | None = None
    model_info: JsonObject | None = None
    """Accepted as LiteLLM accepts it, and not kept: a tag's model_info follows from its models."""
    model_max_budget: JsonObject | None = None


class TagNames(AdminRequest):
    """Body of POST /tag/info."""

    names: list[Name] = Field(min_length=1)


class TagRef(AdminRequest):
    """Body of POST /tag/delete."""

    name: Name = Field(min_length=1)


TAG_UPDATES = UpdateRules(not_columns=frozenset({"name", "model_info"}), null_clears=True)
"""A tag's fields land on its row by name (metadata on metadata_); null unsets one."""

BUDGET_TABLE = (
    "max_budget", "soft_budget", "max_parallel_requests", "tpm_limit", "rpm_limit", "model_max_budget",
    "budget_duration",
)  # fmt: skip
"""The limits LiteLLM shows in a tag's litellm_budget_table, in its order."""


def budget_table(row: TagRow) -> dict[str, Any] | None:
    """The tag's limits as LiteLLM's litellm_budget_table, or None when it sets none."""
    values = {name: getattr(row, name) for name in BUDGET_TABLE}
    if all(v is None or v == {} for v in values.values()):
        return None
    return {"budget_id": None, **values}


async def _model_info(models: list[str], *, session: AsyncSession) -> dict[str, str]:
    """LiteLLM's model_info: each of the tag's models that is a deployment id -> its model name."""
    if not models:
        return {}
    query = select(col(DeploymentRow.model_id), col(DeploymentRow.model_name)).where(
        col(DeploymentRow.model_id).in_(models)
    )
    return dict((await session.exec(query)).all())


async def tag_public(row: TagRow, *, session: AsyncSession) -> dict[str, Any]:
    """A tag as LiteLLM's /tag/info shows it (spend not included)."""
    shown: dict[str, Any] = {
        "name": row.name,
        "description": row.description,
        "models": row.models,
        "model_info": await _model_info(row.models, session=session),
        "metadata": row.metadata_,
        "budget_windows": row.budget_windows,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "created_by": row.created_by,
        "updated_by": row.updated_by or row.created_by,
    }
    table = budget_table(row)
    if table is not None:
        shown["litellm_budget_table"] = table
    return shown


def _not_found(name: str, param: str = "name") -> NotFoundError:
    return NotFoundError(f"tag {name!r} does not exist", code="tag_not_found", param=param)


def _record(
    session: AsyncSession, caller: AdminCaller, action: str, name: str, before: Any, after: Any
) -> None:
    record_audit(
        session=session, actor=caller.identity, action=f"tag.{action}", object_type="tag",
        object_id=name, before=before, after=after,
    )  # fmt: skip


async def _locked(name: str, *, session: AsyncSession) -> TagRow | None:
    query = select(TagRow).where(col(TagRow.name) == name).with_for_update()
    return (await session.exec(query)).first()


async def new(request: web.Request) -> web.Response:
    """POST /tag/new: a tag with its description, models, budget and limits."""
    caller = await admin_caller(request)
    caller.require_write()
    body = await read_request(request, TagFields)
    row = TagRow(name=body.name, created_by=caller.identity, updated_by=caller.identity)
    apply_update(row, body, TAG_UPDATES)
    async with request.app[SESSIONS]() as session:
        if await session.get(TagRow, body.name) is not None:
            raise ConflictError(f"tag {body.name!r} already exists", param="name")
        shown = await _saved(row, caller, "new", None, session=session)
    return json_response({"message": f"Tag {row.name} created successfully", "tag": shown})


async def _saved(
    row: TagRow, caller: AdminCaller, action: str, before: dict[str, Any] | None, *, session: AsyncSession
) -> dict[str, Any]:
    """Save a new or changed tag with its budget windows, audit it and commit; the tag as shown."""
    await save_resources(row, session=session)
    await ensure_windows(session, SPEND_KIND, row.name, await row_periods(row, session=session))
    shown = await tag_public(row, session=session)
    _record(session, caller, action, row.name, before, shown)
    await session.commit()
    return shown


async def update(request: web.Request) -> web.Response:
    """POST /tag/update: change the fields given of the named tag."""
    caller = await admin_caller(request)
    caller.require_write()
    body = await read_request(request, TagFields)
    async with request.app[SESSIONS]() as session:
        row = await _locked(body.name, session=session)
        if row is None:
            raise _not_found(body.name)
        before = await tag_public(row, session=session)
        apply_update(row, body, TAG_UPDATES)
        row.updated_by = caller.identity
        shown = await _saved(row, caller, "update", before, session=session)
    return json_response({"message": f"Tag {row.name} updated successfully", "tag": shown})


async def delete(request: web.Request) -> web.Response:
    """POST /tag/delete {"name": ...}."""
    caller = await admin_caller(request)
    caller.require_write()
    body = await read_request(request, TagRef)
    async with request.app[SESSIONS]() as session:
        row = await _locked(body.name, session=session)
        if row is None:
            raise _not_found(body.name)
        _record(session, caller, "delete", row.name, await tag_public(row, session=session), None)
        await delete_resources(row, session=session)
        await ensure_windows(session, SPEND_KIND, row.name, [])
        await session.commit()
    return json_response({"message": f"Tag {body.name} deleted successfully"})


async def info(request: web.Request) -> web.Response:
    """POST /tag/info {"names": [...]}: each tag by name with its live spend; a 404 naming the
    tags that do not exist."""
    caller = await admin_caller(request)
    caller.require_read()
    body = await read_request(request, TagNames)
    async with request.app[SESSIONS]() as session:
        rows = {
            r.name: r for r in (await session.exec(select(TagRow).where(col(TagRow.name).in_(body.names))))
        }
        missing = [name for name in body.names if name not in rows]
        if missing:
            raise NotFoundError(f"tags not found: {missing}", code="tag_not_found", param="names")
        found = {}
        for name in dict.fromkeys(body.names):
            shown = await tag_public(rows[name], session=session)
            found[name] = {
                **await one_with_spend(SPEND_KIND, shown, name, session=session),
                **await period_fields(SPEND_KIND, name, rows[name], session=session),
            }
    return json_response(found)


DYNAMIC_TAG_DESCRIPTION = (
    "This is just a spend tag that was passed dynamically in a request. It does not control any LLM models."
)
"""LiteLLM's description of a tag seen only in spend."""


def _days(request: web.Request) -> tuple[date, date] | None:
    """?start_date=&end_date= (both or neither, start not after end): the days dynamic tags are
    looked for in."""
    start, end = request.query.get("start_date"), request.query.get("end_date")
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise InvalidRequestError(
            "start_date and end_date must be given together",
            param="start_date" if start is None else "end_date",
        )
    first, last = parse_day("start_date", start), parse_day("end_date", end)
    if first > last:
        raise InvalidRequestError("start_date must be on or before end_date", param="start_date")
    return first, last


async def dynamic_tags(
    stored: set[str], days: tuple[date, date] | None, *, session: AsyncSession
) -> list[dict[str, Any]]:
    """LiteLLM's dynamic tags: tags requests carried (seen in the daily rollups, within `days` when
    given) that are not stored tags, with the first and last day they were seen."""
    day = col(SpendDaily.day)
    query = select(col(SpendDaily.entity), func.min(day), func.max(day)).where(
        col(SpendDaily.kind) == SPEND_KIND
    )
    if days is not None:
        query = query.where(day >= days[0], day <= days[1])
    rows = (await session.exec(query.group_by(col(SpendDaily.entity)).order_by(col(SpendDaily.entity)))).all()
    return [
        {"name": name, "description": DYNAMIC_TAG_DESCRIPTION, "models": None,
         "created_at": first.isoformat(), "updated_at": last.isoformat()}
        for name, first, last in rows
        if name not in stored
    ]  # fmt: skip


async def list_(request: web.Request) -> web.Response:
    """GET /tag/list: every stored tag, then the tags requests carried that are not stored (those
    seen between ?start_date= and ?end_date=, when given), each with its live spend."""
    caller = await admin_caller(request)
    caller.require_read()
    days = _days(request)
    async with request.app[SESSIONS]() as session:
        rows = (await session.exec(select(TagRow).order_by(col(TagRow.name)))).all()
        shown = [await tag_public(row, session=session) for row in rows]
        shown += await dynamic_tags({row.name for row in rows}, days, session=session)
        listed = await shown_with_spend(SPEND_KIND, shown, "name", session=session)
    return json_response(listed)


ROUTES = [
    web.post("/tag/new", new),
    web.post("/tag/update", update),
    web.post("/tag/delete", delete),
    web.post("/tag/info", info),
    web.get("/tag/list", list_),
]
