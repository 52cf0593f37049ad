"""Queries on the running spend totals (spend_totals): what entities have spent, per currency, and
setting an entity's total (an admin set or reset), row-locked against spend-ingest's additions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.spend_tables import SPEND_TOTALS, SpendTotal
from hydite_common.spend_totals import TotalRow
from hydite_controlplane.db import run_sql

DEFAULT_CURRENCY = "USD"
"""The currency of a total set for an entity that has spent nothing yet."""

Spent = dict[str, Decimal]
"""Currency -> amount."""


async def spend_of(kind: str, entities: Iterable[str], *, session: AsyncSession) -> dict[str, Spent]:
    """What each entity of one kind has spent since its last reset, per currency (an entity with no
    total is absent)."""
    wanted = sorted(set(entities))
    if not wanted:
        return {}
    query = select(SpendTotal).where(SpendTotal.kind == kind, col(SpendTotal.entity).in_(wanted))
    spent: dict[str, Spent] = {}
    for row in (await session.exec(query)).all():
        spent.setdefault(row.entity, {})[row.currency] = row.spend
    return spent


async def set_total(
    kind: str, entity: str, amount: Decimal, *, session: AsyncSession, now: datetime, reset: bool
) -> list[TotalRow]:
    """Make the entity's running total `amount`: its currency's row (USD when it has none, or more
    than one) holds it and any other currency's row zero, each one version newer; `reset` also
    stamps reset_at. Locks the entity's rows until the transaction ends; returns all of them."""
    rows = await _locked(kind, entity, session=session)
    if not rows:
        await run_sql(
            session,
            insert(SPEND_TOTALS)
            .values(kind=kind, entity=entity, currency=DEFAULT_CURRENCY, spend=0, version=0, updated_at=now)
            .on_conflict_do_nothing(),
        )
        rows = await _locked(kind, entity, session=session)
    target = rows[0].currency if len(rows) == 1 else DEFAULT_CURRENCY
    if target not in {row.currency for row in rows}:
        session.add(SpendTotal(kind=kind, entity=entity, currency=target, spend=Decimal(0), updated_at=now))
        await session.flush()
        rows = await _locked(kind, entity, session=session)
    for row in rows:
        row.spend = amount if row.currency == target else Decimal(0)
        row.version += 1
        row.updated_at = now
        if reset:
            row.reset_at = now
        session.add(row)
    await session.flush()
    return [
        TotalRow(
            kind=row.kind,
            entity=row.entity,
            currency=row.currency,
            spend=row.spend,
            requests=row.requests,
            total_tokens=row.total_tokens,
            version=row.version,
            reset_at=row.reset_at,
        )
        for row in rows
    ]


async def _locked(kind: str, entity: str, *, session: AsyncSession) -> list[SpendTotal]:
    query = (
        select(SpendTotal)
        .where(SpendTotal.kind == kind, SpendTotal.entity == entity)
        .order_by(col(SpendTotal.currency))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(query)).all())
