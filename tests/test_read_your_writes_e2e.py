"""What an admin write returns is already true on every data plane: no sleep, no polling.

Every check below is the very next request after the admin call returned, on each of three data
planes, in loops; and with two control-plane replicas, on data planes connected to either.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from hydite_common.devstack import ServiceProcess, Stack, StackConfig, free_port
from tests.harness import ok_post, unique

ROUNDS = 50
MODEL = "ryw-mock"


_clients: dict[str, httpx.Client] = {}


def _chat(base_url: str, key: str, model: str = MODEL) -> int:
    client = _clients.get(base_url)
    if client is None or client.is_closed:
        client = _clients[base_url] = httpx.Client(base_url=base_url, timeout=5)
    response = client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
    )
    return response.status_code


_pool = concurrent.futures.ThreadPoolExecutor(3)


def _statuses(bases: list[str], key: str, model: str = MODEL) -> list[int]:
    """One chat call on each data plane, sent at once."""
    return list(_pool.map(lambda base: _chat(base, key, model), bases))


@pytest.fixture(scope="module")
def dataplanes(stack: Stack, admin: httpx.Client) -> Iterator[list[str]]:
    """The session's data plane plus two more on the same control plane; their base URLs."""
    ok_post(admin, "/model/new", {"model_name": MODEL, "litellm_params": {"model": "mock/ryw"}})
    ports = [free_port(), free_port()]
    extra = [stack.start_dataplane(port=p, node_id=unique("ryw-node")) for p in ports]
    try:
        yield [stack.base_url, *(f"http://127.0.0.1:{p}" for p in ports)]
    finally:
        for client in _clients.values():
            client.close()
        for service in extra:
            stack.stop_service(service)


def _applied(response: httpx.Response) -> tuple[int, int]:
    applied, connected = response.headers["x-hydite-config-applied"].split("/")
    return int(applied), int(connected)


def test_a_new_key_works_at_once_and_a_blocked_or_deleted_one_is_refused_at_once(
    admin: httpx.Client, dataplanes: list[str]
) -> None:
    for _ in range(ROUNDS):
        created = admin.post("/key/generate", json={"models": [MODEL]})
        assert created.status_code == 200, created.text
        applied, connected = _applied(created)
        assert applied == connected >= 3
        key = created.json()["key"]
        assert _statuses(dataplanes, key) == [200, 200, 200]
        assert admin.post("/key/block", json={"key": key}).status_code == 200
        assert _statuses(dataplanes, key) == [401, 401, 401]
        assert admin.post("/key/unblock", json={"key": key}).status_code == 200
        assert _statuses(dataplanes, key) == [200, 200, 200]
        assert admin.post("/key/delete", json={"keys": [key]}).status_code == 200
        assert _statuses(dataplanes, key) == [401, 401, 401]


def test_with_the_openai_sdk_a_generated_key_answers_on_the_next_line(
    admin: httpx.Client, dataplanes: list[str]
) -> None:
    clients = [openai.OpenAI(base_url=base + "/v1", api_key="unset", max_retries=0) for base in dataplanes]
    for round_ in range(ROUNDS):
        key = ok_post(admin, "/key/generate", {"models": [MODEL]})["key"]
        client = clients[round_ % 3].with_options(api_key=key)
        reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content
        ok_post(admin, "/key/delete", {"keys": [key]})
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])


def test_a_new_model_and_a_model_added_to_a_key_route_at_once(
    admin: httpx.Client, dataplanes: list[str]
) -> None:
    key = ok_post(admin, "/key/generate", {"models": [MODEL]})["key"]
    for _ in range(ROUNDS):
        name = unique("ryw-model")
        ok_post(admin, "/model/new", {"model_name": name, "litellm_params": {"model": "mock/x"}})
        assert _statuses(dataplanes, key, name) == [403, 403, 403]
        ok_post(admin, "/key/update", {"key": key, "models": [MODEL, name]})
        assert _statuses(dataplanes, key, name) == [200, 200, 200]


