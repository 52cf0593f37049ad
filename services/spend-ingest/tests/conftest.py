"""Fixtures of spend-ingest's unit tests: real Postgres and NATS JetStream (embedded ones when none
is reachable), one database per run holding the spend tables, and one NATS prefix per test."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator

import nats
import psycopg
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from psycopg import sql
from psycopg.rows import TupleRow
from sqlalchemy import create_engine

from hydite_common.embedded import ensure_nats, ensure_postgres
from hydite_common.settings import to_libpq_url, to_sqlalchemy_url, with_database_name
from hydite_common.spend_tables import SPEND_TABLES
from hydite_common.usage_stream import dead_letter_stream_name, ensure_usage_streams, usage_stream_name
from hydite_spend_ingest.consumer import UsageConsumer
from hydite_spend_ingest.settings import IngestSettings

POSTGRES_URL = os.environ.get("HYDITE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NATS_URL = os.environ.get("HYDITE_NATS_URL", "nats://127.0.0.1:4222")
# Short, so a test can see that a settled message is not redelivered; long against a slow write.
ACK_WAIT_SECONDS = 1.0


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a reachable Postgres server (an embedded one when none answers); stopped afterwards."""
    server = ensure_postgres(POSTGRES_URL, tmp_path_factory.mktemp("postgres"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def spend_database(postgres_server_url: str) -> Iterator[str]:
    """Name of this run's own database, holding every spend table; dropped afterwards."""
    name = f"spend_ingest_test_{secrets.token_hex(4)}"
    admin_url = with_database_name(to_libpq_url(postgres_server_url), "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        engine = create_engine(to_sqlalchemy_url(with_database_name(postgres_server_url, name)))
        try:
            for table in SPEND_TABLES:
                table.create(engine)
        finally:
            engine.dispose()
        yield name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def nats_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a reachable JetStream NATS server (an embedded one when none answers)."""
    server = ensure_nats(NATS_URL, tmp_path_factory.mktemp("nats"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def nats_client(nats_server_url: str) -> AsyncIterator[NatsClient]:
    """One NATS connection for the run."""
    nc = await nats.connect(nats_server_url)
    try:
        yield nc
    finally:
        await nc.close()


@pytest.fixture
def settings(postgres_server_url: str, spend_database: str, nats_server_url: str) -> IngestSettings:
    """spend-ingest settings for one test: the run's database and a NATS prefix of its own."""
    return IngestSettings(
        database_url=postgres_server_url,
        database_name=spend_database,
        nats_url=nats_server_url,
        nats_prefix=f"spend_test_{secrets.token_hex(4)}",
        consumer_ack_wait_seconds=ACK_WAIT_SECONDS,
    )


@pytest.fixture
async def js(nats_client: NatsClient, settings: IngestSettings) -> AsyncIterator[JetStreamContext]:
    """JetStream with the test's usage and dead-letter streams; both deleted afterwards."""
    context = nats_client.jetstream()
    await ensure_usage_streams(context, settings)
    try:
        yield context
    finally:
        for stream in (usage_stream_name(settings), dead_letter_stream_name(settings)):
            await context.delete_stream(stream)


@pytest.fixture
def consumer(settings: IngestSettings, js: JetStreamContext) -> UsageConsumer:
    """The consumer under test, on the test's streams."""
    return UsageConsumer(settings, js)


@pytest.fixture
async def subscription(consumer: UsageConsumer) -> AsyncIterator[JetStreamContext.PullSubscription]:
    """The consumer's durable pull subscription, as its run loop binds it."""
    sub = await consumer.subscribe()
    try:
        yield sub
    finally:
        await sub.unsubscribe()


@pytest.fixture
async def db(settings: IngestSettings) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
    """The test's own autocommit connection to the run's database, with every spend table emptied."""
    async with await psycopg.AsyncConnection.connect(settings.libpq_url, autocommit=True) as connection:
        await connection.execute("TRUNCATE " + ", ".join(table.name for table in SPEND_TABLES))
        yield connection


@pytest.fixture
async def conn(
    settings: IngestSettings, db: psycopg.AsyncConnection[TupleRow]
) -> AsyncIterator[psycopg.AsyncConnection[object]]:
    """The consumer's connection, opened as its run loop opens it (after the tables are emptied)."""
    async with await psycopg.AsyncConnection.connect(settings.libpq_url) as connection:
        yield connection
