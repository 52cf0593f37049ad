"""Spend routes: /spend/logs, in LiteLLM's shape; a plain key sees only its own spend."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from hydite_common.errors import InvalidRequestError, PermissionDeniedError
from hydite_common.keys import key_or_hash_to_hash
from hydite_common.spend_tables import SpendLog
from hydite_controlplane.admin.auth import admin_caller
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.validation import EARLIEST, LATEST, bounded_timestamp, page_of
from hydite_controlplane.appkeys import SESSIONS
from hydite_controlplane.store.spend import SpendFilter, count_spend_logs, recent_spend_logs

MAX_ROWS = 1000
"""Rows of an unpaged /spend/logs answer (the newest); page through the rest with ?page=."""


def spend_log_public(row: SpendLog) -> dict[str, Any]:
    """A spend row as LiteLLM's /spend/logs returns it."""
    return {
        "request_id": row.request_id,
        "response_id": row.response_id,
        "call_type": row.call_type,
        "api_key": row.api_key,
        "spend": row.spend,
        "total_tokens": row.total_tokens,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "startTime": row.start_time.isoformat(),
        "endTime": row.end_time.isoformat(),
        "model": row.model,
        "model_group": row.model_group,
        "model_id": row.model_id,
        "custom_llm_provider": row.custom_llm_provider,
        "api_base": row.api_base,
        "user": row.user_id,
        "team_id": row.team_id,
        "organization_id": row.organization_id,
        "end_user": row.end_user,
        "request_tags": row.request_tags,
        "status": row.status,
        "metadata": {
            "user_api_key_alias": row.key_alias,
            "user_api_key_user_id": row.user_id,
            "user_api_key_team_id": row.team_id,
            "user_api_key_org_id": row.organization_id,
            "key_alias": row.key_alias,
            "cached_tokens": row.cached_tokens,
            "reasoning_tokens": row.reasoning_tokens,
            "http_status": row.http_status,
            "error_code": row.error_code,
            "stream": row.stream,
            "ttft_ms": row.ttft_ms,
            "attempts": row.attempts,
            "usage_estimated": row.usage_estimated,
            "upstream_model": row.upstream_model,
        },
    }


def _parse_date(name: str, value: str) -> datetime:
    try:
        return bounded_timestamp(datetime.fromisoformat(value))
    except ValueError:
        raise InvalidRequestError(
            f"{name} must be an ISO date such as 2026-01-31, between {EARLIEST.year} and {LATEST.year}",
            param=name,
        ) from None


async def spend_logs(request: web.Request) -> web.Response:
    """GET /spend/logs?api_key=&request_id=&user_id=&team_id=&start_date=&end_date=: the newest
    MAX_ROWS rows as a list (LiteLLM's shape); with ?page= or ?page_size=, one page of them in all
    as {data, total, page, page_size, total_pages} (LiteLLM's /spend/logs/ui shape)."""
    caller = await admin_caller(request)
    params = request.query
    api_key = key_or_hash_to_hash(params["api_key"]) if params.get("api_key") else None
    if not caller.can_read:
        # A plain key sees only its own spend.
        if api_key not in (None, caller.key_hash):
            raise PermissionDeniedError("you may only read your own spend", code="not_own_key")
        api_key = caller.key_hash
    where = SpendFilter(
        api_key=api_key,
        request_id=params.get("request_id"),
        user_id=params.get("user_id"),
        team_id=params.get("team_id"),
        start=_parse_date("start_date", params["start_date"]) if params.get("start_date") else None,
        end=_parse_date("end_date", params["end_date"]) if params.get("end_date") else None,
    )
    if "page" not in params and "page_size" not in params:
        async with request.app[SESSIONS]() as session:
            rows = await recent_spend_logs(where, session=session, limit=MAX_ROWS)
        return json_response([spend_log_public(r) for r in rows])
    page, size = page_of(request, size_param="page_size", default_size=100)
    async with request.app[SESSIONS]() as session:
        total = await count_spend_logs(where, session=session)
        rows = await recent_spend_logs(where, session=session, limit=size, offset=(page - 1) * size)
    return json_response(
        {
            "data": [spend_log_public(r) for r in rows],
            "total": total,
            "page": page,
            "page_size": size,
            "total_pages": max(1, -(-total // size)),
        }
    )


ROUTES = [web.get("/spend/logs", spend_logs)]
