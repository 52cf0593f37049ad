"""The snapshot's connected data planes follow the node status rows without flapping: a node
joins when its stream opens, leaves when it ends unless it reconnected meanwhile (to this replica
or another), and a node whose replica died leaves once stale, by whichever replica sweeps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_common.devstack import Stack, StackConfig
from hydite_controlplane.config.cache import SnapshotCache
from hydite_controlplane.config.follower import ChangeFollower
from hydite_controlplane.config.node_status import STALE_AFTER_SECONDS, NodeStatusStore
from hydite_controlplane.db import run_sql
from hydite_controlplane.models.config import ConfigNode


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Postgres only (these tests call the control plane's code, no service runs)."""
    dependencies = Stack(StackConfig.ephemeral(Path(tmp_path_factory.mktemp("membership"))))
    try:
        dependencies.start_dependencies()
        yield dependencies
    finally:
        dependencies.remove()


@dataclass(frozen=True, slots=True)
class Follower:
    """A snapshot cache and the follower keeping it at the test database's head."""

    cache: SnapshotCache
    changes: ChangeFollower


@pytest.fixture
async def follower(sessions: async_sessionmaker[AsyncSession]) -> Follower:
    """A loaded follower of the test database's change log (its NOTIFY loop is not run)."""
    cache = SnapshotCache()
    following = Follower(cache, ChangeFollower(cache, sessions, libpq_url=""))
    await following.changes.load_full()
    return following


async def members(follower: Follower) -> dict[str, pb.DataPlaneNode]:
    """The data planes of the snapshot at the database's head."""
    await follower.changes.catch_up()
    listed = {}
    for resource in follower.cache.resources_of(types.DATA_PLANE_NODE):
        node = pb.DataPlaneNode()
        assert resource.body.Unpack(node)
        listed[resource.name] = node
    return listed


async def head(sessions: async_sessionmaker[AsyncSession]) -> int:
    """The committed config version."""
    async with sessions() as session:
        return int(
            (await run_sql(session, "SELECT coalesce(max(version), 0) FROM config_changes")).scalar_one()
        )


async def age(sessions: async_sessionmaker[AsyncSession], node_id: str, seconds: float) -> None:
    """Make a node's row look last refreshed `seconds` ago (its replica stopped heartbeating)."""
    async with sessions() as session:
        await run_sql(
            session,
            "UPDATE config_nodes SET last_seen = now() - make_interval(secs => :s) WHERE node_id = :n",
            {"s": seconds, "n": node_id},
        )
        await session.commit()


async def test_a_stream_opening_adds_the_node_and_its_end_removes_it(
    sessions: async_sessionmaker[AsyncSession], follower: Follower
) -> None:
    """Connecting records a version listing the node (id, hostname, time only); its end, one
    removing it."""
    replica = NodeStatusStore(sessions, "cp-a")
    before = await head(sessions)
    since = await replica.connected("dp-1", "pod-1", 0, loading=True)
    assert await head(sessions) == before + 1
    listed = await members(follower)
    assert listed == {
        "dp-1": pb.DataPlaneNode(
            node_id="dp-1", hostname="pod-1", connected_unix_ms=int(since.timestamp() * 1000)
        )
    }
    await replica.acked("dp-1", since, await head(sessions))
    await replica.disconnected("dp-1", since)
    assert await members(follower) == {}
    async with sessions() as session:
        row = await session.get(ConfigNode, "dp-1")
        assert row is not None and not row.connected


async def test_a_node_reconnecting_elsewhere_does_not_flap(
    sessions: async_sessionmaker[AsyncSession], follower: Follower
) -> None:
    """The end of a node's older stream (and its late ACK) changes nothing once it reconnected."""
    first, second = NodeStatusStore(sessions, "cp-a"), NodeStatusStore(sessions, "cp-b")
    old = await first.connected("dp-2", "pod-2", 0, loading=True)
    new = await second.connected("dp-2", "pod-2", 0, loading=True)
    settled = await head(sessions)
    await first.acked("dp-2", old, settled)
    await first.disconnected("dp-2", old)
    assert await head(sessions) == settled, "no version removes the node"
    assert set(await members(follower)) == {"dp-2"}
    async with sessions() as session:
        row = await session.get(ConfigNode, "dp-2")
        assert row is not None and row.controlplane_id == "cp-b" and row.connected_at == new
    await second.disconnected("dp-2", new)
    assert await members(follower) == {}


async def test_a_node_restarting_on_the_same_replica_does_not_flap(
    sessions: async_sessionmaker[AsyncSession], follower: Follower
) -> None:
    """A restarted node's new stream outlives the end of its old one on the same replica."""
    replica = NodeStatusStore(sessions, "cp-a")
    old = await replica.connected("dp-3", "pod-3", 5, loading=False)
    await replica.connected("dp-3", "pod-3", 0, loading=True)
    await replica.disconnected("dp-3", old)
    assert set(await members(follower)) == {"dp-3"}


async def test_a_dead_replicas_nodes_leave_once_stale(
    sessions: async_sessionmaker[AsyncSession], follower: Follower
) -> None:
    """Another replica's sweep removes the nodes of a replica that stopped heartbeating, and only them."""
    dead, alive = NodeStatusStore(sessions, "cp-dead"), NodeStatusStore(sessions, "cp-alive")
    await dead.connected("dp-4", "pod-4", 0, loading=True)
    await alive.connected("dp-5", "pod-5", 0, loading=True)
    listed = set(await members(follower))
    assert listed == {"dp-4", "dp-5"}
    assert await alive.sweep_departed(listed) == [], "nothing is stale yet"
    await age(sessions, "dp-4", STALE_AFTER_SECONDS + 1)
    assert await alive.sweep_departed(listed) == ["dp-4"]
    assert set(await members(follower)) == {"dp-5"}


async def test_a_stopping_replicas_nodes_stay_until_stale(
    sessions: async_sessionmaker[AsyncSession], follower: Follower
) -> None:
    """A replica that stops releases its nodes without removing them (they reconnect elsewhere at
    once); the ones that never come back are swept once stale, the ones that do stay."""
    stopping, other = NodeStatusStore(sessions, "cp-stopping"), NodeStatusStore(sessions, "cp-other")
    await stopping.connected("dp-6", "pod-6", 0, loading=True)
    await stopping.connected("dp-7", "pod-7", 0, loading=True)
    await stopping.release_all()
    assert set(await members(follower)) == {"dp-6", "dp-7"}
    moved = await other.connected("dp-7", "pod-7", 0, loading=True)
    for node_id in ("dp-6", "dp-7"):
        await age(sessions, node_id, STALE_AFTER_SECONDS + 1)
    await other.heartbeat({"dp-7": moved})
    assert await other.sweep_departed(set(await members(follower))) == ["dp-6"]
    assert set(await members(follower)) == {"dp-7"}


async def test_a_swept_node_still_streaming_rejoins_on_heartbeat(
    sessions: async_sessionmaker[AsyncSession], follower: Follower
) -> None:
    """A node swept while its replica could not heartbeat is listed again at the next heartbeat."""
    slow = NodeStatusStore(sessions, "cp-slow")
    since = await slow.connected("dp-8", "pod-8", 0, loading=True)
    await age(sessions, "dp-8", STALE_AFTER_SECONDS + 1)
    assert await NodeStatusStore(sessions, "cp-sweeper").sweep_departed({"dp-8"}) == ["dp-8"]
    assert await members(follower) == {}
    await slow.heartbeat({"dp-8": since})
    assert set(await members(follower)) == {"dp-8"}
