"""The data plane's listener: aiohttp's HTTP server behind a connection cap, with a bounded
graceful shutdown.

A connection over the cap is answered at once with a 503 in OpenAI's shape and closed, so a
flood of idle connections can never use up the process's file descriptors (each request also
holds one to its provider). Connections that send nothing are closed after the idle timeout;
request bodies must arrive within their own timeout (see `hydite_common.http.read_body`).
"""

from __future__ import annotations

import asyncio
import resource
from typing import cast

import orjson
from aiohttp import web

from hydite_common.errors import ServiceUnavailableError
from hydite_common.lifecycle import LIFECYCLE, stop_requested, wait_for_stop
from hydite_dataplane.settings import DataplaneSettings

CLOSE_SECONDS = 1.0
"""After the drain: how long cut requests get to settle, and open connections to close."""
FILES_KEPT_FREE = 256
"""File descriptors left for everything but client connections (logs, NATS, gRPC, sockets)."""


def connection_limit(settings: DataplaneSettings) -> int:
    """The configured cap, or half of what the open-file limit leaves (the other half is for the
    provider connections the requests open)."""
    if settings.max_connections:
        return settings.max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(64, (soft - FILES_KEPT_FREE) // 2)


def _refusal() -> bytes:
    body = orjson.dumps(
        ServiceUnavailableError(
            "this data plane has as many connections open as it may; retry shortly",
            code="too_many_connections",
        ).to_body()
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


REFUSAL = _refusal()


class _Refusal(asyncio.Protocol):
    """Answers a connection over the cap with REFUSAL and closes it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        writer.write(REFUSAL)
        writer.close()


class ConnectionCap:
    """A protocol factory: aiohttp's handler while fewer than `limit` connections are open."""

    def __init__(self, server: web.Server, limit: int) -> None:
        self._server = server
        self._limit = limit
        self.refused = 0

    def __call__(self) -> asyncio.Protocol:
        """The protocol of the connection just accepted."""
        if len(self._server.connections) >= self._limit:
            self.refused += 1
            return _Refusal()
        return self._server()


class CappedSite(web.BaseSite):
    """A TCP site whose connections go through a ConnectionCap."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, limit: int) -> None:
        super().__init__(runner, backlog=1024)
        self._host, self._port, self._limit = host, port, limit
        self.cap: ConnectionCap | None = None

    @property
    def name(self) -> str:
        """How the site shows in logs."""
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        """Listen."""
        await super().start()
        server = self._runner.server
        assert server is not None
        self.cap = ConnectionCap(server, self._limit)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.cap, self._host, self._port, backlog=self._backlog, reuse_address=True
        )


async def serve(
    app: web.Application, settings: DataplaneSettings, in_flight: set[asyncio.Task[object]]
) -> None:
    """Serve until SIGTERM or SIGINT, then stop within a bound: readiness answers 503 at once, the
    listener keeps accepting for `shutdown_delay_seconds` (while load balancers drop this node),
    then closes and keep-alive connections close after their current request; requests and streams
    in flight get `drain_seconds` to finish, what is left is cancelled (and settles its outcome, so
    what it used is billed), and the app's cleanup publishes (or spools) the last usage."""
    runner = web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=settings.client_idle_timeout_seconds,
        shutdown_timeout=CLOSE_SECONDS,
    )
    await runner.setup()
    stop = stop_requested()
    try:
        await CappedSite(runner, settings.host, settings.port, connection_limit(settings)).start()
        await wait_for_stop(app[LIFECYCLE], stop, settings.shutdown_delay_seconds)
        for site in list(runner.sites):
            await site.stop()
        assert runner.server is not None
        # An idle keep-alive connection must not bring a new request in during the drain.
        runner.server.pre_shutdown()
        if in_flight:
            _, cut = await asyncio.wait(set(in_flight), timeout=settings.drain_seconds)
            for task in cut:
                task.cancel()
            if cut:
                await asyncio.wait(cut, timeout=CLOSE_SECONDS)
    finally:
        await runner.cleanup()
