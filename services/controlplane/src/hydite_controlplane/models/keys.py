"""Virtual keys, stored by the sha256 hash of the key only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from hydite_controlplane.models.common import LimitColumns, RecordColumns


class VirtualKeyRow(LimitColumns, RecordColumns, table=True):
    """A virtual key; `token` is the sha256 hex of the key and the primary key."""

    __tablename__ = "virtual_keys"

    token: str = Field(primary_key=True, max_length=64)
    key_name: str = Field(description="masked key, e.g. sk-...abcd")
    key_alias: str | None = Field(default=None, unique=True)
    user_id: str | None = Field(default=None, index=True)
    team_id: str | None = Field(default=None, index=True)
    organization_id: str | None = Field(default=None, index=True)
    customer_id: str | None = None
    key_group: str | None = None
    models: list[str] = Field(default_factory=list, sa_type=JSONB)
    tags: list[str] = Field(default_factory=list, sa_type=JSONB)
    allowed_routes: list[str] = Field(default_factory=list, sa_type=JSONB)
    guardrails: list[str] = Field(default_factory=list, sa_type=JSONB)
    blocked: bool = False
    # Which kind of caller blocked the key ("master", "proxy_admin" or "team_admin"): a team admin
    # may not lift an admin's block.
    blocked_by: str | None = None
    expires: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # A requested model name -> the model that serves it (LiteLLM's key aliases).
    aliases: dict[str, str] = Field(default_factory=dict, sa_type=JSONB)
    spend: float = 0.0
    # Store the prompt and response of the key's requests with their spend rows.
    store_prompts: bool = False
    budget_id: str | None = Field(default=None, index=True)
    extra_fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)  # LiteLLM fields, stored only
