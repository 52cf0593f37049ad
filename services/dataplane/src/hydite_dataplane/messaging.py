"""The data plane's one NATS connection, shared by everything that speaks NATS (usage publishing
now, limit gossip later). It is opened in the background: the data plane serves without it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from nats.aio.client import Client as NatsClient

log = logging.getLogger(__name__)

OnConnected = Callable[[NatsClient], Awaitable[None]]
BACKOFF_MAX_SECONDS = 5.0
T = TypeVar("T")


async def connect_nats(url: str, name: str) -> NatsClient:
    """A NATS connection that reconnects forever once it is up."""
    nc = NatsClient()
    await nc.connect(
        url,
        name=name,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=2,
    )
    return nc


async def _retrying(failure: str, attempt: Callable[[], Awaitable[T]]) -> T:
    delay = 0.2
    while True:
        try:
            return await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s (%s); usage is kept in memory", failure, type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)


class NatsLink:
    """Connects with backoff, then runs each registered step (retried until it succeeds)."""

    def __init__(self, url: str, name: str) -> None:
        self._url = url
        self._name = name
        self._steps: list[tuple[str, OnConnected]] = []
        self.client: NatsClient | None = None

    def when_connected(self, what: str, step: OnConnected) -> None:
        """Run step with the connection once it is up (register before `run`)."""
        self._steps.append((what, step))

    async def run(self) -> None:
        """Connect, then run every step; returns when all have succeeded."""
        client = await _retrying("NATS not reachable yet", partial(connect_nats, self._url, self._name))
        self.client = client
        for what, step in self._steps:
            await _retrying(f"{what} failed", partial(step, client))

    async def close(self) -> None:
        """Close the connection (if it was ever opened)."""
        if self.client is not None:
            await self.client.close()
