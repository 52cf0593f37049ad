"""SIGTERM drains within a bound: readiness answers 503 at once, the listener accepts for the
endpoint-removal delay and then refuses, a stream in flight finishes with its [DONE] and is billed,
and the process exits 0; a stream longer than the drain time is cut when it runs out, the data
plane exits within drain + usage drain, and the cut stream is billed for what it used."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from aiohttp import web

from hydite_common.devstack import ServiceProcess, Stack, free_port
from tests.fakes.openai_server import FakeServerThread
from tests.harness import ok_get, ok_post, spend_row, synced, wait_until

DRAIN_SECONDS = 1.0
USAGE_DRAIN_SECONDS = 3.0


def _endless_stream_app() -> web.Application:
    """An upstream whose chat streams send a chunk every 100 ms and never end."""

    async def chat(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                 "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]}  # fmt: skip
        while True:
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            await asyncio.sleep(0.1)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


FINITE_CHUNKS = 20
SHUTDOWN_DELAY_SECONDS = 1.0


def _finite_stream_app() -> web.Application:
    """An upstream whose chat streams send FINITE_CHUNKS chunks 100 ms apart, their usage, then [DONE]."""

    async def chat(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                 "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]}  # fmt: skip
        for _ in range(FINITE_CHUNKS):
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            await asyncio.sleep(0.1)
        usage = {"prompt_tokens": 3, "completion_tokens": FINITE_CHUNKS, "total_tokens": 3 + FINITE_CHUNKS}
        last = {**chunk, "choices": [], "usage": usage}
        await response.write(b"data: " + orjson.dumps(last) + b"\n\ndata: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


@pytest.fixture
def finite_upstream() -> Iterator[str]:
    """Base URL (with /v1) of the finite slow upstream."""
    server = FakeServerThread(_finite_stream_app())
    base = server.start()
    yield f"{base}/v1"
    server.stop()


def _readiness_status(port: int) -> int | None:
    """The status of a readiness probe on a new connection (None: the connection is refused)."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/readiness", timeout=2).status_code
    except httpx.ConnectError:
        return None


class _StreamReader(threading.Thread):
    """Reads one chat stream to its end (or until the connection is cut), keeping what came."""

    def __init__(self, url: str, key: str, model: str) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.model = url, key, model
        self.received: list[bytes] = []
        self.request_ids: list[str] = []
        self.started = threading.Event()

    def run(self) -> None:
        body = {"model": self.model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        headers = {"Authorization": f"Bearer {self.key}"}
        try:
            with httpx.stream("POST", self.url, json=body, headers=headers, timeout=30) as response:
                self.request_ids.append(response.headers["x-request-id"])
                for part in response.iter_bytes():
                    self.received.append(part)
                    self.started.set()
        except httpx.HTTPError:
            pass


def _streaming_dataplane(
    stack: Stack, admin: httpx.Client, upstream: str, name: str, **env: str
) -> tuple[int, ServiceProcess, _StreamReader]:
    """A data plane of its own (with env), and a stream through it to a new model on upstream."""
    model = f"{name}-{secrets.token_hex(3)}"
    ok_post(
        admin,
        "/model/new",
        {"model_name": model, "litellm_params": {"model": "openai/m", "api_base": upstream, "api_key": "x"}},
    )
    key = ok_post(admin, "/key/generate", {"models": [model]})["key"]
    port = free_port()
    service = stack.start_dataplane(port, f"dataplane-{name}-{port}", None, **env)
    synced(admin)
    reader = _StreamReader(f"http://127.0.0.1:{port}/v1/chat/completions", key, model)
    reader.start()
    return port, service, reader


def test_sigterm_turns_readiness_off_keeps_accepting_for_the_delay_and_finishes_the_stream(
    stack: Stack, admin: httpx.Client, finite_upstream: str
) -> None:
    """SIGTERM with a stream in flight: readiness is 503 during the delay (the listener still
    accepts), then new connections are refused, the stream still ends with [DONE], the process exits
    0, and the stream's usage is billed."""
    port, service, reader = _streaming_dataplane(
        stack,
        admin,
        finite_upstream,
        "lifecycle",
        HYDITE_SHUTDOWN_DELAY_SECONDS=str(SHUTDOWN_DELAY_SECONDS),
        HYDITE_DRAIN_SECONDS="15",
    )
    try:
        assert reader.started.wait(10)
        assert _readiness_status(port) == 200
        service.process.terminate()
        # Readiness turns at once, while the listener still takes new connections.
        wait_until(lambda: _readiness_status(port) == 503, timeout=SHUTDOWN_DELAY_SECONDS)
        # After the delay: refused, with the stream still running.
        wait_until(lambda: _readiness_status(port) is None, timeout=SHUTDOWN_DELAY_SECONDS + 5)
        assert reader.is_alive()
        reader.join(15)
        assert service.process.wait(timeout=15) == 0
    finally:
        stack.stop_service(service)
        reader.join(10)
    assert b"".join(reader.received).rstrip().endswith(b"data: [DONE]")
    row = spend_row(admin, reader.request_ids[0], timeout=15)
    assert row["status"] == "success" and row["completion_tokens"] == FINITE_CHUNKS


@pytest.fixture
def endless_upstream() -> Iterator[str]:
    """Base URL (with /v1) of the endless upstream."""
    server = FakeServerThread(_endless_stream_app())
    base = server.start()
    yield f"{base}/v1"
    server.stop()


def test_a_stream_past_the_drain_is_cut_billed_and_the_process_exits_in_time(
    stack: Stack, admin: httpx.Client, endless_upstream: str
) -> None:
    """SIGTERM with an endless stream in flight: the data plane exits within drain + usage drain
    (plus start-up slack), and the stream's usage row says it was cut at shutdown."""
    _, service, reader = _streaming_dataplane(
        stack,
        admin,
        endless_upstream,
        "drain",
        HYDITE_DRAIN_SECONDS=str(DRAIN_SECONDS),
        HYDITE_USAGE_DRAIN_SECONDS=str(USAGE_DRAIN_SECONDS),
    )
    try:
        assert reader.started.wait(10)
        signalled = time.monotonic()
        service.process.terminate()
        service.process.wait(timeout=DRAIN_SECONDS + USAGE_DRAIN_SECONDS + 5)
        assert time.monotonic() - signalled < DRAIN_SECONDS + USAGE_DRAIN_SECONDS + 3
    finally:
        stack.stop_service(service)
        reader.join(10)

    def logged() -> object:
        rows = ok_get(admin, "/spend/logs", request_id=reader.request_ids[0])
        return rows[0] if rows else None

    row = wait_until(logged, timeout=15, interval=0.1)
    assert row["status"] == "failure" and row["metadata"]["error_code"] == "shutdown"
    assert row["completion_tokens"] > 0
