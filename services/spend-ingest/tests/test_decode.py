"""Usage events to spend_logs rows: whole-row equality, and the writer's columns are SpendLog's."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from hydite_common.events import UsageBatch, UsageEvent
from hydite_spend_ingest.decode import rows_of, spend_log_row, spend_log_rows
from hydite_spend_ingest.writer import COLUMNS, copy_row

EVENT: UsageEvent = {
    "request_id": "req-1",
    "call_type": "chat_completion",
    "start_time_ms": 1_700_000_000_000.0,
    "end_time_ms": 1_700_000_000_250.0,
    "key_hash": "ab" * 32,
    "key_alias": "ci",
    "user_id": "user-1",
    "team_id": "team-1",
    "organization_id": "org-1",
    "customer_id": "cust-1",
    "tags": ["a", "b"],
    "model": "demo",
    "model_group": "demo-group",
    "deployment_id": "demo-mock",
    "provider": "mock",
    "upstream_model": "demo-upstream",
    "api_base": "http://127.0.0.1:9/v1",
    "stream": True,
    "status": "failure",
    "http_status": 429,
    "error_code": "rate_limited",
    "prompt_tokens": 3,
    "completion_tokens": 5,
    "cached_tokens": 1,
    "reasoning_tokens": 2,
    "total_tokens": 8,
    "cost": 1,
    "usage_estimated": True,
    "ttft_ms": 12,
    "attempts": 2,
    "response_id": "chatcmpl-1",
}

EXPECTED_ROW: dict[str, object] = {
    "request_id": "req-1",
    "call_type": "chat_completion",
    "api_key": "ab" * 32,
    "key_alias": "ci",
    "spend": 1.0,
    "currency": "USD",
    "cost_source": "",
    "prompt_tokens": 3,
    "completion_tokens": 5,
    "cached_tokens": 1,
    "reasoning_tokens": 2,
    "total_tokens": 8,
    "start_time": datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
    "end_time": datetime(2023, 11, 14, 22, 13, 20, 250_000, tzinfo=UTC),
    "ttft_ms": 12.0,
    "model": "demo",
    "model_group": "demo-group",
    "model_id": "demo-mock",
    "custom_llm_provider": "mock",
    "upstream_model": "demo-upstream",
    "api_base": "http://127.0.0.1:9/v1",
    "user_id": "user-1",
    "team_id": "team-1",
    "organization_id": "org-1",
    "end_user": "cust-1",
    "request_tags": ["a", "b"],
    "stream": True,
    "status": "failure",
    "http_status": 429,
    "error_code": "rate_limited",
    "usage_estimated": True,
    "attempts": 2,
    "node_id": "node-a",
    "node_seq": 7,
    "extra": {},
    "response_id": "chatcmpl-1",
}

# The writer's hand-written column list before it was derived from SpendLog, and the columns since
# (currency and cost_source came with prices that carry their currency and source).
COLUMNS_BEFORE = (
    "request_id", "response_id", "call_type", "api_key", "key_alias", "spend", "currency", "cost_source",
    "prompt_tokens",
    "completion_tokens", "cached_tokens", "reasoning_tokens", "total_tokens", "start_time",
    "end_time", "ttft_ms", "model", "model_group", "model_id", "custom_llm_provider",
    "upstream_model", "api_base", "user_id", "team_id", "organization_id", "end_user",
    "request_tags", "stream", "status", "http_status", "error_code", "usage_estimated",
    "attempts", "node_id", "node_seq", "extra",
)  # fmt: skip


def test_writer_columns_are_spend_log_columns_without_id() -> None:
    """The derived column list is SpendLog's columns but id, the same list the writer had by hand."""
    assert COLUMNS == COLUMNS_BEFORE


def test_row_of_a_full_event() -> None:
    """Every event field lands in its column, times as aware UTC datetimes, numbers coerced; an
    event from before prices carried a currency is in USD, of no stated source."""
    assert spend_log_row(UsageBatch(1, "node-a", 7, [EVENT]), EVENT) == EXPECTED_ROW


