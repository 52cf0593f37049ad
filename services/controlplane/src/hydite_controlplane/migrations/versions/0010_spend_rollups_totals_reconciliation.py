"""daily spend rollups, running totals, publisher watermarks, reconciliation counts, stored payloads;
spend_logs.ingested_at

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_MONEY = sa.Numeric(30, 12)


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")


def upgrade() -> None:
    op.add_column(
        "spend_logs",
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "spend_daily",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("entity", sa.String(256), primary_key=True),
        sa.Column("model_group", sa.String(256), primary_key=True),
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("currency", sa.String(8), primary_key=True),
        *(_count(name) for name in ("requests", "failures", "prompt_tokens", "completion_tokens")),
        *(_count(name) for name in ("total_tokens", "cached_tokens", "reasoning_tokens")),
        sa.Column("spend", _MONEY, nullable=False, server_default="0"),
    )
    op.create_index("ix_spend_daily_kind_day", "spend_daily", ["kind", "day"])
    op.create_table(
        "spend_totals",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("entity", sa.String(256), primary_key=True),
        sa.Column("currency", sa.String(8), primary_key=True),
        sa.Column("spend", _MONEY, nullable=False, server_default="0"),
        _count("requests"),
        _count("total_tokens"),
        _count("version"),
        sa.Column("reset_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    # What was spent before the rollups existed counts in the running totals.
    op.execute(
        """
        INSERT INTO spend_totals (kind, entity, currency, spend, requests, total_tokens, version, updated_at)
        SELECT kind, entity, currency, sum(spend), count(*), sum(total_tokens), 1, now() FROM (
            SELECT 'key' AS kind, api_key AS entity, currency, spend, total_tokens FROM spend_logs
            UNION ALL SELECT 'user', user_id, currency, spend, total_tokens
                FROM spend_logs WHERE user_id <> ''
            UNION ALL SELECT 'team', team_id, currency, spend, total_tokens
                FROM spend_logs WHERE team_id <> ''
            UNION ALL SELECT 'organization', organization_id, currency, spend, total_tokens
                FROM spend_logs WHERE organization_id <> ''
            UNION ALL SELECT 'customer', end_user, currency, spend, total_tokens
                FROM spend_logs WHERE end_user <> ''
            UNION ALL SELECT 'global', '', currency, spend, total_tokens FROM spend_logs
        ) AS spent GROUP BY kind, entity, currency
        """
    )
    op.create_table(
        "spend_publishers",
        sa.Column("publisher_id", sa.String(256), primary_key=True),
        sa.Column("node_id", sa.String(256), nullable=False),
        _count("watermark"),
        _count("max_seq"),
        sa.Column("pending", postgresql.ARRAY(sa.BigInteger()), nullable=False, server_default="{}"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "spend_reconciliation",
        sa.Column("publisher_id", sa.String(256), primary_key=True),
        sa.Column("minute", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("node_id", sa.String(256), nullable=False),
        _count("emitted"),
        _count("ingested"),
    )
    op.create_index("ix_spend_reconciliation_node_minute", "spend_reconciliation", ["node_id", "minute"])
    op.create_table(
        "spend_payloads",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("api_key", sa.String(64), nullable=False, server_default=""),
        sa.Column("team_id", sa.String(), nullable=False, server_default=""),
        sa.Column("messages", postgresql.JSONB(), nullable=True),
        sa.Column("response", postgresql.JSONB(), nullable=True),
        sa.Column("truncated", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_spend_payloads_created", "spend_payloads", ["created_at"])


def downgrade() -> None:
    tables = ("spend_payloads", "spend_reconciliation", "spend_publishers", "spend_totals", "spend_daily")
    for table in tables:
        op.drop_table(table)
    op.drop_column("spend_logs", "ingested_at")
