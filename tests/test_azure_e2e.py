"""Azure OpenAI and Azure AI Foundry as providers: the official `openai` SDK calls the real stack,
whose `azure/...` and `azure_ai/...` deployments point at a fake Azure upstream (tests/fakes/
azure_server.py) that checks the URL layout, the api-version and the credential. Answers are billed
with Azure's token counts; an Entra ID service principal's token is fetched once for many calls; a
content-filter refusal moves to the content-policy fallback; a failing token endpoint is a 502
naming the deployment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from hydite_common.devstack import Stack
from tests.fakes.azure_server import (
    ANSWER_WORDS,
    CLIENT_ID,
    CLIENT_SECRET,
    EMBEDDING_TOKENS_PER_INPUT,
    FAILING_TENANT,
    FILTERED,
    USAGE,
    FakeAzure,
)
from tests.fakes.openai_server import FakeServerThread
from tests.harness import FAKE_UPSTREAM_KEY, ok_post, spend_row, unique

INPUT_COST = 0.000002
OUTPUT_COST = 0.000008
ANSWER = "".join(ANSWER_WORDS)
API_VERSION = "2024-10-21"
HI: list[Any] = [{"role": "user", "content": "Hi"}]

Fake = tuple[FakeAzure, str]


@pytest.fixture(scope="module")
def fake_azure() -> Iterator[Fake]:
    """The fake Azure upstream and its base URL (the resource endpoint, also the token authority)."""
    fake = FakeAzure(api_key=FAKE_UPSTREAM_KEY)
    server = FakeServerThread(fake.app())
    base = server.start()
    yield fake, base
    server.stop()


def _deploy(admin: httpx.Client, name: str, model: str, api_base: str, **params: Any) -> str:
    """A priced deployment of model group `name`; its id. model_info entries go in `info`."""
    model_id = unique(name)
    info = params.pop("info", {})
    ok_post(
        admin,
        "/model/new",
        {
            "model_name": name,
            "litellm_params": {
                "model": model,
                "api_base": api_base,
                "input_cost_per_token": INPUT_COST,
                "output_cost_per_token": OUTPUT_COST,
                **params,
            },
            "model_info": {"id": model_id, **info},
        },
    )
    return model_id


@pytest.fixture(scope="module")
def models(admin: httpx.Client, fake_azure: Fake) -> dict[str, str]:
    """Model group names by role (and deployment ids by role + "-id")."""
    _, base = fake_azure
    names = {
        role: unique(f"az-{role}")
        for role in ("key", "entra", "refused", "failing", "filtered", "guarded", "foundry")
    }
    keyed = {"api_key": FAKE_UPSTREAM_KEY, "api_version": API_VERSION}
    principal = {"tenant_id": "tenant-1", "client_id": CLIENT_ID, "azure_authority_host": base}
    names["key-id"] = _deploy(admin, names["key"], "azure/gpt-4o-prod", base, **keyed)
    _deploy(admin, names["key"] + "-embed", "azure/text-embedding-3-small", base, **keyed)
    names["entra-id"] = _deploy(
        admin,
        names["entra"],
        "azure/gpt-4o-prod",
        base,
        api_version="v1",
        client_secret=CLIENT_SECRET,
        **principal,
    )
    names["refused-id"] = _deploy(
        admin, names["refused"], "azure/gpt-4o-prod", base, client_secret="not-the-secret-0123", **principal
    )
    names["failing-id"] = _deploy(
        admin,
        names["failing"],
        "azure/gpt-4o-prod",
        base,
        client_secret=CLIENT_SECRET,
        **{**principal, "tenant_id": FAILING_TENANT},
    )
    _deploy(admin, names["filtered"], f"azure/{FILTERED}", base, **keyed)
    names["guarded-fallback-id"] = names["key-id"]
    _deploy(
        admin,
        names["guarded"],
        f"azure/{FILTERED}",
        base,
        info={"content_policy_fallbacks": [names["key"]]},
        **keyed,
    )
    names["foundry-id"] = _deploy(
        admin, names["foundry"], "azure_ai/DeepSeek-R1", f"{base}/models", api_key=FAKE_UPSTREAM_KEY
    )
    return names


@pytest.fixture(scope="module")
def client(stack: Stack, admin: httpx.Client, models: dict[str, str]) -> Iterator[openai.OpenAI]:
    """The official SDK on the gateway with a key for every model, without retries of its own."""
    key = str(ok_post(admin, "/key/generate", {})["key"])
    with openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0) as sdk:
        yield sdk


def assert_billed(admin: httpx.Client, request_id: str, prompt: int, completion: int, provider: str) -> None:
    """The request's spend row holds these tokens and their cost at the deployment's prices."""

    row = spend_row(admin, request_id)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion), row
    assert row["spend"] == pytest.approx(prompt * INPUT_COST + completion * OUTPUT_COST)
    assert row["custom_llm_provider"] == provider and row["status"] == "success"


def test_chat_reaches_the_deployment_url_with_the_api_key_and_is_billed(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], fake_azure: Fake
) -> None:
    """POST /openai/deployments/{deployment}/chat/completions?api-version=..., `api-key` header;
    Azure's filter results pass through, the usage is billed."""
    fake, _ = fake_azure
    raw = client.chat.completions.with_raw_response.create(model=models["key"], messages=HI)
    completion = raw.parse()
    assert completion.choices[0].message.content == ANSWER and completion.choices[0].finish_reason == "stop"
    assert fake.calls[-1] == ("/openai/deployments/gpt-4o-prod/chat/completions", API_VERSION, "api-key")
    assert (completion.model_extra or {})["prompt_filter_results"][0]["prompt_index"] == 0
    assert raw.headers["x-hydite-deployment"] == models["key-id"]
    assert_billed(
        admin, raw.headers["x-request-id"], USAGE["prompt_tokens"], USAGE["completion_tokens"], "azure"
    )


