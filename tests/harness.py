"""How tests drive a running stack: unique names, checked admin calls, waiting for a condition or
for every data plane to apply the committed config, and fake deployments."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

FAKE_UPSTREAM_KEY = "sk-upstream-secret-0123456789"


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.01) -> Any:
    """Poll condition until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def unique(prefix: str) -> str:
    """A name no other test (or earlier run sharing the stack) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def ok_post(client: httpx.Client, path: str, body: dict[str, Any]) -> Any:
    """POST that must succeed; its JSON."""
    response = client.post(path, json=body)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
    return response.json()


def ok_get(client: httpx.Client, path: str, **params: Any) -> Any:
    """GET that must succeed; its JSON."""
    response = client.get(path, params=params)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
    return response.json()


def synced(admin: httpx.Client, timeout: float = 1.0) -> None:
    """Wait until every connected data plane acked the committed head version (no upstream calls)."""
    head = ok_get(admin, "/config/status")["version"]

    def acked() -> bool:
        nodes = [n for n in ok_get(admin, "/config/status")["nodes"] if n["connected"]]
        return bool(nodes) and all(n["acked_version"] >= head for n in nodes)

    wait_until(acked, timeout=timeout)


def deploy_fake(
    admin: httpx.Client,
    fake_base: str,
    name: str,
    upstream: str,
    *,
    info: dict[str, Any] | None = None,
    **params: Any,
) -> str:
    """Register a deployment of model group `name` on the fake upstream's model `upstream`; its id."""
    model_id = f"{name}-{upstream}-{uuid.uuid4().hex[:4]}"
    response = admin.post(
        "/model/new",
        json={
            "model_name": name,
            "litellm_params": {
                "model": f"openai/{upstream}",
                "api_base": fake_base,
                "api_key": FAKE_UPSTREAM_KEY,
                **params,
            },
            "model_info": {"id": model_id, **(info or {})},
        },
    )
    assert response.status_code == 200, response.text
    return model_id
