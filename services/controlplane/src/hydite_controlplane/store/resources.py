"""Writing any config resource row together with its change-log entry (one version per write)."""

from __future__ import annotations

from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane.config.builder import RESOURCE_TABLES, ResourceTable
from hydite_controlplane.config.changelog import REMOVE, UPSERT, ResourceChange, record_changes

_TABLE_BY_ROW: dict[type[SQLModel], ResourceTable] = {t.row: t for t in RESOURCE_TABLES.values()}


def _change(row: SQLModel, op: str) -> ResourceChange:
    table = _TABLE_BY_ROW[type(row)]
    return ResourceChange(table.type_url, str(getattr(row, table.name_column)), op)


async def save_resources(session: AsyncSession, *rows: SQLModel) -> int:
    """Add or update rows and record their changes; returns the config version (caller commits)."""
    session.add_all(rows)
    await session.flush()
    return await record_changes(session, [_change(row, UPSERT) for row in rows])


async def delete_resources(session: AsyncSession, *rows: SQLModel) -> int:
    """Delete rows and record their removal; returns the config version (caller commits)."""
    for row in rows:
        await session.delete(row)
    await session.flush()
    return await record_changes(session, [_change(row, REMOVE) for row in rows])
