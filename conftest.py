"""Fixtures every test folder shares: one real stack per run (Postgres, NATS, control plane, data
plane, spend-ingest), started the first time a test asks for it and removed afterwards."""

from __future__ import annotations

import os

# Before anything imports grpc: its fork handlers, which restart its poller in a forked child, can
# abort a child that the tests fork to exec a server (embedded NATS, Postgres) before the exec.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hydite_common.devstack import Stack, StackConfig


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The running stack, with its own database, NATS prefix and ports; removed afterwards."""
    data_dir = Path(tmp_path_factory.mktemp("stack"))
    running = Stack(StackConfig.ephemeral(data_dir))
    try:
        running.start()
        yield running
    finally:
        running.remove()


@pytest.fixture(scope="session")
def admin(stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client for admin routes on the data plane's base URL, authenticated as master."""
    with httpx.Client(
        base_url=stack.base_url,
        headers={"Authorization": f"Bearer {stack.config.master_key}"},
        timeout=10,
    ) as client:
        yield client
