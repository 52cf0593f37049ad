"""The budget entities spend-ingest keeps totals for: a team member (`team_id:user_id`) of a request
of a team's key with a user, an end user by its scoped budget entity when the event names one (else
its customer_id); and the entries carry the entity's budget windows, read in the same snapshot."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue
from psycopg.rows import TupleRow

from hydite_common.events import UsageBatch, UsageEvent
from hydite_common.spend_totals import (
    TotalEntry,
    WindowBaseline,
    totals_bucket,
    totals_bucket_name,
    totals_key,
)
from hydite_spend_ingest.decode import spend_log_row
from hydite_spend_ingest.settings import IngestSettings
from hydite_spend_ingest.totals import TotalsWriter, read_entries
from hydite_spend_ingest.writer import WriteSet, copy_row, write

PUBLISHER = "node-b.0a1b2c3d"
START = datetime(2026, 5, 13, tzinfo=UTC)
RESET = datetime(2026, 5, 14, tzinfo=UTC)

Connection = psycopg.AsyncConnection[object]
Database = psycopg.AsyncConnection[TupleRow]


def _event(request_id: str, cost: float, **fields: Any) -> UsageEvent:
    event: dict[str, Any] = {
        "request_id": request_id, "call_type": "chat_completion", "start_time_ms": 1_700_000_000_000.0,
        "end_time_ms": 1_700_000_000_250.0, "key_hash": "ef" * 32, "model": "demo", "status": "success",
        "prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "cost": cost, **fields,
    }  # fmt: skip
    return event  # type: ignore[return-value]


async def _ingest(conn: Connection, seq: int, events: list[UsageEvent]) -> frozenset[tuple[str, str]]:
    batch = UsageBatch(2, PUBLISHER, seq, events)
    writes = WriteSet(rows=[copy_row(spend_log_row(batch, e)) for e in events], seqs=[(PUBLISHER, seq)])
    return (await write(conn, writes)).changed_totals


@pytest.fixture
async def kv(js: JetStreamContext, settings: IngestSettings) -> AsyncIterator[KeyValue]:
    """The test's totals bucket; deleted afterwards."""
    bucket = await totals_bucket(js, settings)
    try:
        yield bucket
    finally:
        with contextlib.suppress(NotFoundError):
            await js.delete_key_value(totals_bucket_name(settings))


async def test_team_members_and_scoped_end_users_have_totals(conn: Connection, db: Database) -> None:
    """A team key's request with a user counts for team_member t1:u1; one naming the registered
    end user's scoped name counts for that name, one without for its bare customer_id."""
    changed = await _ingest(
        conn,
        1,
        [
            _event("m1", 0.5, team_id="t1", user_id="u1", customer_id="c1", customer_entity="team:t1:c1"),
            _event("m2", 0.25, team_id="t1", user_id="", customer_id="c2"),
            _event("m3", 0.125, team_id="", user_id="u1"),
        ],
    )
    assert {("team_member", "t1:u1"), ("customer", "team:t1:c1"), ("customer", "c2")} <= changed
    assert not {entity for kind, entity in changed if kind == "team_member"} - {"t1:u1"}
    rows = await (
        await db.execute(
            "SELECT kind, entity, spend::text FROM spend_totals WHERE kind IN ('team_member', 'customer') "
            "ORDER BY kind, entity"
        )
    ).fetchall()
    assert rows == [
        ("customer", "c2", "0.250000000000"), ("customer", "team:t1:c1", "0.500000000000"),
        ("team_member", "t1:u1", "0.500000000000"),
    ]  # fmt: skip


async def test_entries_carry_the_entity_s_windows(
    js: JetStreamContext, settings: IngestSettings, kv: KeyValue, conn: Connection, db: Database
) -> None:
    """A window written for the team (as the control plane writes one) is in the team's entry next
    to its total; an entity without windows has none."""
    await _ingest(conn, 1, [_event("w1", 1.0, team_id="t9", user_id="u9")])
    await db.execute(
        "INSERT INTO spend_windows (kind, entity, duration, start_at, reset_at, baseline) "
        "VALUES ('team', 't9', '1d', %s, %s, '{\"USD\": \"0.5\"}')",
        (START, RESET),
    )
    writer = TotalsWriter(settings, js)
    writer.mark([("team", "t9"), ("team_member", "t9:u9")])
    async with await psycopg.AsyncConnection.connect(settings.libpq_url, autocommit=True) as reader:
        entries = {e.key: e for e in await read_entries(reader, [("team", "t9"), ("team_member", "t9:u9")])}
        await writer.flush(reader, kv)
    window = WindowBaseline(START.timestamp() * 1000, RESET.timestamp() * 1000, {"USD": "0.5"})
    assert entries[totals_key("team", "t9")].windows == {"1d": window}
    assert entries[totals_key("team_member", "t9:u9")].windows == {}
    found = await kv.get(totals_key("team", "t9"))
    assert found.value is not None
    assert TotalEntry.decode(found.value).windows == {"1d": window}
