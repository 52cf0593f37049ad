"""Fixtures of the control plane's own tests: sessions on a freshly migrated database (on the
stack's Postgres) for tests that call control-plane code directly rather than over HTTP."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.devstack import Stack
from hydite_common.settings import to_libpq_url, to_sqlalchemy_url, with_database_name
from hydite_controlplane.db import create_engine, session_factory
from hydite_controlplane.migrations.runner import upgrade_to_head


@pytest.fixture
async def sessions(stack: Stack) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a freshly migrated database of its own."""
    assert stack.postgres is not None
    name = f"hydite_test_cp_{secrets.token_hex(3)}"
    server = to_libpq_url(stack.postgres.url)
    with psycopg.connect(with_database_name(server, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database_name(server, name)
    upgrade_to_head(url, to_sqlalchemy_url(url))
    engine = create_engine(to_sqlalchemy_url(url))
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()
        with psycopg.connect(with_database_name(server, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
