"""Tests for hydite_common.embedded: reachability probes and embedded Postgres / NATS servers."""

from __future__ import annotations

import asyncio
import os
import pathlib
import socket
import tempfile
import threading
from collections.abc import Iterator

import nats
import psycopg
import pytest

from hydite_common import embedded
from hydite_common.embedded import (
    ensure_nats,
    ensure_postgres,
    is_nats_reachable,
    is_postgres_reachable,
)
from hydite_common.settings import with_database_name

MACHINE_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MACHINE_NATS_URL = "nats://127.0.0.1:4222"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def fake_nats_without_jetstream() -> Iterator[int]:
    """A one-shot TCP server that greets like NATS but without JetStream; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    port: int = server.getsockname()[1]

    def greet() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b'INFO {"server_id":"fake","jetstream":false}\r\n')

    thread = threading.Thread(target=greet, daemon=True)
    thread.start()
    yield port
    thread.join(timeout=5)
    server.close()


def test_is_postgres_reachable_true_for_machine_server() -> None:
    """The machine's Postgres is reachable, whatever the URL's scheme form and database."""
    assert is_postgres_reachable(MACHINE_POSTGRES_URL)
    assert is_postgres_reachable("postgresql+psycopg://postgres@127.0.0.1:5432/no_such_db")
    assert is_postgres_reachable("postgres://postgres@127.0.0.1:5432/postgres")


def test_is_postgres_reachable_false_for_closed_port() -> None:
    """Nothing listening on the port means unreachable."""
    assert not is_postgres_reachable(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")


def test_is_nats_reachable_true_for_machine_server() -> None:
    """The machine's NATS runs with JetStream, so it counts as reachable."""
    assert is_nats_reachable(MACHINE_NATS_URL)


def test_is_nats_reachable_false_for_closed_port() -> None:
    """Nothing listening on the port means unreachable."""
    assert not is_nats_reachable(f"nats://127.0.0.1:{free_port()}")


def test_is_nats_reachable_false_without_jetstream(fake_nats_without_jetstream: int) -> None:
    """A NATS server that does not announce JetStream is not good enough."""
    assert not is_nats_reachable(f"nats://127.0.0.1:{fake_nats_without_jetstream}")


def test_is_nats_reachable_false_for_other_protocol() -> None:
    """A server that never sends an INFO line (here Postgres) is not NATS."""
    assert not is_nats_reachable("nats://127.0.0.1:5432", timeout=0.5)


def test_ensure_postgres_uses_reachable_server(tmp_path: pathlib.Path) -> None:
    """A reachable server is returned as given, not embedded, and stop() leaves it alone."""
    url = "postgres://postgres@127.0.0.1:5432/hydite_not_created_yet"
    service = ensure_postgres(url, tmp_path)
    assert service.url == url
    assert not service.embedded
    service.stop()
    assert is_postgres_reachable(url)
    assert not (tmp_path / "postgres").exists()


def test_ensure_nats_uses_reachable_server(tmp_path: pathlib.Path) -> None:
    """A reachable server is returned as given, not embedded, and stop() leaves it alone."""
    service = ensure_nats(MACHINE_NATS_URL, tmp_path)
    assert service.url == MACHINE_NATS_URL
    assert not service.embedded
    service.stop()
    assert is_nats_reachable(MACHINE_NATS_URL)
    assert not (tmp_path / "nats").exists()


