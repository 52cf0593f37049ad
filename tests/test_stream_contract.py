"""The streaming and large-body contract: many concurrent streams, big requests, client disconnects."""

from __future__ import annotations

import asyncio
import base64
import secrets

import aiohttp
import httpx
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FakeOpenAI
from tests.harness import FAKE_UPSTREAM_KEY, wait_until


@pytest.fixture(scope="module")
def big_setup(stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]) -> dict[str, str]:
    """A mock model, a model on the fake upstream, and a key for both."""
    _, base = fake_openai
    suffix = secrets.token_hex(3)
    mock, upstream = f"streams-{suffix}", f"big-{suffix}"
    assert (
        admin.post("/model/new", json={"model_name": mock, "litellm_params": {"model": "mock/m"}}).status_code
        == 200
    )
    created = admin.post(
        "/model/new",
        json={
            "model_name": upstream,
            "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": base, "api_key": FAKE_UPSTREAM_KEY},
        },
    )
    assert created.status_code == 200
    key = admin.post("/key/generate", json={}).json()["key"]

    def ready() -> bool:
        response = httpx.post(
            stack.base_url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": upstream, "messages": [{"role": "user", "content": "x"}]},
        )
        return response.status_code == 200

    wait_until(ready, timeout=2.0)
    return {"mock": mock, "upstream": upstream, "key": key}


async def test_512_concurrent_streams_all_complete(stack: Stack, big_setup: dict[str, str]) -> None:
    """One data-plane process carries 512 streams at once; each ends with [DONE]."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one_stream() -> bytes:
            async with session.post(
                stack.base_url + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {big_setup['key']}"},
                json={
                    "model": big_setup["mock"],
                    "messages": [{"role": "user", "content": "x"}],
                    "stream": True,
                },
                timeout=aiohttp.ClientTimeout(total=60),
            ) as response:
                assert response.status == 200
                return await response.read()

        bodies = await asyncio.gather(*(one_stream() for _ in range(512)))
    assert all(body.rstrip().endswith(b"data: [DONE]") for body in bodies)


def test_a_20_mb_request_passes_and_a_too_large_one_is_413(
    stack: Stack, big_setup: dict[str, str], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """A 20 MB body (a base64 image) reaches the provider whole; beyond the 32 MB limit it is a clean 413."""
    fake, _ = fake_openai
    image = base64.b64encode(b"\x89PNG" + secrets.token_bytes(15 * 1024 * 1024)).decode()
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}},
    ]
    response = httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {big_setup['key']}"},
        json={"model": big_setup["upstream"], "messages": [{"role": "user", "content": content}]},
        timeout=60,
    )
    assert response.status_code == 200, response.text[:500]
    assert fake.requests[-1]["messages"][0]["content"][1]["image_url"]["url"].endswith(image[-64:])
    too_big = httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {big_setup['key']}", "Content-Type": "application/json"},
        content=b'{"model": "x", "messages": "' + b"a" * (33 * 1024 * 1024) + b'"}',
        timeout=60,
    )
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "payload_too_large"


def test_client_disconnect_mid_stream_still_bills_exactly(
    stack: Stack, admin: httpx.Client, big_setup: dict[str, str], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """A client that leaves after the first event is still billed from the provider's usage frame."""
    _, base = fake_openai
    name = f"leaving-{secrets.token_hex(3)}"
    created = admin.post(
        "/model/new",
        json={
            "model_name": name,
            "litellm_params": {
                "model": "openai/stream-delay",
                "api_base": base,
                "api_key": FAKE_UPSTREAM_KEY,
            },
        },
    )
    assert created.status_code == 200
    key = big_setup["key"]
    wait_until(
        lambda: (
            httpx.post(
                stack.base_url + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={"model": name, "messages": [{"role": "user", "content": "x"}]},
            ).status_code
            == 200
        ),
        timeout=2.0,
    )
    with httpx.stream(
        "POST",
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": name, "messages": [{"role": "user", "content": "x"}], "stream": True},
    ) as response:
        request_id = response.headers["x-request-id"]
        next(response.iter_bytes())
    # The connection is closed here; the upstream still has most of its events (100 ms apart) to send.

    def logged() -> dict[str, object] | None:
        rows = admin.get("/spend/logs", params={"request_id": request_id}).json()
        return rows[0] if rows else None

    row = wait_until(logged, timeout=10.0, interval=0.1)
    assert row["prompt_tokens"] == 11 and row["completion_tokens"] == 7
    metadata = row["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["usage_estimated"] is False and metadata["error_code"] == "client_disconnected"
