"""Setting a running total (an admin set or reset): the entity's currency row holds the amount, any
other currency's row zero, every row one version newer; against a real, freshly migrated database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.spend_tables import SpendTotal
from hydite_controlplane.store.spend_totals import set_total, spend_of

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def _row(entity: str, currency: str, spend: str, version: int) -> SpendTotal:
    return SpendTotal(
        kind="key", entity=entity, currency=currency, spend=Decimal(spend), version=version, updated_at=NOW
    )


async def test_a_total_is_set_in_the_entity_s_currency(sessions: async_sessionmaker[AsyncSession]) -> None:
    """No rows: a USD row; one currency: that one; several: USD holds it and the others are zeroed."""
    async with sessions() as session:
        session.add_all([_row("cny", "CNY", "7", 3), _row("two", "CNY", "1", 1), _row("two", "EUR", "2", 4)])
        await session.commit()
    async with sessions() as session:
        fresh = await set_total("key", "new", Decimal("1.5"), session=session, now=NOW, reset=False)
        assert [(r.currency, r.spend, r.version, r.reset_at) for r in fresh] == [
            ("USD", Decimal("1.5"), 1, None)
        ]
        [cny] = await set_total("key", "cny", Decimal(2), session=session, now=NOW, reset=True)
        assert (cny.currency, cny.spend, cny.version, cny.reset_at) == ("CNY", Decimal(2), 4, NOW)
        two = await set_total("key", "two", Decimal(5), session=session, now=NOW, reset=False)
        assert [(r.currency, r.spend, r.version) for r in two] == [
            ("CNY", Decimal(0), 2), ("EUR", Decimal(0), 5), ("USD", Decimal(5), 1),
        ]  # fmt: skip
        await session.commit()
    async with sessions() as session:
        spent = await spend_of("key", ["new", "cny", "two", "none"], session=session)
    assert spent == {
        "new": {"USD": Decimal("1.5")},
        "cny": {"CNY": Decimal(2)},
        "two": {"CNY": Decimal(0), "EUR": Decimal(0), "USD": Decimal(5)},
    }
