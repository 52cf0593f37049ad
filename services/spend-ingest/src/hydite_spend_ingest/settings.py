"""Typed settings of spend-ingest (HYDITE_* environment variables)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from hydite_common.settings import BaseServiceSettings, DatabaseSettings


class IngestSettings(BaseServiceSettings, DatabaseSettings):
    """Everything spend-ingest reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="HYDITE_", extra="ignore")

    ingest_port: int = 4002
    fetch_batch_messages: int = 100
    fetch_wait_seconds: float = 0.05
    consumer_ack_wait_seconds: float = 30.0
