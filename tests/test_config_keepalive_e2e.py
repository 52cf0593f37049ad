"""The config stream outlives many keepalive pings: a control plane and a data plane on a short
HYDITE_GRPC_KEEPALIVE_SECONDS keep one idle stream (no GOAWAY too_many_pings, no reconnect), and
an admin write still reaches the data plane over it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from hydite_common.devstack import ServiceProcess, Stack, free_port
from tests.harness import unique, wait_until

KEEPALIVE_SECONDS = 0.5
IDLE_SECONDS = 5.0
"""Ten ping intervals: gRPC's default server policy (one ping per five minutes, two strikes) would
have ended the stream after the third."""


def _metric(base_url: str, name: str) -> float:
    text = httpx.get(base_url + "/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


@pytest.fixture(scope="module")
def pinging_pair(stack: Stack) -> Iterator[tuple[str, str]]:
    """A control plane replica on the session's database and a data plane streaming from it, both
    pinging every KEEPALIVE_SECONDS; their admin and base URLs."""
    keepalive = {
        "HYDITE_GRPC_KEEPALIVE_SECONDS": str(KEEPALIVE_SECONDS),
        "HYDITE_GRPC_KEEPALIVE_TIMEOUT_SECONDS": "2",
    }
    started: list[ServiceProcess] = []
    try:
        admin_port, grpc_port, port = free_port(), free_port(), free_port()
        started.append(stack.start_controlplane(admin_port=admin_port, grpc_port=grpc_port, **keepalive))
        started.append(
            stack.start_dataplane(
                port=port,
                grpc_port=grpc_port,
                HYDITE_CONTROLPLANE_URL=f"http://127.0.0.1:{admin_port}",
                **keepalive,
            )
        )
        yield f"http://127.0.0.1:{admin_port}", f"http://127.0.0.1:{port}"
    finally:
        for service in reversed(started):
            stack.stop_service(service)


def test_idle_stream_survives_many_keepalive_pings(stack: Stack, pinging_pair: tuple[str, str]) -> None:
    """Over ten ping intervals the data plane keeps its first stream, and a write made afterwards
    is applied through that same stream."""
    admin_url, base_url = pinging_pair
    assert _metric(base_url, "hydite_config_streams_total") == 1
    deadline = time.monotonic() + IDLE_SECONDS
    while time.monotonic() < deadline:
        assert _metric(base_url, "hydite_config_streams_total") == 1, "the config stream was re-established"
        time.sleep(0.25)

    written = httpx.post(
        admin_url + "/model/new",
        json={"model_name": unique("keepalive"), "litellm_params": {"model": "mock/m"}},
        headers={"Authorization": f"Bearer {stack.config.master_key}"},
        timeout=10,
    )
    assert written.status_code == 200, written.text
    head = httpx.get(
        admin_url + "/config/status",
        headers={"Authorization": f"Bearer {stack.config.master_key}"},
        timeout=5,
    ).json()["version"]
    wait_until(lambda: _metric(base_url, "hydite_config_version") >= head, timeout=2.0, interval=0.02)
    assert _metric(base_url, "hydite_config_streams_total") == 1
