"""Budget alerts: once per period of an entity, when its spend in the period reaches soft_budget
(`soft_budget_crossed`) and when it reaches max_budget (`budget_crossed`).

Every control-plane replica watches the spend totals bucket and compares each entry with the
entity's periods (read from Postgres, cached briefly). An alert is fired by the replica whose
insert into budget_alerts wins (ON CONFLICT DO NOTHING), so once across replicas: a JSON event on
`<prefix>.alerts.budget`, `hydite_budget_alerts_total{kind,event}` on /metrics, and a POST in
LiteLLM's webhook shape when a webhook is configured (retried with backoff a bounded number of
times, off every other path). A payload names a key by its hash and alias, never the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.spend_totals import TotalEntry
from hydite_controlplane.budget_periods import Period, alert_periods
from hydite_controlplane.db import run_sql
from hydite_controlplane.messaging import NatsLink
from hydite_controlplane.models import CustomerRow, OrganizationRow, TeamRow, UserRow, VirtualKeyRow
from hydite_controlplane.models.budgets import BudgetRow
from hydite_controlplane.settings import ControlplaneSettings

log = logging.getLogger(__name__)

SOFT_BUDGET_CROSSED = "soft_budget_crossed"
BUDGET_CROSSED = "budget_crossed"
PERIODS_TTL_SECONDS = 2.0
"""How long an entity's periods are used before they are read again (an admin change of a budget
is seen within this)."""
REMEMBERED_ALERTS = 100_000
"""Alerts a replica remembers having seen fired (it asks Postgres again for the others)."""
WEBHOOK_TIMEOUT_SECONDS = 5.0
WEBHOOK_FIRST_BACKOFF_SECONDS = 0.5
RESTART_SECONDS = 1.0
EVENT_GROUPS = {
    "key": "key", "user": "user", "team": "team", "organization": "organization",
    "customer": "customer", "team_member": "team_member", "tag": "tag", "global": "proxy",
}  # fmt: skip
"""LiteLLM's event_group of each entity kind."""


@dataclass(frozen=True, slots=True)
class Budgeted:
    """An entity's periods and what a webhook says about it (ids, never a key)."""

    periods: list[Period]
    details: dict[str, Any] = field(default_factory=dict)


PeriodSource = Callable[[AsyncSession, str], Awaitable[Budgeted | None]]
"""The periods of one entity of a kind (None: no such entity)."""


async def _linked(session: AsyncSession, budget_id: str | None) -> BudgetRow | None:
    return await session.get(BudgetRow, budget_id) if budget_id else None


async def _key(session: AsyncSession, entity: str) -> Budgeted | None:
    row = await session.get(VirtualKeyRow, entity)
    if row is None:
        return None
    details = {
        "token": row.token, "key_alias": row.key_alias, "user_id": row.user_id,
        "team_id": row.team_id, "organization_id": row.organization_id,
    }  # fmt: skip
    return Budgeted(alert_periods(row, await _linked(session, row.budget_id)), details)


async def _user(session: AsyncSession, entity: str) -> Budgeted | None:
    row = await session.get(UserRow, entity)
    if row is None:
        return None
    return Budgeted(alert_periods(row), {"user_id": row.user_id, "user_email": row.user_email})


async def _team(session: AsyncSession, entity: str) -> Budgeted | None:
    row = await session.get(TeamRow, entity)
    if row is None:
        return None
    details = {"team_id": row.team_id, "organization_id": row.organization_id}
    return Budgeted(alert_periods(row, await _linked(session, row.budget_id)), details)


async def _organization(session: AsyncSession, entity: str) -> Budgeted | None:
    row = await session.get(OrganizationRow, entity)
    if row is None:
        return None
    return Budgeted(alert_periods(row), {"organization_id": row.organization_id})


async def _customer(session: AsyncSession, entity: str) -> Budgeted | None:
    row = await session.get(CustomerRow, entity)
    if row is None:
        return None
    details = {"customer_id": row.customer_id, "team_id": row.team_id, "organization_id": row.organization_id}
    return Budgeted(alert_periods(row, await _linked(session, row.budget_id)), details)


ROW_SOURCES: dict[str, PeriodSource] = {
    "key": _key, "user": _user, "team": _team, "organization": _organization, "customer": _customer,
}  # fmt: skip
"""Where the periods of the kinds stored as rows with limit columns come from (the others' come
from the snapshot: see budget_tasks)."""


