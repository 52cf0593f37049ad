"""Model deployments through the admin API: info visibility, update, delete and routing on the data plane."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import STREAM_WORDS, FakeOpenAI
from tests.harness import FAKE_UPSTREAM_KEY, ok_get, ok_post, synced, unique, wait_until

SYNC_TIMEOUT = 2.0
PROPAGATION_TIMEOUT = 1.0
# Nothing listens on the discard port: a deployment pointed here fails until it is updated.
DEAD_API_BASE = "http://127.0.0.1:9/v1"
OLD_UPSTREAM_KEY = "sk-upstream-old-credential-42"


def _client(stack: Stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)


def _outcome(client: openai.OpenAI, model: str) -> tuple[int, str | None]:
    """(HTTP status, error code) of one chat call through the SDK."""
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    except openai.APIStatusError as exc:
        return exc.status_code, exc.code
    return 200, None


def _new_key(admin: httpx.Client, **settings: Any) -> str:
    key: str = ok_post(admin, "/key/generate", settings)["key"]
    return key


def _mock_model(admin: httpx.Client, name: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = ok_post(
        admin, "/model/new", {"model_name": name, "litellm_params": {"model": "mock/anything", **params}}
    )
    return body


@pytest.mark.parametrize("path", ["/model/info", "/v1/model/info"])
def test_admin_sees_every_deployment_with_the_credential_masked(
    admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], path: str
) -> None:
    """/model/info and /v1/model/info show an admin every deployment, api_key masked, never in plaintext."""
    _, fake_base = fake_openai
    name = unique("info")
    created = ok_post(
        admin,
        "/model/new",
        {
            "model_name": name,
            "litellm_params": {
                "model": "openai/gpt-4o-mini",
                "api_base": fake_base,
                "api_key": FAKE_UPSTREAM_KEY,
            },
            "model_info": {"mode": "chat"},
        },
    )
    mock = _mock_model(admin, unique("info-mock"))
    assert FAKE_UPSTREAM_KEY not in str(created)

    response = admin.get(path)
    assert response.status_code == 200, response.text
    assert FAKE_UPSTREAM_KEY not in response.text
    by_id = {d["model_id"]: d for d in response.json()["data"]}
    assert {created["model_id"], mock["model_id"]} <= set(by_id)
    shown = by_id[created["model_id"]]
    assert shown["model_name"] == name
    assert shown["litellm_params"]["model"] == "openai/gpt-4o-mini"
    assert shown["litellm_params"]["api_base"] == fake_base
    masked = shown["litellm_params"]["api_key"]
    assert masked != FAKE_UPSTREAM_KEY and masked.endswith(FAKE_UPSTREAM_KEY[-4:]) and "*" in masked
    assert shown["model_info"]["id"] == created["model_id"] and shown["model_info"]["mode"] == "chat"
    assert "api_key" not in by_id[mock["model_id"]]["litellm_params"]

    one = ok_get(admin, path, litellm_model_id=created["model_id"])["data"]
    assert [d["model_id"] for d in one] == [created["model_id"]]


@pytest.mark.parametrize("path", ["/model/info", "/v1/model/info"])
def test_a_plain_key_sees_only_its_models_and_no_credential(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], path: str
) -> None:
    """A virtual key sees only deployments it may call, and no api_key at all, not even masked."""
    _, fake_base = fake_openai
    mine, other = unique("mine"), unique("other")
    for name in (mine, other):
        ok_post(
            admin,
            "/model/new",
            {
                "model_name": name,
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "api_base": fake_base,
                    "api_key": FAKE_UPSTREAM_KEY,
                },
            },
        )
    key = _new_key(admin, models=[mine])
    response = httpx.get(stack.base_url + path, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    assert FAKE_UPSTREAM_KEY not in response.text and FAKE_UPSTREAM_KEY[-4:] not in response.text
    data = response.json()["data"]
    assert [d["model_name"] for d in data] == [mine]
    assert all("api_key" not in d["litellm_params"] for d in data)


def test_model_update_changes_only_given_fields_and_the_data_plane_follows(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """/model/update moves a deployment to the fake upstream with a new key; other fields stay as they are."""
    fake, fake_base = fake_openai
    name, upstream_model = unique("upd"), unique("gpt-upd")
    created = ok_post(
        admin,
        "/model/new",
        {
            "model_name": name,
            "litellm_params": {
                "model": f"openai/{upstream_model}",
                "api_base": DEAD_API_BASE,
                "api_key": OLD_UPSTREAM_KEY,
                "input_cost_per_token": 0.000001,
                "timeout": 30,
            },
            "model_info": {"mode": "chat", "team": "search"},
        },
    )
    model_id = created["model_id"]
    key = _new_key(admin, models=[name])
    client = _client(stack, key)
    synced(admin, SYNC_TIMEOUT)
    assert _outcome(client, name)[0] >= 500

    updated = ok_post(
        admin,
        "/model/update",
        {
            "model_id": model_id,
            "litellm_params": {"api_base": fake_base, "api_key": FAKE_UPSTREAM_KEY, "weight": 3},
            "model_info": {"team": "ads", "owner": "ml"},
        },
    )
    shown = ok_get(admin, "/model/info", litellm_model_id=model_id)["data"]
    assert shown == [updated]
    params, info = updated["litellm_params"], updated["model_info"]
    assert params["api_base"] == fake_base and params["weight"] == 3
    assert params["model"] == f"openai/{upstream_model}"
    assert params["input_cost_per_token"] == 0.000001 and params["timeout"] == 30
    assert params["api_key"] != created["litellm_params"]["api_key"]
    assert params["api_key"].endswith(FAKE_UPSTREAM_KEY[-4:]) and FAKE_UPSTREAM_KEY not in str(updated)
    assert updated["model_name"] == name
    assert (info["mode"], info["team"], info["owner"]) == ("chat", "ads", "ml")

    synced(admin, SYNC_TIMEOUT)
    seen = len(fake.requests)
    completion = client.chat.completions.create(model=name, messages=[{"role": "user", "content": "moved?"}])
    assert completion.choices[0].message.content == "".join(STREAM_WORDS)
    assert [r["model"] for r in fake.requests[seen:]] == [upstream_model]


def test_model_delete_makes_the_model_404_on_the_data_plane(stack: Stack, admin: httpx.Client) -> None:
    """After /model/delete the model is a 404 model_not_found on the data plane within about a second."""
    name = unique("gone")
    model_id = _mock_model(admin, name)["model_id"]
    key = _new_key(admin)
    client = _client(stack, key)
    synced(admin, SYNC_TIMEOUT)
    assert _outcome(client, name) == (200, None)

    assert ok_post(admin, "/model/delete", {"id": model_id})["id"] == model_id
    wait_until(
        lambda: _outcome(client, name) == (404, "model_not_found"), timeout=PROPAGATION_TIMEOUT, interval=0.02
    )
    assert ok_get(admin, "/model/info", litellm_model_id=model_id)["data"] == []
    again = admin.post("/model/delete", json={"id": model_id})
    assert again.status_code == 404, again.text
    assert again.json()["error"]["code"] == "model_not_found"


def test_two_deployments_behind_one_name_both_serve_traffic(stack: Stack, admin: httpx.Client) -> None:
    """With weights 1 and 1 the weighted shuffle sends requests to both deployments of a model name."""
    name = unique("pair")
    ids = {_mock_model(admin, name, weight=1)["model_id"] for _ in range(2)}
    key = _new_key(admin, models=[name])
    client = _client(stack, key)
    synced(admin, SYNC_TIMEOUT)
    served = set()
    for _ in range(40):
        raw = client.chat.completions.with_raw_response.create(
            model=name, messages=[{"role": "user", "content": "which one?"}]
        )
        served.add(raw.headers["x-hydite-deployment"])
    assert served == ids


def test_update_of_only_the_provider_keeps_the_upstream_model(admin: httpx.Client) -> None:
    """Changing only custom_llm_provider keeps the deployment's upstream model name (no 500)."""
    model_id = _mock_model(admin, unique("provider"))["model_id"]
    response = admin.post(
        "/model/update", json={"model_id": model_id, "litellm_params": {"custom_llm_provider": "openai"}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["litellm_params"]["model"] == "openai/anything"


def test_update_with_a_null_weight_is_a_422(admin: httpx.Client) -> None:
    """An explicit null weight is refused as a 422 naming the field, and the weight stays as it was."""
    model_id = _mock_model(admin, unique("weight"), weight=2)["model_id"]
    response = admin.post("/model/update", json={"model_id": model_id, "litellm_params": {"weight": None}})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "litellm_params.weight"
    shown = ok_get(admin, "/model/info", litellm_model_id=model_id)["data"]
    assert shown[0]["litellm_params"]["weight"] == 2
