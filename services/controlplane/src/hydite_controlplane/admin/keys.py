"""Virtual keys: request schemas and the key routes (generate, update, delete, regenerate,
block/unblock, info, list, health), and deleting keys along with their owner.

Who may write a key: an admin any key; a team admin the keys of its team's ordinary members; an
internal user (LiteLLM's `internal_user`) its own personal keys, within its user's models and
budget. An `internal_user_viewer` reads its own keys only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, field_validator, model_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.allowlists import ALL_MODELS
from hydite_common.errors import ConflictError, InvalidRequestError, NotFoundError, PermissionDeniedError
from hydite_common.http import read_json_object
from hydite_common.keys import generate_key, hash_key, key_or_hash_to_hash, mask_key
from hydite_controlplane.admin.auth import AdminCaller, Role, admin_caller
from hydite_controlplane.admin.budgets import require_budget
from hydite_controlplane.admin.entities import row_public
from hydite_controlplane.admin.key_groups import require_key_group
from hydite_controlplane.admin.live_spend import period_fields, set_spend, shown_with_spend
from hydite_controlplane.admin.references import require_organization
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.stored_fields import JsonList, shown_stored, stored_names, with_stored
from hydite_controlplane.admin.updates import UpdateRules, apply_update
from hydite_controlplane.admin.validation import (
    MAX_NAME,
    AdminRequest,
    Duration,
    JsonObject,
    LimitFields,
    ModelAliases,
    Name,
    Timestamp,
    check_stored_windows,
    page_of,
    paged,
    parse_duration,
    read_request,
    validate,
)
from hydite_controlplane.appkeys import NATS, SESSIONS
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_controlplane.models.principals import TeamRow, UserRow
from hydite_controlplane.spend_windows import ensure_windows
from hydite_controlplane.store import keys as key_store
from hydite_controlplane.store.audit import record_audit
from hydite_controlplane.store.resources import delete_resources, save_resources, write_resources
from hydite_controlplane.store.spend_totals import spend_of
from hydite_controlplane.store.spend_windows import row_periods

CUSTOM_KEY_MIN_CHARS = 32


LimitType = Literal["guaranteed_throughput", "best_effort_throughput", "dynamic"]

KEY_TYPE_ROUTES: dict[str, list[str]] = {
    "llm_api": ["llm_api_routes"],
    "management": ["management_routes"],
    "read_only": ["info_routes"],
}
"""LiteLLM's key_type -> the allowed_routes it gives the key ("default": no restriction)."""


class KeyStoredFields(AdminRequest):
    """LiteLLM's key fields Hydite keeps and shows but does not act on yet."""

    agent_id: Name | None = None
    allowed_cache_controls: list[Name] | None = None
    config: JsonObject | None = None
    permissions: JsonObject | None = None
    model_max_budget: JsonObject | None = None
    policies: list[Name] | None = None
    prompts: list[Name] | None = None
    object_permission: JsonObject | None = None
    enforced_params: list[Name] | None = None
    allowed_passthrough_routes: JsonList | None = None
    allowed_vector_store_indexes: JsonList | None = None
    rpm_limit_type: LimitType | None = None
    tpm_limit_type: LimitType | None = None
    router_settings: JsonObject | None = None
    access_group_ids: list[Name] | None = None
    send_invite_email: bool | None = None
    key_type: Literal["llm_api", "management", "read_only", "default"] | None = None
    auto_rotate: bool | None = None
    rotation_interval: Duration | None = None
    project_id: Name | None = None


KEY_STORED = stored_names(KeyStoredFields)


class KeySettings(LimitFields, KeyStoredFields):
    """Fields of a key that generate, update and regenerate may set (LiteLLM names: its
    GenerateKeyRequest, UpdateKeyRequest and RegenerateKeyRequest)."""

    key_alias: Name | None = None
    duration: Duration | None = None
    expires: Timestamp | None = None
    models: list[str] | None = None
    key_group: Name | None = None
    user_id: Name | None = None
    team_id: Name | None = None
    organization_id: Name | None = None
    tags: list[str] | None = None
    guardrails: list[str] | None = None
    allowed_routes: list[str] | None = None
    blocked: bool | None = None
    aliases: ModelAliases | None = None
    spend: float | None = Field(default=None, ge=0)
    budget_id: Name | None = None
    store_prompts: bool | None = None

    @field_validator("key_alias")
    @classmethod
    def _empty_alias_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _one_expiry(self) -> KeySettings:
        if self.duration is not None and self.expires is not None:
            raise ValueError("give duration or expires, not both")
        return self


