"""Writing config resource rows together with their change-log entry (one version per write)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane.config.builder import RESOURCE_TABLES, ResourceTable
from hydite_controlplane.config.changelog import REMOVE, UPSERT, ResourceChange, record_changes

_TABLE_BY_ROW: dict[type[SQLModel], ResourceTable] = {t.row: t for t in RESOURCE_TABLES.values()}


def _change(row: SQLModel, op: str) -> ResourceChange:
    table = _TABLE_BY_ROW[type(row)]
    return ResourceChange(table.type_url, str(getattr(row, table.name_column)), op)


async def write_resources(
    *, session: AsyncSession, upserts: Sequence[SQLModel] = (), removals: Sequence[SQLModel] = ()
) -> int:
    """Delete `removals`, add or update `upserts`, and record all of it as one config version.

    Returns the version; the caller commits.
    """
    for row in removals:
        await session.delete(row)
    await session.flush()
    session.add_all(upserts)
    await session.flush()
    changes = [_change(row, REMOVE) for row in removals] + [_change(row, UPSERT) for row in upserts]
    return await record_changes(session, changes)


async def save_resources(*rows: SQLModel, session: AsyncSession) -> int:
    """Add or update rows as one config version (caller commits)."""
    return await write_resources(session=session, upserts=rows)


async def delete_resources(*rows: SQLModel, session: AsyncSession) -> int:
    """Delete rows as one config version (caller commits)."""
    return await write_resources(session=session, removals=rows)
