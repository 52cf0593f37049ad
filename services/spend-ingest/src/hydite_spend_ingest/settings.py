"""Typed settings of spend-ingest (HYDITE_* environment variables)."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import field_validator
from pydantic_settings import SettingsConfigDict

from hydite_common.settings import BaseServiceSettings, DatabaseSettings

_RETENTION = re.compile(r"(\d+)([dhms])")
_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


def parse_retention(value: str) -> timedelta | None:
    """A retention such as "30d", "12h", "90m" or "45s"; None for "0" or "" (keep forever)."""
    text = value.strip().lower()
    if text in ("", "0"):
        return None
    match = _RETENTION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"spend_log_retention {value!r} is not a duration: a whole number followed by d, h, m or s"
            " (30d, 12h, 90m), or 0 to keep spend logs forever"
        )
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds == 0:
        return None
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"spend_log_retention {value!r} is too long") from None


class IngestSettings(BaseServiceSettings, DatabaseSettings):
    """Everything spend-ingest reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="HYDITE_", extra="ignore")

    ingest_port: int = 4002
    fetch_batch_messages: int = 100
    """Messages written in one transaction at most."""
    fetch_chunk_messages: int = 10
    """Messages pulled from JetStream per request (see UsageConsumer.fetch)."""
    fetch_max_bytes: int = 16 * 1024 * 1024
    """Bytes of messages gathered for one transaction at most (the last pull may pass it)."""
    fetch_wait_seconds: float = 0.05
    consumer_ack_wait_seconds: float = 30.0
    newer_schema_retry_seconds: float = 30.0
    """How long a message of a newer schema version waits before it is offered again (to this
    replica or an upgraded one); it is never dead-lettered."""
    spend_log_retention: timedelta | None = None
    """How long spend_logs rows (and stored payloads and reconciliation counts) are kept; None: forever.
    Rollups and running totals are kept whatever it says."""
    retention_interval_seconds: float = 300.0
    retention_batch_rows: int = 5_000
    retention_pause_seconds: float = 0.05
    totals_retry_seconds: float = 1.0
    totals_flush_interval_seconds: float = 0.25
    """The shortest time between two rounds of KV writes (the first change after a quiet spell is
    written at once)."""
    totals_recent_seconds: float = 600.0
    """On start, the KV entries of totals changed this recently are written again (a write the last
    process could not make is not lost)."""

    @field_validator("spend_log_retention", mode="before")
    @classmethod
    def _retention_duration(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_retention(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return parse_retention(str(value)) if value == 0 else timedelta(seconds=value)
        return value
