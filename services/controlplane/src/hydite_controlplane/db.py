"""Database engine, sessions, and creating the database itself when it does not exist yet."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Executable, Result, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.settings import with_database_name

log = logging.getLogger(__name__)


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


async def listen_forever(
    libpq_url: str, channel: str, serve: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]
) -> None:
    """LISTEN on channel and hand the connection to serve, forever: a dropped connection is opened
    again with backoff (0.2 s doubling to 5 s), and serve runs again on the new one."""
    backoff = 0.2
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(libpq_url, autocommit=True) as conn:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                backoff = 0.2
                await serve(conn)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("listener on %s lost its connection; retrying", channel, exc_info=True)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
