"""Retries, fallbacks, cooldowns, timeouts and stream relaying through the real data plane."""

from __future__ import annotations

import itertools
import secrets
import time
from typing import Any

import httpx
import openai
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import STREAM_WORDS, FakeOpenAI
from tests.harness import deploy_fake, synced


@pytest.fixture(scope="module")
def key(admin: httpx.Client) -> str:
    """A key that may call every model."""
    return str(admin.post("/key/generate", json={}).json()["key"])


def _chat(stack: Stack, key: str, model: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra},
        timeout=30,
    )


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def test_flaky_upstream_is_retried_until_it_answers(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], key: str
) -> None:
    """Two 500s then success: the client sees one 200, after three attempts."""
    fake, base = fake_openai
    name = _name("flaky")
    upstream = "flaky-2"  # the fake counts per exact model name; only this test uses it
    deploy_fake(admin, base, name, upstream)
    synced(admin)
    response = _chat(stack, key, name)
    assert response.status_code == 200, response.text
    assert response.headers["x-hydite-attempts"] == "3"
    assert fake.attempts(upstream) == 3


def test_a_failing_deployment_is_skipped_and_cooled_down(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], key: str
) -> None:
    """With a broken and a healthy deployment every call succeeds, and the broken one goes into cooldown."""
    fake, base = fake_openai
    name = _name("pair")
    good = deploy_fake(admin, base, name, "gpt-4o-mini")
    deploy_fake(admin, base, name, "fail-503")
    synced(admin)
    before = fake.attempts("fail-503")
    for _ in range(12):
        response = _chat(stack, key, name)
        assert response.status_code == 200, response.text
        assert response.headers["x-hydite-deployment"] == good
    # Three failures cool it down (5 s by default); the rest of the calls never touch it.
    assert fake.attempts("fail-503") - before <= 3


def test_rate_limit_is_retried_after_retry_after_and_then_surfaces(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], key: str
) -> None:
    """A 429 with retry-after 1 is retried after about a second; the final 429 keeps its retry-after."""
    fake, base = fake_openai
    name = _name("limited")
    deploy_fake(admin, base, name, "fail-429")
    synced(admin)
    before = fake.attempts("fail-429")
    started = time.monotonic()
    response = _chat(stack, key, name, num_retries=1)
    elapsed = time.monotonic() - started
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert response.headers["retry-after"] == "1"
    assert fake.attempts("fail-429") - before == 2
    assert elapsed >= 0.9


def test_general_fallback_serves_when_the_group_fails(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], key: str
) -> None:
    """A group whose only deployment fails falls back to the model named in model_info.fallbacks."""
    _, base = fake_openai
    backup = _name("backup")
    backup_id = deploy_fake(admin, base, backup, "gpt-4o-mini")
    primary = _name("primary")
    deploy_fake(admin, base, primary, "fail-500", info={"fallbacks": [backup]})
    synced(admin)
    response = _chat(stack, key, primary, num_retries=0)
    assert response.status_code == 200, response.text
    assert response.headers["x-hydite-deployment"] == backup_id
    assert response.headers["x-hydite-attempts"] == "2"


def test_context_window_error_uses_its_own_fallback_or_passes_through(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], key: str
) -> None:
    """context_length_exceeded goes to the context-window fallback; without one the client sees the 400."""
    _, base = fake_openai
    long_model = _name("long")
    long_id = deploy_fake(admin, base, long_model, "gpt-4o")
    short = _name("short")
    deploy_fake(admin, base, short, "fail-400-context", info={"context_window_fallbacks": [long_model]})
    plain = _name("plain-short")
    deploy_fake(admin, base, plain, "fail-400-context")
    synced(admin)
    moved = _chat(stack, key, short)
    assert moved.status_code == 200 and moved.headers["x-hydite-deployment"] == long_id
    refused = _chat(stack, key, plain)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "context_length_exceeded"


