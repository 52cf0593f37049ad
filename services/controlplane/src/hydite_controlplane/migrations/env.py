"""Alembic environment: online migrations against the configured URL, sync psycopg."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

import hydite_controlplane.models  # noqa: F401  registers every table on SQLModel.metadata

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    """Migrate inside one transaction on a dedicated connection."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
