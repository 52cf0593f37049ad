"""Per-key and per-end-user restrictions enforced by the data plane after admin changes."""

from __future__ import annotations

import secrets

import httpx

from hydite_common.devstack import Stack
from tests.harness import wait_until


def _chat(stack: Stack, key: str, **extra: object) -> httpx.Response:
    return httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "restrict-mock", "messages": [{"role": "user", "content": "x"}], **extra},
        timeout=5,
    )


def _setup_model(admin: httpx.Client) -> None:
    response = admin.post(
        "/model/new",
        json={
            "model_name": "restrict-mock",
            "litellm_params": {"model": "mock/r"},
            "model_info": {"id": "restrict-mock"},
        },
    )
    assert response.status_code in (200, 409), response.text


def test_allowed_routes_limit_a_key_to_info_routes(stack: Stack, admin: httpx.Client) -> None:
    """A key limited to info_routes may read itself but not call models, on either plane."""
    _setup_model(admin)
    key = admin.post("/key/generate", json={"allowed_routes": ["info_routes"]}).json()["key"]
    response = wait_until(lambda: (r := _chat(stack, key)).status_code != 401 and r, timeout=2.0)
    assert response.status_code == 403 and response.json()["error"]["code"] == "route_not_allowed"
    info = httpx.get(stack.base_url + "/key/info", headers={"Authorization": f"Bearer {key}"})
    assert info.status_code == 200, info.text


def test_blocked_end_user_is_refused(stack: Stack, admin: httpx.Client) -> None:
    """A request naming a blocked customer in `user` is a 403; unblocking restores it."""
    _setup_model(admin)
    customer = f"cust-{secrets.token_hex(3)}"
    assert admin.post("/customer/new", json={"user_id": customer}).status_code == 200
    key = admin.post("/key/generate", json={}).json()["key"]
    wait_until(lambda: _chat(stack, key, user=customer).status_code == 200, timeout=2.0)
    assert admin.post("/customer/block", json={"user_ids": [customer]}).status_code == 200
    wait_until(lambda: _chat(stack, key, user=customer).status_code == 403, timeout=1.0)
    assert _chat(stack, key, user=customer).json()["error"]["code"] == "customer_blocked"
    assert _chat(stack, key, user="someone-else").status_code == 200
    assert admin.post("/customer/unblock", json={"user_ids": [customer]}).status_code == 200
    wait_until(lambda: _chat(stack, key, user=customer).status_code == 200, timeout=1.0)
