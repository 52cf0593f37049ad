"""LiteLLM's own team and organization fields

Teams get their model aliases (requested model name -> model name, applied by the data plane to
the team's keys); organizations get their members (user, role within the organization, budget
within it). Both get `extra_fields`: the fields of LiteLLM's request models that Hydite stores and
shows but does not act on yet.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _json_column(name: str, empty: str) -> sa.Column[object]:
    return sa.Column(
        name, postgresql.JSONB(astext_type=sa.Text()), nullable=False, server_default=sa.text(f"'{empty}'")
    )


def upgrade() -> None:
    """Add teams.model_aliases and extra_fields, organizations.members and extra_fields."""
    op.add_column("teams", _json_column("model_aliases", "{}"))
    op.add_column("teams", _json_column("extra_fields", "{}"))
    op.add_column("organizations", _json_column("members", "[]"))
    op.add_column("organizations", _json_column("extra_fields", "{}"))


def downgrade() -> None:
    """Drop them again."""
    op.drop_column("organizations", "extra_fields")
    op.drop_column("organizations", "members")
    op.drop_column("teams", "extra_fields")
    op.drop_column("teams", "model_aliases")
