"""Every connected data plane is in the config snapshot as a DataPlaneNode, and one that stops
leaves it: checked across real processes through /config/status, which lists the members of the
control plane's snapshot and the version each data plane applied (the data plane's decoding of
those resources is covered by its own unit test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from hydite_common.config_types import DATA_PLANE_NODE
from hydite_common.devstack import Stack, StackConfig, free_port
from hydite_common.settings import to_libpq_url, with_database_name
from tests.harness import wait_until


def _status(admin: httpx.Client) -> dict[str, Any]:
    response = admin.get("/config/status")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _listed_and_applied(admin: httpx.Client, wanted: set[str], gone: set[str]) -> bool:
    """Whether the snapshot lists every node in `wanted` and none in `gone`, and every node in
    `wanted` applied a version at least that snapshot's: its own snapshot then lists them too."""
    status = _status(admin)
    members = {m["node_id"] for m in status["members"]["nodes"]}
    if not wanted <= members or members & gone:
        return False
    acked = {n["node_id"]: n["acked_version"] for n in status["nodes"] if n["connected"]}
    return all(acked.get(node, -1) >= status["members"]["version"] for node in wanted)


def test_two_data_planes_each_list_both_and_a_stopped_one_leaves(stack: Stack, admin: httpx.Client) -> None:
    """Two data planes connected: each one's snapshot lists both; one stopped: it leaves the other's."""
    first_port, second_port = free_port(), free_port()
    first_id, second_id = f"member-a-{first_port}", f"member-b-{second_port}"
    first = stack.start_dataplane(port=first_port, node_id=first_id)
    second = stack.start_dataplane(port=second_port, node_id=second_id)
    try:
        wait_until(lambda: _listed_and_applied(admin, {first_id, second_id}, set()), timeout=5.0)
        listed = {m["node_id"]: m for m in _status(admin)["members"]["nodes"]}
        assert set(listed[first_id]) == {"node_id", "hostname", "connected_unix_ms"}
        assert listed[first_id]["connected_unix_ms"] > 0
        stack.stop_service(second)
        wait_until(lambda: _listed_and_applied(admin, {first_id}, {second_id}), timeout=5.0)
    finally:
        for service in (first, second):
            stack.stop_service(service)
    wait_until(lambda: _listed_and_applied(admin, set(), {first_id, second_id}), timeout=5.0)


@pytest.fixture(scope="module")
def replica_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own (database and prefix) whose control planes the test may stop."""
    stack = Stack(StackConfig.ephemeral(Path(tmp_path_factory.mktemp("member-replicas"))))
    try:
        stack.start_dependencies()
        stack.start_controlplane()
        yield stack
    finally:
        stack.remove()


def _removals(stack: Stack, node_id: str) -> int:
    """How many config versions removed the node's DataPlaneNode resource."""
    assert stack.postgres is not None
    url = with_database_name(to_libpq_url(stack.postgres.url), stack.config.database_name)
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM config_changes WHERE type_url = %s AND name = %s AND op = 'remove'",
            (DATA_PLANE_NODE, node_id),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_replica_restarting_does_not_remove_its_data_planes(replica_stack: Stack) -> None:
    """A control plane that stops releases its data planes without removing them from the snapshot:
    they reconnect to it when it is back (a rolling restart) and never flap out."""
    stack = replica_stack
    first_admin, first_grpc = stack.config.admin_port, stack.config.grpc_port
    second_admin = free_port()
    stack.start_controlplane(admin_port=second_admin, grpc_port=free_port())
    node_id = f"rolling-{free_port()}"
    stack.start_dataplane(port=free_port(), node_id=node_id, grpc_port=first_grpc)
    with httpx.Client(
        base_url=f"http://127.0.0.1:{second_admin}",
        headers={"Authorization": f"Bearer {stack.config.master_key}"},
        timeout=10,
    ) as other:
        wait_until(lambda: _listed_and_applied(other, {node_id}, set()), timeout=5.0)
        first = next(s for s in stack.services if s.name == f"controlplane-{first_admin}")
        stack.stop_service(first)
        assert node_id in {m["node_id"] for m in _status(other)["members"]["nodes"]}
        stack.start_controlplane(admin_port=first_admin, grpc_port=first_grpc)

        def reconnected() -> bool:
            nodes = {n["node_id"]: n for n in _status(other)["nodes"]}
            return bool(nodes.get(node_id, {}).get("connected")) and _listed_and_applied(
                other, {node_id}, set()
            )

        wait_until(reconnected, timeout=10.0, interval=0.05)
    assert _removals(stack, node_id) == 0
