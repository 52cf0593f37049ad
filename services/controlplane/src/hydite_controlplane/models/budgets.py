"""Budgets: named sets of spend and rate limits (LiteLLM's budget objects) that customers, keys and
teams link to by budget_id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from hydite_controlplane.models.common import RecordColumns


class BudgetRow(RecordColumns, table=True):
    """A budget; the rows that link to it name it by budget_id."""

    __tablename__ = "budgets"

    budget_id: str = Field(primary_key=True)
    max_budget: float | None = None
    soft_budget: float | None = None
    max_parallel_requests: int | None = Field(default=None, sa_type=BigInteger)
    tpm_limit: int | None = Field(default=None, sa_type=BigInteger)
    rpm_limit: int | None = Field(default=None, sa_type=BigInteger)
    model_max_budget: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    budget_duration: str | None = None
    budget_reset_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    budget_windows: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONB)
    """Further budget periods, each {max_budget, soft_budget?, budget_duration}."""
    updated_by: str = ""
