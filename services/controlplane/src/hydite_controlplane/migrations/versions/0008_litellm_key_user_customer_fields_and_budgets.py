"""LiteLLM's own key, user and customer fields; budgets

Keys and users carry model aliases (a requested model name -> the model that serves it) and a
spend; keys, customers and teams may link a budget (the new budgets table); keys, users and
customers keep the LiteLLM fields Hydite does not act on in extra_fields, to show them back.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_EMPTY_JSON = sa.text("'{}'::jsonb")


def _json_column(name: str) -> sa.Column[dict[str, object]]:
    return sa.Column(
        name, postgresql.JSONB(astext_type=sa.Text()), nullable=False, server_default=_EMPTY_JSON
    )


def upgrade() -> None:
    """Add the budgets table and the new columns (empty JSON, zero spend, no budget)."""
    op.create_table(
        "budgets",
        sa.Column("budget_id", sa.String(), nullable=False),
        sa.Column("max_budget", sa.Float(), nullable=True),
        sa.Column("soft_budget", sa.Float(), nullable=True),
        sa.Column("max_parallel_requests", sa.BigInteger(), nullable=True),
        sa.Column("tpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("rpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("model_max_budget", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("budget_duration", sa.String(), nullable=True),
        sa.Column("budget_reset_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("updated_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("budget_id"),
    )
    for table in ("virtual_keys", "users"):
        op.add_column(table, _json_column("aliases"))
    for table in ("virtual_keys", "users", "customers"):
        op.add_column(table, sa.Column("spend", sa.Float(), nullable=False, server_default="0"))
        op.add_column(table, _json_column("extra_fields"))
    for table in ("virtual_keys", "customers", "teams"):
        op.add_column(table, sa.Column("budget_id", sa.String(), nullable=True))
        op.create_index(f"ix_{table}_budget_id", table, ["budget_id"], unique=False)


def downgrade() -> None:
    """Drop the new columns and the budgets table."""
    for table in ("virtual_keys", "customers", "teams"):
        op.drop_index(f"ix_{table}_budget_id", table_name=table)
        op.drop_column(table, "budget_id")
    for table in ("virtual_keys", "users", "customers"):
        op.drop_column(table, "extra_fields")
        op.drop_column(table, "spend")
    for table in ("virtual_keys", "users"):
        op.drop_column(table, "aliases")
    op.drop_table("budgets")