def test_stream_relays_azure_chunks_and_bills_the_usage_chunk(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], fake_azure: Fake
) -> None:
    """The prompt-filter chunk, the deltas, the usage chunk (asked for) and [DONE]; billed."""
    fake, _ = fake_azure
    raw = client.chat.completions.with_raw_response.create(
        model=models["key"], messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw.parse())
    assert fake.requests[-1]["stream_options"] == {"include_usage": True}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == USAGE["completion_tokens"]
    assert_billed(
        admin, raw.headers["x-request-id"], USAGE["prompt_tokens"], USAGE["completion_tokens"], "azure"
    )


def test_embeddings_are_billed_by_their_prompt_tokens(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], fake_azure: Fake
) -> None:
    """Embeddings reach their deployment's path; their prompt tokens are billed."""
    fake, _ = fake_azure
    raw = client.embeddings.with_raw_response.create(model=models["key"] + "-embed", input=["a", "b"])
    assert len(raw.parse().data) == 2
    assert fake.calls[-1] == ("/openai/deployments/text-embedding-3-small/embeddings", API_VERSION, "api-key")
    assert_billed(admin, raw.headers["x-request-id"], 2 * EMBEDDING_TOKENS_PER_INPUT, 0, "azure")


def test_an_entra_token_is_fetched_once_for_many_calls(
    client: openai.OpenAI, models: dict[str, str], fake_azure: Fake
) -> None:
    """Client credentials: one token request, then every call (v1 path, no api-version) carries it."""
    fake, _ = fake_azure
    before = fake.token_requests
    for _ in range(5):
        completion = client.chat.completions.create(model=models["entra"], messages=HI)
        assert completion.choices[0].message.content == ANSWER
        assert fake.calls[-1] == ("/openai/v1/chat/completions", "", "entra")
        assert fake.requests[-1]["model"] == "gpt-4o-prod"
        assert (
            not {"tenant_id", "client_id", "client_secret", "azure_authority_host"} & fake.requests[-1].keys()
        )
    assert fake.token_requests - before == 1


