"""budget periods: spend_windows (each period's start, reset time and baseline per entity),
budget_alerts (soft and max budget alerts fired, once per period), budget_windows on every
entity that carries limits (further periods besides max_budget / budget_duration)

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_LIMITED_TABLES = ("virtual_keys", "users", "teams", "organizations", "customers", "key_groups", "budgets")


def upgrade() -> None:
    op.create_table(
        "spend_windows",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("entity", sa.String(256), primary_key=True),
        sa.Column("duration", sa.String(32), primary_key=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reset_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("baseline", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_spend_windows_reset_at", "spend_windows", ["reset_at"])
    op.create_table(
        "budget_alerts",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("entity", sa.String(256), primary_key=True),
        sa.Column("duration", sa.String(32), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("event", sa.String(32), primary_key=True),
        sa.Column("spend", sa.Numeric(30, 12), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_budget_alerts_fired_at", "budget_alerts", ["fired_at"])
    for table in _LIMITED_TABLES:
        op.add_column(
            table,
            sa.Column("budget_windows", postgresql.JSONB(), nullable=False, server_default="[]"),
        )


def downgrade() -> None:
    for table in reversed(_LIMITED_TABLES):
        op.drop_column(table, "budget_windows")
    op.drop_table("budget_alerts")
    op.drop_table("spend_windows")
