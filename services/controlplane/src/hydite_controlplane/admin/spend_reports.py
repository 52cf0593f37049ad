"""Spend reports in LiteLLM's shapes, read from the daily rollups and running totals, never from a
scan of the spend log: /spend/tags, /spend/users, /global/spend, /global/spend/report,
/global/activity; and /spend/reconciliation, what each data plane emitted against what was
ingested. Reports need an admin or admin-viewer key; /global/activity also answers an internal
user about its own user."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.errors import InvalidRequestError, PermissionDeniedError
from hydite_common.keys import key_or_hash_to_hash
from hydite_controlplane.admin.auth import admin_caller
from hydite_controlplane.admin.live_spend import periods_shown, shown_with_spend, spend_fields
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.spend_dates import end_of, parse_day, parse_time
from hydite_controlplane.admin.users import USERS
from hydite_controlplane.appkeys import CACHE, SESSIONS
from hydite_controlplane.budget_periods import periods_of_limits
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.principals import TeamRow, UserRow
from hydite_controlplane.snapshot_periods import proxy_limits
from hydite_controlplane.store.spend_reports import DailySpend, DayRange, daily_spend, reconciliation
from hydite_controlplane.store.spend_totals import spend_of

GROUPS = ("team", "customer", "api_key", "model", "provider")
"""What /global/spend/report groups by: LiteLLM's three, and Hydite's model group and provider."""

UNASSIGNED_TEAM = "Unassigned Team"
"""LiteLLM's team_name for spend of keys in no team."""

DEFAULT_RECONCILIATION_WINDOW = timedelta(hours=1)
MAX_RECONCILIATION_WINDOW = timedelta(days=31)
USERS_SHOWN = 1000
"""Users /spend/users lists at most (the biggest spenders first)."""


def _money(value: Decimal) -> float:
    return float(value)


def _days(request: web.Request, *, required: bool) -> DayRange:
    """?start_date=&end_date= (both included); LiteLLM's reports need both."""
    start, end = request.query.get("start_date"), request.query.get("end_date")
    if required and (not start or not end):
        raise InvalidRequestError(
            "Please provide start_date and end_date", param="start_date" if not start else "end_date"
        )
    days = DayRange(
        start=parse_day("start_date", start) if start else None,
        end=parse_day("end_date", end) if end else None,
    )
    if days.start is not None and days.end is not None and days.start > days.end:
        raise InvalidRequestError("start_date must not be after end_date", param="start_date")
    return days


