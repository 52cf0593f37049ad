"""Model routes: /model/new (LiteLLM shape: model_name, litellm_params, model_info)."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from pydantic import ConfigDict, Field, field_validator
from sqlalchemy.exc import IntegrityError

from hydite_common.credentials import mask_secret
from hydite_common.errors import ConflictError, InvalidRequestError
from hydite_common.http import json_response
from hydite_common.providers import SUPPORTED_PROVIDERS, split_model
from hydite_controlplane.admin.auth import require_master_key
from hydite_controlplane.admin.validation import AdminRequest, read_request
from hydite_controlplane.appkeys import CIPHER, SESSIONS, SETTINGS
from hydite_controlplane.models.deployments import DeploymentRow
from hydite_controlplane.store.resources import save_resources


class LitellmParams(AdminRequest):
    """Where and how to call the upstream; unknown params pass through to the provider."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    custom_llm_provider: str | None = None
    api_base: str | None = None
    api_key: str | None = None
    api_version: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    stream_timeout: float | None = Field(default=None, gt=0)
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    weight: float = Field(default=1.0, gt=0)
    max_retries: int | None = Field(default=None, ge=0)
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("api_base must be an http:// or https:// URL")
        return value


class NewModelRequest(AdminRequest):
    """Body of POST /model/new."""

    model_name: str = Field(min_length=1)
    litellm_params: LitellmParams
    model_info: dict[str, Any] = Field(default_factory=dict)


def deployment_public(row: DeploymentRow, api_key: str) -> dict[str, Any]:
    """A deployment as LiteLLM shows it, with the credential masked."""
    params: dict[str, Any] = {
        "model": f"{row.provider}/{row.upstream_model}",
        "api_base": row.api_base,
        "api_key": mask_secret(api_key) or None,
        "api_version": row.api_version,
        "timeout": row.timeout,
        "stream_timeout": row.stream_timeout,
        "rpm": row.rpm,
        "tpm": row.tpm,
        "weight": row.weight,
        "max_retries": row.max_retries,
        "input_cost_per_token": row.input_cost_per_token,
        "output_cost_per_token": row.output_cost_per_token,
        **row.extra_params,
    }
    return {
        "model_id": row.model_id,
        "model_name": row.model_name,
        "litellm_params": {k: v for k, v in params.items() if v is not None},
        "model_info": {**row.model_info, "id": row.model_id},
    }


async def new_model(request: web.Request) -> web.Response:
    """POST /model/new: add a deployment behind a public model name."""
    caller = require_master_key(request, request.app[SETTINGS].master_key)
    body = await read_request(request, NewModelRequest)
    params = body.litellm_params
    provider, upstream_model = split_model(params.model, params.custom_llm_provider)
    if provider not in SUPPORTED_PROVIDERS:
        raise InvalidRequestError(
            f"provider {provider!r} is not supported; use one of {sorted(SUPPORTED_PROVIDERS)}",
            param="litellm_params.custom_llm_provider",
        )
    model_id = str(body.model_info.get("id") or uuid.uuid4())
    api_key = params.api_key or ""
    row = DeploymentRow(
        model_id=model_id,
        model_name=body.model_name,
        provider=provider,
        upstream_model=upstream_model,
        api_base=params.api_base,
        api_key_encrypted=request.app[CIPHER].encrypt(api_key),
        api_version=params.api_version,
        timeout=params.timeout,
        stream_timeout=params.stream_timeout,
        weight=params.weight,
        rpm=params.rpm,
        tpm=params.tpm,
        max_retries=params.max_retries,
        input_cost_per_token=params.input_cost_per_token,
        output_cost_per_token=params.output_cost_per_token,
        extra_params=params.model_extra or {},
        model_info={k: v for k, v in body.model_info.items() if k != "id"},
        created_by=caller.identity,
    )
    async with request.app[SESSIONS]() as session:
        if await session.get(DeploymentRow, model_id) is not None:
            raise ConflictError(f"a model with id {model_id!r} already exists", param="model_info.id")
        await save_resources(session, row)
        try:
            await session.commit()
        except IntegrityError:
            raise ConflictError(f"a model with id {model_id!r} already exists") from None
    return json_response(deployment_public(row, api_key))


ROUTES = [web.post("/model/new", new_model)]
