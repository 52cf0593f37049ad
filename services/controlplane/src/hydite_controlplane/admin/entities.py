"""Generic admin CRUD for users, teams, organizations, customers and key groups.

An `Entity` describes how one aggregate is stored, shown and checked; what differs per aggregate
is a hook on that description. `entity_routes` serves new, update, delete, info and list from it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web
from pydantic import Field, create_model
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)
from hydite_common.http import Handler
from hydite_controlplane.admin.auth import AdminCaller, admin_caller
from hydite_controlplane.admin.live_spend import set_spend, spend_fields
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.updates import UpdateRules, apply_update
from hydite_controlplane.admin.validation import AdminRequest, LimitFields, page_of, read_request
from hydite_controlplane.appkeys import NATS, SESSIONS
from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_controlplane.store.audit import record_audit
from hydite_controlplane.store.principals import list_rows
from hydite_controlplane.store.resources import save_resources, write_resources
from hydite_controlplane.store.spend_totals import spend_of


def row_public(row: SQLModel) -> dict[str, Any]:
    """A row as JSON-ready public fields (metadata under its API name, times as ISO strings)."""
    data = row.model_dump()
    data["metadata"] = data.pop("metadata_", {})
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}


CheckRefs = Callable[[AsyncSession, Any], Awaitable[None]]
"""Refuses a row (new or updated) that names something missing."""

Companions = Callable[[AsyncSession, Any, bool], Awaitable[list[SQLModel]]]
"""Rows that must change with this one (row, being deleted), written in the same config version."""

OnDelete = Callable[[AsyncSession, AdminCaller, list[Any]], Awaitable[dict[str, Any]]]
"""Runs before rows are deleted (deletes what they own); returns extra fields of the response."""

InfoExtra = Callable[[AsyncSession, AdminCaller, Any], Awaitable[dict[str, Any]]]
"""Extra fields of the info response (what this caller may see)."""

Prepare = Callable[[AsyncSession, AdminCaller, Any], Awaitable[list[SQLModel]]]
"""Completes a row the body was applied to, before it is checked and saved (a team's members named
by email become users); returns the rows it created, saved with the row (it audits them)."""

Derive = Callable[[Any, LimitFields], Mapping[str, Any]]
"""Columns a body sets other than by field name (LiteLLM fields kept in one JSON column)."""

Shown = Callable[[Any, dict[str, Any]], dict[str, Any]]
"""The public form of a row, from its columns as plain JSON values."""

LockFirst = Callable[[AsyncSession, list[str], LimitFields | None], Awaitable[None]]
"""Locks the rows of other aggregates a write of these ids (with this body) will change and that
come before this entity's rows in the lock order (teams before users)."""


class InUse(Protocol):
    """Whether anything still references the row with this id (a store query)."""

    def __call__(self, entity_id: str, /, *, session: AsyncSession) -> Awaitable[bool]: ...


async def _no_refs(session: AsyncSession, row: Any) -> None:
    return None


async def _no_companions(session: AsyncSession, row: Any, deleting: bool) -> list[SQLModel]:
    return []


async def _no_delete_effect(session: AsyncSession, caller: AdminCaller, rows: list[Any]) -> dict[str, Any]:
    return {}


async def _no_info_extra(session: AsyncSession, caller: AdminCaller, row: Any) -> dict[str, Any]:
    return {}


async def _nothing_to_prepare(session: AsyncSession, caller: AdminCaller, row: Any) -> list[SQLModel]:
    return []


def _nothing_derived(row: Any, body: LimitFields) -> Mapping[str, Any]:
    return {}


def _columns_shown(row: Any, data: dict[str, Any]) -> dict[str, Any]:
    return data


def _as_is(public: dict[str, Any]) -> dict[str, Any]:
    return public


async def _nothing_first(session: AsyncSession, ids: list[str], body: LimitFields | None) -> None:
    return None


def _not_owned(key: VirtualKeyRow) -> str | None:
    return None


