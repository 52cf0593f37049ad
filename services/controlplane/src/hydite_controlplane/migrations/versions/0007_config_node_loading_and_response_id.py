"""config nodes report a full snapshot in flight; spend rows keep the provider's response id

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "config_nodes", sa.Column("loading", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("spend_logs", sa.Column("response_id", sa.String(length=256), nullable=True))
    op.create_index("ix_spend_logs_response_id", "spend_logs", ["response_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_spend_logs_response_id", table_name="spend_logs")
    op.drop_column("spend_logs", "response_id")
    op.drop_column("config_nodes", "loading")
