"""GET /health calls each deployment the key may use; GET /health/services summarises providers."""

from __future__ import annotations

import secrets

import httpx

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FakeOpenAI
from tests.harness import FAKE_UPSTREAM_KEY, wait_until


def test_health_reports_each_deployment_and_services_summarise(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """A good, a failing and a mock deployment show as healthy, unhealthy (with the reason) and healthy."""
    _, base = fake_openai
    suffix = secrets.token_hex(3)
    names = {"good": f"h-good-{suffix}", "bad": f"h-bad-{suffix}", "mock": f"h-mock-{suffix}"}
    params = {"api_base": base, "api_key": FAKE_UPSTREAM_KEY}
    for body in (
        {"model_name": names["good"], "litellm_params": {"model": "openai/gpt-4o-mini", **params}},
        {"model_name": names["bad"], "litellm_params": {"model": "openai/fail-500", **params}},
        {"model_name": names["mock"], "litellm_params": {"model": "mock/m"}},
        {
            "model_name": names["good"] + "-embed",
            "litellm_params": {"model": "openai/text-embedding-3-small", **params},
            "model_info": {"mode": "embedding"},
        },
    ):
        assert admin.post("/model/new", json=body).status_code == 200
    allowed = [*names.values(), names["good"] + "-embed"]
    key = admin.post("/key/generate", json={"models": allowed}).json()["key"]
    headers = {"Authorization": f"Bearer {key}"}

    def report() -> dict[str, object] | None:
        body = httpx.get(stack.base_url + "/health", headers=headers, timeout=30).json()
        return body if body.get("healthy_count", 0) + body.get("unhealthy_count", 0) == 4 else None

    body = wait_until(report, timeout=5.0, interval=0.1)
    healthy = {e["model"] for e in body["healthy_endpoints"]}
    assert healthy == {names["good"], names["mock"], names["good"] + "-embed"}
    (unhealthy,) = body["unhealthy_endpoints"]
    assert unhealthy["model"] == names["bad"] and "server had an error" in unhealthy["error"]
    assert FAKE_UPSTREAM_KEY not in str(body)
    one = httpx.get(stack.base_url + "/health", params={"model": names["mock"]}, headers=headers).json()
    assert one["healthy_count"] == 1 and one["unhealthy_count"] == 0
    services = httpx.get(stack.base_url + "/health/services", headers=headers).json()["services"]
    assert set(services) == {"openai", "mock"}
    assert services["openai"]["deployments"] == 3 and services["mock"]["status"] == "healthy"
    assert httpx.get(stack.base_url + "/health").status_code == 401
