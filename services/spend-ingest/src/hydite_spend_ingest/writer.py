"""One transaction per write: COPY events into a temp table, insert what is new, commit.

`spend_logs.request_id` is unique, so a redelivered batch inserts nothing twice. The column
list is SpendLog's (libs/common), so the table is described in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql import JSONB

from hydite_common.spend_tables import SPEND_LOGS

COLUMNS: tuple[str, ...] = tuple(
    column.name for column in SPEND_LOGS.columns if column is not SPEND_LOGS.autoincrement_column
)
"""Every spend_logs column the writer fills: all of SpendLog's but the autoincrement id."""

_JSON_COLUMNS = frozenset(column.name for column in SPEND_LOGS.columns if isinstance(column.type, JSONB))
_COLUMN_LIST = ", ".join(COLUMNS)


def copy_row(row: Mapping[str, object]) -> tuple[object, ...]:
    """A row keyed by column name as COPY takes it: values in COLUMNS order, JSON columns as jsonb."""
    return tuple(Jsonb(row[name]) if name in _JSON_COLUMNS else row[name] for name in COLUMNS)


async def write_rows(
    conn: psycopg.AsyncConnection[object], spend_rows: Sequence[Mapping[str, object]]
) -> int:
    """Insert the rows in one transaction; returns how many were new."""
    rows = [copy_row(row) for row in spend_rows]
    if not rows:
        return 0
    async with conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS spend_logs_incoming "
            "(LIKE spend_logs INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        async with conn.cursor().copy(f"COPY spend_logs_incoming ({_COLUMN_LIST}) FROM STDIN") as copy:
            for row in rows:
                await copy.write_row(row)
        result = await conn.execute(
            f"INSERT INTO spend_logs ({_COLUMN_LIST}) "
            f"SELECT DISTINCT ON (request_id) {_COLUMN_LIST} FROM spend_logs_incoming "
            "ON CONFLICT (request_id) DO NOTHING"
        )
        return result.rowcount