def period_spend(entry: TotalEntry, duration: str) -> Decimal:
    """The entity's spend in the period of `duration`: its total less the window's baseline (the
    whole total when it has no such window)."""
    spent = sum((Decimal(amount) for amount in entry.spend.values()), Decimal(0))
    window = entry.windows.get(duration) if duration else None
    if window is None:
        return spent
    return spent - sum((Decimal(amount) for amount in window.baseline.values()), Decimal(0))


def crossed(entry: TotalEntry, period: Period) -> list[tuple[str, float, Decimal]]:
    """The alerts the entry's spend in the period calls for: (event, threshold, spend)."""
    spend = period_spend(entry, period.duration)
    found = []
    for event, threshold in ((SOFT_BUDGET_CROSSED, period.soft_budget), (BUDGET_CROSSED, period.max_budget)):
        if threshold is not None and spend > 0 and spend >= Decimal(str(threshold)):
            found.append((event, threshold, spend))
    return found


def webhook_payload(
    entry: TotalEntry, period: Period, event: str, spend: Decimal, details: dict[str, Any]
) -> dict[str, Any]:
    """The alert in LiteLLM's WebhookEvent shape (with the period's duration and reset time)."""
    group = EVENT_GROUPS.get(entry.kind, entry.kind)
    window = entry.windows.get(period.duration) if period.duration else None
    reset_at = window.reset_at_ms if window is not None else None
    title = "Soft Budget Crossed" if event == SOFT_BUDGET_CROSSED else "Budget Crossed"
    return {
        "spend": float(spend),
        "max_budget": period.max_budget,
        "soft_budget": period.soft_budget,
        "token": details.get("token"),
        "customer_id": details.get("customer_id"),
        "user_id": details.get("user_id"),
        "team_id": details.get("team_id"),
        "organization_id": details.get("organization_id"),
        "user_email": details.get("user_email"),
        "key_alias": details.get("key_alias"),
        "projected_exceeded_date": None,
        "projected_spend": None,
        "event": event,
        "event_group": group,
        "event_message": f"{group.replace('_', ' ').title()} Budget: {title}",
        "entity": entry.entity,
        "budget_duration": period.duration or None,
        "budget_reset_at": (
            datetime.fromtimestamp(reset_at / 1000, UTC).isoformat() if reset_at is not None else None
        ),
    }


_FIRE = """
INSERT INTO budget_alerts (kind, entity, duration, window_start, event, spend, threshold)
VALUES (:kind, :entity, :duration, :window_start, :event, :spend, :threshold)
ON CONFLICT DO NOTHING RETURNING 1
"""


