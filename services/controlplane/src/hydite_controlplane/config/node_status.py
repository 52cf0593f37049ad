"""Per-node config state (connected, acked / nacked version), kept in Postgres for every replica."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane.config.propagation import ACK_CHANNEL, ack_payload
from hydite_controlplane.db import run_sql
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.config import ConfigNode

HEARTBEAT_SECONDS = 10.0
STALE_AFTER_SECONDS = 3 * HEARTBEAT_SECONDS


def is_live(node: ConfigNode) -> bool:
    """Connected, as last reported by a replica that is itself still alive."""
    return node.connected and (utcnow() - node.last_seen).total_seconds() < STALE_AFTER_SECONDS


class NodeStatusStore:
    """Records what each data plane reported over its stream."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], controlplane_id: str) -> None:
        self._sessions = sessions
        self._controlplane_id = controlplane_id

    async def _upsert(self, node_id: str, announce: str | None = None, **values: object) -> None:
        now = utcnow()
        row = {
            "node_id": node_id,
            "last_seen": now,
            "controlplane_id": self._controlplane_id,
            **values,
        }
        # A first report may be a NACK: the inserted row needs every NOT NULL column.
        statement = insert(ConfigNode).values({"acked_version": 0, **row})
        statement = statement.on_conflict_do_update(
            index_elements=[ConfigNode.node_id],
            set_={k: v for k, v in row.items() if k != "node_id"},
        )
        async with self._sessions() as session:
            await run_sql(session, statement)
            if announce is not None:
                # Delivered when the row commits: a write waiting on any replica hears it.
                await run_sql(
                    session,
                    "SELECT pg_notify(:channel, :payload)",
                    {"channel": ACK_CHANNEL, "payload": announce},
                )
            await session.commit()

    async def connected(self, node_id: str, hostname: str, version: int, loading: bool) -> None:
        """A data plane opened a stream holding version (loading: it is sent a full snapshot)."""
        await self._upsert(
            node_id,
            hostname=hostname,
            connected=True,
            connected_at=utcnow(),
            acked_version=version,
            loading=loading,
            last_error="",
        )

    async def loading(self, node_id: str) -> None:
        """The node is being sent a full snapshot."""
        await self._upsert(node_id, loading=True, connected=True)

    async def acked(self, node_id: str, version: int) -> None:
        """The node applied version."""
        await self._upsert(
            node_id,
            announce=ack_payload(node_id, version, applied=True),
            acked_version=version,
            loading=False,
            connected=True,
        )

    async def nacked(self, node_id: str, version: int, reason: str) -> None:
        """The node refused version and keeps serving what it had."""
        await self._upsert(
            node_id,
            announce=ack_payload(node_id, version, applied=False),
            nacked_version=version,
            last_error=reason[:1000],
            loading=False,
            connected=True,
        )

    async def disconnected(self, node_id: str) -> None:
        """The node's stream to this replica ended."""
        async with self._sessions() as session:
            node = await session.get(ConfigNode, node_id)
            if node is not None and node.controlplane_id == self._controlplane_id:
                node.connected = False
                node.last_seen = utcnow()
                await session.commit()

    async def release_all(self) -> None:
        """This replica is stopping: none of its streams stays connected, so no write waits for them."""
        async with self._sessions() as session:
            await run_sql(
                session,
                "UPDATE config_nodes SET connected = false WHERE controlplane_id = :me",
                {"me": self._controlplane_id},
            )
            await session.commit()

    async def heartbeat(self, node_ids: set[str]) -> None:
        """Refresh last_seen of the nodes streaming from this replica (a dead replica stops doing so)."""
        if not node_ids:
            return
        async with self._sessions() as session:
            await run_sql(
                session,
                "UPDATE config_nodes SET last_seen = now(), connected = true "
                "WHERE node_id = ANY(:ids) AND controlplane_id = :me",
                {"ids": sorted(node_ids), "me": self._controlplane_id},
            )
            await session.commit()

    async def all_nodes(self) -> list[ConfigNode]:
        """Every node ever seen, most recent first."""
        async with self._sessions() as session:
            result = await session.exec(select(ConfigNode).order_by(col(ConfigNode.last_seen).desc()))
            return list(result.all())
