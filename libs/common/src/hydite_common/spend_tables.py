"""Spend tables: written by spend-ingest, read by the control plane's spend routes.

The control plane's alembic migrations own the schema; these classes describe it, and
spend-ingest's writer takes its column list from them. Needs the ``db`` extra.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Index, Numeric, String, Table, false, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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
    currency: str = Field(default="USD", max_length=8, description="ISO 4217 code of spend")
    cost_source: str = Field(
        default="", max_length=32, description="deployment, model_info, genai-prices, litellm or unknown"
    )
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
    ingested_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
        description="when spend-ingest committed the row (set by the database): end_time to this is the lag",
    )


SPEND_LOGS: Table = SpendLog.metadata.tables[str(SpendLog.__tablename__)]
"""SpendLog's table, typed (sqlmodel leaves ``SpendLog.__table__`` untyped)."""


MONEY = Numeric(30, 12)
"""Sums of spend: exact decimal addition, whatever the order rows arrive in."""

ROLLUP_KINDS = ("key", "user", "team", "team_member", "organization", "customer", "model", "tag")
"""What a daily rollup row sums by. `model` rows (entity: the model group) cover every request once;
the others skip a request that has no such entity (no user, no tags, ...). A `team_member` is
`team_id:user_id` (a request of a team's key with a user); a `customer` is the end user as budgets
count them (`customer_entity` of the usage event, else its customer_id)."""

TOTALS_ONLY_KINDS = ("team_member",)
"""Kinds summed for their running total (budgets read it) but kept out of the daily rollups: no
report breaks spend down by team member, and a team member is as many rows as a key."""

TOTAL_KINDS = ("key", "user", "team", "team_member", "organization", "customer", "tag", "global")
"""What a running total is kept for; `global` has the entity "" (the whole proxy)."""


class SpendDaily(SQLModel, table=True):
    """Daily rollup: the requests, tokens and spend of one entity on one UTC day, per model group,
    provider and currency. Written by spend-ingest in the transaction that inserts the rows, from
    the rows actually inserted; never adjusted by admin changes (reports read it)."""

    __tablename__ = "spend_daily"
    __table_args__ = (Index("ix_spend_daily_kind_day", "kind", "day"),)

    day: date = Field(sa_column=Column(Date, primary_key=True))
    kind: str = Field(sa_column=Column(String(16), primary_key=True))
    entity: str = Field(sa_column=Column(String(256), primary_key=True))
    model_group: str = Field(sa_column=Column(String(256), primary_key=True))
    provider: str = Field(sa_column=Column(String(64), primary_key=True))
    currency: str = Field(sa_column=Column(String(8), primary_key=True))
    requests: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    failures: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    prompt_tokens: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    completion_tokens: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )
    total_tokens: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    cached_tokens: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    reasoning_tokens: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    spend: Decimal = Field(default=Decimal(0), sa_column=Column(MONEY, nullable=False, server_default="0"))


class SpendTotal(SQLModel, table=True):
    """Running total of one entity in one currency since `reset_at`: what budgets read. spend-ingest
    adds the rows it inserts; an admin change of spend (set, reset) writes it directly. `version`
    grows with every change, so the KV entry written from it is never replaced by an older one."""

    __tablename__ = "spend_totals"

    kind: str = Field(sa_column=Column(String(16), primary_key=True))
    entity: str = Field(sa_column=Column(String(256), primary_key=True))
    currency: str = Field(sa_column=Column(String(8), primary_key=True))
    spend: Decimal = Field(default=Decimal(0), sa_column=Column(MONEY, nullable=False, server_default="0"))
    requests: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    total_tokens: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    reset_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    updated_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )


class SpendWindow(SQLModel, table=True):
    """One budget period of an entity (`duration` as budget_duration spells it): when it began,
    when it resets, and the entity's running total per currency when it began (`baseline`, decimal
    strings). Written by the control plane; spend-ingest reads it into the entity's KV entry."""

    __tablename__ = "spend_windows"
    __table_args__ = (Index("ix_spend_windows_reset_at", "reset_at"),)

    kind: str = Field(sa_column=Column(String(16), primary_key=True))
    entity: str = Field(sa_column=Column(String(256), primary_key=True))
    duration: str = Field(sa_column=Column(String(32), primary_key=True))
    start_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    reset_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    baseline: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    updated_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )


class SpendPublisher(SQLModel, table=True):
    """Per publishing data-plane process (`node_id.incarnation`): the highest batch sequence up to
    which every batch has been ingested (`watermark`), and the sequences ingested above it."""

    __tablename__ = "spend_publishers"

    publisher_id: str = Field(sa_column=Column(String(256), primary_key=True))
    node_id: str = Field(sa_column=Column(String(256), nullable=False))
    watermark: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    max_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    pending: list[int] = Field(
        default_factory=list, sa_column=Column(ARRAY(BigInteger), nullable=False, server_default="{}")
    )
    updated_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )


class SpendReconciliation(SQLModel, table=True):
    """Usage events per publishing process and minute (of the event's end time): how many the data
    plane emitted (its own count, published as tallies) against how many were ingested."""

    __tablename__ = "spend_reconciliation"
    __table_args__ = (Index("ix_spend_reconciliation_node_minute", "node_id", "minute"),)

    publisher_id: str = Field(sa_column=Column(String(256), primary_key=True))
    minute: datetime = Field(sa_column=Column(DateTime(timezone=True), primary_key=True))
    node_id: str = Field(sa_column=Column(String(256), nullable=False))
    emitted: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    ingested: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))


class SpendPayload(SQLModel, table=True):
    """The prompt and response of one request, stored only when its key or team opts in
    (`store_prompts`); kept apart from the spend row, truncated, and redactable."""

    __tablename__ = "spend_payloads"
    __table_args__ = (Index("ix_spend_payloads_created", "created_at"),)

    request_id: str = Field(sa_column=Column(String(128), primary_key=True))
    api_key: str = Field(default="", sa_column=Column(String(64), nullable=False, server_default=""))
    team_id: str = Field(default="", sa_column=Column(String, nullable=False, server_default=""))
    messages: Any = Field(default=None, sa_column=Column(JSONB, nullable=True))
    response: Any = Field(default=None, sa_column=Column(JSONB, nullable=True))
    truncated: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    redacted_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    created_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )


def _table(model: type[SQLModel]) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


SPEND_DAILY: Table = _table(SpendDaily)
SPEND_TOTALS: Table = _table(SpendTotal)
SPEND_PUBLISHERS: Table = _table(SpendPublisher)
SPEND_RECONCILIATION: Table = _table(SpendReconciliation)
SPEND_PAYLOADS: Table = _table(SpendPayload)
SPEND_WINDOWS: Table = _table(SpendWindow)
SPEND_TABLES: tuple[Table, ...] = (
    SPEND_LOGS, SPEND_DAILY, SPEND_TOTALS, SPEND_PUBLISHERS, SPEND_RECONCILIATION, SPEND_PAYLOADS,
    SPEND_WINDOWS,
)  # fmt: skip
"""Every table spend-ingest writes (its unit tests create exactly these)."""
