"""Embedded Postgres and NATS restarted on their URL come back on the same port: a fault test that
stops one and starts it again relies on its clients finding it where they left it."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from hydite_common.devstack import free_port
from hydite_common.embedded import RunningService, ensure_nats, ensure_postgres


def _stopped_under_a_client(url: str, stop: Callable[[], None]) -> None:
    """Stop the server while a client is connected, the client closing only after the server's side
    did and writing nothing: the server's end of the connection stays in TIME_WAIT."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as client:
        time.sleep(0.1)  # the server has accepted the connection (NATS greets it, Postgres forks for it)
        stop()
        while client.recv(4096):
            pass


def _killed(service: RunningService) -> Callable[[], None]:
    def kill() -> None:
        assert service._process is not None
        service._process.send_signal(signal.SIGKILL)
        service.wait_stopped(time.monotonic() + 10)

    return kill


def test_nats_killed_and_started_again_on_its_url_keeps_its_port(tmp_path: Path) -> None:
    """ensure_nats called again with the URL and directory of a SIGKILLed server starts it on the
    same port."""
    url = f"nats://127.0.0.1:{free_port()}"
    first = ensure_nats(url, tmp_path)
    _stopped_under_a_client(first.url, _killed(first))
    second = ensure_nats(url, tmp_path)
    try:
        assert second.url == first.url
    finally:
        second.stop()


def test_postgres_stopped_and_started_again_on_its_url_keeps_its_port(tmp_path: Path) -> None:
    """ensure_postgres called again with the URL and directory of a stopped server (fast shutdown)
    starts it on the same port."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    first = ensure_postgres(url, tmp_path)
    _stopped_under_a_client(first.url, first.stop)
    second = ensure_postgres(url, tmp_path)
    try:
        assert second.url == first.url
    finally:
        second.stop()