class BudgetAlerts:
    """Watches the spend totals and fires each budget alert once across replicas."""

    def __init__(
        self,
        settings: ControlplaneSettings,
        sessions: async_sessionmaker[AsyncSession],
        nats: NatsLink,
        http: aiohttp.ClientSession,
        sources: Mapping[str, PeriodSource] | None = None,
    ) -> None:
        self._settings = settings
        self._sources = {**ROW_SOURCES, **(sources or {})}
        self._sessions = sessions
        self._nats = nats
        self._http = http
        self._periods: dict[tuple[str, str], tuple[float, Budgeted | None]] = {}
        self._seen: set[tuple[str, str, str, float, str]] = set()
        self._deliveries: set[asyncio.Task[None]] = set()
        self.fired: dict[tuple[str, str], int] = {}
        """(kind, event) -> alerts this replica fired."""
        self.webhook_failures = 0

    async def run(self) -> None:
        """Watch the bucket until cancelled, starting again after any failure."""
        while True:
            try:
                while not self._nats.ready:
                    await asyncio.sleep(RESTART_SECONDS)
                watcher = await self._nats.totals().watchall()
                try:
                    async for update in watcher:
                        if update is not None and update.value:
                            await self.observe(TotalEntry.decode(update.value))
                finally:
                    with contextlib.suppress(Exception):
                        await watcher.stop()  # type: ignore[no-untyped-call]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("budget alert watch stopped (%s); starting again", type(exc).__name__)
                await asyncio.sleep(RESTART_SECONDS)

    async def observe(self, entry: TotalEntry) -> None:
        """Fire the alerts this entry calls for that nobody fired yet."""
        budgeted = await self._budgeted(entry.kind, entry.entity)
        if budgeted is None:
            return
        for period in budgeted.periods:
            window = entry.windows.get(period.duration) if period.duration else None
            if period.duration and window is None:
                continue  # the period's window is not in the entry yet: nothing to count from
            start_ms = window.start_ms if window is not None else 0.0
            for event, threshold, spend in crossed(entry, period):
                seen = (entry.kind, entry.entity, period.duration, start_ms, event)
                if seen in self._seen:
                    continue
                if await self._claim(entry, period.duration, start_ms, event, spend, threshold):
                    self._fire(entry, period, event, spend, budgeted.details)
                if len(self._seen) >= REMEMBERED_ALERTS:
                    self._seen.clear()
                self._seen.add(seen)

    async def _budgeted(self, kind: str, entity: str) -> Budgeted | None:
        source = self._sources.get(kind)
        if source is None:
            return None
        now = time.monotonic()
        cached = self._periods.get((kind, entity))
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._sessions() as session:
            budgeted = await source(session, entity)
        if len(self._periods) >= REMEMBERED_ALERTS:
            self._periods.clear()
        self._periods[(kind, entity)] = (now + PERIODS_TTL_SECONDS, budgeted)
        return budgeted

    async def _claim(
        self, entry: TotalEntry, duration: str, start_ms: float, event: str, spend: Decimal, threshold: float
    ) -> bool:
        async with self._sessions() as session:
            won = await run_sql(
                session,
                _FIRE,
                {
                    "kind": entry.kind, "entity": entry.entity, "duration": duration,
                    "window_start": datetime.fromtimestamp(start_ms / 1000, UTC), "event": event,
                    "spend": spend, "threshold": threshold,
                },
            )  # fmt: skip
            claimed = won.first() is not None
            await session.commit()
        return claimed

    def _fire(
        self, entry: TotalEntry, period: Period, event: str, spend: Decimal, details: dict[str, Any]
    ) -> None:
        key = (entry.kind, event)
        self.fired[key] = self.fired.get(key, 0) + 1
        payload = webhook_payload(entry, period, event, spend, details)
        self._spawn(self._publish(payload))
        if self._settings.alerting_webhook_url:
            self._spawn(self._post(self._settings.alerting_webhook_url, payload))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _publish(self, payload: dict[str, Any]) -> None:
        try:
            connection = self._nats.connection()
            await connection.publish(self._settings.nats_subject("alerts", "budget"), orjson.dumps(payload))
        except Exception as exc:
            log.warning("budget alert not published on NATS (%s)", type(exc).__name__)

    async def _post(self, url: str, payload: dict[str, Any]) -> None:
        backoff = WEBHOOK_FIRST_BACKOFF_SECONDS
        timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS)
        for attempt in range(self._settings.alerting_webhook_attempts):
            try:
                async with self._http.post(url, json=payload, timeout=timeout) as response:
                    if response.status < 300:
                        return
                    reason = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = type(exc).__name__
            if attempt + 1 < self._settings.alerting_webhook_attempts:
                await asyncio.sleep(backoff)
                backoff *= 2
        self.webhook_failures += 1
        log.warning("budget alert webhook gave up (%s)", reason)

    async def close(self) -> None:
        """Cancel deliveries still under way."""
        for task in list(self._deliveries):
            task.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)

    def metric_lines(self) -> list[str]:
        """The alert counters in Prometheus' text format."""
        lines = [
            "# HELP hydite_budget_alerts_total Budget alerts this replica fired.",
            "# TYPE hydite_budget_alerts_total counter",
        ]
        for (kind, event), count in sorted(self.fired.items()):
            lines.append(f'hydite_budget_alerts_total{{kind="{kind}",event="{event}"}} {count}')
        lines += [
            "# HELP hydite_budget_alert_webhook_failures_total Alerts whose webhook was given up.",
            "# TYPE hydite_budget_alert_webhook_failures_total counter",
            f"hydite_budget_alert_webhook_failures_total {self.webhook_failures}",
        ]
        return lines


BUDGET_ALERTS = web.AppKey("budget_alerts", BudgetAlerts)
