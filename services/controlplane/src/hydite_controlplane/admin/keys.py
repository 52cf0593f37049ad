"""Key routes: /key/generate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import Field, field_validator
from sqlalchemy.exc import IntegrityError

from hydite_common.errors import ConflictError
from hydite_common.http import json_response
from hydite_common.keys import generate_key, hash_key, mask_key
from hydite_controlplane.admin.auth import require_master_key
from hydite_controlplane.admin.validation import AdminRequest, parse_duration, read_request
from hydite_controlplane.appkeys import SESSIONS, SETTINGS
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_controlplane.store import keys as key_store
from hydite_controlplane.store.resources import save_resources


class GenerateKeyRequest(AdminRequest):
    """Body of POST /key/generate (LiteLLM field names)."""

    key: str | None = None
    key_alias: str | None = None
    duration: str | None = None
    models: list[str] = Field(default_factory=list)
    key_group: str | None = None
    max_budget: float | None = Field(default=None, ge=0)
    soft_budget: float | None = Field(default=None, ge=0)
    budget_duration: str | None = None
    rpm_limit: int | None = Field(default=None, ge=0)
    tpm_limit: int | None = Field(default=None, ge=0)
    max_parallel_requests: int | None = Field(default=None, ge=0)
    model_rpm_limit: dict[str, int] = Field(default_factory=dict)
    model_tpm_limit: dict[str, int] = Field(default_factory=dict)
    user_id: str | None = None
    team_id: str | None = None
    organization_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    guardrails: list[str] = Field(default_factory=list)
    allowed_routes: list[str] = Field(default_factory=list)
    blocked: bool = False

    @field_validator("key")
    @classmethod
    def _custom_key_format(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("sk-") or len(value) < 12):
            raise ValueError("a custom key must start with 'sk-' and be at least 12 characters")
        return value

    @field_validator("duration", "budget_duration")
    @classmethod
    def _duration_format(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


def key_public(row: VirtualKeyRow) -> dict[str, Any]:
    """A key's settings as LiteLLM returns them (never the key itself)."""
    return {
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
        "user_id": row.user_id,
        "team_id": row.team_id,
        "organization_id": row.organization_id,
        "metadata": row.metadata_,
        "tags": row.tags,
        "guardrails": row.guardrails,
        "allowed_routes": row.allowed_routes,
        "blocked": row.blocked,
        "spend": 0.0,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "created_by": row.created_by,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def generate(request: web.Request) -> web.Response:
    """POST /key/generate: a new virtual key, returned once in plaintext, stored as its hash."""
    caller = require_master_key(request, request.app[SETTINGS].master_key)
    body = await read_request(request, GenerateKeyRequest)
    key = body.key or generate_key()
    now = utcnow()
    row = VirtualKeyRow(
        token=hash_key(key),
        key_name=mask_key(key),
        key_alias=body.key_alias,
        user_id=body.user_id,
        team_id=body.team_id,
        organization_id=body.organization_id,
        key_group=body.key_group,
        models=body.models,
        tags=body.tags,
        allowed_routes=body.allowed_routes,
        guardrails=body.guardrails,
        blocked=body.blocked,
        expires=now + parse_duration(body.duration) if body.duration else None,
        max_budget=body.max_budget,
        soft_budget=body.soft_budget,
        budget_duration=body.budget_duration,
        rpm_limit=body.rpm_limit,
        tpm_limit=body.tpm_limit,
        max_parallel_requests=body.max_parallel_requests,
        model_rpm_limit=body.model_rpm_limit,
        model_tpm_limit=body.model_tpm_limit,
        metadata_=body.metadata,
        created_at=now,
        updated_at=now,
        created_by=caller.identity,
    )
    async with request.app[SESSIONS]() as session:
        if body.key_alias and await key_store.alias_taken(session, body.key_alias):
            raise ConflictError(f"key_alias {body.key_alias!r} is already used", param="key_alias")
        if await key_store.get_key(session, row.token) is not None:
            raise ConflictError("this key already exists", param="key")
        await save_resources(session, row)
        try:
            await session.commit()
        except IntegrityError:
            raise ConflictError("a key with this value or alias already exists") from None
    return json_response({"key": key, **key_public(row), "token_id": row.token})


ROUTES = [web.post("/key/generate", generate)]
