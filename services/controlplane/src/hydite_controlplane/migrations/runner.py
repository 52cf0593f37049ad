"""Run `alembic upgrade head` under a Postgres advisory lock, so concurrent starts are safe."""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config

MIGRATION_LOCK_ID = 0x48594454_4D494752  # "HYDT" "MIGR"
MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(sqlalchemy_url: str) -> Config:
    """Alembic configuration pointing at this package's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url.replace("%", "%%"))
    return config


def upgrade_to_head(libpq_url: str, sqlalchemy_url: str) -> None:
    """Apply every pending migration; a second caller waits, then finds nothing to do."""
    with psycopg.connect(libpq_url, autocommit=True) as lock_conn:
        lock_conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            command.upgrade(alembic_config(sqlalchemy_url), "head")
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
