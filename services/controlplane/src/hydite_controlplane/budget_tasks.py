"""The control plane's budget background work, one cleanup context: budget window resets and
entry writes (spend_windows.BudgetWindows), the proxy budget's windows at start, and budget alerts
(budget_alerts.BudgetAlerts, with the periods of team members, tags and the proxy from the
snapshot), with the HTTP client session alert webhooks are sent with; and their /metrics lines."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite.config.v1 import config_pb2 as pb
from hydite_controlplane.appkeys import CACHE, NATS, SESSIONS, SETTINGS
from hydite_controlplane.budget_alerts import BUDGET_ALERTS, BudgetAlerts, Budgeted, PeriodSource
from hydite_controlplane.budget_periods import ResetPolicy, periods_of_limits
from hydite_controlplane.config.cache import SnapshotCache
from hydite_controlplane.snapshot_periods import (
    alert_periods_of_limits,
    member_limits,
    proxy_limits,
    tag_limits,
)
from hydite_controlplane.spend_windows import BUDGET_WINDOWS, BudgetWindows

log = logging.getLogger(__name__)


def snapshot_sources(cache: SnapshotCache) -> dict[str, PeriodSource]:
    """Alert period sources of the kinds whose limits live in the snapshot only."""

    def source(limits_of: Callable[[SnapshotCache, str], pb.Limits | None], group: str) -> PeriodSource:
        async def budgeted(session: AsyncSession, entity: str) -> Budgeted | None:
            limits = limits_of(cache, entity)
            if limits is None:
                return None
            details: dict[str, Any] = {}
            if group == "team_member":
                team_id, _, user_id = entity.partition(":")
                details = {"team_id": team_id, "user_id": user_id}
            return Budgeted(alert_periods_of_limits(limits), details)

        return budgeted

    return {
        "team_member": source(member_limits, "team_member"),
        "tag": source(tag_limits, "tag"),
        "global": source(lambda snapshot, _: proxy_limits(snapshot), "global"),
    }


async def _proxy_windows(app: web.Application, windows: BudgetWindows) -> None:
    """The proxy budget's windows, as the snapshot (from the bootstrap file) has its periods."""
    limits = proxy_limits(app[CACHE])
    changed: set[tuple[str, str]] = set()
    try:
        async with app[SESSIONS]() as session:
            periods = periods_of_limits(limits) if limits is not None else []
            await windows.ensure(session, "global", "", periods, changed=changed)
            await session.commit()
    except Exception as exc:  # the control plane serves without; the next start tries again
        log.warning("proxy budget windows not written (%s)", type(exc).__name__)
    if changed:
        await windows.published(changed)


async def run_budget_tasks(app: web.Application) -> AsyncIterator[None]:
    """Runs after the database context (it needs the sessions and the loaded snapshot) and the
    NATS one."""
    settings = app[SETTINGS]
    policy = ResetPolicy(settings.budget_reset_alignment, settings.budget_reset_timezone)
    windows = BudgetWindows(app[SESSIONS], app[NATS], policy, settings.libpq_url)
    app[BUDGET_WINDOWS] = windows
    await _proxy_windows(app, windows)
    async with aiohttp.ClientSession() as http:
        alerts = BudgetAlerts(settings, app[SESSIONS], app[NATS], http, snapshot_sources(app[CACHE]))
        app[BUDGET_ALERTS] = alerts
        tasks = [
            asyncio.create_task(windows.run(), name="budget-window-resets"),
            asyncio.create_task(alerts.run(), name="budget-alerts"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await alerts.close()


def metric_lines(app: web.Application) -> list[str]:
    """Budget window resets and alerts, in Prometheus' text format (part of /metrics)."""
    if BUDGET_WINDOWS not in app or BUDGET_ALERTS not in app:
        return []
    windows = app[BUDGET_WINDOWS]
    return [
        "# HELP hydite_budget_window_resets_total Window reset transactions this replica committed.",
        "# TYPE hydite_budget_window_resets_total counter",
        f"hydite_budget_window_resets_total {windows.resets}",
        "# HELP hydite_budget_reset_passes_total Passes of the budget window reset task.",
        "# TYPE hydite_budget_reset_passes_total counter",
        f"hydite_budget_reset_passes_total {windows.passes}",
        *app[BUDGET_ALERTS].metric_lines(),
    ]
