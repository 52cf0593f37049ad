"""The audit trail of admin writes: who did what, with the object before and after (secrets masked)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from hydite_controlplane.models.common import utcnow


class AuditEntry(SQLModel, table=True):
    """One admin write."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_ts", "ts"),
        Index("ix_audit_log_object", "object_type", "object_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    ts: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
