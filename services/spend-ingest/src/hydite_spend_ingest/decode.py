"""Usage batches to spend_logs rows (pure): one dict per event, keyed by SpendLog's column names.

The writer puts the values in the table's column order; JSON columns hold plain lists and dicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from hydite_common.events import RejectedEvent, UsageBatch, UsageEvent

Row = dict[str, object]


LATEST_MS = 253_402_300_799_999.0
"""The end of the year 9999, the last instant a timestamp holds here and in Postgres."""


def _ts(ms: float) -> datetime:
    if not 0 <= ms <= LATEST_MS:  # also refuses NaN; fromtimestamp would fail with OSError
        raise ValueError(f"time {ms!r} ms is out of range")
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def spend_log_row(batch: UsageBatch, event: UsageEvent) -> Row:
    """The spend_logs row of one event of the batch; fields older nodes may omit get defaults."""
    e = event
    return {
        "request_id": e["request_id"],
        "response_id": e.get("response_id") or None,
        "call_type": e["call_type"],
        "api_key": e["key_hash"],
        "key_alias": e.get("key_alias", ""),
        "spend": float(e["cost"]),
        "prompt_tokens": e["prompt_tokens"],
        "completion_tokens": e["completion_tokens"],
        "cached_tokens": e.get("cached_tokens", 0),
        "reasoning_tokens": e.get("reasoning_tokens", 0),
        "total_tokens": e["total_tokens"],
        "start_time": _ts(e["start_time_ms"]),
        "end_time": _ts(e["end_time_ms"]),
        "ttft_ms": float(e.get("ttft_ms", 0.0)),
        "model": e["model"],
        "model_group": e.get("model_group", ""),
        "model_id": e.get("deployment_id", ""),
        "custom_llm_provider": e.get("provider", ""),
        "upstream_model": e.get("upstream_model", ""),
        "api_base": e.get("api_base", ""),
        "user_id": e.get("user_id", ""),
        "team_id": e.get("team_id", ""),
        "organization_id": e.get("organization_id", ""),
        "end_user": e.get("customer_id", ""),
        "request_tags": list(e.get("tags", [])),
        "stream": bool(e.get("stream", False)),
        "status": e["status"],
        "http_status": int(e.get("http_status", 0)),
        "error_code": e.get("error_code", ""),
        "usage_estimated": bool(e.get("usage_estimated", False)),
        "attempts": int(e.get("attempts", 1)),
        "node_id": batch.node_id,
        "node_seq": batch.seq,
        "extra": {},
    }


def spend_log_rows(batches: Iterable[UsageBatch]) -> list[Row]:
    """The spend_logs rows of every event of the batches, in order."""
    return [spend_log_row(batch, event) for batch in batches for event in batch.events]


def rows_of(batch: UsageBatch) -> tuple[list[tuple[UsageEvent, Row]], list[RejectedEvent]]:
    """Each event of the batch with its row, and the events that cannot become one (those the
    envelope check rejected, and values no row can hold, such as a time past the year 9999)."""
    rows: list[tuple[UsageEvent, Row]] = []
    rejected = list(batch.rejected)
    for event in batch.events:
        try:
            rows.append((event, spend_log_row(batch, event)))
        except (ValueError, TypeError, OverflowError) as exc:
            rejected.append(RejectedEvent(event, f"unusable: {type(exc).__name__}"))
    return rows, rejected
