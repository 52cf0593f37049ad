"""Models as LiteLLM shows and scopes them: /model_group/info, /v2/model/info, models a team adds
for itself, and prices in model_info billed, through the data plane's base URL (plain HTTP; calls
with the openai SDK). Every check runs right after the admin call returns."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FAKE_USAGE, FakeOpenAI
from tests.harness import FAKE_UPSTREAM_KEY, deploy_fake, ok_get, ok_post, unique, wait_until

MODEL_GROUP_FIELDS = {
    "model_group", "providers", "max_input_tokens", "max_output_tokens", "input_cost_per_token",
    "output_cost_per_token", "mode", "tpm", "rpm", "supports_parallel_function_calling", "supports_vision",
    "supports_function_calling", "supported_openai_params",
}  # fmt: skip
"""What LiteLLM's ModelGroupInfo always has."""


def _client(stack: Stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)


def _http(stack: Stack, key: str) -> httpx.Client:
    return httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def _key(admin: httpx.Client, **settings: Any) -> str:
    return str(ok_post(admin, "/key/generate", settings)["key"])


def _status(client: openai.OpenAI, model: str) -> int:
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def _groups(client: httpx.Client, **params: str) -> dict[str, dict[str, Any]]:
    return {g["model_group"]: g for g in ok_get(client, "/model_group/info", **params)["data"]}


# ---------------------------------------------------------------- /model_group/info


def test_model_group_info_describes_each_model_the_caller_may_call(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """One entry per model name, in LiteLLM's shape: providers, context window, prices, mode,
    summed rpm/tpm, capabilities from model_info; a key sees only the models it may call."""
    _, base = fake_openai
    name, other = unique("group"), unique("group-other")
    info = {"max_input_tokens": 128000, "max_output_tokens": 16384, "supports_function_calling": True}
    deploy_fake(admin, base, name, "gpt-4o-mini", info=info, rpm=10, tpm=1000)
    ok_post(admin, "/model/new", {"model_name": name, "litellm_params": {"model": "mock/x", "rpm": 5}})
    ok_post(admin, "/model/new", {"model_name": other, "litellm_params": {"model": "mock/x"}})

    group = _groups(admin)[name]
    assert set(group) >= MODEL_GROUP_FIELDS
    assert group["providers"] == ["mock", "openai"] and group["mode"] == "chat"
    assert (group["max_input_tokens"], group["max_output_tokens"]) == (128000, 16384)
    assert (group["rpm"], group["tpm"]) == (15, 1000)
    assert group["input_cost_per_token"] == pytest.approx(0.15e-6)  # gpt-4o-mini's list price
    assert group["supports_function_calling"] is True and group["supports_vision"] is False
    assert (
        "temperature" in group["supported_openai_params"]
        and "messages" not in group["supported_openai_params"]
    )

    with _http(stack, _key(admin, models=[name])) as client:
        assert list(_groups(client)) == [name]
        assert list(_groups(client, model_group=other)) == []
    assert list(_groups(admin, model_group=other)) == [other]


@pytest.mark.parametrize(
    "provider_model", ["mock/x", "anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash"]
)
def test_model_group_params_are_the_data_planes(
    stack: Stack, admin: httpx.Client, provider_model: str
) -> None:
    """/model_group/info's supported_openai_params are what the data plane's
    /utils/supported_openai_params says of the same model, less model and messages, for each provider."""
    name = unique("params")
    ok_post(admin, "/model/new", {"model_name": name, "litellm_params": {"model": provider_model}})
    with _http(stack, _key(admin, models=[name])) as client:
        data_plane = ok_get(client, "/utils/supported_openai_params", model=name)["supported_openai_params"]
        group = _groups(client)[name]
    assert sorted(group["supported_openai_params"]) == sorted(set(data_plane) - {"model", "messages"})


# ---------------------------------------------------------------- /v2/model/info


def test_v2_model_info_pages_filters_and_never_shows_a_credential(stack: Stack, admin: httpx.Client) -> None:
    """/v2/model/info answers LiteLLM's paged shape, filters by search, model and modelId, sorts,
    shows no api_key (not even masked), and to a key only the models it may call."""
    prefix = unique("v2")
    ids = [
        ok_post(
            admin,
            "/model/new",
            {
                "model_name": f"{prefix}-{i}",
                "litellm_params": {"model": "mock/x", "api_key": FAKE_UPSTREAM_KEY},
            },
        )["model_id"]
        for i in range(3)
    ]
    first = ok_get(admin, "/v2/model/info", search=prefix.upper(), size=2, page=1)
    second = ok_get(admin, "/v2/model/info", search=prefix, size=2, page=2)
    assert (first["total_count"], first["current_page"], first["total_pages"], first["size"]) == (3, 1, 2, 2)
    assert [m["model_name"] for m in first["data"] + second["data"]] == [f"{prefix}-{i}" for i in range(3)]
    backwards = ok_get(admin, "/v2/model/info", search=prefix, sortBy="model_name", sortOrder="desc")
    assert [m["model_name"] for m in backwards["data"]] == [f"{prefix}-{i}" for i in (2, 1, 0)]
    assert [m["model_id"] for m in ok_get(admin, "/v2/model/info", modelId=ids[1])["data"]] == [ids[1]]
    assert ok_get(admin, "/v2/model/info", model=f"{prefix}-0")["data"][0]["model_info"]["id"] == ids[0]
    response = admin.get("/v2/model/info", params={"search": prefix})
    assert FAKE_UPSTREAM_KEY[-4:] not in response.text and "api_key" not in response.text
    assert admin.get("/v2/model/info", params={"sortBy": "secret"}).status_code == 400
    with _http(stack, _key(admin, models=[f"{prefix}-2"])) as client:
        assert [m["model_name"] for m in ok_get(client, "/v2/model/info")["data"]] == [f"{prefix}-2"]


# ---------------------------------------------------------------- a team's own models


@pytest.fixture
def teams(admin: httpx.Client) -> dict[str, str]:
    """Two teams, each with an admin user; team "mine" allows only one other model by name."""
    ids: dict[str, str] = {}
    for which in ("mine", "theirs"):
        boss = ok_post(admin, "/user/new", {"auto_create_key": False})["user_id"]
        allowed = {"models": [unique("only-this")]} if which == "mine" else {}
        team = ok_post(
            admin, "/team/new", {"members_with_roles": [{"user_id": boss, "role": "admin"}], **allowed}
        )
        ids[which], ids[f"{which}_admin"] = team["team_id"], boss
    return ids


def test_a_team_admin_adds_a_model_its_teams_keys_call(
    stack: Stack, admin: httpx.Client, teams: dict[str, str], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """/model/new with model_info.team_id: allowed for that team's admin (403 for another team's
    admin or a plain key); the model serves that team's keys only, whatever the allowlists say of
    the proxy's shared models (LiteLLM's team models pass as team aliases)."""
    _, base = fake_openai
    name = unique("team-model")
    body = {
        "model_name": name,
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": base, "api_key": FAKE_UPSTREAM_KEY},
        "model_info": {"team_id": teams["mine"]},
    }
    boss_key = _key(admin, user_id=teams["mine_admin"], team_id=teams["mine"])
    other_boss_key = _key(admin, user_id=teams["theirs_admin"], team_id=teams["theirs"])
    with _http(stack, other_boss_key) as other_boss, _http(stack, _key(admin)) as plain:
        assert other_boss.post("/model/new", json=body).status_code == 403
        assert plain.post("/model/new", json=body).status_code == 403
    with _http(stack, boss_key) as boss:
        created = ok_post(boss, "/model/new", body)
        assert created["model_info"]["team_id"] == teams["mine"]

        assert _status(_client(stack, _key(admin, team_id=teams["mine"])), name) == 200
        assert _status(_client(stack, _key(admin, team_id=teams["theirs"])), name) == 404
        assert _status(_client(stack, _key(admin)), name) == 404
        assert name in _groups(boss)
        with _http(stack, _key(admin, team_id=teams["theirs"])) as their_key:
            assert name not in _groups(their_key)
            assert name not in [m["model_name"] for m in ok_get(their_key, "/model/info")["data"]]

        model_id = created["model_id"]
        moved = {"model_id": model_id, "model_info": {"team_id": teams["theirs"]}}
        assert boss.post("/model/update", json=moved).status_code == 403
        shared = {"model_id": model_id, "model_info": {"team_id": None}}
        assert boss.post("/model/update", json=shared).status_code == 403
        ok_post(boss, "/model/update", {"model_id": model_id, "litellm_params": {"rpm": 7}})
        ok_post(boss, "/model/delete", {"id": model_id})
    assert (
        admin.post("/model/new", json={**body, "model_info": {"team_id": unique("nope")}}).status_code == 400
    )


# ---------------------------------------------------------------- prices in model_info


def _billed(stack: Stack, admin: httpx.Client, model: str) -> float:
    """The spend /spend/logs records for one chat call to model through the openai SDK."""
    key = _key(admin, models=[model])
    raw = _client(stack, key).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "bill me"}]
    )
    request_id = raw.headers["x-request-id"]

    def logged() -> dict[str, Any] | None:
        rows = admin.get("/spend/logs", params={"api_key": key}).json()
        return next((r for r in rows if r["request_id"] == request_id), None)

    spend: float = wait_until(logged, timeout=10.0, interval=0.05)["spend"]
    return spend


