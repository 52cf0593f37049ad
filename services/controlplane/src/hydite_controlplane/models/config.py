"""The config change log (versions in commit order) and per-node ACK state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index
from sqlmodel import Field, SQLModel

from hydite_controlplane.models.common import utcnow


class ConfigChange(SQLModel, table=True):
    """One resource changed by the write that committed config version `version`."""

    __tablename__ = "config_changes"
    __table_args__ = (Index("ix_config_changes_version", "version"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    version: int = Field(sa_column=Column(BigInteger, nullable=False))
    type_url: str
    name: str
    op: str = Field(description="upsert | remove")
    committed_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class ConfigNode(SQLModel, table=True):
    """What a data plane has applied, as last reported over its config stream."""

    __tablename__ = "config_nodes"

    node_id: str = Field(primary_key=True)
    hostname: str = ""
    controlplane_id: str = ""
    connected: bool = False
    acked_version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    nacked_version: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_error: str = ""
    loading: bool = False
    """A full snapshot was sent and not yet ACKed or NACKed: writes do not wait for this node."""
    connected_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    last_seen: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
