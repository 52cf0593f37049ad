"""rate limits as 64-bit integers

TPM limits of large tenants pass 2^31; the snapshot carries them as uint64.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LIMIT_TABLES = ("customers", "key_groups", "organizations", "teams", "users", "virtual_keys")
LIMIT_COLUMNS = ("rpm_limit", "tpm_limit", "max_parallel_requests")
DEPLOYMENT_COLUMNS = ("rpm", "tpm")


def _alter(to: type[sa.types.TypeEngine[int]]) -> None:
    for table in LIMIT_TABLES:
        for column in LIMIT_COLUMNS:
            op.alter_column(table, column, type_=to(), existing_nullable=True)
    for column in DEPLOYMENT_COLUMNS:
        op.alter_column("deployments", column, type_=to(), existing_nullable=True)


def upgrade() -> None:
    _alter(sa.BigInteger)


def downgrade() -> None:
    _alter(sa.Integer)