def _managed_by_admins_only(caller: AdminCaller, entity_id: str) -> bool:
    return False


@dataclass(frozen=True)
class Entity:
    """How one aggregate is stored and shown, and the hooks for what differs per aggregate."""

    kind: str  # user, team, organization, customer, group
    plural: str  # users, teams, ...
    row: type[SQLModel]
    id_column: str  # primary key column of the row
    id_field: str  # body / query field that names it
    fields: type[LimitFields]
    generate_id: bool = True
    body_only: frozenset[str] = frozenset()  # request fields that are not columns
    check_refs: CheckRefs = _no_refs
    companions: Companions = _no_companions
    on_delete: OnDelete = _no_delete_effect
    in_use: InUse | None = None  # a row still in use cannot be deleted (that would widen access)
    used_by: str = ""  # what may use it, for the 409: "teams, keys or users"
    info_extra: InfoExtra = _no_info_extra
    lock_first: LockFirst = _nothing_first
    info_alias: str | None = None  # another query parameter /info accepts for the id
    own_id: Callable[[VirtualKeyRow], str | None] = _not_owned  # what a key reads as "its" one
    managed_by: Callable[[AdminCaller, str], bool] = _managed_by_admins_only  # readers beyond admins
    list_filters: tuple[str, ...] = ()  # columns /list filters on by query parameter
    paged_list: bool = False  # /list always pages and answers in LiteLLM's paged user-list shape
    null_keeps: bool = False  # a null for a column that cannot hold it means "not set" (UpdateRules)
    prepare: Prepare = _nothing_to_prepare
    derive: Derive = _nothing_derived
    shown: Shown = _columns_shown
    update_answer: Callable[[dict[str, Any]], dict[str, Any]] = _as_is  # /update's answer from public
    update_creates: bool = False  # /update of an id that does not exist creates it (LiteLLM's users)
    spend_kind: str | None = None  # its running total's kind: answers show it, `spend` in a body sets it

    @property
    def update_rules(self) -> UpdateRules:
        """How a request body of this entity lands on its row."""
        return UpdateRules(
            not_columns=frozenset({self.id_field, *self.body_only}), null_keeps=self.null_keeps
        )

    def public(self, row: Any) -> dict[str, Any]:
        """The row as the API shows it."""
        data = row_public(row)
        if self.id_field != self.id_column:
            data[self.id_field] = data[self.id_column]
        return self.shown(row, data)

    def row_id(self, row: Any) -> str:
        """The row's id."""
        return str(getattr(row, self.id_column))

    def apply(self, row: Any, body: LimitFields) -> None:
        """Copy the fields the body set onto the row; unset fields keep their value."""
        apply_update(row, body, self.update_rules, derived=self.derive(row, body))

    async def load(self, session: AsyncSession, entity_id: str, *, for_update: bool = False) -> Any:
        """The row with this id, or a 404; `for_update` locks it until the transaction ends and
        reloads it, so a write that waited for the lock starts from what the last writer committed."""
        if for_update:
            row = await session.get(self.row, entity_id, with_for_update=True, populate_existing=True)
        else:
            row = await session.get(self.row, entity_id)
        if row is None:
            raise NotFoundError(
                f"{self.kind} {entity_id!r} does not exist",
                code=f"{self.kind}_not_found",
                param=self.id_field,
            )
        return row

    async def lock(self, session: AsyncSession, ids: list[str], body: LimitFields | None = None) -> list[Any]:
        """Load rows a write will change, locked: first the other aggregates' rows that come earlier
        in the lock order (lock_first), then these in id order; returned in the order asked.

        Lock order, the same in every admin write: teams, then users, each in id order; keys after
        both; the config write lock (changelog.record_changes) last, as every write takes it when it
        records its changes.
        """
        await self.lock_first(session, ids, body)
        rows = {
            entity_id: await self.load(session, entity_id, for_update=True) for entity_id in sorted(set(ids))
        }
        return [rows[entity_id] for entity_id in ids]

    def record(
        self, session: AsyncSession, caller: AdminCaller, action: str, row: Any, before: dict[str, Any] | None
    ) -> None:
        """Audit `action` on the row (its public form after, unless deleted)."""
        after = self.public(row) if action != "delete" else None
        record_audit(
            session=session, actor=caller.identity, action=f"{self.kind}.{action}", object_type=self.kind,
            object_id=self.row_id(row), before=before, after=after,
        )  # fmt: skip

    async def with_spend(
        self, session: AsyncSession, answer: dict[str, Any], entity_id: str
    ) -> dict[str, Any]:
        """An answer about one row with its live spend: at the top and in any nested form of the row
        (LiteLLM's user_info, team_info)."""
        if self.spend_kind is None:
            return answer
        spent = spend_fields((await spend_of(self.spend_kind, [entity_id], session=session)).get(entity_id))
        nested = {
            name: {**value, **spent}
            for name, value in answer.items()
            if isinstance(value, dict) and value.get(self.id_field) == entity_id
        }
        return {**answer, **nested, **spent}

    async def set_spend_from(
        self, request: web.Request, session: AsyncSession, row: Any, body: LimitFields
    ) -> None:
        """A body that sets `spend` sets the row's running total (and its KV entry), in this
        transaction."""
        if self.spend_kind is None or "spend" not in body.model_fields_set:
            return
        amount = getattr(body, "spend", None)
        if amount is not None:
            await set_spend(request.app[NATS], self.spend_kind, self.row_id(row), amount, session=session)

    def is_own(self, caller: AdminCaller, entity_id: str) -> bool:
        """Whether a caller who may not read everything may still read this one."""
        own = self.own_id(caller.key) if caller.key is not None else None
        return entity_id == own or self.managed_by(caller, entity_id)


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
    entity.apply(row, body)
    if await session.get(entity.row, entity_id) is not None:
        raise ConflictError(f"{entity.kind} {entity_id!r} already exists", param=entity.id_field)
    created = await entity.prepare(session, caller, row)
    await entity.check_refs(session, row)
    await save_resources(row, *created, *await entity.companions(session, row, False), session=session)
    entity.record(session, caller, "new", row, None)
    await entity.set_spend_from(request, session, row, body)
    return caller, row, body


