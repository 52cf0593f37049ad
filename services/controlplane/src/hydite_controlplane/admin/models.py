"""Model deployments: request schemas and the model routes (/model/new, /model/update, /model/delete,
/model/info, /v1/model/info, /v2/model/info and /model_group/info, in LiteLLM's shape).

A deployment whose model_info names a team_id is that team's own: its team admin may add, change
and delete it, and only the team's keys reach it (the data plane does the same). Prices may sit in
litellm_params or in model_info, as in LiteLLM; litellm_params' win.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import defaultdict
from typing import Annotated, Any

from aiohttp import web
from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.allowlists import NOTHING, permits
from hydite_common.credentials import CredentialCipher, mask_secret
from hydite_common.errors import ConflictError, InvalidRequestError, NotFoundError, PermissionDeniedError
from hydite_common.pricing import model_info_fields, price_settings
from hydite_common.providers import ACCEPTED_PROVIDERS, split_model
from hydite_controlplane.admin.auth import AdminCaller, admin_caller
from hydite_controlplane.admin.model_groups import model_group_info, resolved_price
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.updates import UpdateRules, apply_update
from hydite_controlplane.admin.validation import (
    MAX_COUNT,
    MAX_NAME,
    AdminRequest,
    JsonObject,
    Name,
    check_json_field,
    query_int,
    read_request,
)
from hydite_controlplane.appkeys import CIPHER, SESSIONS
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.deployments import DeploymentRow
from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_controlplane.models.principals import KeyGroupRow, OrganizationRow, TeamRow, UserRow
from hydite_controlplane.store.audit import record_audit
from hydite_controlplane.store.deployments import deployments_by_name
from hydite_controlplane.store.resources import delete_resources, save_resources

# litellm_params that map to deployment columns; any other param passes through to the provider.
_COLUMN_PARAMS = (
    "api_base", "api_version", "timeout", "stream_timeout", "rpm", "tpm", "weight", "max_retries",
    "input_cost_per_token", "output_cost_per_token",
)  # fmt: skip


_TABLE_FACTS = frozenset({"max_tokens", "max_input_tokens", "max_output_tokens", "litellm_provider"})
"""What /model/info shows of a model from LiteLLM's table, under the deployment's own model_info."""

MAX_RETRIES = 10
"""Retries of one deployment at most (the column is an INTEGER; the data plane's num_retries has
the same bound)."""


class LitellmParams(AdminRequest):
    """Where and how to call the upstream; unknown params pass through to the provider, except
    LiteLLM's price settings (`cache_read_input_token_cost`, `currency`, ...), which price it."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    custom_llm_provider: str | None = None
    api_base: str | None = None
    api_key: str | None = None
    api_version: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    stream_timeout: float | None = Field(default=None, gt=0)
    rpm: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    tpm: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    weight: float = Field(default=1.0, gt=0)
    max_retries: int | None = Field(default=None, ge=0, le=MAX_RETRIES)
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounded_extras(self) -> LitellmParams:
        # Unknown params are stored and passed on as they are: one JSON field, with its bounds.
        if self.model_extra:
            try:
                check_json_field(self.model_extra)
            except ValueError as exc:
                raise ValueError(f"extra litellm_params: {exc}") from None
            check_price_settings(self.model_extra)
        return self

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://", "os.environ/")):
            raise ValueError("api_base must be an http:// or https:// URL (or os.environ/NAME)")
        return value


class PartialLitellmParams(LitellmParams):
    """litellm_params of /model/update: every field optional, only the given ones change."""

    model: str | None = Field(default=None, min_length=1)  # type: ignore[assignment]
    weight: float | None = Field(default=None, gt=0)  # type: ignore[assignment]


