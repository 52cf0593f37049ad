"""end users are per tenant

An end-user id is unique within its scope (a team, else an organization, else global), so the
customers table is keyed by the config resource name, which encodes the scope. Existing rows
become global; their resource name is their id, as it was.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("name", sa.String(), nullable=True))
    op.add_column("customers", sa.Column("team_id", sa.String(), nullable=True))
    op.add_column("customers", sa.Column("organization_id", sa.String(), nullable=True))
    op.execute("UPDATE customers SET name = customer_id")
    op.alter_column("customers", "name", existing_type=sa.String(), nullable=False)
    op.drop_constraint("customers_pkey", "customers", type_="primary")
    op.create_primary_key("customers_pkey", "customers", ["name"])
    op.create_index("ix_customers_customer_id", "customers", ["customer_id"])
    op.create_index("ix_customers_team_id", "customers", ["team_id"])
    op.create_index("ix_customers_organization_id", "customers", ["organization_id"])


def downgrade() -> None:
    # Scoped end users have no place in a table keyed by the bare id: they are dropped.
    op.execute("DELETE FROM customers WHERE team_id IS NOT NULL OR organization_id IS NOT NULL")
    op.drop_index("ix_customers_organization_id", "customers")
    op.drop_index("ix_customers_team_id", "customers")
    op.drop_index("ix_customers_customer_id", "customers")
    op.drop_constraint("customers_pkey", "customers", type_="primary")
    op.create_primary_key("customers_pkey", "customers", ["customer_id"])
    op.drop_column("customers", "organization_id")
    op.drop_column("customers", "team_id")
    op.drop_column("customers", "name")
