"""Spend as the admin API shows and sets it: live from the running totals (spend_totals), never
from the stale column on the entity's row; an admin change of spend writes the total and its KV
entry before it answers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.spend_totals import TotalRow, put_if_newer
from hydite_controlplane.budget_periods import Period
from hydite_controlplane.messaging import NatsLink, SpendTotalsUnavailable
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.store.spend_totals import Spent, set_total, spend_of
from hydite_controlplane.store.spend_windows import (
    entry_of,
    lock_windows,
    rebase_windows,
    row_periods,
    windows_of,
)


def spend_fields(spent: Spent | None) -> dict[str, Any]:
    """`spend` (the sum over currencies) and, when there is more than one, `spend_by_currency`."""
    spent = spent or {}
    fields: dict[str, Any] = {"spend": float(sum(spent.values(), Decimal(0)))}
    if len(spent) > 1:
        fields["spend_by_currency"] = {currency: float(amount) for currency, amount in sorted(spent.items())}
    return fields


async def shown_with_spend(
    kind: str, shown: list[dict[str, Any]], id_field: str, *, session: AsyncSession
) -> list[dict[str, Any]]:
    """Public forms of entities of one kind, their `spend` replaced by the live total."""
    ids = [str(item[id_field]) for item in shown if item.get(id_field)]
    spent = await spend_of(kind, ids, session=session)
    return [{**item, **spend_fields(spent.get(str(item.get(id_field))))} for item in shown]


async def one_with_spend(
    kind: str, shown: dict[str, Any], entity: str, *, session: AsyncSession
) -> dict[str, Any]:
    """One entity's public form with its live spend."""
    spent = await spend_of(kind, [entity], session=session)
    return {**shown, **spend_fields(spent.get(entity))}


async def set_spend(
    nats: NatsLink, kind: str, entity: str, amount: float, *, session: AsyncSession, reset: bool = False
) -> list[TotalRow]:
    """Set the entity's running total to amount in the session's transaction and write its KV entry
    before the caller commits: with NATS unreachable this raises SpendTotalsUnavailable (503) and
    the caller's transaction, rolled back, leaves Postgres as it was. The entity's budget windows
    count from the new total (spend in each period is `amount`)."""
    bucket = nats.totals()
    await lock_windows(kind, entity, session=session)
    rows = await set_total(kind, entity, Decimal(str(amount)), session=session, now=utcnow(), reset=reset)
    await rebase_windows(kind, entity, session=session)
    try:
        # Read under the entity's locks: the publishers' watermarks match the total just set.
        entry = await entry_of(kind, entity, session=session, rows=rows)
        if entry is not None:
            await put_if_newer(bucket, entry)
    except Exception as exc:
        raise SpendTotalsUnavailable(
            f"spend totals cannot be written now ({type(exc).__name__}); nothing was changed"
        ) from None
    return rows


def _iso(ms: float | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


async def period_fields(kind: str, entity: str, row: Any, *, session: AsyncSession) -> dict[str, Any]:
    """`budget_reset_at` (the next reset of the period of the row's budget_duration, as LiteLLM
    shows it) and `budget_periods`: every period of the entity with its spend, start and next reset."""
    return await periods_shown(kind, entity, await row_periods(row, session=session), session=session)


async def periods_shown(
    kind: str, entity: str, periods: Sequence[Period], *, session: AsyncSession
) -> dict[str, Any]:
    """`budget_reset_at` and `budget_periods` of an entity with these periods (a team member's, a
    tag's, the proxy's: anything whose limits are not a row with limit columns)."""
    windows = (await windows_of(kind, [entity], session=session)).get(entity, {})
    spent = (await spend_of(kind, [entity], session=session)).get(entity, {})
    total = sum(spent.values(), Decimal(0))
    shown = []
    for period in periods:
        window = windows.get(period.duration)
        baseline = sum((Decimal(v) for v in window.baseline.values()), Decimal(0)) if window else Decimal(0)
        shown.append(
            {
                "budget_duration": period.duration,
                "max_budget": period.max_budget,
                "soft_budget": period.soft_budget,
                "spend": float(total - baseline),
                "period_start": _iso(window.start_ms) if window else None,
                "budget_reset_at": _iso(window.reset_at_ms) if window else None,
            }
        )
    main = [fields["budget_reset_at"] for period, fields in zip(periods, shown, strict=True) if period.main]
    return {"budget_reset_at": main[0] if main else None, "budget_periods": shown}


def total_spend(rows: Iterable[TotalRow]) -> float:
    """The sum over currencies of an entity's rows."""
    return float(sum((row.spend for row in rows), Decimal(0)))
