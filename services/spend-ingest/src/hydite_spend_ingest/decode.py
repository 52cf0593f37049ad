"""Usage batches to spend_logs rows (pure): one dict per event, keyed by SpendLog's column names.

The writer puts the values in the table's column order; JSON columns hold plain lists and dicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import orjson
from psycopg.types.json import Jsonb

from hydite_common.events import RejectedEvent, UsageBatch, UsageEvent, UsagePayload

Row = dict[str, object]
PayloadRow = tuple[str, str, str, Jsonb | None, Jsonb | None, bool, datetime]
"""A spend_payloads row: request_id, api_key, team_id, messages, response, truncated, created_at."""


METERED_UNITS = (
    "cache_write_tokens", "audio_prompt_tokens", "audio_completion_tokens", "input_characters",
    "audio_seconds", "images", "search_units", "unmetered",
)  # fmt: skip
"""Units an event may report besides the token columns; a row keeps the non-zero ones in `extra`."""

EVENT_DETAILS = (
    "route", "first_token_ms", "latency_ms", "error_type", "retries", "fallbacks", "client_ip_hash",
    "usage_source", "payload_stored", "customer_entity",
)  # fmt: skip
"""Schema 2's details of a request a row keeps in `extra` when set (the request's own `metadata`
goes there as `request_metadata`)."""

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
        "currency": e.get("currency") or "USD",
        "cost_source": e.get("cost_source", ""),
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
        "extra": _extra(e),
    }


def _extra(event: UsageEvent) -> dict[str, object]:
    fields: dict[str, object] = dict(event)
    extra = {name: fields[name] for name in (*METERED_UNITS, *EVENT_DETAILS) if fields.get(name)}
    metadata = fields.get("metadata")
    if isinstance(metadata, dict) and metadata:
        extra["request_metadata"] = metadata
    return extra


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


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    return value


def payload_row(payload: UsagePayload) -> PayloadRow:
    """The spend_payloads row of a stored prompt and response (ValueError / TypeError if unusable)."""
    p: dict[str, object] = dict(payload)
    created_ms = p.get("created_ms", 0)
    if not isinstance(created_ms, int | float) or isinstance(created_ms, bool):
        raise TypeError("created_ms is not a number")
    messages, response = p.get("messages"), p.get("response")
    return (
        _text(p["request_id"], "request_id"),
        _text(p.get("key_hash", ""), "key_hash"),
        _text(p.get("team_id", ""), "team_id"),
        None if messages is None else Jsonb(messages, dumps=_json),
        None if response is None else Jsonb(response, dumps=_json),
        bool(p.get("truncated", False)),
        _ts(float(created_ms)),
    )


def payload_rows(batch: UsageBatch) -> tuple[list[tuple[UsagePayload, PayloadRow]], list[RejectedEvent]]:
    """Each stored payload of the batch with its row, and those that cannot become one."""
    rows: list[tuple[UsagePayload, PayloadRow]] = []
    rejected: list[RejectedEvent] = []
    for payload in batch.payloads:
        try:
            rows.append((payload, payload_row(payload)))
        except (ValueError, TypeError, OverflowError) as exc:
            rejected.append(RejectedEvent(payload, f"unusable payload: {type(exc).__name__}"))
    return rows, rejected
