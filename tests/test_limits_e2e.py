"""Rate limits set through the admin API are enforced by the data plane, with OpenAI-shaped 429s."""

from __future__ import annotations

import secrets
import threading

import httpx
import openai
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FakeOpenAI
from tests.harness import deploy_fake, synced, wait_until


def _model(admin: httpx.Client, fake_base: str, upstream: str) -> str:
    name = f"limits-{upstream}-{secrets.token_hex(3)}"
    deploy_fake(admin, fake_base, name, upstream)
    return name


def _chat(stack: Stack, key: str, model: str) -> httpx.Response:
    return httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )


def _key(admin: httpx.Client, **limits: object) -> str:
    response = admin.post("/key/generate", json=limits)
    assert response.status_code == 200, response.text
    synced(admin)
    return str(response.json()["key"])


def test_rpm_limit_is_a_429_the_sdk_recognises(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """rpm_limit 2: the third call in the minute is a 429 with retry-after, and lands in the spend logs."""
    model = _model(admin, fake_openai[1], "gpt-4o-mini")
    key = _key(admin, rpm_limit=2)
    assert [_chat(stack, key, model).status_code for _ in range(2)] == [200, 200]
    refused = _chat(stack, key, model)
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rpm_limit_exceeded"
    assert "2 requests per minute" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    client = openai.OpenAI(api_key=key, base_url=stack.base_url + "/v1", max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    request_id = refused.headers["x-request-id"]

    def logged() -> object:
        rows = admin.get("/spend/logs", params={"api_key": key}).json()
        return next((row for row in rows if row["request_id"] == request_id), None)

    row = wait_until(logged, timeout=10.0, interval=0.05)
    assert row["status"] == "failure"


def test_tpm_limit_counts_the_tokens_providers_report(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """A TPM limit below one call's tokens lets that call through, then refuses until the minute slides."""
    model = _model(admin, fake_openai[1], "gpt-4o-mini")
    key = _key(admin, tpm_limit=5)
    assert _chat(stack, key, model).status_code == 200
    refused = _chat(stack, key, model)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "tpm_limit_exceeded"


def test_parallel_limit_refuses_while_a_call_is_in_flight(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """max_parallel_requests 1: a second call during a slow one is a 429; after it, calls pass again."""
    slow = _model(admin, fake_openai[1], "slow")
    fast = _model(admin, fake_openai[1], "gpt-4o-mini")
    key = _key(admin, max_parallel_requests=1)
    fake = fake_openai[0]
    slow_calls_before = fake.calls.count(("/v1/chat/completions", "slow"))
    results: list[int] = []
    worker = threading.Thread(target=lambda: results.append(_chat(stack, key, slow).status_code))
    worker.start()
    try:
        # Poll only once the slow call is upstream: a fast call admitted first would refuse the slow one.
        wait_until(
            lambda: fake.calls.count(("/v1/chat/completions", "slow")) > slow_calls_before, timeout=5.0
        )
        refused = wait_until(lambda: (r := _chat(stack, key, fast)).status_code == 429 and r, timeout=5.0)
        assert refused.json()["error"]["code"] == "max_parallel_requests_exceeded"
    finally:
        worker.join()
    assert results == [200]
    assert _chat(stack, key, fast).status_code == 200


def test_team_limit_is_shared_by_its_keys(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """A team's rpm_limit counts the calls of all its keys together; a limit change applies at once."""
    model = _model(admin, fake_openai[1], "gpt-4o-mini")
    team = admin.post("/team/new", json={"team_alias": f"t-{secrets.token_hex(3)}", "rpm_limit": 2}).json()
    first = _key(admin, team_id=team["team_id"])
    second = _key(admin, team_id=team["team_id"])
    assert _chat(stack, first, model).status_code == 200
    assert _chat(stack, second, model).status_code == 200
    refused = _chat(stack, first, model)
    assert refused.status_code == 429 and "team" in refused.json()["error"]["message"]
    assert admin.post("/team/update", json={"team_id": team["team_id"], "rpm_limit": 100}).status_code == 200
    synced(admin)
    assert _chat(stack, second, model).status_code == 200