def check_price_settings(values: dict[str, Any]) -> None:
    """Prices (LiteLLM's names) are numbers of at least 0, `currency` an ISO 4217 code, tiers a
    list and off-peak prices an object; raises ValueError naming the first that is not."""
    for name, value in price_settings(values).items():
        if value is None:
            continue
        if name == "currency":
            if not (isinstance(value, str) and CURRENCY_CODE.match(value)):
                raise ValueError("currency must be a three-letter ISO 4217 code such as USD or CNY")
        elif name == "tiered_pricing":
            if not isinstance(value, list):
                raise ValueError("tiered_pricing must be a list of {range, prices}")
        elif name == "off_peak_pricing":
            if not isinstance(value, dict):
                raise ValueError("off_peak_pricing must be an object of prices and windows")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name} must be a number of at least 0")


CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


def _checked_model_info(value: dict[str, Any]) -> dict[str, Any]:
    """model_info's prices are numbers of at least 0 and its team_id an id (when set)."""
    check_price_settings(value)
    team_id = value.get("team_id")
    if team_id is not None and not (isinstance(team_id, str) and 0 < len(team_id) <= MAX_NAME):
        raise ValueError(f"team_id must be a team id (a string of 1 to {MAX_NAME} characters)")
    return value


ModelInfo = Annotated[JsonObject, AfterValidator(_checked_model_info)]
"""A deployment's model_info: free-form JSON, with LiteLLM's prices and team_id checked."""


class NewModelRequest(AdminRequest):
    """Body of POST /model/new."""

    model_name: Name = Field(min_length=1)
    litellm_params: LitellmParams
    model_info: ModelInfo = Field(default_factory=dict)


class UpdateModelRequest(AdminRequest):
    """Body of POST /model/update: the deployment id (in model_info.id or model_id) and what changes."""

    model_id: Name | None = None
    model_name: Name | None = Field(default=None, min_length=1)
    litellm_params: PartialLitellmParams | None = None
    model_info: ModelInfo | None = None


class DeleteModelRequest(AdminRequest):
    """Body of POST /model/delete."""

    id: str = Field(min_length=1)


Shown = dict[str, Any] | None
"""A deployment's public form in the audit trail (None before it existed or after it is gone)."""


_SECRET_PARAM_WORDS = ("key", "secret", "token", "password", "credential")


def _shown_param(name: str, value: Any) -> Any:
    """A litellm_param as shown: one named like a credential (client_secret, azure_ad_token,
    aws_secret_access_key) masked as api_key is, unless it is an `os.environ/` reference."""
    if not isinstance(value, str) or value.startswith("os.environ/"):
        return value
    return mask_secret(value) if any(word in name.lower() for word in _SECRET_PARAM_WORDS) else value


def deployment_public(row: DeploymentRow, cipher: CredentialCipher | None) -> dict[str, Any]:
    """A deployment as LiteLLM shows it; the credential masked (or left out without a cipher)."""
    params: dict[str, Any] = {
        "model": f"{row.provider}/{row.upstream_model}",
        "api_key": mask_secret(cipher.decrypt(row.api_key_encrypted)) or None if cipher else None,
        **{name: getattr(row, name) for name in _COLUMN_PARAMS},
        **{name: _shown_param(name, value) for name, value in row.extra_params.items()},
    }
    resolved = model_info_fields(resolved_price(row), time.time())
    prices = {name: value for name, value in resolved.items() if name not in _TABLE_FACTS}
    info = {
        "id": row.model_id,
        "db_model": True,
        "litellm_provider": row.provider,
        # The model's limits from LiteLLM's table, unless the deployment states its own.
        **{name: value for name, value in resolved.items() if name in _TABLE_FACTS},
        **row.model_info,
        # What a call is billed, resolved as the data plane resolves it, and where that came from.
        **prices,
    }
    return {
        "model_id": row.model_id,
        "model_name": row.model_name,
        "litellm_params": {k: v for k, v in params.items() if v is not None},
        "model_info": info,
    }


def provider_of(model: str, custom_provider: str | None) -> tuple[str, str]:
    """Provider and upstream model name; an unsupported provider is a 400."""
    provider, upstream_model = split_model(model, custom_provider)
    if provider not in ACCEPTED_PROVIDERS:
        raise InvalidRequestError(
            f"provider {provider!r} is not supported; use one of {sorted(ACCEPTED_PROVIDERS)}",
            param="litellm_params.model",
        )
    return provider, upstream_model


