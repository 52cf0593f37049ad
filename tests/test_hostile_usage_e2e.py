"""Hostile values in an inference request cannot stop billing: a huge model name, a NUL in the end
user or a tag are refused at the edge with a 400, and every normal call sent afterwards (and in
between) lands in /spend/logs while the data plane's usage outbox empties."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FakeOpenAI
from tests.harness import deploy_fake, unique, wait_until

NORMAL_CALLS = 12


@pytest.fixture(scope="module")
def billed(admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]) -> dict[str, str]:
    """A model on the fake upstream, a key that may call it, and one that may call any model (a
    name nothing serves is a 404 for it; for the first key, a 403)."""
    _, base = fake_openai
    model = unique("billed")
    deploy_fake(admin, base, model, "gpt-4o-mini")
    key = admin.post("/key/generate", json={"models": [model]}).json()["key"]
    any_model = admin.post("/key/generate", json={}).json()["key"]
    return {"model": model, "key": key, "any_model_key": any_model}


def _chat(stack: Stack, key: str, body: dict[str, Any], path: str = "/v1/chat/completions") -> httpx.Response:
    return httpx.post(
        stack.base_url + path,
        headers={"Authorization": f"Bearer {key}"},
        json={"messages": [{"role": "user", "content": "bill me"}], **body},
        timeout=30,
    )


def _metric(stack: Stack, name: str) -> float:
    text = httpx.get(stack.base_url + "/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


def _normal_calls_are_billed(stack: Stack, admin: httpx.Client, billed: dict[str, str]) -> None:
    """NORMAL_CALLS good calls each land in /spend/logs, and the outbox is empty again."""
    ids = set()
    for index in range(NORMAL_CALLS):
        response = _chat(stack, billed["key"], {"model": billed["model"], "user": f"neighbour-{index}"})
        assert response.status_code == 200, response.text
        ids.add(response.headers["x-request-id"])

    def all_logged() -> bool:
        rows = admin.get("/spend/logs", params={"api_key": billed["key"]}).json()
        return ids <= {row["request_id"] for row in rows}

    wait_until(all_logged, timeout=20.0, interval=0.1)
    wait_until(lambda: _metric(stack, "hydite_usage_batches_pending") == 0, timeout=10.0, interval=0.05)
    assert _metric(stack, "hydite_usage_events_set_aside_total") == 0


def test_a_huge_model_name_is_a_400_and_billing_goes_on(
    stack: Stack, admin: httpx.Client, billed: dict[str, str]
) -> None:
    """A 1 MiB model name (body or path) is a 400 before routing; every later call is billed."""
    response = _chat(stack, billed["key"], {"model": "L" * 1_048_576})
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "model"
    assert error["code"] == "string_above_max_length" and len(response.content) < 1000
    in_path = _chat(stack, billed["key"], {}, path=f"/v1/engines/{'L' * 5000}/chat/completions")
    assert in_path.status_code == 400, in_path.text[:300]
    unknown = _chat(stack, billed["any_model_key"], {"model": "U" * 256})
    assert unknown.status_code == 404
    _normal_calls_are_billed(stack, admin, billed)


def test_a_flood_of_unknown_model_names_keeps_one_metrics_label(stack: Stack, billed: dict[str, str]) -> None:
    """Unique unknown model names are all counted under one label; none appears in /metrics."""
    names = [unique("no-such-model") for _ in range(30)]
    for name in names:
        assert _chat(stack, billed["any_model_key"], {"model": name}).status_code == 404
    text = httpx.get(stack.base_url + "/metrics").text
    assert not any(name in text for name in names)
    assert 'hydite_requests_total{model="(unknown)"' in text


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"user": "\u0000"}, "user"),
        ({"user": "u" * 257}, "user"),
        ({"tags": ["ok", "bad\u0000"]}, "tags"),
        ({"tags": [f"t{i}" for i in range(33)]}, "tags"),
        ({"metadata": {"tags": ["\u0000"]}}, "metadata.tags"),
        ({"model": "a\u0000b"}, "model"),
    ],
)
def test_nul_and_oversized_values_are_refused_and_neighbours_billed(
    stack: Stack, admin: httpx.Client, billed: dict[str, str], body: dict[str, Any], param: str
) -> None:
    """A NUL or an oversized value in user, tags or model is a 400 naming it; the calls around it
    are all billed (none of them goes to the dead-letter stream with it)."""
    response = _chat(stack, billed["key"], {"model": billed["model"], **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    _normal_calls_are_billed(stack, admin, billed)


def test_a_nul_in_the_model_path_is_a_400(stack: Stack, billed: dict[str, str]) -> None:
    """A model name from the URL with a NUL (%00) is refused like one from the body."""
    response = _chat(stack, billed["key"], {}, path="/v1/engines/a%00b/chat/completions")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "model"
