"""Virtual key rows."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane.models.keys import VirtualKeyRow


async def alias_taken(session: AsyncSession, alias: str) -> bool:
    """Whether another key already uses this alias."""
    found = await session.exec(select(VirtualKeyRow.token).where(VirtualKeyRow.key_alias == alias))
    return found.first() is not None


async def get_key(session: AsyncSession, token: str) -> VirtualKeyRow | None:
    """A key by its hash."""
    return await session.get(VirtualKeyRow, token)