CUSTOM_KEY = re.compile(rf"^sk-[\x21-\x7e]{{{CUSTOM_KEY_MIN_CHARS},{MAX_NAME - 3}}}$")
"""A key chosen by the caller: 'sk-' and at least as many visible ASCII characters as a generated
key's random part has (43 url-safe characters, 256 bits; 32 of any visible character give more
than 190 bits), so a custom key is no easier to guess."""


def check_custom_key(value: str | None) -> str | None:
    """A key chosen by the caller must look like one and be as hard to guess as a generated one."""
    if value is not None and not CUSTOM_KEY.match(value):
        raise ValueError(
            f"a custom key must be 'sk-' and {CUSTOM_KEY_MIN_CHARS} to {MAX_NAME - 3} visible ASCII "
            "characters (no spaces)"
        )
    return value


class GenerateKeyRequest(KeySettings):
    """Body of POST /key/generate."""

    key: str | None = None

    @field_validator("key")
    @classmethod
    def _custom_key(cls, value: str | None) -> str | None:
        return check_custom_key(value)


class UpdateKeyRequest(KeySettings):
    """Body of POST /key/update: the key (or its hash) and the fields to change."""

    key: str = Field(min_length=1)
    temp_budget_increase: float | None = Field(default=None, ge=0)
    temp_budget_expiry: Timestamp | None = None

    @model_validator(mode="after")
    def _temp_budget_together(self) -> UpdateKeyRequest:
        if (self.temp_budget_increase is None) != (self.temp_budget_expiry is None):
            raise ValueError("temp_budget_increase and temp_budget_expiry must be set together")
        return self


class RegenerateKeyRequest(KeySettings):
    """Body of POST /key/regenerate: the old key (or hash), an optional new value, fields to change."""

    key: str = Field(min_length=1)
    new_key: str | None = None
    grace_period: Duration | None = None  # how long the old key keeps working; unset: not at all
    new_master_key: str | None = None  # LiteLLM's master key rotation: refused, see regenerate

    @field_validator("new_key")
    @classmethod
    def _custom_key(cls, value: str | None) -> str | None:
        return check_custom_key(value)


class DeleteKeysRequest(AdminRequest):
    """Body of POST /key/delete: keys (or hashes) and/or aliases."""

    keys: list[str] = Field(default_factory=list)
    key_aliases: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something_to_delete(self) -> DeleteKeysRequest:
        if not self.keys and not self.key_aliases:
            raise ValueError("give keys or key_aliases")
        return self


