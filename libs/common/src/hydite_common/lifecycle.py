"""How a service stops after SIGTERM: readiness answers 503 at once, the listener keeps accepting
for the endpoint-removal delay (`shutdown_delay_seconds`), then closes, and what is in flight gets
the drain time before the app's cleanup runs.

The delay exists for load balancers: a Kubernetes Service drops a pod from its endpoints only
after its readiness fails or the pod is marked terminating, and connections still routed to it in
that window must not be refused.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

log = logging.getLogger(__name__)

STOPPING_REASON = "shutting down"


class Lifecycle:
    """Whether the service has begun to stop; every readiness check reads it first."""

    def __init__(self) -> None:
        self.stopping = False

    def begin_stop(self) -> None:
        """From now on readiness answers 503."""
        self.stopping = True

    def not_ready_reason(self) -> str | None:
        """STOPPING_REASON once the stop began, else None."""
        return STOPPING_REASON if self.stopping else None


LIFECYCLE = web.AppKey("lifecycle", Lifecycle)


def stop_requested() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (handlers on the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def wait_for_stop(lifecycle: Lifecycle, stop: asyncio.Event, delay_seconds: float) -> None:
    """Wait for the signal, turn readiness to 503, then keep serving for the delay."""
    await stop.wait()
    lifecycle.begin_stop()
    log.info("stopping: not ready now, still accepting for %.1f s", delay_seconds)
    if delay_seconds > 0:
        await asyncio.sleep(delay_seconds)


async def serve_until_stopped(
    app: web.Application, host: str, port: int, *, delay_seconds: float, drain_seconds: float
) -> None:
    """Serve app until SIGTERM or SIGINT, then stop in order: readiness 503, the delay, listener
    closed, requests in flight given drain_seconds (idle keep-alive connections are closed), then
    the app's cleanup contexts. The app must hold a Lifecycle under LIFECYCLE."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=drain_seconds)
    await runner.setup()
    stop = stop_requested()
    try:
        await web.TCPSite(runner, host, port).start()
        await wait_for_stop(app[LIFECYCLE], stop, delay_seconds)
    finally:
        # Closes the listener, lets each connection finish its request within the drain, then
        # runs the cleanup contexts.
        await runner.cleanup()