def test_prices_in_model_info_are_billed_and_litellm_params_win(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """A deployment priced in model_info only bills those prices; one priced in both bills
    litellm_params'; /model/info shows what is billed; a price that is not a number is a 422."""
    _, base = fake_openai
    prompt, completion = FAKE_USAGE["prompt_tokens"], FAKE_USAGE["completion_tokens"]
    info_only, both = unique("priced-info"), unique("priced-both")
    info_prices = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}
    deploy_fake(admin, base, info_only, "no-list-price", info=info_prices)
    both_id = deploy_fake(
        admin,
        base,
        both,
        "no-list-price",
        info=info_prices,
        input_cost_per_token=0.01,
        output_cost_per_token=0.02,
    )
    assert _billed(stack, admin, info_only) == pytest.approx(prompt * 0.001 + completion * 0.002)
    assert _billed(stack, admin, both) == pytest.approx(prompt * 0.01 + completion * 0.02)
    shown = ok_get(admin, "/model/info", model_id=both_id)["data"][0]["model_info"]
    assert (shown["input_cost_per_token"], shown["output_cost_per_token"]) == (0.01, 0.02)
    bad = {
        "model_name": unique("bad"),
        "litellm_params": {"model": "mock/x"},
        "model_info": {"input_cost_per_token": "1"},
    }
    response = admin.post("/model/new", json=bad)
    assert response.status_code == 422 and response.json()["error"]["param"] == "model_info", response.text
