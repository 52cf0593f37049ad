"""Spend log retention: the setting's durations, and old rows deleted in bounded batches while
rollups and running totals stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import TupleRow
from pydantic import ValidationError

from hydite_common.events import UsageBatch, UsageEvent, UsageTally
from hydite_spend_ingest.decode import payload_row, spend_log_row
from hydite_spend_ingest.retention import RetentionCounters, delete_older_than
from hydite_spend_ingest.settings import IngestSettings
from hydite_spend_ingest.writer import WriteSet, copy_row, write

Connection = psycopg.AsyncConnection[object]
Database = psycopg.AsyncConnection[TupleRow]
NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=40)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        (" 7D ", timedelta(days=7)),
        ("0", None),
        ("", None),
        ("0h", None),
    ],
)
def test_retention_reads_durations(value: str, expected: timedelta | None) -> None:
    """HYDITE_SPEND_LOG_RETENTION takes a whole number of days, hours, minutes or seconds; 0 or
    nothing keeps spend logs forever."""
    assert IngestSettings.model_validate({"spend_log_retention": value}).spend_log_retention == expected


@pytest.mark.parametrize("value", ["30", "1w", "-1d", "1.5h", "d", "30 days"])
def test_a_bad_retention_fails_validation_with_the_accepted_forms(value: str) -> None:
    """Anything else is refused when the settings are read, naming the value and the forms."""
    with pytest.raises(ValidationError) as caught:
        IngestSettings.model_validate({"spend_log_retention": value})
    assert f"spend_log_retention {value!r} is not a duration" in str(caught.value)
    assert "30d, 12h, 90m" in str(caught.value)


def test_retention_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The setting is read from HYDITE_SPEND_LOG_RETENTION."""
    monkeypatch.setenv("HYDITE_SPEND_LOG_RETENTION", "12h")
    assert IngestSettings().spend_log_retention == timedelta(hours=12)


def usage_event(request_id: str, at: datetime) -> UsageEvent:
    """A usage event of team t1 that started and ended at `at`."""
    ms = at.timestamp() * 1000
    event: dict[str, Any] = {
        "request_id": request_id, "call_type": "chat_completion", "start_time_ms": ms, "end_time_ms": ms,
        "key_hash": "ef" * 32, "key_alias": "", "user_id": "", "team_id": "t1", "organization_id": "",
        "customer_id": "", "tags": [], "model": "demo", "model_group": "demo", "deployment_id": "d",
        "provider": "mock", "upstream_model": "demo", "api_base": "", "stream": False, "status": "success",
        "http_status": 200, "error_code": "", "prompt_tokens": 1, "completion_tokens": 1, "cached_tokens": 0,
        "reasoning_tokens": 0, "total_tokens": 2, "cost": 0.5, "usage_estimated": False, "ttft_ms": 1.0,
        "attempts": 1,
    }  # fmt: skip
    return event  # type: ignore[return-value]


async def count(db: Database, table: str) -> int:
    """Rows in a table."""
    cursor = await db.execute(f"SELECT count(*) FROM {table}")
    found = await cursor.fetchone()
    assert found is not None
    return int(found[0])


async def test_old_rows_are_deleted_in_batches_and_rollups_stay(conn: Connection, db: Database) -> None:
    """12 rows of 40 days ago go in statements of 5 with their payloads and reconciliation counts;
    the 3 recent rows, the daily rollups and the running totals are untouched."""
    events = [usage_event(f"old-{i}", OLD) for i in range(12)] + [
        usage_event(f"new-{i}", NOW) for i in range(3)
    ]
    batch = UsageBatch(2, "node-a.00000001", 1, events)
    payload = {"request_id": "old-0", "key_hash": "", "team_id": "", "created_ms": OLD.timestamp() * 1000,
               "messages": [], "response": None, "truncated": False}  # fmt: skip
    old_minute = int(OLD.timestamp()) // 60 * 60
    await write(
        conn,
        WriteSet(
            rows=[copy_row(spend_log_row(batch, e)) for e in events],
            seqs=[(batch.node_id, batch.seq)],
            payloads=[payload_row(payload)],  # type: ignore[arg-type]
            tallies=[UsageTally("node-a", batch.node_id, {old_minute: 12})],
        ),
    )
    cursor = await db.execute("SELECT kind, entity, spend, requests, version FROM spend_totals ORDER BY 1, 2")
    totals_before = await cursor.fetchall()
    cursor = await db.execute("SELECT day, kind, requests, spend FROM spend_daily ORDER BY 1, 2")
    daily_before = await cursor.fetchall()

    counters = RetentionCounters()
    await delete_older_than(db, NOW - timedelta(days=30), batch_rows=5, pause_seconds=0, counters=counters)

    assert counters.deleted == {"spend_logs": 12, "spend_payloads": 1, "spend_reconciliation": 1}
    assert counters.statements == 3 + 1 + 1
    cursor = await db.execute("SELECT request_id FROM spend_logs ORDER BY 1")
    assert await cursor.fetchall() == [("new-0",), ("new-1",), ("new-2",)]
    assert await count(db, "spend_payloads") == 0
    assert await count(db, "spend_reconciliation") == 1
    cursor = await db.execute("SELECT kind, entity, spend, requests, version FROM spend_totals ORDER BY 1, 2")
    assert await cursor.fetchall() == totals_before
    assert ("global", "", Decimal("7.500000000000"), 15, 1) in totals_before
    cursor = await db.execute("SELECT day, kind, requests, spend FROM spend_daily ORDER BY 1, 2")
    assert await cursor.fetchall() == daily_before
    assert len(daily_before) == 2 * 3  # two days, kinds key, team and model