def entity_routes(entity: Entity, *, new: Handler | None = None) -> list[web.RouteDef]:
    """The five routes of an entity; `new` replaces the generic /new handler."""
    delete_body = delete_request_model(entity)

    async def new_(request: web.Request) -> web.Response:
        async with request.app[SESSIONS]() as session:
            _, row, _ = await stage_new(request, session, entity)
            await session.commit()
            answer = await entity.with_spend(session, entity.public(row), entity.row_id(row))
        return json_response(answer)

    async def update(request: web.Request) -> web.Response:
        caller = await admin_caller(request)
        caller.require_write()
        body = await read_request(request, entity.fields)
        entity_id = getattr(body, entity.id_field)
        if not entity_id:
            raise InvalidRequestError(f"{entity.id_field} is required", param=entity.id_field)
        async with request.app[SESSIONS]() as session:
            if entity.update_creates and await session.get(entity.row, entity_id) is None:
                _, row, _ = await stage_new(request, session, entity)
                await session.commit()
                answer = await entity.with_spend(session, entity.public(row), entity_id)
                return json_response(entity.update_answer(answer))
            [row] = await entity.lock(session, [entity_id], body)
            before = entity.public(row)
            entity.apply(row, body)
            created = await entity.prepare(session, caller, row)
            await entity.check_refs(session, row)
            await save_resources(
                row, *created, *await entity.companions(session, row, False), session=session
            )
            entity.record(session, caller, "update", row, before)
            await entity.set_spend_from(request, session, row, body)
            await session.commit()
            answer = await entity.with_spend(session, entity.public(row), entity_id)
        return json_response(entity.update_answer(answer))

    async def delete(request: web.Request) -> web.Response:
        caller = await admin_caller(request)
        caller.require_write()
        body = await read_request(request, delete_body)
        ids: list[str] = getattr(body, f"{entity.id_field}s")
        async with request.app[SESSIONS]() as session:
            rows = await entity.lock(session, ids)
            if entity.in_use is not None:
                for row in rows:
                    row_id = entity.row_id(row)
                    if await entity.in_use(row_id, session=session):
                        raise ConflictError(
                            f"{row_id!r} is still used by {entity.used_by}; move or delete them first"
                        )
            # Companions before on_delete: on_delete takes the config write lock, and every row
            # lock must come before it (see Entity.lock).
            companions: list[SQLModel] = []
            for row in rows:
                companions += await entity.companions(session, row, True)
            result = await entity.on_delete(session, caller, rows)
            for row in rows:
                entity.record(session, caller, "delete", row, entity.public(row))
            await write_resources(session=session, removals=rows, upserts=companions)
            await session.commit()
        return json_response({f"deleted_{entity.plural}": ids, **result})

    async def info(request: web.Request) -> web.Response:
        caller = await admin_caller(request)
        entity_id = request.query.get(entity.id_field)
        if not entity_id and entity.info_alias:
            entity_id = request.query.get(entity.info_alias)
        async with request.app[SESSIONS]() as session:
            if not entity_id and caller.key is not None:
                entity_id = entity.own_id(caller.key)
            if not entity_id:
                raise InvalidRequestError(f"pass ?{entity.id_field}=", param=entity.id_field)
            if not (caller.can_read or entity.is_own(caller, entity_id)):
                raise PermissionDeniedError(f"you may not read this {entity.kind}", code="admin_only")
            row = await entity.load(session, entity_id)
            extra = await entity.info_extra(session, caller, row)
            answer = await entity.with_spend(session, {**entity.public(row), **extra}, entity_id)
        return json_response(answer)

    async def list_(request: web.Request) -> web.Response:
        caller = await admin_caller(request)
        caller.require_read()
        # LiteLLM's plain lists return everything; the user list and explicit paging page.
        paging = entity.paged_list or "page" in request.query or "page_size" in request.query
        page, size = page_of(request, size_param="page_size", default_size=25) if paging else (1, 1_000_000)
        filters = [(name, value) for name, value in request.query.items() if name in entity.list_filters]
        async with request.app[SESSIONS]() as session:
            rows, total = await list_rows(
                entity.row, session=session, filters=filters, offset=(page - 1) * size, limit=size
            )
            items = [entity.public(r) for r in rows]
            if entity.spend_kind is not None:
                spent = await spend_of(entity.spend_kind, [entity.row_id(r) for r in rows], session=session)
                items = [
                    {**item, **spend_fields(spent.get(entity.row_id(r)))}
                    for item, r in zip(items, rows, strict=True)
                ]
        if not entity.paged_list:
            return json_response(items)
        return json_response(
            {
                entity.plural: items,
                "total": total,
                "page": page,
                "page_size": size,
                "total_pages": max(1, -(-total // size)),
            }
        )

    prefix = f"/{entity.kind}"
    return [
        web.post(f"{prefix}/new", new or new_),
        web.post(f"{prefix}/update", update),
        web.post(f"{prefix}/delete", delete),
        web.get(f"{prefix}/info", info),
        web.get(f"{prefix}/list", list_),
    ]


def delete_request_model(entity: Entity) -> type[AdminRequest]:
    """{"<id_field>s": [...]} with at least one id."""
    model: type[AdminRequest] = create_model(  # type: ignore[call-overload]
        f"Delete{entity.kind.title()}Request",
        __base__=AdminRequest,
        **{f"{entity.id_field}s": (list[str], Field(min_length=1))},
    )
    return model
