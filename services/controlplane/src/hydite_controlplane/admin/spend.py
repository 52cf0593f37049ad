"""Spend log routes: /spend/logs in LiteLLM's shape (with the prompt and response stored for keys
and teams that opt in), and /spend/logs/redact; a plain key sees only its own spend."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from aiohttp import web
from pydantic import Field, model_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.errors import InvalidRequestError, PermissionDeniedError
from hydite_common.keys import key_or_hash_to_hash
from hydite_common.spend_tables import SpendLog, SpendPayload
from hydite_controlplane.admin.auth import admin_caller
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.spend_dates import end_of, parse_day, parse_time
from hydite_controlplane.admin.validation import AdminRequest, Name, Timestamp, page_of, read_request
from hydite_controlplane.appkeys import SESSIONS
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.store.spend import (
    PayloadSelection,
    SpendFilter,
    count_spend_logs,
    payloads_of,
    recent_spend_logs,
    redact_payloads,
    spend_by_day,
)
from hydite_controlplane.store.spend_reports import DayRange, daily_spend

MAX_ROWS = 1000
"""Rows of an unpaged /spend/logs answer (the newest); page through the rest with ?page=."""


MAX_REDACTED = 10_000
"""Payloads one /spend/logs/redact call redacts at most (call again for the rest)."""


def spend_log_public(row: SpendLog, payload: SpendPayload | None = None) -> dict[str, Any]:
    """A spend row as LiteLLM's /spend/logs returns it, with its stored prompt and response (null
    when none is stored, or it was redacted)."""
    return {
        "request_id": row.request_id,
        "response_id": row.response_id,
        "call_type": row.call_type,
        "api_key": row.api_key,
        "spend": row.spend,
        "currency": row.currency,
        "cost_source": row.cost_source,
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
        "messages": payload.messages if payload is not None else None,
        "response": payload.response if payload is not None else None,
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
            **row.extra,
            **_payload_metadata(payload),
        },
    }


def _payload_metadata(payload: SpendPayload | None) -> dict[str, Any]:
    if payload is None:
        return {}
    redacted = payload.redacted_at.isoformat() if payload.redacted_at else None
    return {"payload_truncated": payload.truncated, "payload_redacted_at": redacted}


async def _shown(rows: list[SpendLog], request: web.Request) -> list[dict[str, Any]]:
    async with request.app[SESSIONS]() as session:
        payloads = await payloads_of([r.request_id for r in rows], session=session)
    return [spend_log_public(r, payloads.get(r.request_id)) for r in rows]


async def spend_logs(request: web.Request) -> web.Response:
    """GET /spend/logs?api_key=&request_id=&user_id=&team_id=&end_user=&model=&status=&start_date=
    &end_date=: the newest MAX_ROWS rows as a list (LiteLLM's shape); with ?page= or ?page_size=,
    one page of them in all as {data, total, page, page_size, total_pages} (LiteLLM's /spend/logs/ui
    shape). end_date includes its whole day; `customer` is another name of end_user.

    With both start_date and end_date, LiteLLM's summary unless ?summarize=false: per day its spend,
    each key's, and per user and model group (see spend_summary)."""
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
        end_user=params.get("end_user") or params.get("customer") or params.get("customer_id"),
        model=params.get("model"),
        status=params.get("status"),
        start=parse_time("start_date", params["start_date"]) if params.get("start_date") else None,
        end=end_of("end_date", params["end_date"]) if params.get("end_date") else None,
    )
    paged_request = "page" in params or "page_size" in params
    if params.get("start_date") and params.get("end_date") and _summarize(request) and not paged_request:
        first, last = parse_day("start_date", params["start_date"]), parse_day("end_date", params["end_date"])
        async with request.app[SESSIONS]() as session:
            return json_response(await spend_summary(where, first, last, session=session))
    if not paged_request:
        async with request.app[SESSIONS]() as session:
            rows = await recent_spend_logs(where, session=session, limit=MAX_ROWS)
        return json_response(await _shown(rows, request))
    page, size = page_of(request, size_param="page_size", default_size=100)
    async with request.app[SESSIONS]() as session:
        total = await count_spend_logs(where, session=session)
        rows = await recent_spend_logs(where, session=session, limit=size, offset=(page - 1) * size)
    return json_response(
        {
            "data": await _shown(rows, request),
            "total": total,
            "page": page,
            "page_size": size,
            "total_pages": max(1, -(-total // size)),
        }
    )


def _summarize(request: web.Request) -> bool:
    value = request.query.get("summarize", "true").lower()
    if value not in ("true", "false"):
        raise InvalidRequestError("summarize must be true or false", param="summarize")
    return value == "true"


MAX_FILLED_DAYS = 3660
"""Days without spend a summary lists with zeros at most (LiteLLM lists every day to end_date)."""


async def spend_summary(
    where: SpendFilter, first: date, last: date, *, session: AsyncSession
) -> list[dict[str, Any]]:
    """LiteLLM's summarized /spend/logs: per UTC day from the first with spend to `last`, {startTime,
    spend, <each key's hash>: its spend, users: {user: spend}, models: {model group: spend}}. A
    filter that narrows the rows sums them (bounded by its index); the whole proxy's comes from the
    daily rollups."""
    days: dict[date, dict[str, Any]] = {}

    def day_of(day: date) -> dict[str, Any]:
        return days.setdefault(day, {"startTime": day.isoformat(), "spend": 0.0, "users": {}, "models": {}})

    def add(bucket: dict[str, Any], name: str, amount: float) -> None:
        bucket[name] = bucket.get(name, 0.0) + amount

    if where.narrowed:
        for spent in await spend_by_day(where, session=session):
            entry = day_of(spent.day)
            entry["spend"] += spent.spend
            add(entry, spent.api_key, spent.spend)
            add(entry["users"], spent.user_id, spent.spend)
            add(entry["models"], spent.model, spent.spend)
    else:
        span = DayRange(start=first, end=last)
        for row in await daily_spend("model", span, session=session):
            entry = day_of(row.day)
            entry["spend"] += float(row.spend)
            add(entry["models"], row.entity, float(row.spend))
        for row in await daily_spend("key", span, session=session):
            add(day_of(row.day), row.entity, float(row.spend))
        for row in await daily_spend("user", span, session=session):
            add(day_of(row.day)["users"], row.entity, float(row.spend))
    if not days:
        return []
    start = min(days)
    if (last - start).days <= MAX_FILLED_DAYS:
        for offset in range((last - start).days + 1):
            day_of(start + timedelta(days=offset))
    return [days[day] for day in sorted(days)]


class RedactRequest(AdminRequest):
    """Body of POST /spend/logs/redact: the requests whose stored prompt and response to empty, or a
    key (or its hash) whose payloads stored before a time."""

    request_ids: list[Name] = Field(default_factory=list, max_length=MAX_REDACTED)
    api_key: Name | None = None
    before: Timestamp | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> RedactRequest:
        if self.request_ids and (self.api_key is not None or self.before is not None):
            raise ValueError("give request_ids, or api_key with before, not both")
        if not self.request_ids and (self.api_key is None or self.before is None):
            raise ValueError("give request_ids, or api_key and before")
        return self


async def redact(request: web.Request) -> web.Response:
    """POST /spend/logs/redact (admin): empty the stored messages and response of the requests named
    (at most MAX_REDACTED per call) and stamp redacted_at; {"redacted": how many}."""
    caller = await admin_caller(request)
    caller.require_write()
    body = await read_request(request, RedactRequest)
    which = PayloadSelection(
        request_ids=body.request_ids,
        api_key=key_or_hash_to_hash(body.api_key) if body.api_key else None,
        before=body.before,
    )
    async with request.app[SESSIONS]() as session:
        redacted = await redact_payloads(which, session=session, now=utcnow(), limit=MAX_REDACTED)
        await session.commit()
    return json_response({"redacted": redacted, "limit": MAX_REDACTED})


ROUTES = [web.get("/spend/logs", spend_logs), web.post("/spend/logs/redact", redact)]
