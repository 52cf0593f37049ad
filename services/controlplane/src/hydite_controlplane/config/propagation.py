"""Read-your-writes: an admin write answers once every connected data plane applied its version.

Each replica's servicer records a node's ACK or NACK in `config_nodes` and announces it on
`ACK_CHANNEL` in the same transaction, so a replica waiting on a write hears the nodes streaming
from every replica. A wait is bounded: past its timeout the write still succeeds, and the answer
says which nodes lag. Nodes that are disconnected, or still loading a full snapshot, are reported
and not awaited, so a data plane cut off from the control plane never holds writes up.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane.db import listen_forever
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.config import ConfigNode

ACK_CHANNEL = "hydite_config_acks"
# Notifications are the fast path; the table is re-read this often in case one was missed
# (the listener reconnecting, or a replica that cannot notify).
RECHECK_SECONDS = 0.05
LAGGING_HEADER_LIMIT = 10

# The config versions the current admin request committed (set per request by the middleware).
written_versions: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "written_versions", default=None
)


def note_written_version(version: int) -> None:
    """Called where a config version is recorded: the running admin request will wait for it."""
    versions = written_versions.get()
    if versions is not None:
        versions.append(version)


def ack_payload(node_id: str, version: int, applied: bool) -> str:
    """What a replica announces when a node ACKed (applied) or NACKed `version`; both end a wait."""
    return f"{version} {'ack' if applied else 'nack'} {node_id}"


@dataclass(frozen=True, slots=True)
class Applied:
    """Which connected data planes hold a version, as a write reports it."""

    version: int
    applied: int
    connected: int
    lagging: tuple[str, ...] = ()
    """Connected nodes that had not applied the version when the wait ended (NACKed, timed out
    or loading a full snapshot)."""

    def headers(self) -> dict[str, str]:
        headers = {
            "x-hydite-config-version": str(self.version),
            "x-hydite-config-applied": f"{self.applied}/{self.connected}",
        }
        if self.lagging:
            headers["x-hydite-config-lagging"] = ",".join(self.lagging[:LAGGING_HEADER_LIMIT])
        return headers


@dataclass(eq=False, slots=True)
class _Wait:
    version: int
    settled: set[str] = field(default_factory=set)
    applied: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def observe(self, node_id: str, version: int, applied: bool) -> None:
        if version >= self.version:
            self.settled.add(node_id)
            if applied:
                self.applied.add(node_id)
            self.changed.set()


class Propagation:
    """Waits for connected data planes to apply a config version; listens for their replies."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], libpq_url: str, live_after_seconds: float
    ) -> None:
        self._sessions = sessions
        self._libpq_url = libpq_url
        self._live_after_seconds = live_after_seconds
        self._waits: set[_Wait] = set()

    async def wait_applied(self, version: int, limit_seconds: float) -> Applied:
        """Until every connected, not-loading node ACKed or NACKed `version`, or `limit_seconds` passed."""
        wait = _Wait(version)
        # Registered before the first read, so a reply between the read and the wait is heard.
        self._waits.add(wait)
        deadline = time.monotonic() + limit_seconds
        try:
            while True:
                nodes = await self._live_nodes()
                for node in nodes:
                    wait.observe(node.node_id, node.acked_version, applied=True)
                    wait.observe(node.node_id, node.nacked_version or 0, applied=False)
                pending = {n.node_id for n in nodes if not n.loading} - wait.settled
                if not pending or time.monotonic() >= deadline:
                    # Replies heard while the rows were read count, though the rows predate them.
                    return _report(version, nodes, wait.applied)
                recheck_at = min(deadline, time.monotonic() + RECHECK_SECONDS)
                while True:
                    # Cleared before the check: a reply heard after it sets the event again.
                    wait.changed.clear()
                    left = recheck_at - time.monotonic()
                    if pending <= wait.settled or left <= 0:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wait.changed.wait(), left)
        finally:
            self._waits.discard(wait)

    async def _live_nodes(self) -> list[ConfigNode]:
        since = utcnow() - timedelta(seconds=self._live_after_seconds)
        async with self._sessions() as session:
            statement = select(ConfigNode).where(col(ConfigNode.connected), col(ConfigNode.last_seen) > since)
            return list((await session.exec(statement.order_by(col(ConfigNode.node_id)))).all())

    def _heard(self, payload: str) -> None:
        version_text, kind, node_id = [*payload.split(" ", 2), "", ""][:3]
        try:
            version = int(version_text)
        except ValueError:
            return
        for wait in self._waits:
            wait.observe(node_id, version, applied=kind == "ack")

    async def listen(self) -> None:
        """Hear every replica's ACK/NACK announcements, forever (reconnecting with backoff)."""
        await listen_forever(self._libpq_url, ACK_CHANNEL, self._hear_all)

    async def _hear_all(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async for notice in conn.notifies():
            self._heard(notice.payload)


def _report(version: int, nodes: list[ConfigNode], heard_applied: set[str]) -> Applied:
    lagging = tuple(n.node_id for n in nodes if n.acked_version < version and n.node_id not in heard_applied)
    return Applied(version=version, applied=len(nodes) - len(lagging), connected=len(nodes), lagging=lagging)
