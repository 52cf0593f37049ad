"""One transaction per batch: COPY events into a temp table, insert what is new, commit.

`spend_logs.request_id` is unique, so a redelivered batch inserts nothing twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Jsonb

from hydite_common.events import UsageBatch

COLUMNS = (
    "request_id", "call_type", "api_key", "key_alias", "spend", "prompt_tokens",
    "completion_tokens", "cached_tokens", "reasoning_tokens", "total_tokens", "start_time",
    "end_time", "ttft_ms", "model", "model_group", "model_id", "custom_llm_provider",
    "upstream_model", "api_base", "user_id", "team_id", "organization_id", "end_user",
    "request_tags", "stream", "status", "http_status", "error_code", "usage_estimated",
    "attempts", "node_id", "node_seq", "extra",
)  # fmt: skip

_COLUMN_LIST = ", ".join(COLUMNS)


def _ts(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def rows_of(batches: list[UsageBatch]) -> list[tuple[object, ...]]:
    """spend_logs rows for every event of the batches (pure)."""
    rows: list[tuple[object, ...]] = []
    for batch in batches:
        for e in batch.events:
            rows.append(
                (
                    e["request_id"], e["call_type"], e["key_hash"], e.get("key_alias", ""), float(e["cost"]),
                    e["prompt_tokens"], e["completion_tokens"], e.get("cached_tokens", 0),
                    e.get("reasoning_tokens", 0), e["total_tokens"], _ts(e["start_time_ms"]),
                    _ts(e["end_time_ms"]), float(e.get("ttft_ms", 0.0)), e["model"],
                    e.get("model_group", ""), e.get("deployment_id", ""), e.get("provider", ""),
                    e.get("upstream_model", ""), e.get("api_base", ""), e.get("user_id", ""),
                    e.get("team_id", ""), e.get("organization_id", ""), e.get("customer_id", ""),
                    Jsonb(list(e.get("tags", []))), bool(e.get("stream", False)), e["status"],
                    int(e.get("http_status", 0)), e.get("error_code", ""),
                    bool(e.get("usage_estimated", False)), int(e.get("attempts", 1)),
                    batch.node_id, batch.seq, Jsonb({}),
                )
            )  # fmt: skip
    return rows


async def write_batches(conn: psycopg.AsyncConnection[object], batches: list[UsageBatch]) -> int:
    """Insert the batches' events in one transaction; returns how many rows were new."""
    rows = rows_of(batches)
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