def test_client_errors_are_not_retried(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], key: str
) -> None:
    """A provider 401 is not retried and comes back as an upstream authentication error."""
    fake, base = fake_openai
    name = _name("badcreds")
    deploy_fake(admin, base, name, "fail-401")
    synced(admin)
    before = fake.attempts("fail-401")
    response = _chat(stack, key, name)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "upstream_authentication_error"
    assert fake.attempts("fail-401") - before == 1


def test_dropped_connections_and_timeouts_become_502_and_504(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], key: str
) -> None:
    """A dropped connection is retried then reported as 502; a deployment timeout as 504."""
    fake, base = fake_openai
    dropped = _name("drop")
    deploy_fake(admin, base, dropped, "drop")
    slow = _name("slow")
    deploy_fake(admin, base, slow, "slow", timeout=0.3)
    synced(admin)
    before = fake.attempts("drop")
    response = _chat(stack, key, dropped, num_retries=1)
    assert response.status_code == 502 and response.json()["error"]["type"] == "api_error"
    assert fake.attempts("drop") - before == 2
    timed_out = _chat(stack, key, slow, num_retries=0)
    assert timed_out.status_code == 504 and timed_out.json()["error"]["code"] == "timeout"


def test_stream_events_are_relayed_one_by_one_as_they_arrive(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], key: str
) -> None:
    """With 100 ms between upstream events the client receives each event separately and in order."""
    _, base = fake_openai
    name = _name("delayed")
    deploy_fake(admin, base, name, "stream-delay")
    synced(admin)
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)
    arrivals: list[float] = []
    texts: list[str] = []
    for chunk in client.chat.completions.create(
        model=name, messages=[{"role": "user", "content": "x"}], stream=True
    ):
        arrivals.append(time.monotonic())
        if chunk.choices:
            texts.append(chunk.choices[0].delta.content or "")
    assert "".join(texts) == "".join(STREAM_WORDS)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(gaps) >= len(STREAM_WORDS) and min(gaps) >= 0.06


def test_a_stream_that_breaks_is_not_retried_and_ends_with_an_error_event(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], key: str
) -> None:
    """Once bytes reached the client a broken stream is reported in-band, never silently retried."""
    fake, base = fake_openai
    name = _name("broken")
    deploy_fake(admin, base, name, "stream-break")
    synced(admin)
    before = fake.attempts("stream-break")
    with httpx.stream(
        "POST",
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": name, "messages": [{"role": "user", "content": "x"}], "stream": True},
        timeout=10,
    ) as response:
        body = b"".join(response.iter_bytes())
    assert response.status_code == 200
    assert b"Hello" in body and b'"error"' in body and b"[DONE]" not in body
    assert fake.attempts("stream-break") - before == 1


def test_latency_based_routing_prefers_the_faster_deployment_and_metrics_show_it(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], key: str
) -> None:
    """After trying both, latency-based routing picks the fast deployment; /model/metrics agrees."""
    _, base = fake_openai
    name = _name("latency")
    info = {"routing_strategy": "latency-based-routing"}
    fast = deploy_fake(admin, base, name, "gpt-4o-mini", info=info)
    slow = deploy_fake(admin, base, name, "slow", info=info)
    synced(admin)
    used = [_chat(stack, key, name).headers["x-hydite-deployment"] for _ in range(8)]
    assert set(used) == {fast, slow}  # each tried once (untried first), then only the fast one
    assert used[2:] == [fast] * 6
    metrics = httpx.get(stack.base_url + "/model/metrics", headers={"Authorization": f"Bearer {key}"}).json()
    rows = {r["deployment_id"]: r for r in metrics["data"] if r["model_group"] == name}
    assert rows[fast]["requests"] == 7 and rows[slow]["requests"] == 1
    assert rows[fast]["success_rate"] == 1.0
    assert rows[slow]["avg_latency_ms"] > rows[fast]["avg_latency_ms"]
