"""Tags: request tags with their own budget and rate limits (LiteLLM's tag management)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from hydite_controlplane.models.common import LimitColumns, RecordColumns


class TagRow(LimitColumns, RecordColumns, table=True):
    """A tag requests carry (a key's tags or the request's metadata.tags), named by itself."""

    __tablename__ = "tags"

    name: str = Field(primary_key=True)
    description: str | None = None
    models: list[str] = Field(default_factory=list, sa_type=JSONB)
    """Model names or deployment ids the tag is for."""
    model_max_budget: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    updated_by: str = ""
