"""Columns several tables share: limits, metadata and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Timezone-aware now."""
    return datetime.now(UTC)


class LimitColumns(SQLModel):
    """Budget and rate limits an entity can carry."""

    max_budget: float | None = None
    soft_budget: float | None = None
    budget_duration: str | None = None
    rpm_limit: int | None = Field(default=None, sa_type=BigInteger)
    tpm_limit: int | None = Field(default=None, sa_type=BigInteger)
    max_parallel_requests: int | None = Field(default=None, sa_type=BigInteger)
    model_rpm_limit: dict[str, int] = Field(default_factory=dict, sa_type=JSONB)
    model_tpm_limit: dict[str, int] = Field(default_factory=dict, sa_type=JSONB)
    budget_windows: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONB)
    """Further budget periods, each {max_budget, soft_budget?, budget_duration}."""


class RecordColumns(SQLModel):
    """Metadata and audit timestamps."""

    metadata_: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSONB, sa_column_kwargs={"name": "metadata"}
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    created_by: str = ""
