"""SIGTERM on the control plane and spend-ingest: readiness answers 503 at once (during the
endpoint-removal delay), the request or batch in flight is finished, and the process exits 0."""

from __future__ import annotations

import asyncio
import socket
import uuid

import httpx
import nats
import orjson

from hydite_common.devstack import ServiceProcess, Stack, free_port
from hydite_common.events import UsageEvent, batch_message_id, encode_batch
from hydite_common.settings import BaseServiceSettings
from hydite_common.usage_stream import usage_subject
from tests.harness import spend_row, wait_until

DELAY_SECONDS = 0.75


def _readiness(port: int) -> tuple[int, str] | None:
    """Status and reason of a readiness probe on a new connection (None: refused)."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health/readiness", timeout=2)
    except httpx.ConnectError:
        return None
    return response.status_code, response.json().get("reason", "")


def _stopping(port: int) -> bool:
    return _readiness(port) == (503, "shutting down")


def _exit_code(stack: Stack, service: ServiceProcess) -> int | None:
    try:
        return service.process.wait(timeout=15)
    finally:
        stack.stop_service(service)


def test_control_plane_finishes_the_request_in_flight_and_exits_0(stack: Stack) -> None:
    """SIGTERM while an admin write's body is still arriving: readiness is 503, the write still
    answers 200 with its key, and the replica exits 0."""
    port = free_port()
    replica = stack.start_controlplane(port, free_port(), HYDITE_SHUTDOWN_DELAY_SECONDS=str(DELAY_SECONDS))
    body = orjson.dumps({"key_alias": f"lifecycle-{uuid.uuid4().hex[:8]}"})
    head = (
        f"POST /key/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {stack.config.master_key}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as conn:
        conn.sendall(head + body[:5])
        replica.terminate()
        wait_until(lambda: _stopping(port), timeout=DELAY_SECONDS)
        conn.sendall(body[5:])
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 200 " in status_line, answer[:500]
    assert orjson.loads(rest.partition(b"\r\n\r\n")[2])["key"].startswith("sk-")
    assert _exit_code(stack, replica) == 0


def test_spend_ingest_settles_its_batches_and_exits_0(stack: Stack, admin: httpx.Client) -> None:
    """A second spend-ingest gets SIGTERM while batches arrive: readiness is 503, it exits 0, and
    every event is written exactly once (by it or by the stack's own ingest)."""
    port = free_port()
    ingest = stack.spawn(
        f"spend-ingest-{port}",
        "hydite_spend_ingest",
        port,
        HYDITE_INGEST_PORT=str(port),
        HYDITE_SHUTDOWN_DELAY_SECONDS=str(DELAY_SECONDS),
    )
    node = f"lifecycle-{uuid.uuid4().hex[:8]}"
    request_ids = [f"{node}-{i}" for i in range(20)]
    assert stack.nats is not None
    nats_url = stack.nats.url
    settings = BaseServiceSettings(nats_prefix=stack.config.nats_prefix)

    async def publish(seqs: range) -> None:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            for seq in seqs:
                events = [_event(request_ids[seq])]
                await js.publish(
                    usage_subject(settings),
                    encode_batch(node, seq, events),
                    headers={"Nats-Msg-Id": batch_message_id(node, seq)},
                )
        finally:
            await nc.close()

    asyncio.run(publish(range(10)))
    ingest.terminate()
    asyncio.run(publish(range(10, 20)))
    wait_until(lambda: _stopping(port), timeout=DELAY_SECONDS)
    assert _exit_code(stack, ingest) == 0
    for request_id in request_ids:
        assert spend_row(admin, request_id)["request_id"] == request_id


def _event(request_id: str) -> UsageEvent:
    """The fields a batch needs of an event; the rest take their defaults."""
    return {  # type: ignore[typeddict-item]
        "request_id": request_id, "call_type": "chat_completion", "start_time_ms": 1_700_000_000_000.0,
        "end_time_ms": 1_700_000_000_100.0, "key_hash": "cd" * 32, "model": "lifecycle",
        "status": "success", "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "cost": 0.0,
    }  # fmt: skip
