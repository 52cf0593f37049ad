"""Every data-plane inference route answers with and without /v1 and with each key header.

An empty body must reach the operation's own validation (a 400 naming what is missing), which
proves the route exists, the key was accepted from that header, and nothing crashed.
"""

from __future__ import annotations

import secrets

import httpx
import pytest

from hydite_common.devstack import Stack
from hydite_dataplane.routes import ROUTES
from tests.harness import wait_until

POST_ROUTES = sorted({r.path for r in ROUTES if r.auth == "inference" and r.method == "POST"})
HEADERS = ["Authorization", "api-key", "x-api-key"]


@pytest.fixture(scope="module")
def matrix_key(stack: Stack, admin: httpx.Client) -> tuple[str, str]:
    """A mock model and a key for it."""
    name = f"matrix-{secrets.token_hex(3)}"
    assert (
        admin.post("/model/new", json={"model_name": name, "litellm_params": {"model": "mock/m"}}).status_code
        == 200
    )
    key = admin.post("/key/generate", json={}).json()["key"]
    wait_until(
        lambda: (
            httpx.get(
                stack.base_url + f"/v1/models/{name}", headers={"Authorization": f"Bearer {key}"}
            ).status_code
            == 200
        ),
        timeout=2.0,
    )
    return name, key


def test_both_forms_of_every_route_exist() -> None:
    """Each POST inference path exists with and without /v1."""
    paths = set(POST_ROUTES)
    for path in paths:
        twin = path.removeprefix("/v1") if path.startswith("/v1/") else "/v1" + path
        assert twin in paths, path


@pytest.mark.parametrize("header", HEADERS)
@pytest.mark.parametrize("path", POST_ROUTES)
def test_route_accepts_the_key_and_validates(
    stack: Stack, matrix_key: tuple[str, str], path: str, header: str
) -> None:
    """An empty JSON body is a 400 from the operation itself, whatever the path form and key header."""
    model, key = matrix_key
    value = f"Bearer {key}" if header == "Authorization" else key
    response = httpx.post(stack.base_url + path.replace("{model}", model), headers={header: value}, json={})
    assert response.status_code == 400, (path, response.text)
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
