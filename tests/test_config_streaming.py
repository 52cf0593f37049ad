"""Config streaming across processes: three data planes, two control-plane replicas, outages."""

from __future__ import annotations

import concurrent.futures
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from hydite_common.devstack import ServiceProcess, Stack, StackConfig, free_port
from hydite_common.settings import to_libpq_url, with_database_name
from hydite_controlplane.migrations.runner import upgrade_to_head
from tests.harness import wait_until

CHAT = {"model": "stream-mock", "messages": [{"role": "user", "content": "hi"}]}


def _chat_status(base_url: str, key: str, model: str = "stream-mock") -> int:
    response = httpx.post(
        base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={**CHAT, "model": model},
        timeout=5,
    )
    return response.status_code


@pytest.fixture(scope="module")
def three_dataplanes(stack: Stack, admin: httpx.Client) -> Iterator[list[str]]:
    """The session's data plane plus two more, all on the same control plane; their base URLs."""
    extra: list[ServiceProcess] = []
    status = admin.post(
        "/model/new", json={"model_name": "stream-mock", "litellm_params": {"model": "mock/stream-mock"}}
    )
    assert status.status_code == 200, status.text
    try:
        ports = [free_port(), free_port()]
        extra = [stack.start_dataplane(port=p) for p in ports]
        yield [stack.base_url, *(f"http://127.0.0.1:{p}" for p in ports)]
    finally:
        for service in extra:
            stack.stop_service(service)


def _new_key(admin: httpx.Client, **fields: object) -> str:
    response = admin.post("/key/generate", json={"models": ["stream-mock"], **fields})
    assert response.status_code == 200, response.text
    return str(response.json()["key"])


def _everywhere(bases: list[str], key: str, expected: int, model: str = "stream-mock") -> None:
    """The very next request on each data plane: an admin write is applied everywhere when it returns."""
    assert [_chat_status(b, key, model) for b in bases] == [expected] * len(bases)


@pytest.mark.parametrize("action", ["block", "delete", "regenerate", "expire-by-update"])
def test_revocation_holds_on_all_three_data_planes_when_the_call_returns(
    admin: httpx.Client, three_dataplanes: list[str], action: str
) -> None:
    """Blocking, deleting, regenerating or expiring a key is refused by every data plane at once."""
    key = _new_key(admin)
    _everywhere(three_dataplanes, key, 200)
    if action == "block":
        response = admin.post("/key/block", json={"key": key})
    elif action == "delete":
        response = admin.post("/key/delete", json={"keys": [key]})
    elif action == "regenerate":
        response = admin.post("/key/regenerate", json={"key": key})
    else:
        response = admin.post("/key/update", json={"key": key, "duration": "0s"})
    assert response.status_code == 200, response.text
    _everywhere(three_dataplanes, key, 401)
    if action == "regenerate":
        _everywhere(three_dataplanes, response.json()["key"], 200)
    if action == "block":
        assert admin.post("/key/unblock", json={"key": key}).status_code == 200
        _everywhere(three_dataplanes, key, 200)


def test_new_model_is_routable_on_all_three_when_the_call_returns(
    admin: httpx.Client, three_dataplanes: list[str]
) -> None:
    """A model added through the admin API serves on every data plane at once."""
    name = f"fresh-{secrets.token_hex(3)}"
    key = _new_key(admin, models=[name])
    _everywhere(three_dataplanes, key, 404, model=name)
    response = admin.post("/model/new", json={"model_name": name, "litellm_params": {"model": "mock/x"}})
    assert response.status_code == 200, response.text
    _everywhere(three_dataplanes, key, 200, model=name)


def test_config_status_lists_every_node_with_its_lag(
    admin: httpx.Client, three_dataplanes: list[str]
) -> None:
    """/config/status shows each connected node at the head version."""

    def all_caught_up() -> bool:
        status = admin.get("/config/status").json()
        connected = [n for n in status["nodes"] if n["connected"]]
        return len(connected) >= 3 and all(n["lag"] == 0 for n in connected)

    wait_until(all_caught_up, timeout=2.0)


