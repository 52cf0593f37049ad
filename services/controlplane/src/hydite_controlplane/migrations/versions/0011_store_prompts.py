"""keys and teams opt in to storing their requests' prompts and responses (store_prompts)

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("virtual_keys", "teams"):
        op.add_column(
            table, sa.Column("store_prompts", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    for table in ("teams", "virtual_keys"):
        op.drop_column(table, "store_prompts")
