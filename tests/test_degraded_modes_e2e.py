"""Degraded modes not proven elsewhere (README "Degraded modes" lists the tests of the others).

Postgres down, as a control-plane replica sees it: its database connection runs through a TCP
proxy the test cuts. The data plane it feeds keeps serving from its snapshot, the replica's
readiness says the database is unreachable, and admin calls answer an OpenAI-shaped 503 (never a
500) until the proxy is restored. Then the control plane itself down: inference goes on, and admin
calls forwarded by the data plane answer 503. And a data plane that never reached NATS: it serves,
its limits fall back to shares, and budgets fail open on the spend it never loaded."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from hydite_common.devstack import Stack, free_port
from tests.harness import ok_post, usage_waiting, wait_until


class CuttableProxy:
    """A TCP proxy on its own event loop thread; `cut()` drops every connection and refuses new ones
    (accepted, then closed at once) until `restore()`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self._cut = False
        self.port = 0

    def start(self) -> None:
        """Listen on a free port."""
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result(5)
        self._server = server
        self.port = int(server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()
        self._writers.discard(writer)

    def cut(self) -> None:
        """Drop every open connection; refuse new ones."""

        def drop() -> None:
            self._cut = True
            for writer in list(self._writers):
                writer.close()

        self._loop.call_soon_threadsafe(drop)

    def restore(self) -> None:
        """Pass connections through again."""
        self._loop.call_soon_threadsafe(setattr, self, "_cut", False)

    def stop(self) -> None:
        """Close everything and end the loop thread."""
        self.cut()
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def postgres_proxy(stack: Stack) -> Iterator[CuttableProxy]:
    """A cuttable proxy in front of the stack's Postgres."""
    assert stack.postgres is not None
    parts = urlsplit(stack.postgres.url)
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.start()
    yield proxy
    proxy.stop()


def _readiness(url: str) -> tuple[int, str]:
    response = httpx.get(url + "/health/readiness", timeout=5)
    return response.status_code, response.json().get("reason", "")


def test_postgres_then_control_plane_down_keep_inference_up_and_admin_answers_503(
    stack: Stack, postgres_proxy: CuttableProxy
) -> None:
    """With the replica's database cut: the data plane still answers chat and is ready; the replica
    is not ready ("database unreachable"); an admin write and read answer 503 with an OpenAI error
    body; restored, the replica is ready and writes succeed again."""
    assert stack.postgres is not None
    parts = urlsplit(stack.postgres.url)
    proxied = parts._replace(
        netloc=f"{parts.username or 'postgres'}@127.0.0.1:{postgres_proxy.port}"
    ).geturl()
    admin_port, grpc_port = free_port(), free_port()
    replica = stack.start_controlplane(admin_port, grpc_port, HYDITE_DATABASE_URL=proxied)
    dataplane_port = free_port()
    admin_url, dataplane_url = f"http://127.0.0.1:{admin_port}", f"http://127.0.0.1:{dataplane_port}"
    dataplane = stack.start_dataplane(
        dataplane_port, f"dataplane-pgdown-{dataplane_port}", grpc_port, HYDITE_CONTROLPLANE_URL=admin_url
    )
    headers = {"Authorization": f"Bearer {stack.config.master_key}"}
    try:
        with httpx.Client(base_url=admin_url, headers=headers, timeout=15) as admin:
            model = f"pgdown-{free_port()}"
            ok_post(admin, "/model/new", {"model_name": model, "litellm_params": {"model": "mock/m"}})
            key = ok_post(admin, "/key/generate", {"models": [model]})["key"]
            chat = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            inference = {"Authorization": f"Bearer {key}"}

            def chat_status() -> int:
                url = dataplane_url + "/v1/chat/completions"
                return httpx.post(url, json=chat, headers=inference, timeout=10).status_code

            wait_until(lambda: chat_status() == 200, timeout=5, interval=0.05)

            postgres_proxy.cut()
            wait_until(lambda: _readiness(admin_url)[0] == 503, timeout=10, interval=0.05)
            assert "database unreachable" in _readiness(admin_url)[1]
            calls: list[Callable[[], httpx.Response]] = [
                lambda: admin.post("/key/generate", json={"models": [model]}),
                lambda: admin.get("/key/list"),
            ]
            for call in calls:
                answer = call()
                assert answer.status_code == 503, answer.text
                error = answer.json()["error"]
                assert set(error) >= {"message", "type", "code", "param"}, error
                assert error["code"] == "database_unavailable", error
            assert chat_status() == 200
            assert _readiness(dataplane_url)[0] == 200

            postgres_proxy.restore()
            wait_until(lambda: _readiness(admin_url)[0] == 200, timeout=15, interval=0.1)
            ok_post(admin, "/key/generate", {"models": [model]})

        # Control plane down: inference goes on from the snapshot, admin calls through the data
        # plane answer 503.
        stack.stop_service(replica)
        assert chat_status() == 200
        assert _readiness(dataplane_url)[0] == 200
        forwarded = httpx.get(dataplane_url + "/key/list", headers=headers, timeout=10)
        assert forwarded.status_code == 503, forwarded.text
        assert forwarded.json()["error"]["code"] == "service_unavailable"
    finally:
        stack.stop_service(dataplane)
        stack.stop_service(replica)


def test_a_data_plane_without_nats_serves_and_fails_open_on_spend_it_never_loaded(
    stack: Stack, admin: httpx.Client
) -> None:
    """A data plane that never reached NATS is ready, says limits "fallback" and spend totals not
    loaded, and admits a key already past its budget (which a data plane that loaded the totals
    refuses); the request's usage waits in its spool."""
    model = f"nonats-{free_port()}"
    ok_post(admin, "/model/new", {"model_name": model, "litellm_params": {"model": "mock/m"}})
    key = ok_post(admin, "/key/generate", {"models": [model], "max_budget": 1.0})["key"]
    ok_post(admin, "/key/update", {"key": key, "spend": 5.0})
    chat = {"model": model, "messages": [{"role": "user", "content": "hi"}]}

    def chat_status(base_url: str) -> int:
        url = base_url + "/v1/chat/completions"
        return httpx.post(url, json=chat, headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code

    wait_until(lambda: chat_status(stack.base_url) == 429, timeout=5, interval=0.05)
    port = free_port()
    dataplane = stack.start_dataplane(
        port, f"dataplane-nonats-{port}", None, HYDITE_NATS_URL=f"nats://127.0.0.1:{free_port()}"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        ready = httpx.get(url + "/health/readiness", timeout=5)
        assert ready.status_code == 200
        limits = ready.json()["limits"]
        assert (limits["nats"], limits["spend_totals_loaded"], limits["mode"]) == (False, False, "fallback")
        assert chat_status(url) == 200
        wait_until(lambda: (usage_waiting(url) or 0) >= 1, timeout=5, interval=0.05)
    finally:
        stack.stop_service(dataplane)
