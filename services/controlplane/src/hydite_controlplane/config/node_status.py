"""Per-node config state (connected, acked / nacked version), kept in Postgres for every replica,
and the membership it implies: each connected, live data plane is a `DataPlaneNode` resource of the
snapshot, added in a config version when its stream opens and removed in one when it leaves.

A stream is identified by (controlplane_id, connected_at): a node that reconnected (to this replica
or another) has a newer one, so what the older stream reports or its end changes nothing, and the
node never flaps out of the snapshot. A node that left has no connected_at (`builder.is_member`).
Lock order: a config_nodes row, then the config-write lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.config_types import DATA_PLANE_NODE
from hydite_controlplane.config.changelog import REMOVE, UPSERT, ResourceChange, record_changes
from hydite_controlplane.config.propagation import ACK_CHANNEL, ack_payload
from hydite_controlplane.db import run_sql
from hydite_controlplane.models.common import utcnow
from hydite_controlplane.models.config import ConfigNode

HEARTBEAT_SECONDS = 10.0
STALE_AFTER_SECONDS = 3 * HEARTBEAT_SECONDS


def is_live(node: ConfigNode) -> bool:
    """Connected, as last reported by a replica that is itself still alive."""
    return node.connected and (utcnow() - node.last_seen).total_seconds() < STALE_AFTER_SECONDS


def _membership(node_ids: Iterable[str], op: str) -> list[ResourceChange]:
    return [ResourceChange(DATA_PLANE_NODE, node_id, op) for node_id in sorted(node_ids)]


class NodeStatusStore:
    """Records what each data plane reported over its stream."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], controlplane_id: str) -> None:
        self._sessions = sessions
        self._controlplane_id = controlplane_id

    async def _report(
        self, node_id: str, connected_at: datetime, announce: str | None = None, **values: object
    ) -> None:
        """Update the node's row as reported by the stream opened at connected_at; nothing when the
        node has reconnected since (the row then belongs to its newer stream)."""
        row = {"last_seen": utcnow(), "controlplane_id": self._controlplane_id, "connected": True, **values}
        # A row deleted meanwhile is written again whole: the insert needs every NOT NULL column.
        statement = insert(ConfigNode).values(
            {"acked_version": 0, "node_id": node_id, "connected_at": connected_at, **row}
        )
        statement = statement.on_conflict_do_update(
            index_elements=[ConfigNode.node_id],
            set_=row,
            where=col(ConfigNode.connected_at) == connected_at,
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

    async def connected(self, node_id: str, hostname: str, version: int, loading: bool) -> datetime:
        """A data plane opened a stream holding version (loading: it is sent a full snapshot); it
        joins the snapshot's data planes in a new config version. Returns the stream's identity
        (its connected_at), which the stream's later reports carry."""
        now = utcnow()
        row = {
            "hostname": hostname,
            "controlplane_id": self._controlplane_id,
            "connected": True,
            "connected_at": now,
            "last_seen": now,
            "acked_version": version,
            "loading": loading,
            "last_error": "",
        }
        statement = insert(ConfigNode).values({"node_id": node_id, **row})
        statement = statement.on_conflict_do_update(index_elements=[ConfigNode.node_id], set_=row)
        async with self._sessions() as session:
            await run_sql(session, statement)
            await record_changes(session, _membership([node_id], UPSERT))
            await session.commit()
        return now

    async def loading(self, node_id: str, connected_at: datetime) -> None:
        """The node is being sent a full snapshot."""
        await self._report(node_id, connected_at, loading=True)

    async def acked(self, node_id: str, connected_at: datetime, version: int) -> None:
        """The node applied version."""
        await self._report(
            node_id,
            connected_at,
            announce=ack_payload(node_id, version, applied=True),
            acked_version=version,
            loading=False,
        )

    async def nacked(self, node_id: str, connected_at: datetime, version: int, reason: str) -> None:
        """The node refused version and keeps serving what it had."""
        await self._report(
            node_id,
            connected_at,
            announce=ack_payload(node_id, version, applied=False),
            nacked_version=version,
            last_error=reason[:1000],
            loading=False,
        )

    async def disconnected(self, node_id: str, connected_at: datetime) -> None:
        """The node's stream opened at connected_at ended: unless the node reconnected since, it is
        disconnected and leaves the snapshot's data planes in a new config version."""
        async with self._sessions() as session:
            node = await session.get(ConfigNode, node_id, with_for_update=True)
            if (
                node is None
                or node.controlplane_id != self._controlplane_id
                or node.connected_at != connected_at
                or not node.connected
            ):
                return
            node.connected = False
            node.connected_at = None
            node.last_seen = utcnow()
            session.add(node)
            await record_changes(session, _membership([node_id], REMOVE))
            await session.commit()

    async def release_all(self) -> None:
        """This replica is stopping: none of its streams stays connected, so no write waits for them.

        They stay in the snapshot for now (their connected_at is kept): they are expected to
        reconnect to another replica at once, and `sweep_departed` removes those that do not once
        they are stale."""
        async with self._sessions() as session:
            await run_sql(
                session,
                "UPDATE config_nodes SET connected = false WHERE controlplane_id = :me",
                {"me": self._controlplane_id},
            )
            await session.commit()

    async def heartbeat(self, streams: Mapping[str, datetime]) -> None:
        """Refresh last_seen of the nodes streaming from this replica (node id -> its stream's
        connected_at); a dead replica stops doing so.

        A node swept as departed while its stream here was still open (this replica could not
        reach the database for a while) rejoins the snapshot's data planes."""
        if not streams:
            return
        ids = sorted(streams)
        async with self._sessions() as session:
            result = await run_sql(
                session,
                "WITH streams AS ("
                " SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:since AS timestamptz[]))"
                " AS s(node_id, since)),"
                " mine AS ("
                " SELECT c.node_id, c.connected_at IS NULL AS departed, streams.since"
                " FROM config_nodes c JOIN streams USING (node_id)"
                " WHERE c.controlplane_id = :me"
                " AND (c.connected_at IS NULL OR c.connected_at = streams.since)"
                " ORDER BY c.node_id FOR UPDATE OF c)"
                " UPDATE config_nodes SET last_seen = now(), connected = true, connected_at = mine.since"
                " FROM mine WHERE config_nodes.node_id = mine.node_id"
                " RETURNING mine.node_id, mine.departed",
                {"ids": ids, "since": [streams[n] for n in ids], "me": self._controlplane_id},
            )
            rejoined = [str(row["node_id"]) for row in result.mappings().all() if row["departed"]]
            if rejoined:
                await record_changes(session, _membership(rejoined, UPSERT))
            await session.commit()

    async def sweep_departed(self, members: Iterable[str]) -> list[str]:
        """Remove from the snapshot the data planes among `members` (the snapshot's) whose row is
        gone or has not been refreshed for STALE_AFTER_SECONDS: their replica died or stopped, and
        they did not reconnect elsewhere. Any replica may sweep; rows another transaction holds
        (a stream reporting, a heartbeat) are skipped, as they are alive."""
        wanted = sorted(set(members))
        if not wanted:
            return []
        async with self._sessions() as session:
            result = await run_sql(
                session,
                "SELECT node_id, last_seen < now() - make_interval(secs => :stale) AS stale FROM config_nodes"
                " WHERE node_id = ANY(:ids) ORDER BY node_id FOR UPDATE SKIP LOCKED",
                {"ids": wanted, "stale": STALE_AFTER_SECONDS},
            )
            rows = [(str(row["node_id"]), bool(row["stale"])) for row in result.mappings().all()]
            present = {node_id for node_id, _ in rows}
            stale = [node_id for node_id, is_stale in rows if is_stale]
            # A row that is absent may only be locked by its insert: SKIP LOCKED hides both.
            absent = [node_id for node_id in wanted if node_id not in present]
            absent = [n for n in absent if await session.get(ConfigNode, n) is None]
            departed = sorted([*stale, *absent])
            if not departed:
                return []
            await run_sql(
                session,
                "UPDATE config_nodes SET connected = false, connected_at = NULL WHERE node_id = ANY(:ids)",
                {"ids": stale},
            )
            await record_changes(session, _membership(departed, REMOVE))
            await session.commit()
        return departed

    async def all_nodes(self) -> list[ConfigNode]:
        """Every node ever seen, most recent first."""
        async with self._sessions() as session:
            result = await session.exec(select(ConfigNode).order_by(col(ConfigNode.last_seen).desc()))
            return list(result.all())
