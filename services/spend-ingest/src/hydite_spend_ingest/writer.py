"""One transaction per write: COPY events into a staging table, insert what is new, and from the rows
actually inserted (never from the ones a redelivery brings again) move the daily rollups, the
running totals and the reconciliation counts; advance the publishers' watermarks, store payloads
and tallies; commit.

`spend_logs.request_id` is unique, so a redelivered batch inserts nothing twice and therefore adds
nothing twice. The column list is SpendLog's (libs/common), so the table is described in one place.

Lock order, the same in every transaction so two replicas never deadlock: the publishers' rows
(sorted), then spend_logs, then the totals, daily and reconciliation rows, each sorted.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import psycopg
from psycopg.rows import tuple_row
from sqlalchemy.dialects.postgresql import JSONB

from hydite_common.events import UsageTally
from hydite_common.spend_tables import ROLLUP_KINDS, SPEND_LOGS, TOTAL_KINDS, TOTALS_ONLY_KINDS
from hydite_spend_ingest.decode import PayloadRow
from hydite_spend_ingest.watermarks import PublisherState, advanced, node_of

COLUMNS: tuple[str, ...] = tuple(
    column.name
    for column in SPEND_LOGS.columns
    if column is not SPEND_LOGS.autoincrement_column and column.server_default is None
)
"""Every spend_logs column the writer fills: all of SpendLog's but those the database sets (the
autoincrement id, ingested_at)."""

_JSON_COLUMNS = frozenset(column.name for column in SPEND_LOGS.columns if isinstance(column.type, JSONB))
_COLUMN_LIST = ", ".join(COLUMNS)
_IN_COLUMN_ORDER = operator.itemgetter(*COLUMNS)
_JSON_INDEXES = tuple(index for index, name in enumerate(COLUMNS) if name in _JSON_COLUMNS)


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


ENTITY_LENGTH = 256
"""What the rollup and publisher tables keep of an id (their key columns' length)."""

CopyRow = tuple[object, ...]


def copy_row(row: Mapping[str, object]) -> CopyRow:
    """A row keyed by column name as COPY takes it: values in COLUMNS order, JSON columns as their JSON
    text (COPY's text format hands it to jsonb's input as it is)."""
    values = list(_IN_COLUMN_ORDER(row))
    for index in _JSON_INDEXES:
        values[index] = _json(values[index])
    return tuple(values)


@dataclass
class WriteSet:
    """What one transaction writes: spend_logs rows, the (publisher, seq) of every envelope they
    came in (also envelopes with no events), stored payloads and tallies."""

    rows: list[CopyRow] = field(default_factory=list)
    seqs: list[tuple[str, int]] = field(default_factory=list)
    payloads: list[PayloadRow] = field(default_factory=list)
    tallies: list[UsageTally] = field(default_factory=list)

    def extend(self, other: WriteSet) -> None:
        """Add another set's writes to this one."""
        self.rows += other.rows
        self.seqs += other.seqs
        self.payloads += other.payloads
        self.tallies += other.tallies


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a committed write changed: rows inserted, and the (kind, entity) of every running total
    it moved."""

    inserted: int
    changed_totals: frozenset[tuple[str, str]]


_STAGING = (
    f"CREATE TEMP TABLE IF NOT EXISTS spend_logs_incoming ON COMMIT DELETE ROWS "
    f"AS SELECT {_COLUMN_LIST} FROM spend_logs WITH NO DATA"
)

_LOCK_PUBLISHERS = """
INSERT INTO spend_publishers AS p (publisher_id, node_id, updated_at)
SELECT id, node, now() FROM unnest(%s::text[], %s::text[]) AS u(id, node) ORDER BY id
ON CONFLICT (publisher_id) DO UPDATE SET updated_at = now()
RETURNING publisher_id, watermark, max_seq, pending
"""

_SUMS = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens")
_ENTITY_OF = {
    "key": "api_key", "user": "user_id", "team": "team_id", "team_member": "team_member",
    "organization": "organization_id", "customer": "customer", "model": "model_group", "tag": "tag",
}  # fmt: skip
"""The column of an inserted row that names its entity of each rollup kind."""
assert set(_ENTITY_OF) == set(ROLLUP_KINDS) and set(TOTAL_KINDS) - set(ROLLUP_KINDS) == {"global"}


def _rollup_of(kind: str) -> str:
    """The daily sums of one kind's entities over the inserted rows (a tag counts once per row)."""
    column = _ENTITY_OF[kind]
    source = "inserted"
    if kind == "tag":
        source = (
            "inserted CROSS JOIN LATERAL "
            "(SELECT DISTINCT tag FROM jsonb_array_elements_text(request_tags) AS tag) AS tags"
        )
    skip_empty = "" if kind == "model" else f"WHERE {column} <> ''"
    return (
        f"SELECT day, '{kind}'::text AS kind, left({column}, {ENTITY_LENGTH}) AS entity, model_group,"
        f" provider, currency, count(*) AS requests, sum(failed) AS failures,"
        f" {', '.join(f'sum({c}) AS {c}' for c in _SUMS)}, sum(spend) AS spend"
        f" FROM {source} {skip_empty} GROUP BY 1, 3, 4, 5, 6"
    )


_ROLLUPS = "\n    UNION ALL ".join(_rollup_of(kind) for kind in ROLLUP_KINDS)
_TOTAL_KINDS = ", ".join(f"'{kind}'" for kind in TOTAL_KINDS if kind != "global")
_DAILY_KINDS = ", ".join(f"'{kind}'" for kind in ROLLUP_KINDS if kind not in TOTALS_ONLY_KINDS)

_WRITE = f"""
WITH inserted AS (
    INSERT INTO spend_logs ({_COLUMN_LIST})
    SELECT DISTINCT ON (request_id) {_COLUMN_LIST} FROM spend_logs_incoming ORDER BY request_id
    ON CONFLICT (request_id) DO NOTHING
    RETURNING (start_time AT TIME ZONE 'UTC')::date AS day, date_trunc('minute', end_time, 'UTC') AS minute,
        api_key, user_id, team_id, organization_id,
        CASE WHEN team_id <> '' AND user_id <> '' THEN team_id || ':' || user_id ELSE '' END AS team_member,
        coalesce(nullif(extra->>'customer_entity', ''), end_user) AS customer,
        left(model_group, {ENTITY_LENGTH}) AS model_group, left(custom_llm_provider, 64) AS provider,
        currency, (status <> 'success')::int AS failed,
        {", ".join(_SUMS)}, spend::numeric AS spend, request_tags, node_id
),
rolled AS (
    {_ROLLUPS}
),
totals AS (
    INSERT INTO spend_totals AS t (kind, entity, currency, spend, requests, total_tokens, version, updated_at)
    SELECT kind, entity, currency, sum(spend), sum(requests), sum(total_tokens), 1, now()
    FROM rolled WHERE kind IN ({_TOTAL_KINDS}) GROUP BY 1, 2, 3
    UNION ALL
    SELECT 'global', '', currency, sum(spend), count(*), sum(total_tokens), 1, now() FROM inserted GROUP BY 3
    ORDER BY 1, 2, 3
    ON CONFLICT (kind, entity, currency) DO UPDATE SET
        spend = t.spend + EXCLUDED.spend, requests = t.requests + EXCLUDED.requests,
        total_tokens = t.total_tokens + EXCLUDED.total_tokens, version = t.version + 1, updated_at = now()
    RETURNING kind, entity
),
daily AS (
    INSERT INTO spend_daily AS d (day, kind, entity, model_group, provider, currency, requests, failures,
        {", ".join(_SUMS)}, spend)
    SELECT * FROM rolled WHERE kind IN ({_DAILY_KINDS}) ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (day, kind, entity, model_group, provider, currency) DO UPDATE SET
        requests = d.requests + EXCLUDED.requests, failures = d.failures + EXCLUDED.failures,
        {", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in _SUMS)}, spend = d.spend + EXCLUDED.spend
),
counted AS (
    SELECT left(node_id, {ENTITY_LENGTH}) AS publisher_id, minute, count(*) AS ingested
    FROM inserted GROUP BY 1, 2
),
tallied AS (
    SELECT * FROM unnest(%(tally_publishers)s::text[], %(tally_minutes)s::timestamptz[],
        %(tally_nodes)s::text[], %(tally_counts)s::bigint[]) AS u(publisher_id, minute, node_id, emitted)
),
reconciled AS (
    INSERT INTO spend_reconciliation AS r (publisher_id, minute, node_id, emitted, ingested)
    SELECT publisher_id, minute, coalesce(tallied.node_id, regexp_replace(publisher_id, '\\.[^.]*$', '')),
        coalesce(emitted, 0), coalesce(ingested, 0)
    FROM counted FULL JOIN tallied USING (publisher_id, minute) ORDER BY 1, 2
    ON CONFLICT (publisher_id, minute) DO UPDATE SET
        emitted = GREATEST(r.emitted, EXCLUDED.emitted), ingested = r.ingested + EXCLUDED.ingested
),
watermarks AS (
    UPDATE spend_publishers AS p SET watermark = a.watermark, max_seq = a.max_seq,
        pending = a.pending::bigint[], updated_at = now()
    FROM unnest(%(publishers)s::text[], %(watermarks)s::bigint[], %(max_seqs)s::bigint[],
        %(pendings)s::text[]) AS a(publisher_id, watermark, max_seq, pending)
    WHERE p.publisher_id = a.publisher_id
),
payloads AS (
    INSERT INTO spend_payloads (request_id, api_key, team_id, messages, response, truncated, created_at)
    SELECT * FROM unnest(%(payload_ids)s::text[], %(payload_keys)s::text[], %(payload_teams)s::text[],
        %(payload_messages)s::jsonb[], %(payload_responses)s::jsonb[], %(payload_truncated)s::bool[],
        %(payload_created)s::timestamptz[])
    ORDER BY 1
    ON CONFLICT (request_id) DO NOTHING
)
SELECT (SELECT count(*) FROM inserted), kind, entity FROM totals
"""


async def write(conn: psycopg.AsyncConnection[object], writes: WriteSet) -> WriteResult:
    """Everything of the set in one transaction; what it changed (nothing twice on a redelivery)."""
    async with conn.transaction():
        # The rollups' sorts and aggregates of a large fetch stay in memory, not on disk.
        await conn.execute("SET LOCAL work_mem = '64MB'")
        # Also without rows: the statement below reads the staging table, which may not exist yet.
        await conn.execute(_STAGING)
        if writes.rows:
            async with conn.cursor().copy(f"COPY spend_logs_incoming ({_COLUMN_LIST}) FROM STDIN") as copy:
                for row in writes.rows:
                    await copy.write_row(row)
        publishers = await _advanced_publishers(conn, writes.seqs)
        async with conn.cursor(row_factory=tuple_row) as cursor:
            await cursor.execute(_WRITE, _parameters(writes, publishers))
            changed = await cursor.fetchall()
    inserted = int(changed[0][0]) if changed else 0
    totals = frozenset((str(kind), str(entity)) for _, kind, entity in changed)
    return WriteResult(inserted, totals)


async def _advanced_publishers(
    conn: psycopg.AsyncConnection[object], seqs: Sequence[tuple[str, int]]
) -> list[PublisherState]:
    """Lock the publishers' rows (creating missing ones) and return their advanced states."""
    by_publisher: dict[str, list[int]] = {}
    for publisher_id, seq in seqs:
        by_publisher.setdefault(publisher_id[:ENTITY_LENGTH], []).append(seq)
    if not by_publisher:
        return []
    ids = sorted(by_publisher)
    async with conn.cursor(row_factory=tuple_row) as cursor:
        await cursor.execute(_LOCK_PUBLISHERS, (ids, [node_of(i)[:ENTITY_LENGTH] for i in ids]))
        locked = await cursor.fetchall()
    states = []
    for publisher_id, watermark, max_seq, pending in locked:
        current = PublisherState(str(publisher_id), int(watermark), int(max_seq), tuple(pending))
        states.append(advanced(current, by_publisher[current.publisher_id]))
    return states


def _tally_rows(tallies: Iterable[UsageTally]) -> dict[tuple[str, datetime], tuple[str, int]]:
    """(publisher, minute) -> (node, emitted), the largest count when tallies of one fetch repeat a minute."""
    merged: dict[tuple[str, datetime], tuple[str, int]] = {}
    for tally in tallies:
        publisher = tally.publisher_id[:ENTITY_LENGTH]
        for second, count in tally.minutes.items():
            key = (publisher, datetime.fromtimestamp(second, UTC))
            if key not in merged or merged[key][1] < count:
                merged[key] = (tally.node_id[:ENTITY_LENGTH], count)
    return merged


def _parameters(writes: WriteSet, publishers: Sequence[PublisherState]) -> dict[str, object]:
    tallies = _tally_rows(writes.tallies)
    payloads: list[tuple[object, ...]] = list(zip(*writes.payloads, strict=True)) or [() for _ in range(7)]
    return {
        "tally_publishers": [publisher for publisher, _ in tallies],
        "tally_minutes": [minute for _, minute in tallies],
        "tally_nodes": [node for node, _ in tallies.values()],
        "tally_counts": [count for _, count in tallies.values()],
        "publishers": [p.publisher_id for p in publishers],
        "watermarks": [p.watermark for p in publishers],
        "max_seqs": [p.max_seq for p in publishers],
        "pendings": ["{" + ",".join(map(str, p.pending)) + "}" for p in publishers],
        "payload_ids": list(payloads[0]),
        "payload_keys": list(payloads[1]),
        "payload_teams": list(payloads[2]),
        "payload_messages": list(payloads[3]),
        "payload_responses": list(payloads[4]),
        "payload_truncated": list(payloads[5]),
        "payload_created": list(payloads[6]),
    }


async def write_rows(
    conn: psycopg.AsyncConnection[object], spend_rows: Sequence[Mapping[str, object]]
) -> int:
    """Insert the rows (and what they add to rollups and totals) in one transaction; how many were new."""
    result = await write(conn, WriteSet(rows=[copy_row(row) for row in spend_rows]))
    return result.inserted
