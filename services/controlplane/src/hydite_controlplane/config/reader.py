"""Reading the rows of one resource type so that a row the driver cannot decode (a timestamp
past year 9999, a JSON number too long to parse) fails alone instead of the whole read.

The first attempt reads everything at once; only when it fails are the rows read again in
halves, down to the one row that fails, which is reported by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, any_, bindparam, exc
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane.config.builder import ResourceTable, describe_failure

# Failures of the connection or the transaction, not of a row: the whole read is retried later,
# and nothing is quarantined because the database was briefly unreachable.
NOT_A_ROW_FAILURE = (exc.OperationalError, exc.InterfaceError, exc.InternalError, exc.TimeoutError)


@dataclass(slots=True)
class RowsRead:
    """The rows read, and the names of rows that could not be read with the reason."""

    rows: list[Any] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)


async def read_rows(
    session: AsyncSession, table: ResourceTable, names: Iterable[str] | None = None
) -> RowsRead:
    """Rows of one type, all of them or only the named ones that still exist."""
    wanted = None if names is None else sorted(set(names))
    if wanted is not None and not wanted:
        return RowsRead()
    try:
        return RowsRead(rows=await _select(session, table, wanted))
    except NOT_A_ROW_FAILURE:
        raise
    except Exception:  # some row failed to decode: find it below
        pass
    if wanted is None:
        name_column = col(getattr(table.row, table.name_column))
        wanted = sorted((await session.exec(select(name_column))).all())
    read = RowsRead()
    await _bisect(session, table, wanted, read)
    return read


async def _select(session: AsyncSession, table: ResourceTable, names: Sequence[str] | None) -> list[Any]:
    query = select(table.row)
    if names is not None:
        # One array parameter, not one parameter per name: a bulk write may touch 100k rows.
        name_column = col(getattr(table.row, table.name_column))
        query = query.where(name_column == any_(bindparam("names", list(names), type_=ARRAY(Text))))
    return list((await session.exec(query)).all())


async def _bisect(session: AsyncSession, table: ResourceTable, names: Sequence[str], read: RowsRead) -> None:
    try:
        read.rows.extend(await _select(session, table, names))
        return
    except NOT_A_ROW_FAILURE:
        raise
    except Exception as failure:  # narrowed down to one row, reported, never raised
        if len(names) == 1:
            read.unreadable[names[0]] = "cannot read: " + describe_failure(failure)
            return
    middle = len(names) // 2
    await _bisect(session, table, names[:middle], read)
    await _bisect(session, table, names[middle:], read)