PARAM_UPDATES = UpdateRules(
    not_columns=frozenset({"model", "custom_llm_provider", "api_key"}),
    param_prefix="litellm_params.",
    null_message="{param} may not be null",
)
"""The column params land on the row by name; model, provider and api_key are derived first."""


def apply_params(row: DeploymentRow, params: LitellmParams, cipher: CredentialCipher) -> None:
    """Copy the litellm_params the request set onto the row: model and provider as the provider and
    upstream model, the credential encrypted, unknown params merged into extra_params."""
    derived: dict[str, Any] = {}
    if params.model is not None or params.custom_llm_provider is not None:
        # An update may change only the provider or only the model name.
        model = params.model or row.upstream_model
        custom = params.custom_llm_provider or (None if params.model else row.provider)
        derived["provider"], derived["upstream_model"] = provider_of(model, custom)
    if "api_key" in params.model_fields_set:
        derived["api_key_encrypted"] = cipher.encrypt(params.api_key or "")
    if params.model_extra:
        derived["extra_params"] = {**row.extra_params, **params.model_extra}
    apply_update(row, params, PARAM_UPDATES, derived=derived)


def _audit(
    session: AsyncSession, caller: AdminCaller, action: str, model_id: str, *, before: Shown, after: Shown
) -> None:
    record_audit(
        session=session, actor=caller.identity, action=f"model.{action}", object_type="model",
        object_id=model_id, before=before, after=after,
    )  # fmt: skip


def owning_team(model_info: dict[str, Any]) -> str | None:
    """The team a deployment belongs to (model_info.team_id), None for a shared one."""
    team_id = model_info.get("team_id")
    return team_id if isinstance(team_id, str) and team_id else None


async def _may_manage(session: AsyncSession, caller: AdminCaller, team_id: str | None) -> None:
    """403 unless the caller may manage deployments of this team (None: shared ones, admins only);
    an admin naming a team that does not exist is a 400."""
    if team_id is None:
        caller.require_write()
        return
    if not caller.manages_team(team_id):
        raise PermissionDeniedError(
            "a team's model needs an admin or an admin of that team", code="team_admin_only"
        )
    if await session.get(TeamRow, team_id) is None:
        raise InvalidRequestError(f"team {team_id!r} does not exist", param="model_info.team_id")


async def new_model(request: web.Request) -> web.Response:
    """POST /model/new: add a deployment behind a public model name (a team's own one when
    model_info.team_id names a team, which that team's admin may add)."""
    caller = await admin_caller(request)
    body = await read_request(request, NewModelRequest)
    if owning_team(body.model_info) is None:
        caller.require_write()
    cipher = request.app[CIPHER]
    model_id = str(body.model_info.get("id") or uuid.uuid4())
    provider, upstream_model = provider_of(body.litellm_params.model, body.litellm_params.custom_llm_provider)
    row = DeploymentRow(
        model_id=model_id,
        model_name=body.model_name,
        provider=provider,
        upstream_model=upstream_model,
        model_info={k: v for k, v in body.model_info.items() if k != "id"},
        created_by=caller.identity,
    )
    apply_params(row, body.litellm_params, cipher)
    async with request.app[SESSIONS]() as session:
        await _may_manage(session, caller, owning_team(row.model_info))
        if await session.get(DeploymentRow, model_id) is not None:
            raise ConflictError(f"a model with id {model_id!r} already exists", param="model_info.id")
        await save_resources(row, session=session)
        public = deployment_public(row, cipher)
        _audit(session, caller, "new", model_id, before=None, after=public)
        await session.commit()
    return json_response(public)


async def _load_managed(
    session: AsyncSession, caller: AdminCaller, model_id: str, param: str
) -> DeploymentRow:
    """The deployment, if the caller may change it (admins, or an admin of the team it belongs to)."""
    if not caller.can_write and not caller.admin_team_ids:
        caller.require_write()
    row = await session.get(DeploymentRow, model_id)
    if row is None:
        raise NotFoundError(f"model {model_id!r} does not exist", code="model_not_found", param=param)
    if not caller.can_write:
        await _may_manage(session, caller, owning_team(row.model_info))
    return row