def test_a_stuck_data_plane_bounds_the_wait_and_is_named_as_lagging(
    stack: Stack, admin: httpx.Client, dataplanes: list[str]
) -> None:
    """A node that neither ACKs nor NACKs delays a write by the apply timeout at most; the write
    succeeds, and its headers and /config/status name the lagging node."""
    port = free_port()
    node_id = unique("ryw-stuck")
    stuck = stack.start_dataplane(port=port, node_id=node_id)
    try:
        os.kill(stuck.process.pid, signal.SIGSTOP)
        try:
            created = admin.post("/key/generate", json={"models": [MODEL]})
            assert created.status_code == 200, created.text
            applied, connected = _applied(created)
            assert applied == connected - 1
            assert node_id in created.headers["x-hydite-config-lagging"].split(",")
            assert _statuses(dataplanes, created.json()["key"]) == [200, 200, 200]
            status = admin.get("/config/status").json()
            lagging = next(n for n in status["nodes"] if n["node_id"] == node_id)
            assert lagging["lag"] > 0
        finally:
            os.kill(stuck.process.pid, signal.SIGCONT)
    finally:
        stack.stop_service(stuck)
    # Gone from the stream: a write no longer waits for it nor counts it.
    created = admin.post("/key/generate", json={"models": [MODEL]})
    assert "x-hydite-config-lagging" not in created.headers
    applied, connected = _applied(created)
    assert applied == connected


@pytest.fixture(scope="module")
def two_replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, list[int], list[str]]]:
    """A stack of its own with two control-plane replicas and a data plane on each."""
    stack = Stack(StackConfig.ephemeral(Path(tmp_path_factory.mktemp("ryw-replicas"))))
    try:
        stack.start_dependencies()
        stack.start_controlplane()
        second_admin, second_grpc = free_port(), free_port()
        stack.start_controlplane(admin_port=second_admin, grpc_port=second_grpc)
        bases = []
        for grpc_port in (stack.config.grpc_port, second_grpc):
            port = free_port()
            stack.start_dataplane(port=port, grpc_port=grpc_port)
            bases.append(f"http://127.0.0.1:{port}")
        yield stack, [stack.config.admin_port, second_admin], bases
    finally:
        stack.remove()


def test_a_write_through_either_replica_is_true_on_data_planes_of_both(
    two_replicas: tuple[Stack, list[int], list[str]],
) -> None:
    stack, admin_ports, bases = two_replicas
    headers = {"Authorization": f"Bearer {stack.config.master_key}"}
    admins = [
        httpx.Client(base_url=f"http://127.0.0.1:{p}", headers=headers, timeout=10) for p in admin_ports
    ]
    try:
        ok_post(admins[0], "/model/new", {"model_name": MODEL, "litellm_params": {"model": "mock/ryw"}})
        for round_ in range(ROUNDS):
            writer = admins[round_ % 2]
            created = writer.post("/key/generate", json={"models": [MODEL]})
            assert created.status_code == 200, created.text
            assert _applied(created) == (2, 2)
            key = created.json()["key"]
            assert _statuses(bases, key) == [200, 200]
            ok_post(writer, "/key/block", {"key": key})
            assert _statuses(bases, key) == [401, 401]
    finally:
        for client in admins:
            client.close()


def _service(stack: Stack, name: str) -> ServiceProcess:
    return next(s for s in stack.services if s.name == name)


def test_a_data_plane_cut_off_from_its_replica_is_not_awaited_and_keeps_serving(
    two_replicas: tuple[Stack, list[int], list[str]],
) -> None:
    """Static stability: with one replica gone, writes through the other answer without waiting for
    the orphaned data plane, which keeps serving its last snapshot."""
    stack, admin_ports, bases = two_replicas
    headers = {"Authorization": f"Bearer {stack.config.master_key}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{admin_ports[1]}", headers=headers, timeout=10) as admin:
        key = ok_post(admin, "/key/generate", {"models": [MODEL]})["key"]
        first = _service(stack, f"controlplane-{admin_ports[0]}")
        stack.stop_service(first)
        try:
            assert _chat(bases[0], key) == 200
            blocked = admin.post("/key/block", json={"key": key})
            assert blocked.status_code == 200
            assert blocked.elapsed.total_seconds() < 1.5
            assert _chat(bases[1], key) == 401
            assert _chat(bases[0], key) == 200  # its control plane is down: the last snapshot serves
        finally:
            stack.start_controlplane(admin_port=admin_ports[0])
