"""Every service answers liveliness and readiness."""

from __future__ import annotations

import httpx
import pytest

from hydite_common.devstack import Stack


@pytest.mark.parametrize("route", ["/health/liveliness", "/health/readiness"])
def test_every_service_is_alive_and_ready(stack: Stack, route: str) -> None:
    """Control plane, data plane and spend-ingest all answer 200 once started."""
    ports = [stack.config.dataplane_port, stack.config.admin_port, stack.config.ingest_port]
    for port in ports:
        response = httpx.get(f"http://127.0.0.1:{port}{route}")
        assert response.status_code == 200, (port, response.text)


def test_unknown_route_is_an_openai_shaped_404(stack: Stack) -> None:
    """A path nobody serves is forwarded to the control plane and comes back as a 404 error object."""
    response = httpx.get(stack.base_url + "/v1/no/such/route")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_wrong_method_on_an_inference_route_is_405(stack: Stack) -> None:
    """GET on a POST-only inference route is 405, not a forward to the control plane."""
    response = httpx.get(stack.base_url + "/v1/chat/completions")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
