"""who blocked a key

A team admin may unblock only a key that a team admin blocked, never one an admin blocked; the key
remembers which kind of caller blocked it. Keys already blocked count as blocked by an admin.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add virtual_keys.blocked_by; keys blocked before it count as an admin's block."""
    op.add_column("virtual_keys", sa.Column("blocked_by", sa.String(), nullable=True))
    op.execute("UPDATE virtual_keys SET blocked_by = 'proxy_admin' WHERE blocked")


def downgrade() -> None:
    """Drop virtual_keys.blocked_by."""
    op.drop_column("virtual_keys", "blocked_by")