class ResetSpendRequest(AdminRequest):
    """Body of POST /key/{key}/reset_spend (LiteLLM's): the spend the key's total is set back to."""

    reset_to: float = Field(ge=0)

    @field_validator("reset_to", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("reset_to must be a number, not a boolean")
        return value


class KeyRef(AdminRequest):
    """Body naming one key (or its hash): block, unblock."""

    key: str = Field(min_length=1)


def key_public(row: VirtualKeyRow) -> dict[str, Any]:
    """A key's settings as LiteLLM returns them (never the key itself)."""
    settings = {
        "token": row.token,
        "key_name": row.key_name,
        "key_alias": row.key_alias,
        "expires": _iso(row.expires),
        "models": row.models,
        "key_group": row.key_group,
        "max_budget": row.max_budget,
        "soft_budget": row.soft_budget,
        "budget_duration": row.budget_duration,
        "rpm_limit": row.rpm_limit,
        "tpm_limit": row.tpm_limit,
        "max_parallel_requests": row.max_parallel_requests,
        "model_rpm_limit": row.model_rpm_limit,
        "model_tpm_limit": row.model_tpm_limit,
        "budget_windows": row.budget_windows,
        "user_id": row.user_id,
        "team_id": row.team_id,
        "organization_id": row.organization_id,
        "metadata": row.metadata_,
        "tags": row.tags,
        "guardrails": row.guardrails,
        "allowed_routes": row.allowed_routes,
        "blocked": row.blocked,
        "aliases": row.aliases,
        "spend": row.spend,
        "budget_id": row.budget_id,
        "store_prompts": row.store_prompts,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "created_by": row.created_by,
    }
    return shown_stored({**settings, "extra_fields": row.extra_fields})


async def keys_shown(rows: Sequence[VirtualKeyRow], *, session: AsyncSession) -> list[dict[str, Any]]:
    """Keys as LiteLLM returns them, with their live spend (the running totals)."""
    return await shown_with_spend("key", [key_public(row) for row in rows], "token", session=session)


async def key_shown(row: VirtualKeyRow, *, session: AsyncSession) -> dict[str, Any]:
    """One key as LiteLLM returns it, with its live spend, its next budget reset and its periods."""
    [shown] = await keys_shown([row], session=session)
    return {**shown, **await period_fields("key", row.token, row, session=session)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


UPDATE_STORED = frozenset({"temp_budget_increase", "temp_budget_expiry"})
"""Stored-only fields of /key/update alone."""

KEY_UPDATES = UpdateRules(
    not_columns=frozenset(
        {"key", "new_key", "duration", "grace_period", "new_master_key", *KEY_STORED, *UPDATE_STORED}
    ),
    null_clears=True,
)
"""Key settings land on the row by name; null empties a list, a mapping or `blocked`, and zeroes
spend."""


def apply_key_settings(row: VirtualKeyRow, body: KeySettings) -> None:
    """Copy the fields the body set onto the row (unset fields keep their value); a duration sets
    `expires` from now, a key_type other than "default" its routes, LiteLLM's other fields land in
    extra_fields."""
    derived: dict[str, Any] = {}
    if "duration" in body.model_fields_set:
        derived["expires"] = utcnow() + parse_duration(body.duration) if body.duration else None
    if body.key_type in KEY_TYPE_ROUTES:
        derived["allowed_routes"] = KEY_TYPE_ROUTES[body.key_type]
    stored = KEY_STORED | (UPDATE_STORED & type(body).model_fields.keys())
    if stored & body.model_fields_set:
        derived["extra_fields"] = with_stored(row.extra_fields, body, stored)
    apply_update(row, body, KEY_UPDATES, derived=derived)


async def _check_references(
    session: AsyncSession, caller: AdminCaller, row: VirtualKeyRow, body: KeySettings
) -> None:
    """The team, organization and key group a key names exist, team allowlists hold, a team key is
    in its team's organization, the alias is free, and a team admin gives keys only to ordinary
    members of its team."""
    # The row is already changed in the session; nothing may be flushed before these checks pass.
    with session.no_autoflush:
        team = await session.get(TeamRow, row.team_id) if row.team_id else None
        if row.team_id and team is None:
            raise InvalidRequestError(f"team {row.team_id!r} does not exist", param="team_id")
        if team is not None:
            # A team key belongs to its team's organization, whoever asks for another one.
            asked = body.organization_id if "organization_id" in body.model_fields_set else None
            if asked not in (None, team.organization_id):
                raise InvalidRequestError(
                    f"organization_id: a key of team {row.team_id!r} belongs to the team's organization "
                    f"{team.organization_id!r}",
                    param="organization_id",
                )
            row.organization_id = team.organization_id
            outside = [
                m for m in row.models if team.models and m not in team.models and "*" not in team.models
            ]
            if outside:
                raise InvalidRequestError(
                    f"models {outside} are not allowed for team {row.team_id!r}", param="models"
                )
        await require_organization(row.organization_id, session=session)
        await require_key_group(row.key_group, session=session)
        await require_budget(row.budget_id, session=session)
        if row.key_alias is not None and await key_store.alias_taken(
            row.key_alias, session=session, other_than=row.token
        ):
            raise ConflictError(f"key_alias {row.key_alias!r} is already used", param="key_alias")
        if not caller.can_write:
            if team is None and "organization_id" in body.model_fields_set and body.organization_id:
                raise PermissionDeniedError(
                    "organization_id: a team admin may not place keys into an organization",
                    code="team_admin_only", param="organization_id",
                )  # fmt: skip
            await _check_owner_for_team_admin(session, caller, row, team)


async def _check_owner_for_team_admin(
    session: AsyncSession, caller: AdminCaller, row: VirtualKeyRow, team: TeamRow | None
) -> None:
    """A key inherits its user's role, so a team admin may only give keys to ordinary team members."""
    if row.user_id is None:
        return
    members = {m["user_id"] for m in team.members_with_roles} if team else set()
    own_user = caller.key.user_id if caller.key else None
    user = await session.get(UserRow, row.user_id)
    ordinary = user is None or user.user_role in (Role.INTERNAL_USER, Role.INTERNAL_USER_VIEWER)
    if not ordinary or (row.user_id not in members and row.user_id != own_user):
        raise PermissionDeniedError(
            "a team admin may only assign keys to ordinary members of its team", code="team_admin_only"
        )


def _key_not_found() -> NotFoundError:
    return NotFoundError("key not found", code="key_not_found", param="key")


async def _load_key(session: AsyncSession, key_or_hash: str, *, for_update: bool = False) -> VirtualKeyRow:
    """The key, or a 404; `for_update` locks its row (keys come after teams and users in the lock
    order, see Entity.lock)."""
    row = await key_store.get_key(key_or_hash_to_hash(key_or_hash), session=session, for_update=for_update)
    if row is None:
        raise _key_not_found()
    return row


OWNER_FIELDS = ("user_id", "team_id", "organization_id", "key_group", "budget_id", "spend")
"""What places a key and counts against it: only an admin (or a team admin, within its team) sets
these; an internal user's own key keeps them as they were."""


async def _may_manage(session: AsyncSession, caller: AdminCaller, row: VirtualKeyRow) -> bool:
    """403 unless the caller may change this key: an admin; an admin of the key's team, when the
    key's user (if any) is an ordinary user (a team admin may not touch a key that carries more
    rights than its own); or the internal user a personal key (no team) belongs to. True when the
    caller changes it as its own key."""
    if caller.can_write:
        return False
    if row.team_id is None and row.user_id is not None and row.user_id == caller.own_user_id:
        if not caller.writes_own_keys:
            raise PermissionDeniedError(
                "an internal_user_viewer may read its own keys, not change them", code="read_only_user"
            )
        return True
    caller.require_team(row.team_id)
    if row.user_id is None:
        return False
    user = await session.get(UserRow, row.user_id)
    if user is not None and user.user_role not in (Role.INTERNAL_USER, Role.INTERNAL_USER_VIEWER):
        raise PermissionDeniedError(
            "a team admin may only manage keys of ordinary members", code="team_admin_only"
        )
    return False


def _owner_fields(row: VirtualKeyRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in OWNER_FIELDS}


def _check_own_key(caller: AdminCaller, row: VirtualKeyRow, was: dict[str, Any]) -> None:
    """403 unless an internal user's own key stays its own personal key (OWNER_FIELDS as `was`),
    within its user's models and max_budget."""
    user = caller.user
    assert user is not None  # writes_own_keys
    for name in OWNER_FIELDS:
        if getattr(row, name) != was[name]:
            raise PermissionDeniedError(
                f"{name}: only an admin sets this on a key; an internal user's keys are its own",
                code="own_keys_only", param=name,
            )  # fmt: skip
    if user.models and ALL_MODELS.isdisjoint(user.models):
        outside = [m for m in row.models if m not in user.models]
        if outside:
            raise PermissionDeniedError(
                f"models {outside} are not among your user's models", code="own_keys_only", param="models"
            )
    if user.max_budget is not None and row.max_budget is not None and row.max_budget > user.max_budget:
        raise PermissionDeniedError(
            f"max_budget may be at most your user's max_budget ({user.max_budget})",
            code="own_keys_only", param="max_budget",
        )  # fmt: skip


def _blocker(caller: AdminCaller, own: bool) -> str:
    """How a block by this caller is recorded on the key."""
    if caller.can_write:
        return caller.role.value
    return "user" if own else "team_admin"


def set_blocked(caller: AdminCaller, row: VirtualKeyRow, blocked: bool, *, own: bool = False) -> None:
    """Block or unblock the key, remembering who blocked it. A team admin may lift only its own
    kind's block or a user's (never an admin's, nor one from before blocks were attributed, which
    counts as an admin's); an internal user only its own."""
    liftable = {"user"} if own else {"team_admin", "user"}
    if not blocked and row.blocked and not caller.can_write and row.blocked_by not in liftable:
        raise PermissionDeniedError(
            "this key was blocked by someone with more rights; only they or an admin may unblock it",
            code="team_admin_only",
        )
    if blocked and not row.blocked:
        row.blocked_by = _blocker(caller, own)
    elif not blocked:
        row.blocked_by = None
    row.blocked = blocked


async def generate(request: web.Request) -> web.Response:
    """POST /key/generate: a new virtual key, returned once in plaintext, stored as its hash."""
    caller = await admin_caller(request)
    body = await read_request(request, GenerateKeyRequest)
    own = body.team_id is None and not caller.can_write
    if body.team_id is not None:
        caller.require_team(body.team_id)
    elif own and not caller.writes_own_keys:
        caller.require_write()
    key = body.key or generate_key()
    now = utcnow()
    row = VirtualKeyRow(
        token=hash_key(key), key_name=mask_key(key), created_at=now, created_by=caller.identity
    )
    apply_key_settings(row, body)
    if own:
        # An internal user's key is its own unless it names another user (refused below).
        was = {**_owner_fields(VirtualKeyRow(token="", key_name="")), "user_id": caller.own_user_id}
        if row.user_id is None:
            row.user_id = caller.own_user_id
        _check_own_key(caller, row, was)
    if row.blocked:
        row.blocked_by = _blocker(caller, own)
    async with request.app[SESSIONS]() as session:
        if await key_store.get_key(row.token, session=session) is not None:
            raise ConflictError("this key already exists", param="key")
        await _check_references(session, caller, row, body)
        await save_resources(row, session=session)
        record_audit(
            session=session, actor=caller.identity, action="key.generate", object_type="key",
            object_id=row.token, before=None, after=key_public(row),
        )  # fmt: skip
        check_stored_windows(row)
        await ensure_windows(session, "key", row.token, await row_periods(row, session=session))
        if body.spend is not None:
            await set_spend(request.app[NATS], "key", row.token, body.spend, session=session)
        await session.commit()
        shown = await key_shown(row, session=session)
    return json_response({"key": key, **shown, "token_id": row.token})


def _apply_change(caller: AdminCaller, row: VirtualKeyRow, body: KeySettings, own: bool) -> None:
    """Apply body to a key the caller may manage (as its own when `own`) and check the result: a
    block is recorded by who set it, a team admin's key stays in its teams, an internal user's
    key stays its own."""
    was = _owner_fields(row)
    was_blocked = row.blocked
    apply_key_settings(row, body)
    if "blocked" in body.model_fields_set:
        row.blocked = was_blocked
        set_blocked(caller, row, bool(body.blocked), own=own)
    if own:
        _check_own_key(caller, row, was)
    else:
        caller.require_team(row.team_id)


async def update(request: web.Request) -> web.Response:
    """POST /key/update: change the fields given; the key keeps its secret."""
    caller = await admin_caller(request)
    body = await read_request(request, UpdateKeyRequest)
    async with request.app[SESSIONS]() as session:
        row = await _load_key(session, body.key, for_update=True)
        own = await _may_manage(session, caller, row)
        before = key_public(row)
        _apply_change(caller, row, body, own)
        await _check_references(session, caller, row, body)
        await save_resources(row, session=session)
        record_audit(
            session=session, actor=caller.identity, action="key.update", object_type="key",
            object_id=row.token, before=before, after=key_public(row),
        )  # fmt: skip
        check_stored_windows(row)
        await ensure_windows(session, "key", row.token, await row_periods(row, session=session))
        if "spend" in body.model_fields_set:
            await set_spend(request.app[NATS], "key", row.token, body.spend or 0.0, session=session)
        await session.commit()
        shown = await key_shown(row, session=session)
    return json_response(shown)


async def regenerate(request: web.Request) -> web.Response:
    """POST /key/regenerate or /key/{key}/regenerate: new secret, same settings; the old key stops
    working at once, or after `grace_period`."""
    caller = await admin_caller(request)
    body = validate(RegenerateKeyRequest, await _body_with_path_key(request))
    if body.new_master_key is not None:
        raise InvalidRequestError(
            "the master key is HYDITE_MASTER_KEY; change it in the control plane's settings",
            param="new_master_key",
        )
    new_key = body.new_key or generate_key()
    async with request.app[SESSIONS]() as session:
        old = await _load_key(session, body.key, for_update=True)
        own = await _may_manage(session, caller, old)
        before = key_public(old)
        fresh = VirtualKeyRow.model_validate(old.model_dump())
        fresh.token, fresh.key_name = hash_key(new_key), mask_key(new_key)
        _apply_change(caller, fresh, body, own)
        if await key_store.get_key(fresh.token, session=session) is not None:
            raise ConflictError("the new key already exists", param="new_key")
        # The alias moves to the new key; free it before the uniqueness check.
        old.key_alias = None
        await session.flush()
        await _check_references(session, caller, fresh, body)
        if body.grace_period:
            ends = utcnow() + parse_duration(body.grace_period)
            old.expires = min(old.expires, ends) if old.expires else ends
            await save_resources(old, fresh, session=session)
        else:
            await ensure_windows(session, "key", old.token, [])
            await write_resources(session=session, removals=[old], upserts=[fresh])
        await ensure_windows(session, "key", fresh.token, await row_periods(fresh, session=session))
        record_audit(
            session=session, actor=caller.identity, action="key.regenerate", object_type="key",
            object_id=fresh.token, before=before, after=key_public(fresh),
        )  # fmt: skip
        await session.commit()
    return json_response({"key": new_key, **key_public(fresh), "token_id": fresh.token})


async def _body_with_path_key(request: web.Request) -> dict[str, Any]:
    data = await read_json_object(request) if request.can_read_body else {}
    if path_key := request.match_info.get("key"):
        data.setdefault("key", path_key)
    return data


async def delete(request: web.Request) -> web.Response:
    """POST /key/delete: delete keys by value, hash or alias; all or nothing."""
    caller = await admin_caller(request)
    body = await read_request(request, DeleteKeysRequest)
    async with request.app[SESSIONS]() as session:
        by_alias = {r.key_alias: r for r in await key_store.keys_by_alias(body.key_aliases, session=session)}
        missing = [a for a in body.key_aliases if a not in by_alias]
        if missing:
            raise NotFoundError(f"no key has alias {missing[0]!r}", code="key_not_found", param="key_aliases")
        wanted = {key_or_hash_to_hash(value) for value in body.keys}
        # One statement locks them all in token order, so two deletes of the same keys cannot deadlock.
        rows = {
            r.token: r
            for r in await key_store.lock_keys(
                [*wanted, *(r.token for r in by_alias.values())], session=session
            )
        }
        if not wanted <= rows.keys():
            raise _key_not_found()
        for row in rows.values():
            await _may_manage(session, caller, row)
        await delete_keys(session, caller, list(rows.values()), action="key.delete")
        await session.commit()
    return json_response({"deleted_keys": sorted(rows)})


async def delete_keys(
    session: AsyncSession, caller: AdminCaller, rows: Sequence[VirtualKeyRow], action: str
) -> None:
    """Delete keys as one config version, auditing each (used by user and team deletion too)."""
    if not rows:
        return
    for row in sorted(rows, key=lambda r: r.token):
        record_audit(
            session=session, actor=caller.identity, action=action, object_type="key", object_id=row.token,
            before=key_public(row), after=None,
        )  # fmt: skip
        await ensure_windows(session, "key", row.token, [])
    await delete_resources(*rows, session=session)


@dataclass(frozen=True)
class KeyOwner:
    """Users and teams own keys: deleting owners deletes their keys (as LiteLLM does), and an
    owner's info lists its keys. Its methods are the owner entity's hooks."""

    id_column: Literal["user_id", "team_id"]
    info_field: str  # where the owner's own row appears in its info response
    public: Callable[[Any], dict[str, Any]] = row_public  # the owner's row as its info shows it

    async def delete_keys(
        self, session: AsyncSession, caller: AdminCaller, owners: list[Any]
    ) -> dict[str, Any]:
        """Delete every key of these owners; the delete response's extra field."""
        ids = [getattr(owner, self.id_column) for owner in owners]
        keys = await key_store.keys_owned_by(self.id_column, ids, session=session)
        await delete_keys(session, caller, keys, action="key.delete_with_owner")
        return {"deleted_keys": sorted(k.token for k in keys)}

    async def info(self, session: AsyncSession, caller: AdminCaller, owner: Any) -> dict[str, Any]:
        """The owner's keys this caller may see and the owner's own row, for its info response.

        Admins, admin viewers and admins of a team see all of its keys; anyone else (a member reading
        their team) only the keys of their own user, or their own key.
        """
        keys = await key_store.keys_owned_by(
            self.id_column, [getattr(owner, self.id_column)], session=session
        )
        if not (caller.can_read or (self.id_column == "team_id" and caller.manages_team(owner.team_id))):
            own_user = caller.key.user_id if caller.key is not None else None
            keys = [k for k in keys if k.token == caller.key_hash or (own_user and k.user_id == own_user)]
        return {"keys": await keys_shown(keys, session=session), self.info_field: self.public(owner)}


async def _set_blocked(request: web.Request, blocked: bool) -> web.Response:
    caller = await admin_caller(request)
    body = await read_request(request, KeyRef)
    async with request.app[SESSIONS]() as session:
        row = await _load_key(session, body.key, for_update=True)
        own = await _may_manage(session, caller, row)
        before = key_public(row)
        set_blocked(caller, row, blocked, own=own)
        row.updated_at = utcnow()
        await save_resources(row, session=session)
        record_audit(
            session=session, actor=caller.identity, action="key.block" if blocked else "key.unblock",
            object_type="key", object_id=row.token, before=before, after=key_public(row),
        )  # fmt: skip
        await session.commit()
    return json_response(key_public(row))


async def block(request: web.Request) -> web.Response:
    """POST /key/block: the key is refused everywhere within a second."""
    return await _set_blocked(request, True)


async def unblock(request: web.Request) -> web.Response:
    """POST /key/unblock."""
    return await _set_blocked(request, False)


async def info(request: web.Request) -> web.Response:
    """GET /key/info?key=: a key's settings; without ?key= the caller's own key."""
    caller = await admin_caller(request)
    asked = request.query.get("key")
    async with request.app[SESSIONS]() as session:
        if asked is None:
            if caller.key is None:
                raise InvalidRequestError("the master key has no key info; pass ?key=", param="key")
            row = caller.key
        else:
            own = key_or_hash_to_hash(asked) == caller.key_hash
            row = await _load_key(session, asked)
            # A key the caller may not see is answered exactly like one that does not exist, so no
            # caller can probe which keys exist.
            if not (caller.can_read or own or caller.manages_team(row.team_id) or _owns(caller, row)):
                raise _key_not_found()
        shown = await key_shown(row, session=session)
    return json_response({"key": row.token, "info": shown})


def _owns(caller: AdminCaller, row: VirtualKeyRow) -> bool:
    """Whether the key belongs to the internal user (or viewer) calling."""
    return caller.own_user_id is not None and row.user_id == caller.own_user_id


async def list_(request: web.Request) -> web.Response:
    """GET /key/list: keys page by page, filtered by user, team, organization or alias; a team
    admin sees its teams' keys, an internal user (or viewer) its own."""
    caller = await admin_caller(request)
    team_id = request.query.get("team_id")
    user_id = request.query.get("user_id")
    if caller.can_read:
        team_ids = [team_id] if team_id else None
    elif caller.admin_team_ids:
        if team_id and team_id not in caller.admin_team_ids:
            raise PermissionDeniedError(
                "you may only list keys of teams you administer", code="team_admin_only"
            )
        team_ids = [team_id] if team_id else sorted(caller.admin_team_ids)
    elif caller.own_user_id is not None:
        if team_id or user_id not in (None, caller.own_user_id):
            raise PermissionDeniedError("you may only list your own keys", code="own_keys_only")
        team_ids, user_id = None, caller.own_user_id
    else:
        raise PermissionDeniedError("listing keys needs an admin or a team admin", code="admin_only")
    page, size = page_of(request)
    full = request.query.get("return_full_object", "false").lower() == "true"
    async with request.app[SESSIONS]() as session:
        rows, total = await key_store.list_keys(
            session=session,
            user_id=user_id,
            team_ids=team_ids,
            organization_id=request.query.get("organization_id"),
            key_alias=request.query.get("key_alias"),
            offset=(page - 1) * size,
            limit=size,
        )
        items: list[Any] = await keys_shown(rows, session=session) if full else [r.token for r in rows]
    return json_response(paged(items, total, page, size, "keys"))


async def reset_spend(request: web.Request) -> web.Response:
    """POST /key/{key}/reset_spend {"reset_to": x}: an admin sets the key's running total back to x,
    at most its current spend and its max_budget (LiteLLM's rules). The total and the KV entry
    budgets read are written before the answer, so the very next request and /key/info see it."""
    caller = await admin_caller(request)
    caller.require_write()
    body = await read_request(request, ResetSpendRequest)
    async with request.app[SESSIONS]() as session:
        row = await _load_key(session, request.match_info["key"], for_update=True)
        previous = (await spend_of("key", [row.token], session=session)).get(row.token, {})
        current = float(sum(previous.values(), Decimal(0)))
        if body.reset_to > current:
            raise InvalidRequestError(
                f"reset_to ({body.reset_to}) must not exceed the key's current spend ({current})",
                param="reset_to",
            )
        if row.max_budget is not None and body.reset_to > row.max_budget:
            raise InvalidRequestError(
                f"reset_to ({body.reset_to}) must not exceed the key's max_budget ({row.max_budget})",
                param="reset_to",
            )
        before = key_public(row)
        row.spend = body.reset_to
        row.updated_at = utcnow()
        session.add(row)
        record_audit(
            session=session, actor=caller.identity, action="key.reset_spend", object_type="key",
            object_id=row.token, before=before, after=key_public(row),
        )  # fmt: skip
        totals = await set_spend(
            request.app[NATS], "key", row.token, body.reset_to, session=session, reset=True
        )
        await session.commit()
    reset_at = max((t.reset_at for t in totals if t.reset_at is not None), default=None)
    return json_response(
        {
            "key_hash": row.token,
            "spend": body.reset_to,
            "previous_spend": current,
            "max_budget": row.max_budget,
            "budget_reset_at": _iso(reset_at),
        }
    )


async def health(request: web.Request) -> web.Response:
    """GET /key/health: whether the calling key works (authentication already proved it)."""
    caller = await admin_caller(request)
    key = caller.key
    details: dict[str, Any] = {"key": "healthy", "logging_callbacks": None}
    if key is not None:
        details["expires"] = _iso(key.expires)
        details["key_alias"] = key.key_alias
    return json_response(details)


ROUTES = [
    web.post("/key/generate", generate),
    web.post("/key/update", update),
    web.post("/key/delete", delete),
    web.post("/key/regenerate", regenerate),
    web.post("/key/{key}/regenerate", regenerate),
    web.post("/key/block", block),
    web.post("/key/unblock", unblock),
    web.get("/key/info", info),
    web.get("/key/list", list_),
    web.get("/key/health", health),
    web.post("/key/{key}/reset_spend", reset_spend),
]
