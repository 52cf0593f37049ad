"""Spend tables: written by spend-ingest, read by the control plane's spend routes.

The control plane's alembic migrations own the schema; these classes describe it, and
spend-ingest's writer takes its column list from them. Needs the ``db`` extra.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class SpendLog(SQLModel, table=True):
    """One row per request; request_id is unique so re-ingesting a batch changes nothing."""

    __tablename__ = "spend_logs"
    __table_args__ = (
        Index("ix_spend_logs_api_key_start", "api_key", "start_time"),
        Index("ix_spend_logs_team_start", "team_id", "start_time"),
        Index("ix_spend_logs_user_start", "user_id", "start_time"),
        Index("ix_spend_logs_start", "start_time"),
        Index("ix_spend_logs_response_id", "response_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    request_id: str = Field(unique=True, max_length=128)
    response_id: str | None = Field(
        default=None, max_length=256, description="the provider's id of the answer (chatcmpl-...)"
    )
    call_type: str = Field(max_length=64)
    api_key: str = Field(max_length=64, description="sha256 hex of the virtual key")
    key_alias: str = ""
    spend: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    start_time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    end_time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    ttft_ms: float = 0.0
    model: str = ""
    model_group: str = ""
    model_id: str = Field(default="", description="deployment id")
    custom_llm_provider: str = ""
    upstream_model: str = ""
    api_base: str = ""
    user_id: str = ""
    team_id: str = ""
    organization_id: str = ""
    end_user: str = ""
    request_tags: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    stream: bool = False
    status: str = "success"
    http_status: int = 200
    error_code: str = ""
    usage_estimated: bool = False
    attempts: int = 1
    node_id: str = ""
    node_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))


SPEND_LOGS: Table = SpendLog.metadata.tables[str(SpendLog.__tablename__)]
"""SpendLog's table, typed (sqlmodel leaves ``SpendLog.__table__`` untyped)."""