@pytest.fixture(scope="module")
def replica_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A separate stack (own database and prefix) whose control planes the tests may stop."""
    stack = Stack(StackConfig.ephemeral(Path(tmp_path_factory.mktemp("replicas"))))
    try:
        stack.start_dependencies()
        stack.start_controlplane()
        yield stack
    finally:
        stack.remove()


def _admin_post(stack: Stack, admin_port: int, path: str, body: object) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{admin_port}{path}",
        json=body,
        headers={"Authorization": f"Bearer {stack.config.master_key}"},
        timeout=10,
    )


def test_second_control_plane_replica_and_static_stability(replica_stack: Stack) -> None:
    """Writes through either replica reach data planes on both; a data plane outlives its control plane."""
    stack = replica_stack
    first_admin, first_grpc = stack.config.admin_port, stack.config.grpc_port
    second_admin, second_grpc = free_port(), free_port()
    stack.start_controlplane(admin_port=second_admin, grpc_port=second_grpc)
    on_first = f"http://127.0.0.1:{free_port()}"
    on_second = f"http://127.0.0.1:{free_port()}"
    stack.start_dataplane(port=int(on_first.rsplit(":", 1)[1]), grpc_port=first_grpc)
    stack.start_dataplane(port=int(on_second.rsplit(":", 1)[1]), grpc_port=second_grpc)

    model = _admin_post(
        stack, first_admin, "/model/new", {"model_name": "stream-mock", "litellm_params": {"model": "mock/m"}}
    )
    assert model.status_code == 200, model.text
    key = _admin_post(stack, second_admin, "/key/generate", {}).json()["key"]
    _everywhere([on_first, on_second], key, 200)

    first = next(s for s in stack.services if s.name == f"controlplane-{first_admin}")
    stack.stop_service(first)
    # Static stability: the orphaned data plane keeps serving its last snapshot.
    assert _chat_status(on_first, key) == 200
    ready = httpx.get(on_first + "/health/readiness")
    assert ready.status_code == 200

    blocked = _admin_post(stack, second_admin, "/key/block", {"key": key})
    assert blocked.status_code == 200, blocked.text
    _everywhere([on_second], key, 401)
    assert _chat_status(on_first, key) == 200  # still on the old snapshot: its control plane is down

    stack.start_controlplane(admin_port=first_admin, grpc_port=first_grpc)
    # Back online: the data plane reconnects (backoff ≤ 5 s) and resyncs to the head.
    wait_until(lambda: _chat_status(on_first, key) == 401, timeout=10.0, interval=0.1)


def test_concurrent_migrations_are_safe(stack: Stack) -> None:
    """Two control planes migrating a fresh database at once both succeed (advisory lock)."""
    assert stack.postgres is not None
    name = f"hydite_test_migrate_{secrets.token_hex(3)}"
    server = to_libpq_url(stack.postgres.url)
    admin_url = with_database_name(server, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = with_database_name(server, name)
        sqlalchemy_url = "postgresql+psycopg://" + url.split("://", 1)[1]
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = [pool.submit(upgrade_to_head, url, sqlalchemy_url) for _ in range(2)]
            for result in results:
                result.result(timeout=60)
        with psycopg.connect(url) as conn:
            heads = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        assert len(heads) == 1
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_snapshot_the_data_plane_cannot_apply_is_nacked(replica_stack: Stack) -> None:
    """A data plane with the wrong salt key NACKs (reason in /config/status) and does not become ready."""
    stack = replica_stack
    admin_port = stack.config.admin_port
    params = {"model": "openai/x", "api_key": "sk-provider-00000"}
    created = _admin_post(
        stack, admin_port, "/model/new", {"model_name": "secret-model", "litellm_params": params}
    )
    assert created.status_code == 200, created.text
    port = free_port()
    node_id = f"wrong-salt-{port}"
    stack.spawn(
        node_id, "hydite_dataplane", port, wait=False,
        HYDITE_PORT=str(port), HYDITE_NODE_ID=node_id, HYDITE_SALT_KEY="not-the-salt-key",
    )  # fmt: skip

    def nacked() -> dict[str, object] | None:
        status = httpx.get(
            f"http://127.0.0.1:{admin_port}/config/status",
            headers={"Authorization": f"Bearer {stack.config.master_key}"},
        ).json()
        nodes = status["nodes"]
        return next((n for n in nodes if n["node_id"] == node_id and n["nacked_version"]), None)

    node = wait_until(nacked, timeout=10.0, interval=0.05)
    assert "salt key" in str(node["last_error"])
    assert httpx.get(f"http://127.0.0.1:{port}/health/readiness").status_code == 503


def test_a_stopped_data_plane_is_shown_disconnected(stack: Stack, admin: httpx.Client) -> None:
    """/config/status notices when a data plane goes away."""
    port = free_port()
    node_id = f"short-lived-{port}"
    service = stack.start_dataplane(port=port, node_id=node_id)

    def connected() -> bool | None:
        nodes = admin.get("/config/status").json()["nodes"]
        return next((n["connected"] for n in nodes if n["node_id"] == node_id), None)

    wait_until(lambda: connected() is True, timeout=2.0)
    stack.stop_service(service)
    wait_until(lambda: connected() is False, timeout=2.0)
