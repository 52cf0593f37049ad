"""The snapshot's connected data planes: decoded from DataPlaneNode resources, full and by delta."""

from __future__ import annotations

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_common.credentials import CredentialCipher
from hydite_dataplane.config.decode import apply_delta, empty_snapshot, snapshot_from_resources

CIPHER = CredentialCipher("nodes-decode-salt")


def node_resource(node_id: str, hostname: str = "host", connected_unix_ms: int = 1) -> pb.Resource:
    """A DataPlaneNode resource as the control plane's builder packs it."""
    packed = pb.Resource(name=node_id)
    packed.body.Pack(
        pb.DataPlaneNode(node_id=node_id, hostname=hostname, connected_unix_ms=connected_unix_ms)
    )
    return packed


def test_full_snapshot_lists_every_connected_node() -> None:
    """Every DataPlaneNode of a full snapshot is in `nodes`, by node id, with its fields."""
    snap = snapshot_from_resources(
        7, [node_resource("dp-a", "pod-a", 1000), node_resource("dp-b", "pod-b", 2000)], CIPHER
    )
    assert dict(snap.nodes) == {
        "dp-a": pb.DataPlaneNode(node_id="dp-a", hostname="pod-a", connected_unix_ms=1000),
        "dp-b": pb.DataPlaneNode(node_id="dp-b", hostname="pod-b", connected_unix_ms=2000),
    }


def test_nodes_join_and_leave_by_delta() -> None:
    """A delta adds a node that connected and removes one that left; the old snapshot is unchanged."""
    before = snapshot_from_resources(3, [node_resource("dp-a"), node_resource("dp-b")], CIPHER)
    batch = pb.DeltaBatch(
        from_version=3,
        version=4,
        deltas=[
            pb.Delta(
                type_url=types.DATA_PLANE_NODE,
                upserts=[node_resource("dp-c", "pod-c", 3000)],
                removed_names=["dp-a"],
            )
        ],
    )
    after = apply_delta(before, batch, CIPHER)
    assert set(after.nodes) == {"dp-b", "dp-c"}
    assert after.nodes["dp-c"].hostname == "pod-c"
    assert set(before.nodes) == {"dp-a", "dp-b"}


def test_no_snapshot_yet_has_no_nodes() -> None:
    """Version 0 knows no data plane, not even this one."""
    assert len(empty_snapshot().nodes) == 0