def _midnight(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


async def spend_tags(request: web.Request) -> web.Response:
    """GET /spend/tags?start_date=&end_date=: per request tag, its requests and spend (LiteLLM's
    individual_request_tag, log_count, total_spend), the biggest spend first."""
    caller = await admin_caller(request)
    caller.require_read()
    days = _days(request, required=False)
    async with request.app[SESSIONS]() as session:
        rows = await daily_spend("tag", days, session=session)
    by_tag: dict[str, list[DailySpend]] = defaultdict(list)
    for row in rows:
        by_tag[row.entity].append(row)
    tagged = [
        {
            "individual_request_tag": tag,
            "log_count": sum(r.requests for r in group),
            "total_spend": _total(group),
            **_currencies(group),
        }
        for tag, group in sorted(by_tag.items())
    ]
    tagged.sort(key=lambda entry: -float(entry["total_spend"]))
    return json_response(tagged)


async def spend_users(request: web.Request) -> web.Response:
    """GET /spend/users[?user_id=]: users (LiteLLM's user rows) with their live spend, the biggest
    spenders first; with user_id, that user alone (a list of one)."""
    caller = await admin_caller(request)
    caller.require_read()
    user_id = request.query.get("user_id")
    async with request.app[SESSIONS]() as session:
        if user_id:
            rows = [await USERS.load(session, user_id)]
        else:
            rows = list((await session.exec(select(UserRow).order_by(col(UserRow.user_id)))).all())
        shown = await shown_with_spend("user", [USERS.public(r) for r in rows], "user_id", session=session)
    shown.sort(key=lambda user: -float(user["spend"]))
    return json_response(shown[:USERS_SHOWN])


async def global_spend(request: web.Request) -> web.Response:
    """GET /global/spend: the whole proxy's running total and its budget (LiteLLM's spend and
    max_budget, 0 without a proxy budget), with budget_reset_at and every period of it."""
    caller = await admin_caller(request)
    caller.require_read()
    limits = proxy_limits(request.app[CACHE])
    max_budget = limits.max_budget if limits is not None and limits.HasField("max_budget") else 0.0
    periods = periods_of_limits(limits) if limits is not None else []
    async with request.app[SESSIONS]() as session:
        spent = (await spend_of("global", [""], session=session)).get("")
        shown = await periods_shown("global", "", periods, session=session)
    duration = limits.budget_duration or None if limits is not None else None
    budget = {"max_budget": max_budget, "budget_duration": duration}
    return json_response({**spend_fields(spent), **budget, **shown})


def _currencies(rows: Iterable[DailySpend]) -> dict[str, Any]:
    """`spend_by_currency` when the rows' spend is in more than one currency (the totals beside it
    add them up as they are)."""
    by_currency: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        by_currency[row.currency] += row.spend
    if len(by_currency) < 2:
        return {}
    return {
        "spend_by_currency": {currency: _money(amount) for currency, amount in sorted(by_currency.items())}
    }


def _model_details(rows: Iterable[DailySpend]) -> list[dict[str, Any]]:
    """Per model group: spend and tokens (the metadata of a report entry)."""
    by_model: dict[str, list[DailySpend]] = defaultdict(list)
    for row in rows:
        by_model[row.model_group].append(row)
    return [
        {
            "model": model,
            "spend": _money(sum((r.spend for r in group), Decimal(0))),
            "total_tokens": sum(r.total_tokens for r in group),
            "prompt_tokens": sum(r.prompt_tokens for r in group),
            "completion_tokens": sum(r.completion_tokens for r in group),
            "requests": sum(r.requests for r in group),
        }
        for model, group in sorted(by_model.items())
    ]


def _unassigned(everything: list[DailySpend], assigned: list[DailySpend]) -> list[DailySpend]:
    """What the model rollups (every request) hold beyond the assigned ones: requests of no team or
    no customer, per day and model group."""
    left: dict[tuple[date, str, str, str], list[Any]] = {}
    for row in everything:
        place = (row.day, row.model_group, row.provider, row.currency)
        slot = left.setdefault(place, [0, 0, 0, 0, 0, Decimal(0)])
        for i, value in enumerate(_measures(row)):
            slot[i] += value
    for row in assigned:
        if (found := left.get((row.day, row.model_group, row.provider, row.currency))) is not None:
            for i, value in enumerate(_measures(row)):
                found[i] -= value
    return [
        DailySpend(
            day=day,
            entity="",
            model_group=model,
            provider=provider,
            currency=currency,
            requests=int(m[0]),
            failures=int(m[1]),
            prompt_tokens=int(m[2]),
            completion_tokens=int(m[3]),
            total_tokens=int(m[4]),
            spend=m[5],
        )
        for (day, model, provider, currency), m in sorted(left.items())
        if m[0] > 0
    ]


def _measures(row: DailySpend) -> tuple[int, int, int, int, int, Decimal]:
    return (
        row.requests,
        row.failures,
        row.prompt_tokens,
        row.completion_tokens,
        row.total_tokens,
        row.spend,
    )


def _per_day(
    rows: Iterable[DailySpend], plural: str, entry: Callable[[str, list[DailySpend]], dict[str, Any]]
) -> list[dict[str, Any]]:
    """LiteLLM's daily report: per day, one entry per entity with its total and per-model details."""
    by_day: dict[date, dict[str, list[DailySpend]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_day[row.day][row.entity].append(row)
    report = []
    for day in sorted(by_day):
        entities = by_day[day]
        entries = [entry(entity, group) for entity, group in entities.items()]
        entries.sort(key=lambda e: -float(e["total_spend"]))
        report.append({"group_by_day": _midnight(day), plural: entries})
    return report


def _total(rows: Iterable[DailySpend]) -> float:
    return _money(sum((r.spend for r in rows), Decimal(0)))


async def _team_report(session: AsyncSession, days: DayRange, team_id: str | None) -> list[dict[str, Any]]:
    teams = await daily_spend("team", days, session=session, entities=[team_id] if team_id else None)
    rows = list(teams)
    if team_id is None:
        rows += _unassigned(await daily_spend("model", days, session=session), teams)
    ids = sorted({r.entity for r in teams})
    aliases = {
        t.team_id: t.team_alias
        for t in (await session.exec(select(TeamRow).where(col(TeamRow.team_id).in_(ids)))).all()
    }

    def entry(team: str, group: list[DailySpend]) -> dict[str, Any]:
        name = (aliases.get(team) or team) if team else UNASSIGNED_TEAM
        return {
            "team_name": name,
            "team_id": team or None,
            "total_spend": _total(group),
            **_currencies(group),
            "metadata": _model_details(group),
        }

    return _per_day(rows, "teams", entry)


async def _customer_report(
    session: AsyncSession, days: DayRange, customer_id: str | None
) -> list[dict[str, Any]]:
    customers = await daily_spend(
        "customer", days, session=session, entities=[customer_id] if customer_id else None
    )
    rows = list(customers)
    if customer_id is None:
        rows += _unassigned(await daily_spend("model", days, session=session), customers)

    def entry(customer: str, group: list[DailySpend]) -> dict[str, Any]:
        return {
            "customer": customer or None,
            "total_spend": _total(group),
            **_currencies(group),
            "metadata": _model_details(group),
        }

    return _per_day(rows, "customers", entry)


async def _key_report(session: AsyncSession, days: DayRange, api_key: str | None) -> list[dict[str, Any]]:
    """LiteLLM's api_key report: per key over the whole range, with per-model details."""
    rows = await daily_spend("key", days, session=session, entities=[api_key] if api_key else None)
    by_key: dict[str, list[DailySpend]] = defaultdict(list)
    for row in rows:
        by_key[row.entity].append(row)
    report: list[dict[str, Any]] = [
        {
            "api_key": key,
            "total_cost": _total(group),
            **_currencies(group),
            "total_input_tokens": sum(r.prompt_tokens for r in group),
            "total_output_tokens": sum(r.completion_tokens for r in group),
            "model_details": [
                {
                    "model": detail["model"],
                    "total_cost": detail["spend"],
                    "total_input_tokens": detail["prompt_tokens"],
                    "total_output_tokens": detail["completion_tokens"],
                }
                for detail in _model_details(group)
            ],
        }
        for key, group in by_key.items()
    ]
    report.sort(key=lambda entry: -float(entry["total_cost"]))
    return report


async def _model_report(session: AsyncSession, days: DayRange) -> list[dict[str, Any]]:
    rows = await daily_spend("model", days, session=session)

    def entry(model: str, group: list[DailySpend]) -> dict[str, Any]:
        by_provider: dict[str, list[DailySpend]] = defaultdict(list)
        for row in group:
            by_provider[row.provider].append(row)
        return {
            "model": model,
            "total_spend": _total(group),
            **_currencies(group),
            "total_tokens": sum(r.total_tokens for r in group),
            "requests": sum(r.requests for r in group),
            "metadata": [
                {
                    "provider": provider,
                    "spend": _total(part),
                    "total_tokens": sum(r.total_tokens for r in part),
                    "requests": sum(r.requests for r in part),
                }
                for provider, part in sorted(by_provider.items())
            ],
        }

    return _per_day(rows, "models", entry)


async def _provider_report(session: AsyncSession, days: DayRange) -> list[dict[str, Any]]:
    rows = [replace(r, entity=r.provider) for r in await daily_spend("model", days, session=session)]

    def entry(provider: str, group: list[DailySpend]) -> dict[str, Any]:
        return {
            "provider": provider,
            "total_spend": _total(group),
            **_currencies(group),
            "metadata": _model_details(group),
        }

    return _per_day(rows, "providers", entry)


async def global_spend_report(request: web.Request) -> web.Response:
    """GET /global/spend/report?start_date=&end_date=&group_by=team|customer|api_key|model|provider
    (&api_key=, &team_id=, &customer_id= narrow it): LiteLLM's daily spend per team or customer with
    a per-model breakdown, or its per-key totals; Hydite's per model group or provider."""
    caller = await admin_caller(request)
    caller.require_read()
    days = _days(request, required=True)
    params = request.query
    group_by = params.get("group_by") or "team"
    if group_by not in GROUPS:
        raise InvalidRequestError(f"group_by must be one of {', '.join(GROUPS)}", param="group_by")
    api_key = key_or_hash_to_hash(params["api_key"]) if params.get("api_key") else None
    if api_key is not None:
        group_by = "api_key"
    async with request.app[SESSIONS]() as session:
        if group_by == "team":
            report = await _team_report(session, days, params.get("team_id") or None)
        elif group_by == "customer":
            report = await _customer_report(session, days, params.get("customer_id") or None)
        elif group_by == "api_key":
            report = await _key_report(session, days, api_key)
        elif group_by == "model":
            report = await _model_report(session, days)
        else:
            report = await _provider_report(session, days)
    return json_response(report)


async def global_activity(request: web.Request) -> web.Response:
    """GET /global/activity?start_date=&end_date=: requests and tokens per day through the proxy
    (LiteLLM's daily_data with `date` as "Jan 22", and the sums); an internal user's key sees its
    own user's."""
    caller = await admin_caller(request)
    days = _days(request, required=True)
    if caller.can_read:
        kind, entities = "model", None
    elif caller.own_user_id is not None:
        kind, entities = "user", [caller.own_user_id]
    else:
        raise PermissionDeniedError("this route needs an admin or admin-viewer key", code="admin_only")
    async with request.app[SESSIONS]() as session:
        rows = await daily_spend(kind, days, session=session, entities=entities)
    requests: dict[date, int] = defaultdict(int)
    tokens: dict[date, int] = defaultdict(int)
    for row in rows:
        requests[row.day] += row.requests
        tokens[row.day] += row.total_tokens
    daily = [
        {
            "date": day.strftime("%b %d"),
            "day": day.isoformat(),
            "api_requests": requests[day],
            "total_tokens": tokens[day],
        }
        for day in sorted(requests)
    ]
    return json_response(
        {
            "daily_data": daily,
            "sum_api_requests": sum(requests.values()),
            "sum_total_tokens": sum(tokens.values()),
        }
    )


async def spend_reconciliation(request: web.Request) -> web.Response:
    """GET /spend/reconciliation?start=&end=&node_id= (admin): per data plane and minute, the usage
    events it emitted, those ingested and the difference (missing); default the last hour, at most
    MAX_RECONCILIATION_WINDOW; with totals per node and in all."""
    caller = await admin_caller(request)
    caller.require_read()
    params = request.query
    end = end_of("end", params["end"]) if params.get("end") else utcnow()
    start = (
        parse_time("start", params["start"]) if params.get("start") else end - DEFAULT_RECONCILIATION_WINDOW
    )
    if start >= end:
        raise InvalidRequestError("start must be before end", param="start")
    if end - start > MAX_RECONCILIATION_WINDOW:
        raise InvalidRequestError(
            f"start to end may span at most {MAX_RECONCILIATION_WINDOW.days} days", param="start"
        )
    async with request.app[SESSIONS]() as session:
        counts = await reconciliation(start, end, session=session, node_id=params.get("node_id") or None)
    nodes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    data = []
    for c in counts:
        nodes[c.node_id][0] += c.emitted
        nodes[c.node_id][1] += c.ingested
        data.append(
            {
                "node_id": c.node_id,
                "minute": c.minute.isoformat(),
                "emitted": c.emitted,
                "ingested": c.ingested,
                "missing": c.emitted - c.ingested,
            }
        )
    emitted = sum(n[0] for n in nodes.values())
    ingested = sum(n[1] for n in nodes.values())
    return json_response(
        {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "data": data,
            "nodes": [
                {"node_id": node, "emitted": e, "ingested": i, "missing": e - i}
                for node, (e, i) in sorted(nodes.items())
            ],
            "totals": {"emitted": emitted, "ingested": ingested, "missing": emitted - ingested},
        }
    )


ROUTES = [
    web.get("/spend/tags", spend_tags),
    web.get("/spend/users", spend_users),
    web.get("/global/spend", global_spend),
    web.get("/global/spend/report", global_spend_report),
    web.get("/global/activity", global_activity),
    web.get("/spend/reconciliation", spend_reconciliation),
]
