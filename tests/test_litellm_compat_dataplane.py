"""What a LiteLLM user does on the inference side works unchanged: the master key calls every model
and health route, wildcard deployments route as LiteLLM routes them, and spend rows are found by
the id of the answer."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from hydite_common.devstack import Stack
from hydite_common.providers import NATIVE_API_PROVIDERS
from tests.fakes.openai_server import FakeOpenAI
from tests.harness import FAKE_UPSTREAM_KEY, ok_get, ok_post, unique, wait_until

HI = [{"role": "user", "content": "hi"}]


def _deploy(admin: httpx.Client, fake_base: str, name: str, model: str) -> None:
    ok_post(
        admin,
        "/model/new",
        {
            "model_name": name,
            "litellm_params": {"model": model, "api_base": fake_base, "api_key": FAKE_UPSTREAM_KEY},
        },
    )


@pytest.fixture(scope="module")
def wildcards(admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]) -> str:
    """`*` and `openai/*` deployments on the fake upstream; a suffix no other test's models share."""
    _, base = fake_openai
    suffix = unique("wc")
    _deploy(admin, base, f"{suffix}/*", "openai/*")
    _deploy(admin, base, f"{suffix}/fixed/*", "openai/gpt-4o-mini")
    return suffix


def _seen_model(fake: FakeOpenAI) -> Any:
    return fake.requests[-1]["model"]


def test_the_master_key_calls_models_lists_them_and_reads_health(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], wildcards: str
) -> None:
    _, base = fake_openai
    name = unique("master-model")
    _deploy(admin, base, name, "openai/gpt-4o-mini")
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=stack.config.master_key, max_retries=0)
    reply = client.chat.completions.create(model=name, messages=HI)  # type: ignore[arg-type]
    assert reply.choices[0].message.content
    assert name in {m.id for m in client.models.list()}
    headers = {"Authorization": f"Bearer {stack.config.master_key}"}
    assert httpx.get(stack.base_url + "/health", headers=headers, timeout=30).status_code == 200
    assert httpx.get(stack.base_url + "/v1/models", headers=headers).status_code == 200

    def row() -> Any:
        rows = ok_get(admin, "/spend/logs", request_id=reply.id)
        return rows[0] if rows else None

    logged = wait_until(row, timeout=10.0, interval=0.05)
    assert logged["response_id"] == reply.id
    assert logged["metadata"]["user_api_key_alias"] == "master_key"
    assert logged["user"] == "default_user_id"
    # Never the master key itself, nor its plain sha256, in the row.
    assert stack.config.master_key not in str(logged)


def test_a_wrong_master_key_is_still_refused(stack: Stack) -> None:
    client = openai.OpenAI(
        base_url=stack.base_url + "/v1", api_key=stack.config.master_key + "x", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_the_requested_name_fills_the_wildcard(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], wildcards: str
) -> None:
    fake, _ = fake_openai
    key = ok_post(admin, "/key/generate", {})["key"]
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)
    client.chat.completions.create(model=f"{wildcards}/gpt-4o", messages=HI)  # type: ignore[arg-type]
    assert _seen_model(fake) == "gpt-4o"
    # A fixed provider model is kept; the more specific pattern wins.
    client.chat.completions.create(model=f"{wildcards}/fixed/anything", messages=HI)  # type: ignore[arg-type]
    assert _seen_model(fake) == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=unique("nothing-serves"), messages=HI)  # type: ignore[arg-type]


def test_wildcard_allowlist_entries_on_keys(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], wildcards: str
) -> None:
    key = ok_post(admin, "/key/generate", {"models": [f"{wildcards}/gpt-*"]})["key"]
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)
    client.chat.completions.create(model=f"{wildcards}/gpt-4o", messages=HI)  # type: ignore[arg-type]
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model=f"{wildcards}/o1", messages=HI)  # type: ignore[arg-type]
    # Not on the allowlist is a 403 even for a name nothing serves.
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model=unique("unknown"), messages=HI)  # type: ignore[arg-type]


def test_spend_rows_are_found_by_the_answers_id_and_by_hydites_own(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], wildcards: str
) -> None:
    key = ok_post(admin, "/key/generate", {})["key"]
    response = httpx.post(
        stack.base_url + "/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": f"{wildcards}/gpt-4o", "messages": HI, "stream": True},
    )
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    answer_id = next(
        line.removeprefix("data: ").split('"id":"', 1)[1].split('"', 1)[0]
        for line in response.text.splitlines()
        if line.startswith("data: {")
    )
    by_hydite = wait_until(lambda: ok_get(admin, "/spend/logs", request_id=request_id), timeout=10.0)
    by_answer = ok_get(admin, "/spend/logs", request_id=answer_id)
    assert by_hydite == by_answer
    assert by_hydite[0]["request_id"] == request_id
    assert by_hydite[0]["response_id"] == answer_id