def test_a_content_filter_refusal_moves_to_the_content_policy_fallback(
    stack: Stack, client: openai.OpenAI, models: dict[str, str]
) -> None:
    """Azure's content-filter 400 is content_policy_violation with Azure's message; with
    content_policy_fallbacks the fallback answers."""
    moved = client.chat.completions.with_raw_response.create(model=models["guarded"], messages=HI)
    assert moved.headers["x-hydite-deployment"] == models["guarded-fallback-id"]
    assert moved.parse().choices[0].message.content == ANSWER
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=models["filtered"], messages=HI)
    error = refused.value.body
    assert isinstance(error, dict) and error["code"] == "content_policy_violation"
    assert "content management policy" in error["message"]


@pytest.mark.parametrize(("role", "status"), [("failing", 502), ("refused", 401)])
def test_a_token_endpoint_that_fails_names_the_deployment(
    client: openai.OpenAI, models: dict[str, str], role: str, status: int
) -> None:
    """A failing token endpoint is a 502, a refused secret a 401, each naming the deployment and
    never showing the secret."""
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model=models[role], messages=HI)
    assert raised.value.status_code == status
    message = str(raised.value.body)
    assert (
        models[f"{role}-id"] in message and CLIENT_SECRET not in message and "not-the-secret" not in message
    )


def test_foundry_models_take_the_model_inference_path_with_a_bearer_key(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], fake_azure: Fake
) -> None:
    """azure_ai/: POST {api_base}/chat/completions?api-version=2024-05-01-preview, the model in the body."""
    fake, _ = fake_azure
    raw = client.chat.completions.with_raw_response.create(model=models["foundry"], messages=HI)
    assert raw.parse().choices[0].message.content == ANSWER
    assert fake.calls[-1] == ("/models/chat/completions", "2024-05-01-preview", "bearer-key")
    assert fake.requests[-1]["model"] == "DeepSeek-R1"
    assert_billed(
        admin, raw.headers["x-request-id"], USAGE["prompt_tokens"], USAGE["completion_tokens"], "azure_ai"
    )


def test_health_checks_sign_in_with_entra_id(
    stack: Stack, client: openai.OpenAI, models: dict[str, str]
) -> None:
    """The /health probe of an Entra ID deployment carries its bearer token, like every call."""
    response = httpx.get(
        stack.base_url + "/health",
        params={"model": models["entra"]},
        headers={"Authorization": f"Bearer {client.api_key}"},
        timeout=30,
    ).json()
    assert (response["healthy_count"], response["unhealthy_count"]) == (1, 0), response


def test_model_info_masks_the_client_secret(admin: httpx.Client, models: dict[str, str]) -> None:
    """/model/info masks litellm_params named like a credential, as it masks api_key."""
    rows = admin.get("/model/info", params={"litellm_model_id": models["entra-id"]}).json()["data"]
    (params,) = [r["litellm_params"] for r in rows if r["model_info"]["id"] == models["entra-id"]]
    assert CLIENT_SECRET not in str(rows) and params["client_secret"].startswith(CLIENT_SECRET[:3])
    assert params["client_id"] == CLIENT_ID


def test_responses_use_the_v1_path_and_stored_ones_are_reached_again(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], fake_azure: Fake
) -> None:
    """The Responses API goes to /openai/v1/responses (api-key there too) and is billed; a stored
    response is retrieved and deleted through the gateway id, signed with the Entra token."""
    fake, _ = fake_azure
    raw = client.responses.with_raw_response.create(model=models["key"], input="Hi")
    assert raw.parse().output_text == ANSWER
    assert fake.calls[-1] == ("/openai/v1/responses", "", "api-key")
    assert_billed(
        admin, raw.headers["x-request-id"], USAGE["prompt_tokens"], USAGE["completion_tokens"], "azure"
    )
    created = client.responses.create(model=models["entra"], input="Hi")
    again = client.responses.retrieve(created.id)
    assert again.id == created.id and again.output_text == ANSWER
    path, version, scheme = fake.calls[-1]
    assert path.startswith("/openai/v1/responses/resp_") and (version, scheme) == ("", "entra")
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
