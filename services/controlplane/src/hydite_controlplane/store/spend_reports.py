"""Spend reports read from the daily rollups (spend_daily), never by scanning the spend log; and
the reconciliation counts of emitted against ingested usage events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.spend_tables import SPEND_DAILY, SPEND_RECONCILIATION
from hydite_controlplane.db import run_sql

_DAILY = SPEND_DAILY.c
_RECONCILIATION = SPEND_RECONCILIATION.c


@dataclass(frozen=True, slots=True)
class DailySpend:
    """One entity's usage on one day in one model group, provider and currency."""

    day: date
    entity: str
    model_group: str
    provider: str
    currency: str
    requests: int
    failures: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    spend: Decimal


@dataclass(frozen=True, slots=True)
class DayRange:
    """UTC days from `start` to `end`, both included; None is open."""

    start: date | None = None
    end: date | None = None

    def where(self) -> list[ColumnElement[bool]]:
        """The range as conditions on spend_daily.day."""
        conditions: list[ColumnElement[bool]] = []
        if self.start is not None:
            conditions.append(_DAILY.day >= self.start)
        if self.end is not None:
            conditions.append(_DAILY.day <= self.end)
        return conditions


async def daily_spend(
    kind: str, days: DayRange, *, session: AsyncSession, entities: list[str] | None = None
) -> list[DailySpend]:
    """Rollups of one kind in the range (of these entities only, when given), oldest day first."""
    grouping = (_DAILY.day, _DAILY.entity, _DAILY.model_group, _DAILY.provider, _DAILY.currency)
    sums = (
        _DAILY.requests, _DAILY.failures, _DAILY.prompt_tokens, _DAILY.completion_tokens, _DAILY.total_tokens,
        _DAILY.spend,
    )  # fmt: skip
    query = (
        select(*grouping, *(func.sum(column) for column in sums))
        .where(_DAILY.kind == kind, *days.where())
        .group_by(*grouping)
        .order_by(*grouping)
    )
    if entities is not None:
        query = query.where(_DAILY.entity.in_(entities))
    found: list[DailySpend] = []
    for row in (await run_sql(session, query)).all():
        day, entity, model_group, provider, currency, *counts, spend = tuple(row)
        requests, failures, prompt_tokens, completion_tokens, total_tokens = (int(n) for n in counts)
        found.append(
            DailySpend(
                day=day,
                entity=entity,
                model_group=model_group,
                provider=provider,
                currency=currency,
                requests=requests,
                failures=failures,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=total_tokens,
                spend=Decimal(spend),
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class MinuteCounts:
    """Usage events of one data plane in one minute: emitted by it, ingested into Postgres."""

    node_id: str
    minute: datetime
    emitted: int
    ingested: int


async def reconciliation(
    start: datetime, end: datetime, *, session: AsyncSession, node_id: str | None = None
) -> list[MinuteCounts]:
    """Per data plane and minute in [start, end): its publishers' counts summed, oldest first."""
    query = (
        select(
            _RECONCILIATION.node_id,
            _RECONCILIATION.minute,
            func.sum(_RECONCILIATION.emitted),
            func.sum(_RECONCILIATION.ingested),
        )
        .where(_RECONCILIATION.minute >= start, _RECONCILIATION.minute < end)
        .group_by(_RECONCILIATION.node_id, _RECONCILIATION.minute)
        .order_by(_RECONCILIATION.minute, _RECONCILIATION.node_id)
    )
    if node_id is not None:
        query = query.where(_RECONCILIATION.node_id == node_id)
    found: list[MinuteCounts] = []
    for row in (await run_sql(session, query)).all():
        node, minute, emitted, ingested = tuple(row)
        found.append(MinuteCounts(node_id=node, minute=minute, emitted=int(emitted), ingested=int(ingested)))
    return found