def test_ensure_postgres_starts_embedded_server(tmp_path: pathlib.Path) -> None:
    """An unreachable URL starts an embedded server that takes real work and stops on request."""
    port = free_port()
    url = f"postgresql+psycopg://hydite@127.0.0.1:{port}/hydite"
    service = ensure_postgres(url, tmp_path)
    try:
        assert service.embedded
        assert service.url == f"postgresql://hydite@127.0.0.1:{port}/postgres"
        # The server must never run as root, so its data dir is not root's.
        assert (tmp_path / "postgres").stat().st_uid != 0
        with psycopg.connect(service.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE hydite")
        with psycopg.connect(with_database_name(service.url, "hydite")) as conn:
            assert conn.execute("SELECT current_user, 1").fetchone() == ("hydite", 1)
    finally:
        service.stop()
    assert not is_postgres_reachable(service.url)
    service.stop()


def test_ensure_postgres_reuses_data_dir(tmp_path: pathlib.Path) -> None:
    """A second start on the same data dir skips initdb and keeps earlier databases."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    first = ensure_postgres(url, tmp_path)
    try:
        with psycopg.connect(first.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE kept")
    finally:
        first.stop()
    version_file = tmp_path / "postgres" / "PG_VERSION"
    initialised_at = version_file.stat().st_mtime_ns

    second = ensure_postgres(url, tmp_path)
    try:
        assert second.embedded
        assert version_file.stat().st_mtime_ns == initialised_at
        with psycopg.connect(with_database_name(second.url, "kept")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        second.stop()


def test_ensure_postgres_failure_shows_log_tail(tmp_path: pathlib.Path) -> None:
    """A server that cannot start raises RuntimeError carrying the end of its log."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    ensure_postgres(url, tmp_path).stop()
    with (tmp_path / "postgres" / "postgresql.auto.conf").open("a") as conf:
        conf.write("no_such_setting_xyz = 1\n")
    with pytest.raises(RuntimeError, match="no_such_setting_xyz"):
        ensure_postgres(url, tmp_path)
    assert not is_postgres_reachable(url)


def test_ensure_postgres_refuses_foreign_data_dir(tmp_path: pathlib.Path) -> None:
    """A non-empty data dir that is not a Postgres cluster is left alone with a clear error."""
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError, match="not a Postgres data directory"):
        ensure_postgres(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", tmp_path)
    assert (tmp_path / "postgres" / "notes.txt").read_text() == "mine"


async def _jetstream_round_trip(url: str) -> int:
    """Create a stream, publish to it, and return the stream's message count."""
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        await js.add_stream(name="EMBEDDED_TEST", subjects=["embedded.test"])
        await js.publish("embedded.test", b"hello")
        info = await js.stream_info("EMBEDDED_TEST")
        messages: int = info.state.messages
        return messages
    finally:
        await client.close()


def test_ensure_nats_starts_embedded_server(tmp_path: pathlib.Path) -> None:
    """An unreachable URL starts an embedded JetStream server that stores under data_dir."""
    port = free_port()
    service = ensure_nats(f"nats://127.0.0.1:{port}", tmp_path)
    try:
        assert service.embedded
        assert service.url == f"nats://127.0.0.1:{port}"
        assert is_nats_reachable(service.url)
        assert asyncio.run(_jetstream_round_trip(service.url)) == 1
        assert (tmp_path / "nats" / "jetstream").is_dir()
    finally:
        service.stop()
    assert not is_nats_reachable(service.url)
    service.stop()


def test_ensure_nats_picks_free_port_when_url_port_is_taken(tmp_path: pathlib.Path) -> None:
    """If the URL's port is held by something that is not NATS, another free port is used."""
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        taken = squatter.getsockname()[1]
        service = ensure_nats(f"nats://127.0.0.1:{taken}", tmp_path)
        try:
            assert service.embedded
            assert service.url != f"nats://127.0.0.1:{taken}"
            assert is_nats_reachable(service.url)
        finally:
            service.stop()


def test_ensure_postgres_starts_from_binaries_in_a_private_folder(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Binaries reached only through a 0700 folder (a checkout under /root, a private mktemp -d)
    still start an embedded server, also when root hands it to an unprivileged user; the copy
    made for that user is gone once the server stopped."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "pginstall").symlink_to(embedded._postgres_bin_dir().parent, target_is_directory=True)
    monkeypatch.setattr(embedded, "_postgres_bin_dir", lambda: private / "pginstall" / "bin")
    copies: list[pathlib.Path] = []
    mkdtemp = tempfile.mkdtemp

    def recorded_mkdtemp(prefix: str) -> str:
        made = mkdtemp(prefix=prefix)
        copies.append(pathlib.Path(made))
        return made

    monkeypatch.setattr(tempfile, "mkdtemp", recorded_mkdtemp)
    service = ensure_postgres(f"postgresql://hydite@127.0.0.1:{free_port()}/postgres", tmp_path / "data")
    try:
        assert service.embedded
        with psycopg.connect(service.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE private_binaries")
            assert conn.execute("SELECT current_user").fetchone() == ("hydite",)
    finally:
        service.stop()
    assert not is_postgres_reachable(service.url)
    assert private.stat().st_mode & 0o777 == 0o700
    # Only root drops to a user who cannot enter the folder; anyone else runs the binaries in place.
    assert len(copies) == (1 if os.geteuid() == 0 else 0)
    assert not any(copy.exists() for copy in copies)
