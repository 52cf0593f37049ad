"""Who calls: users, teams, organizations, customers (end users) and key groups."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from hydite_controlplane.models.common import LimitColumns, RecordColumns


class UserRow(LimitColumns, RecordColumns, table=True):
    """An internal user who owns keys."""

    __tablename__ = "users"

    user_id: str = Field(primary_key=True)
    user_email: str | None = None
    user_role: str = "internal_user"
    organization_id: str | None = None
    teams: list[str] = Field(default_factory=list, sa_type=JSONB)
    models: list[str] = Field(default_factory=list, sa_type=JSONB)
    blocked: bool = False
    # Model aliases every key of the user has (its team's and its own aliases win).
    aliases: dict[str, str] = Field(default_factory=dict, sa_type=JSONB)
    spend: float = 0.0
    extra_fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)


class TeamRow(LimitColumns, RecordColumns, table=True):
    """A team of users sharing budgets, limits and a model allowlist."""

    __tablename__ = "teams"

    team_id: str = Field(primary_key=True)
    team_alias: str | None = None
    organization_id: str | None = None
    key_group: str | None = None
    models: list[str] = Field(default_factory=list, sa_type=JSONB)
    # {user_id, role, user_email?, limits?}: limits are the member's budget and rate limits in the team.
    members_with_roles: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONB)
    blocked: bool = False
    model_aliases: dict[str, str] = Field(default_factory=dict, sa_type=JSONB)
    extra_fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    budget_id: str | None = Field(default=None, index=True)
    # Store the prompt and response of every request of the team's keys with their spend rows.
    store_prompts: bool = False


class OrganizationRow(LimitColumns, RecordColumns, table=True):
    """An organization owning teams."""

    __tablename__ = "organizations"

    organization_id: str = Field(primary_key=True)
    organization_alias: str | None = None
    models: list[str] = Field(default_factory=list, sa_type=JSONB)
    blocked: bool = False
    # {user_id, user_role, user_email?, max_budget_in_organization?, created_at, updated_at}
    members: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONB)
    extra_fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)


class CustomerRow(LimitColumns, RecordColumns, table=True):
    """An end user of a customer application, named by the request's `user` field.

    The end-user id is unique within its scope: a team, else an organization, else global (both
    None: created by a proxy admin). `name`, the config resource name, is the identity.
    """

    __tablename__ = "customers"

    name: str = Field(primary_key=True)
    customer_id: str = Field(index=True)
    team_id: str | None = Field(default=None, index=True)
    organization_id: str | None = Field(default=None, index=True)
    alias: str | None = None
    allowed_models: list[str] = Field(default_factory=list, sa_type=JSONB)
    blocked: bool = False
    spend: float = 0.0
    budget_id: str | None = Field(default=None, index=True)
    extra_fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)


class KeyGroupRow(LimitColumns, RecordColumns, table=True):
    """A named model allowlist with a routing strategy and quota that keys and teams reference."""

    __tablename__ = "key_groups"

    name: str = Field(primary_key=True)
    models: list[str] = Field(default_factory=list, sa_type=JSONB)
    routing_strategy: str = "simple-shuffle"
