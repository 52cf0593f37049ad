"""Budget periods (pure): which periods an entity's limits configure, when a period resets, and
the admin field that configures further periods (`budget_windows`).

A period is a budget over a `budget_duration` ("30s", "1d", "1mo", ...). Resets follow LiteLLM:
aligned to calendar boundaries in the budget reset timezone (LiteLLM's `litellm_settings.timezone`)
— "1d" at midnight, "7d" / "1w" on Monday at midnight, "30d" and "Nmo" on the first of the month,
other day counts at midnight N days on, hours, minutes and seconds at multiples of N since
midnight — or, with `rolling`, the duration after the period began (LiteLLM before 1.67).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

from hydite.config.v1 import config_pb2 as pb
from hydite_controlplane.admin.validation import BudgetWindowField

ResetAlignment = Literal["calendar", "rolling"]

_DURATION = re.compile(r"^(\d+)(s|m|h|d|w|mo)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True, slots=True)
class Period:
    """One budget of an entity over one duration."""

    duration: str
    max_budget: float | None
    soft_budget: float | None
    main: bool = False
    """The period of the entity's own max_budget / budget_duration (not one of budget_windows)."""


@dataclass(frozen=True, slots=True)
class ResetPolicy:
    """How resets are placed: aligned to calendar boundaries in `timezone`, or rolling."""

    alignment: ResetAlignment = "calendar"
    timezone: str = "UTC"

    def zone(self) -> tzinfo:
        """The timezone resets are aligned in."""
        return ZoneInfo(self.timezone)


def stored_windows(windows: list[BudgetWindowField] | None) -> list[dict[str, Any]]:
    """The stored (JSON) form of the windows of a body."""
    return [window.model_dump(exclude_none=True) for window in windows or []]


def periods_of(row: Any, linked: Any | None = None) -> list[Period]:
    """The periods of a row with limit columns (max_budget, soft_budget, budget_duration,
    budget_windows); `linked` is its Budget, whose values apply where the row sets none."""

    def value(name: str) -> Any:
        own = getattr(row, name, None)
        if own in (None, "", []) and linked is not None:
            return getattr(linked, name, None)
        return own

    periods: list[Period] = []
    duration = value("budget_duration")
    if duration and _positive(duration):
        periods.append(Period(duration, value("max_budget"), value("soft_budget"), main=True))
    for stored in value("budget_windows") or []:
        if _positive(str(stored["budget_duration"])):
            periods.append(
                Period(str(stored["budget_duration"]), stored.get("max_budget"), stored.get("soft_budget"))
            )
    return _distinct(periods)


def periods_of_limits(limits: pb.Limits) -> list[Period]:
    """The periods a snapshot Limits message configures (a team member's, a tag's)."""
    periods: list[Period] = []
    if limits.budget_duration and _positive(limits.budget_duration):
        max_budget = limits.max_budget if limits.HasField("max_budget") else None
        soft_budget = limits.soft_budget if limits.HasField("soft_budget") else None
        periods.append(Period(limits.budget_duration, max_budget, soft_budget, main=True))
    for window in limits.budget_windows:
        if window.budget_duration and _positive(window.budget_duration):
            soft = window.soft_budget if window.HasField("soft_budget") else None
            periods.append(Period(window.budget_duration, window.max_budget, soft))
    return _distinct(periods)


def _positive(duration: str) -> bool:
    """Whether a stored duration makes a period (a zero or unreadable one does not)."""
    match = _DURATION.match(duration.strip())
    return match is not None and int(match.group(1)) > 0


def _distinct(periods: Iterable[Period]) -> list[Period]:
    seen: dict[str, Period] = {}
    for period in periods:
        seen.setdefault(period.duration, period)
    return list(seen.values())


def budget_windows_of(row: Any) -> list[pb.BudgetWindow]:
    """The snapshot's Limits.budget_windows of a row's stored `budget_windows`."""
    windows = []
    for stored in getattr(row, "budget_windows", None) or []:
        window = pb.BudgetWindow(
            max_budget=float(stored["max_budget"]), budget_duration=str(stored["budget_duration"])
        )
        if stored.get("soft_budget") is not None:
            window.soft_budget = float(stored["soft_budget"])
        windows.append(window)
    return windows


def _parsed(duration: str) -> tuple[int, str]:
    match = _DURATION.match(duration.strip())
    if not match:
        raise ValueError(f"not a budget duration: {duration!r}")
    return int(match.group(1)), match.group(2)


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def next_reset(duration: str, after: datetime, policy: ResetPolicy) -> datetime:
    """When a period of `duration` that is current at `after` (aware) resets: always later than
    `after`."""
    count, unit = _parsed(duration)
    if count == 0:
        raise ValueError("a budget duration must be positive")
    if policy.alignment == "rolling":
        if unit == "mo":
            return _add_months(after, count)
        days = {"d": 1, "w": 7}.get(unit)
        return after + (timedelta(days=count * days) if days else timedelta(seconds=count * _SECONDS[unit]))
    zone = policy.zone()
    local = after.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in _SECONDS:
        step = count * _SECONDS[unit]
        elapsed = (local.replace(tzinfo=None) - midnight.replace(tzinfo=None)).total_seconds()
        steps = int(elapsed // step) + 1
        wall = midnight.replace(tzinfo=None) + timedelta(seconds=steps * step)
        return _on_wall_clock(wall, zone)
    days = count * 7 if unit == "w" else count
    first_of_month = midnight.replace(day=1)
    if unit == "mo" or days == 30:
        wall = _add_months(first_of_month.replace(tzinfo=None), count if unit == "mo" else 1)
    elif days == 1:
        wall = midnight.replace(tzinfo=None) + timedelta(days=1)
    elif days == 7:
        wall = midnight.replace(tzinfo=None) + timedelta(days=7 - local.weekday())
    else:
        wall = midnight.replace(tzinfo=None) + timedelta(days=days)
    return _on_wall_clock(wall, zone)


def _on_wall_clock(wall: datetime, zone: tzinfo) -> datetime:
    """The instant a naive local time names in zone (a time skipped by a DST change moves on)."""
    return wall.replace(tzinfo=zone).astimezone(ZoneInfo("UTC")).astimezone(zone)


def following_reset(duration: str, due: datetime, now: datetime, policy: ResetPolicy) -> datetime:
    """The reset after the one due at `due` (handled at `now`): counted from `due` so a late reset
    does not drift, from `now` when the period was missed altogether (the control plane was down)."""
    after = next_reset(duration, due, policy)
    return after if after > now else next_reset(duration, now, policy)


def alert_periods(row: Any, linked: Any | None = None) -> list[Period]:
    """The periods budget alerts watch: every period of the row, and its all-time budget (duration
    "") when it sets a max_budget or soft_budget without a budget_duration."""
    periods = periods_of(row, linked)

    def value(name: str) -> Any:
        own = getattr(row, name, None)
        return getattr(linked, name, None) if own is None and linked is not None else own

    if not value("budget_duration") and (value("max_budget") is not None or value("soft_budget") is not None):
        periods.append(Period("", value("max_budget"), value("soft_budget"), main=True))
    return periods