def test_openai_wire_providers_route_and_native_ones_name_their_missing_adapter(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, base = fake_openai
    prefix = unique("prov")
    _deploy(admin, base, f"{prefix}-groq/*", "groq/*")
    # Any provider still without an adapter (none once every native API has one).
    natives = sorted(NATIVE_API_PROVIDERS.items())[:1]
    for provider, _ in natives:
        _deploy(admin, base, f"{prefix}-native/*", f"{provider}/*")
    key = ok_post(admin, "/key/generate", {})["key"]
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)
    client.chat.completions.create(model=f"{prefix}-groq/llama-3.1-8b", messages=HI)  # type: ignore[arg-type]
    assert _seen_model(fake) == "llama-3.1-8b"
    for _, api in natives:
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model=f"{prefix}-native/some-model", messages=HI)  # type: ignore[arg-type]
        error = refused.value.body
        assert isinstance(error, dict)
        assert error["code"] == "provider_adapter_missing"
        assert api in error["message"]
    # A provider no one knows stays a 400 at registration (a typo must not pass).
    typo = admin.post("/model/new", json={"model_name": prefix, "litellm_params": {"model": "antrhopic/x"}})
    assert typo.status_code == 400


def test_model_access_groups(stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]) -> None:
    """A key allowed an access group may call every model whose model_info names it, and
    /models?only_model_access_groups=true lists the groups it reaches."""
    _, base = fake_openai
    group, inside, outside = unique("group"), unique("in-group"), unique("out-of-group")
    for name, info in ((inside, {"access_groups": [group]}), (outside, {})):
        ok_post(
            admin,
            "/model/new",
            {
                "model_name": name,
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "api_base": base,
                    "api_key": FAKE_UPSTREAM_KEY,
                },
                "model_info": info,
            },
        )
    key = ok_post(admin, "/key/generate", {"models": [group]})["key"]
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)
    client.chat.completions.create(model=inside, messages=HI)  # type: ignore[arg-type]
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model=outside, messages=HI)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {key}"}
    listed = httpx.get(
        stack.base_url + "/models", headers=headers, params={"only_model_access_groups": "True"}
    )
    assert [m["id"] for m in listed.json()["data"]] == [group]
    assert [m.id for m in client.models.list()] == [inside]


def test_a_comma_separated_model_list_answers_one_completion_per_model(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    _, base = fake_openai
    first, second = unique("batch-a"), unique("batch-b")
    _deploy(admin, base, first, "openai/gpt-4o-mini")
    _deploy(admin, base, second, "openai/gpt-4o")
    key = ok_post(admin, "/key/generate", {"models": [first, second]})["key"]
    response = httpx.post(
        stack.base_url + "/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": f"{first}, {second},{unique('not-allowed')}", "messages": HI},
    )
    assert response.status_code == 200, response.text
    answers = response.json()
    assert [a["model"] for a in answers[:2]] == ["gpt-4o-mini", "gpt-4o"]
    assert answers[2]["error"]["type"] == "permission_error"


def test_an_end_user_linked_to_a_budget_gets_its_limits(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    _, base = fake_openai
    model, budget, end_user = unique("budget-model"), unique("free-tier"), unique("end-user")
    _deploy(admin, base, model, "openai/gpt-4o-mini")
    ok_post(admin, "/budget/new", {"budget_id": budget, "rpm_limit": 2})
    ok_post(admin, "/end_user/new", {"user_id": end_user, "budget_id": budget})
    key = ok_post(admin, "/key/generate", {})["key"]
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)
    for _ in range(2):
        client.chat.completions.create(model=model, messages=HI, user=end_user)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=model, messages=HI, user=end_user)  # type: ignore[arg-type]
    # Another end user is not limited by it; raising the budget's limit holds at once.
    client.chat.completions.create(model=model, messages=HI, user=unique("other"))  # type: ignore[arg-type]
    ok_post(admin, "/budget/update", {"budget_id": budget, "rpm_limit": 100})
    client.chat.completions.create(model=model, messages=HI, user=end_user)  # type: ignore[arg-type]


def test_an_end_user_limited_to_a_region_is_served_there(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    _, base = fake_openai
    model, end_user = unique("regional"), unique("eu-user")
    for region in ("eu", "us"):
        ok_post(
            admin,
            "/model/new",
            {
                "model_name": model,
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "api_base": base,
                    "api_key": FAKE_UPSTREAM_KEY,
                    "region_name": region,
                },
                "model_info": {"id": f"{model}-{region}"},
            },
        )
    ok_post(admin, "/end_user/new", {"user_id": end_user, "allowed_model_region": "eu"})
    key = ok_post(admin, "/key/generate", {"models": [model]})["key"]
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)
    for _ in range(6):
        raw = client.chat.completions.with_raw_response.create(model=model, messages=HI, user=end_user)  # type: ignore[arg-type]
        assert raw.headers["x-litellm-model-region"] == "eu"
        assert raw.headers["x-hydite-deployment"] == f"{model}-eu"
    # region_name steers routing and is never sent to the provider.
    fake, _ = fake_openai
    assert "region_name" not in fake.requests[-1]


def test_readiness_carries_the_version_and_routes_lists_the_data_planes_paths(stack: Stack) -> None:
    for path in ("/health/readiness", "/health/readiness/details"):
        ready = httpx.get(stack.base_url + path).json()
        assert ready["status"] == "ready"
        assert ready["litellm_version"] == ready["hydite_version"] != "unknown"
    routes = httpx.get(stack.base_url + "/routes").json()["routes"]
    assert {"path": "/v1/chat/completions", "methods": ["POST"], "name": "chat"} in routes