async def update_model(request: web.Request) -> web.Response:
    """POST /model/update: change the given fields of one deployment (a team admin: of its team's
    own deployments, which stay its team's)."""
    caller = await admin_caller(request)
    body = await read_request(request, UpdateModelRequest)
    model_id = body.model_id or (body.model_info or {}).get("id")
    if not model_id:
        raise InvalidRequestError("give the deployment id as model_id or model_info.id", param="model_id")
    cipher = request.app[CIPHER]
    async with request.app[SESSIONS]() as session:
        row = await _load_managed(session, caller, str(model_id), "model_id")
        before = deployment_public(row, cipher)
        if body.model_name:
            row.model_name = body.model_name
        if body.litellm_params is not None:
            apply_params(row, body.litellm_params, cipher)
        if body.model_info is not None:
            row.model_info = {**row.model_info, **{k: v for k, v in body.model_info.items() if k != "id"}}
            if not caller.can_write or owning_team(row.model_info) is not None:
                await _may_manage(session, caller, owning_team(row.model_info))
        row.updated_at = utcnow()
        await save_resources(row, session=session)
        after = deployment_public(row, cipher)
        _audit(session, caller, "update", row.model_id, before=before, after=after)
        await session.commit()
    return json_response(after)


async def delete_model(request: web.Request) -> web.Response:
    """POST /model/delete: remove a deployment; the model name disappears with its last deployment.
    A team admin may delete its team's own deployments."""
    caller = await admin_caller(request)
    body = await read_request(request, DeleteModelRequest)
    async with request.app[SESSIONS]() as session:
        row = await _load_managed(session, caller, body.id, "id")
        before = deployment_public(row, request.app[CIPHER])
        await delete_resources(row, session=session)
        _audit(session, caller, "delete", body.id, before=before, after=None)
        await session.commit()
    return json_response({"message": f"model {body.id} deleted", "id": body.id})


async def _allowlists_of(session: AsyncSession, key: VirtualKeyRow) -> list[list[str] | tuple[str, ...]]:
    """Every allowlist over the key, as the data plane applies them: the key's, its user's, its
    team's, its key group's (its own, else its team's) and its organization's (its own, else its
    team's, else its user's)."""
    lists: list[list[str] | tuple[str, ...]] = [key.models]
    user = await session.get(UserRow, key.user_id) if key.user_id else None
    team = await session.get(TeamRow, key.team_id) if key.team_id else None
    if user is not None:
        lists.append(user.models)
    if team is not None:
        lists.append(team.models)
    group_name = key.key_group or (team.key_group if team is not None else None)
    if group_name:
        # A key group or organization that no longer exists allows nothing.
        group = await session.get(KeyGroupRow, group_name)
        lists.append(group.models if group is not None else NOTHING)
    organization_id = (
        key.organization_id
        or (team.organization_id if team is not None else None)
        or (user.organization_id if user is not None else None)
    )
    if organization_id:
        org = await session.get(OrganizationRow, organization_id)
        lists.append(org.models if org is not None else NOTHING)
    return lists


async def visible_deployments(session: AsyncSession, caller: AdminCaller) -> list[DeploymentRow]:
    """Every deployment for admins; for a key, those it may call, as the data plane routes it:
    of a model its team added itself, the team's own deployments (past the allowlists, which
    govern shared models), else the shared ones the allowlists permit (never another team's)."""
    rows = await deployments_by_name(session=session)
    if caller.can_read or caller.key is None:
        return rows
    shared = await _allowlists_of(session, caller.key)
    team_id = caller.key.team_id
    by_name: dict[str, list[DeploymentRow]] = defaultdict(list)
    for row in rows:
        by_name[row.model_name].append(row)
    visible: list[DeploymentRow] = []
    for name, group in by_name.items():
        own = [r for r in group if team_id and owning_team(r.model_info) == team_id]
        if own:
            visible += own
        elif permits(shared, name):
            visible += [r for r in group if owning_team(r.model_info) is None]
    return visible


