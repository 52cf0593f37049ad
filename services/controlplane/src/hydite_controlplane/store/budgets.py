"""Queries on budgets: by id (shared-locked while a write links one), several at once, and whether
anything still links to one."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane.models.budgets import BudgetRow
from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_controlplane.models.principals import CustomerRow, TeamRow


async def get_budget(budget_id: str, *, session: AsyncSession, lock: str | None = None) -> BudgetRow | None:
    """The budget, or None. `lock="share"` keeps it from being deleted until the transaction ends
    (a write that links it); `lock="update"` locks it for a change or a delete."""
    if lock is None:
        return await session.get(BudgetRow, budget_id)
    query = select(BudgetRow).where(BudgetRow.budget_id == budget_id)
    query = query.with_for_update(read=lock == "share").execution_options(populate_existing=True)
    return (await session.exec(query)).first()


async def budgets_by_id(budget_ids: Sequence[str], *, session: AsyncSession) -> list[BudgetRow]:
    """The budgets with these ids that exist, in id order."""
    if not budget_ids:
        return []
    query = select(BudgetRow).where(col(BudgetRow.budget_id).in_(sorted(set(budget_ids))))
    return list((await session.exec(query.order_by(col(BudgetRow.budget_id)))).all())


async def all_budgets(*, session: AsyncSession) -> list[BudgetRow]:
    """Every budget, oldest first."""
    query = select(BudgetRow).order_by(col(BudgetRow.created_at), col(BudgetRow.budget_id))
    return list((await session.exec(query)).all())


async def budget_in_use(budget_id: str, *, session: AsyncSession) -> bool:
    """Whether a key, customer or team still links to this budget."""
    for query in (
        select(VirtualKeyRow.token).where(VirtualKeyRow.budget_id == budget_id),
        select(CustomerRow.name).where(CustomerRow.budget_id == budget_id),
        select(TeamRow.team_id).where(TeamRow.budget_id == budget_id),
    ):
        if (await session.exec(query.limit(1))).first() is not None:
            return True
    return False
