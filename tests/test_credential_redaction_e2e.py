"""A provider that echoes its credential in an error (in message, code and param, or in an error
event mid-stream) never gets it to the client, whatever the key's shape."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FakeOpenAI, FakeServerThread
from tests.harness import deploy_fake, synced, unique

ODD_KEY = "AbCdEf.GhIjKl/MnOpQr+StUvWx=0123"
"""No sk- prefix, and the characters the key pattern does not know."""


@pytest.fixture(scope="module")
def echoing_upstream() -> Iterator[str]:
    """A fake OpenAI upstream expecting ODD_KEY; its base URL (with /v1)."""
    server = FakeServerThread(FakeOpenAI(api_key=ODD_KEY).app())
    base = server.start()
    yield f"{base}/v1"
    server.stop()


@pytest.fixture(scope="module")
def echoing(admin: httpx.Client, echoing_upstream: str) -> dict[str, str]:
    """Model groups on the echoing fake (an error response, an error mid-stream) and a key for them."""
    error_model, stream_model = unique("echo-error"), unique("echo-stream")
    deploy_fake(admin, echoing_upstream, error_model, "fail-echo-key", api_key=ODD_KEY)
    deploy_fake(admin, echoing_upstream, stream_model, "stream-error-echo-key", api_key=ODD_KEY)
    key = admin.post("/key/generate", json={"models": [error_model, stream_model]}).json()["key"]
    synced(admin)
    return {"error": error_model, "stream": stream_model, "key": key}


def _post(stack: Stack, key: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"messages": [{"role": "user", "content": "hi"}], **body},
        timeout=30,
    )


def test_an_error_response_echoing_the_key_is_redacted(stack: Stack, echoing: dict[str, str]) -> None:
    """The 400 keeps the provider's message but the key is in none of its bytes or headers."""
    response = _post(stack, echoing["key"], {"model": echoing["error"]})
    assert response.status_code == 400, response.text
    assert ODD_KEY not in response.text and ODD_KEY not in str(response.headers)
    error = response.json()["error"]
    assert "Incorrect API key provided" in error["message"] and "[redacted]" in error["message"]
    assert error["code"] == "[redacted]" and error["param"] == "Bearer [redacted]"


def test_an_error_event_mid_stream_is_redacted(stack: Stack, echoing: dict[str, str]) -> None:
    """The content before it is relayed; both error events arrive without the key."""
    with httpx.stream(
        "POST",
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {echoing['key']}"},
        json={"model": echoing["stream"], "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        raw = response.read()
    assert ODD_KEY.encode() not in raw
    assert b'"content":"Hello"' in raw and b"event: error\n" in raw
    assert raw.count(b"[redacted]") >= 4 and b"data: [DONE]" in raw


def test_health_probes_do_not_show_the_key(stack: Stack, echoing: dict[str, str]) -> None:
    """/health reports the failing deployment's error without its credential."""
    response = httpx.get(
        stack.base_url + "/health",
        params={"model": echoing["error"]},
        headers={"Authorization": f"Bearer {echoing['key']}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["unhealthy_count"] == 1 and ODD_KEY not in response.text
