"""tags with their own budget and rate limits (LiteLLM's /tag/new)

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _json_column(name: str, default: str) -> sa.Column[object]:
    return sa.Column(name, postgresql.JSONB(astext_type=sa.Text()), nullable=False, server_default=default)


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=True),
        _json_column("models", "[]"),
        _json_column("model_max_budget", "{}"),
        sa.Column("max_budget", sa.Float(), nullable=True),
        sa.Column("soft_budget", sa.Float(), nullable=True),
        sa.Column("budget_duration", sa.String(), nullable=True),
        sa.Column("rpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("tpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("max_parallel_requests", sa.BigInteger(), nullable=True),
        _json_column("model_rpm_limit", "{}"),
        _json_column("model_tpm_limit", "{}"),
        _json_column("budget_windows", "[]"),
        _json_column("metadata", "{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("updated_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("tags")
