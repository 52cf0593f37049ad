"""spend rows say which currency their spend is in and where its price came from

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows written before prices carried a currency were priced in US dollars.
    op.add_column(
        "spend_logs", sa.Column("currency", sa.String(length=8), nullable=False, server_default="USD")
    )
    op.add_column(
        "spend_logs", sa.Column("cost_source", sa.String(length=32), nullable=False, server_default="")
    )


def downgrade() -> None:
    op.drop_column("spend_logs", "cost_source")
    op.drop_column("spend_logs", "currency")
