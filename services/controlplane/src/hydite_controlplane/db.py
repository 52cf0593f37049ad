"""Database engine, sessions, and creating the database itself when it does not exist yet."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Executable, Result, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.settings import with_database_name


def create_engine(sqlalchemy_url: str) -> AsyncEngine:
    """The service's one async engine."""
    return create_async_engine(sqlalchemy_url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def ensure_database(libpq_url: str) -> None:
    """CREATE DATABASE for the URL's database if it is missing (racing creators are fine)."""
    name = libpq_url.rsplit("/", 1)[-1].split("?", 1)[0]
    admin_url = with_database_name(libpq_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return
        with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


async def run_sql(
    session: AsyncSession, statement: str | Executable, params: dict[str, Any] | None = None
) -> Result[Any]:
    """Execute raw SQL (or a Core statement) on the session's connection, inside its transaction."""
    connection = await session.connection()
    executable = text(statement) if isinstance(statement, str) else statement
    return await connection.execute(executable, params or {})
