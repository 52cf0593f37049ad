"""A data plane bounds what a client can hold open: connections over the cap are refused with a
503, idle connections and slow bodies time out, and admin bodies over their cap are a 413 before
the data plane holds them; everyone else is served throughout."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator

import httpx
import orjson
import pytest

from hydite_common.devstack import ServiceProcess, Stack, free_port
from tests.harness import ok_post, synced, wait_until


def _dataplane(stack: Stack, **env: str) -> tuple[ServiceProcess, int]:
    port = free_port()
    return stack.start_dataplane(port, f"dataplane-limits-{port}", None, **env), port


@pytest.fixture
def capped(stack: Stack) -> Iterator[int]:
    """A data plane that takes at most four client connections; its port."""
    service, port = _dataplane(stack, HYDITE_MAX_CONNECTIONS="4")
    yield port
    stack.stop_service(service)


@pytest.fixture
def impatient(stack: Stack) -> Iterator[int]:
    """A data plane that closes idle connections and gives up on bodies after half a second."""
    service, port = _dataplane(
        stack, HYDITE_CLIENT_IDLE_TIMEOUT_SECONDS="0.5", HYDITE_REQUEST_BODY_TIMEOUT_SECONDS="0.5"
    )
    yield port
    stack.stop_service(service)


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response's head and body (by its Content-Length), without waiting for the close."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def test_connections_over_the_cap_get_a_503_and_the_rest_are_served(capped: int) -> None:
    """With four idle connections open, a fifth is answered 503 too_many_connections and closed;
    once they close, requests are served again."""
    idle = [_connect(capped) for _ in range(4)]
    try:
        wait_until(lambda: b" 503 " in _answer(_connect(capped)), timeout=5)
        with _connect(capped) as refused:
            head, _, body = _answer(refused).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in head
        assert orjson.loads(body)["error"]["code"] == "too_many_connections"
    finally:
        for sock in idle:
            sock.close()
    url = f"http://127.0.0.1:{capped}/health/readiness"
    wait_until(lambda: httpx.get(url, timeout=5).status_code == 200, timeout=5)


def test_an_idle_connection_is_closed(impatient: int) -> None:
    """A connection that never sends a request is closed by the server after the idle timeout."""
    with _connect(impatient) as idle:
        assert _answer(idle) == b""


def test_a_body_that_does_not_arrive_is_a_408(stack: Stack, admin: httpx.Client, impatient: int) -> None:
    """A request whose body stops arriving gets an OpenAI-shaped 408; the next request is served."""
    model = f"limits-{secrets.token_hex(3)}"
    ok_post(admin, "/model/new", {"model_name": model, "litellm_params": {"model": "mock/x"}})
    key = ok_post(admin, "/key/generate", {"models": [model]})["key"]
    synced(admin)
    with _connect(impatient) as slow:
        slow.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {key}\r\nContent-Length: 1000\r\n\r\n".encode()
            + b'{"model": "'
        )
        head, body = _response(slow)  # the server may linger for the rest of the body before closing
    assert head.startswith(b"HTTP/1.1 408"), head
    assert orjson.loads(body)["error"]["code"] == "request_timeout"
    served = httpx.post(
        f"http://127.0.0.1:{impatient}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert served.status_code == 200, served.text


def test_an_admin_body_over_its_cap_is_a_413_at_the_data_plane(stack: Stack, admin: httpx.Client) -> None:
    """Admin bodies past the cap are refused by the data plane, announced or streamed, before the
    control plane sees them; ordinary admin calls keep working."""
    big = b'{"metadata": {"x": "' + b"y" * (2 * 1024 * 1024) + b'"}}'
    announced = httpx.post(stack.base_url + "/key/generate", content=big, timeout=10)
    assert announced.status_code == 413 and announced.json()["error"]["code"] == "payload_too_large"

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(big), 256 * 1024):
            yield big[start : start + 256 * 1024]

    streamed = httpx.post(stack.base_url + "/key/generate", content=pieces(), timeout=10)
    assert streamed.status_code == 413
    assert ok_post(admin, "/key/generate", {})["key"].startswith("sk-")


def test_a_client_leaving_mid_body_logs_no_traceback(stack: Stack, admin: httpx.Client) -> None:
    """A client that closes its connection halfway through a body leaves no 'unhandled' error in
    the data plane's log, and the data plane keeps serving."""
    key = ok_post(admin, "/key/generate", {})["key"]
    synced(admin)
    for path in ("/v1/chat/completions", "/key/generate"):
        with _connect(stack.config.dataplane_port) as leaving:
            leaving.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
                + f"Authorization: Bearer {key}\r\nContent-Length: 1000\r\n\r\n".encode()
                + b'{"model": "'
            )
    ready = stack.base_url + "/health/readiness"
    wait_until(lambda: httpx.get(ready, timeout=5).status_code == 200, timeout=5)
    dataplane = next(s for s in stack.services if s.name.startswith("dataplane"))
    assert dataplane.log_path is not None
    assert "unhandled error" not in dataplane.log_path.read_text(errors="replace")