def test_row_keeps_currency_source_and_billed_units() -> None:
    """currency and cost_source land in their columns; units other than the token columns
    (characters, seconds, images, search units, cache writes) in `extra`, the non-zero ones."""
    event: UsageEvent = EVENT | {
        "currency": "CNY", "cost_source": "deployment", "cache_write_tokens": 4, "audio_prompt_tokens": 0,
        "audio_completion_tokens": 0, "input_characters": 0, "audio_seconds": 12.5, "images": 2,
        "search_units": 0, "unmetered": "",
    }  # fmt: skip
    row = spend_log_row(UsageBatch(1, "node-a", 7, [event]), event)
    assert row == EXPECTED_ROW | {
        "currency": "CNY",
        "cost_source": "deployment",
        "extra": {"cache_write_tokens": 4, "audio_seconds": 12.5, "images": 2},
    }


def test_row_of_a_minimal_event_takes_defaults() -> None:
    """Fields an older node may omit get the defaults the writer always used."""
    # An older node's event: only the fields decode_batch requires.
    minimal: UsageEvent = {  # type: ignore[typeddict-item]
        "request_id": "req-1",
        "call_type": "chat_completion",
        "start_time_ms": 1_700_000_000_000.0,
        "end_time_ms": 1_700_000_000_250.0,
        "key_hash": "ab" * 32,
        "model": "demo",
        "status": "success",
        "prompt_tokens": 3,
        "completion_tokens": 5,
        "total_tokens": 8,
        "cost": 0.5,
    }
    row = spend_log_row(UsageBatch(1, "node-a", 7, [minimal]), minimal)
    assert row == EXPECTED_ROW | {
        "response_id": None,
        "key_alias": "",
        "spend": 0.5,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "ttft_ms": 0.0,
        "model_group": "",
        "model_id": "",
        "custom_llm_provider": "",
        "upstream_model": "",
        "api_base": "",
        "user_id": "",
        "team_id": "",
        "organization_id": "",
        "end_user": "",
        "request_tags": [],
        "stream": False,
        "status": "success",
        "http_status": 0,
        "error_code": "",
        "usage_estimated": False,
        "attempts": 1,
    }


def test_row_has_exactly_the_writer_columns() -> None:
    """A SpendLog column without a value here (or a value without a column) fails this test."""
    assert set(spend_log_row(UsageBatch(1, "node-a", 7, [EVENT]), EVENT)) == set(COLUMNS)


def test_rows_of_batches_keep_order_and_carry_their_batch() -> None:
    """Rows come batch by batch, event by event, each with its own batch's node and sequence."""
    second = EVENT | {"request_id": "req-2"}
    rows = spend_log_rows([UsageBatch(1, "node-a", 7, [EVENT, second]), UsageBatch(1, "node-b", 8, [EVENT])])
    assert [(r["request_id"], r["node_id"], r["node_seq"]) for r in rows] == [
        ("req-1", "node-a", 7),
        ("req-2", "node-a", 7),
        ("req-1", "node-b", 8),
    ]


def test_copy_row_orders_by_columns_and_writes_json_as_text() -> None:
    """COPY gets the values in column order, with the JSON columns as their JSON text."""
    values = dict(zip(COLUMNS, copy_row(EXPECTED_ROW), strict=True))
    json_columns = ("request_tags", "extra")
    texts = [values[name] for name in json_columns]
    assert all(isinstance(text, str) for text in texts)
    assert [orjson.loads(str(text)) for text in texts] == [EXPECTED_ROW[name] for name in json_columns]
    assert {n: v for n, v in values.items() if n not in json_columns} == {
        n: EXPECTED_ROW[n] for n in COLUMNS if n not in json_columns
    }


def test_rows_of_sets_aside_events_no_row_can_hold() -> None:
    """An event with a time past what a timestamp holds is rejected with a reason; its neighbours
    keep their rows."""
    far = {**EVENT, "request_id": "far", "end_time_ms": 1e20}
    rows, rejected = rows_of(UsageBatch(1, "node-a", 7, [EVENT, far]))  # type: ignore[list-item]
    assert [event["request_id"] for event, _ in rows] == [EVENT["request_id"]]
    assert [(r.raw, r.reason) for r in rejected] == [(far, "unusable: ValueError")]