async def model_info(request: web.Request) -> web.Response:
    """GET /model/info and /v1/model/info: price, context window and capabilities of each deployment."""
    caller = await admin_caller(request)
    wanted = request.query.get("litellm_model_id") or request.query.get("model_id")
    async with request.app[SESSIONS]() as session:
        rows = await visible_deployments(session, caller)
    if wanted:
        rows = [r for r in rows if r.model_id == wanted]
    # Credentials, even masked, are only for admins.
    cipher = request.app[CIPHER] if caller.can_read else None
    return json_response({"data": [deployment_public(r, cipher) for r in rows]})


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "").lower()
    if value not in ("", "true", "false", "1", "0"):
        raise InvalidRequestError(f"{name} must be true or false", param=name)
    return value in ("true", "1")


V2_SORTS = ("model_name", "created_at", "updated_at")


async def model_info_v2(request: web.Request) -> web.Response:
    """GET /v2/model/info: the deployments /model/info shows, without credentials, filtered
    (model, modelId, teamId, search, user_models_only), sorted (sortBy, sortOrder) and paged
    (page, size) as LiteLLM's: {data, total_count, current_page, total_pages, size}."""
    caller = await admin_caller(request)
    page = query_int(request, "page", 1, minimum=1, maximum=1_000_000)
    size = query_int(request, "size", 50, minimum=1, maximum=1000)
    sort_by = request.query.get("sortBy") or "model_name"
    order = request.query.get("sortOrder") or "asc"
    if sort_by not in V2_SORTS:
        raise InvalidRequestError(f"sortBy must be one of {list(V2_SORTS)}", param="sortBy")
    if order not in ("asc", "desc"):
        raise InvalidRequestError("sortOrder must be asc or desc", param="sortOrder")
    own_only = _flag(request, "user_models_only")
    async with request.app[SESSIONS]() as session:
        rows = await visible_deployments(session, caller)
    query = request.query
    if model := query.get("model"):
        rows = [r for r in rows if r.model_name == model]
    if model_id := query.get("modelId"):
        rows = [r for r in rows if r.model_id == model_id]
    if team_id := query.get("teamId"):
        rows = [r for r in rows if owning_team(r.model_info) == team_id]
    if search := query.get("search"):
        rows = [r for r in rows if search.lower() in r.model_name.lower()]
    if own_only:
        rows = [r for r in rows if r.created_by == caller.identity]
    rows.sort(key=lambda r: (getattr(r, sort_by), r.model_id), reverse=order == "desc")
    cipher = request.app[CIPHER] if caller.can_read else None
    shown = []
    for row in rows[(page - 1) * size : page * size]:
        public = deployment_public(row, cipher)
        public["litellm_params"].pop("api_key", None)
        shown.append(public)
    return json_response(
        {
            "data": shown,
            "total_count": len(rows),
            "current_page": page,
            "total_pages": max(1, -(-len(rows) // size)),
            "size": size,
        }
    )


async def model_groups_info(request: web.Request) -> web.Response:
    """GET /model_group/info: each model the caller may call as a LiteLLM model group (providers,
    context window, prices, mode, limits, capabilities, supported OpenAI parameters);
    ?model_group= picks one."""
    caller = await admin_caller(request)
    async with request.app[SESSIONS]() as session:
        rows = await visible_deployments(session, caller)
    groups: dict[str, list[DeploymentRow]] = defaultdict(list)
    for row in rows:
        groups[row.model_name].append(row)
    wanted = request.query.get("model_group")
    data = [model_group_info(name, group) for name, group in sorted(groups.items()) if wanted in (None, name)]
    return json_response({"data": data})


ROUTES = [
    web.post("/model/new", new_model),
    web.post("/model/update", update_model),
    web.post("/model/delete", delete_model),
    web.get("/model/info", model_info),
    web.get("/v1/model/info", model_info),
    web.get("/v2/model/info", model_info_v2),
    web.get("/model_group/info", model_groups_info),
]
