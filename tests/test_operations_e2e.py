"""Completions, embeddings, moderations and the models list through the data plane, checked
against OpenAI's OpenAPI spec, with and without /v1 and with every key header."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import openai
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FAKE_USAGE, FakeOpenAI, fake_embedding
from tests.harness import FAKE_UPSTREAM_KEY, wait_until
from tests.openapi_spec import Check, spec_checker


@pytest.fixture(scope="module")
def check() -> Check:
    """Validation against the spec's component schemas."""
    return spec_checker()


@pytest.fixture(scope="module")
def setup(stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]) -> dict[str, str]:
    """Models for each operation on the fake upstream, and a key limited to them."""
    _, base = fake_openai
    suffix = secrets.token_hex(3)
    names = {
        "completion": f"instruct-{suffix}",
        "embedding": f"embed-{suffix}",
        "moderation": f"moderate-{suffix}",
        "hidden": f"hidden-{suffix}",
    }
    upstream = {
        "completion": "gpt-3.5-turbo-instruct",
        "embedding": "text-embedding-3-small",
        "moderation": "omni-moderation-latest",
        "hidden": "gpt-4o",
    }
    for kind, name in names.items():
        response = admin.post(
            "/model/new",
            json={
                "model_name": name,
                "litellm_params": {
                    "model": f"openai/{upstream[kind]}",
                    "api_base": base,
                    "api_key": FAKE_UPSTREAM_KEY,
                    "input_cost_per_token": 0.000001,
                },
            },
        )
        assert response.status_code == 200, response.text
    allowed = [names["completion"], names["embedding"], names["moderation"]]
    key = admin.post("/key/generate", json={"models": allowed}).json()["key"]
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)
    wait_until(lambda: len(client.models.list().data) == 3, timeout=2.0)
    return {**names, "key": key}


def _client(stack: Stack, key: str, v1: bool = True) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url + ("/v1" if v1 else ""), api_key=key, max_retries=0)


@pytest.mark.parametrize("v1", [True, False], ids=["with-v1", "without-v1"])
def test_legacy_completions(stack: Stack, setup: dict[str, str], check: Check, v1: bool) -> None:
    """Text completions work plain and streamed, and match the spec."""
    client = _client(stack, setup["key"], v1)
    completion = client.completions.create(model=setup["completion"], prompt="Say hi")
    check(completion.model_dump(exclude_unset=True), "CreateCompletionResponse")
    assert completion.usage is not None and completion.usage.total_tokens == FAKE_USAGE["total_tokens"]
    chunks = list(client.completions.create(model=setup["completion"], prompt="Say hi", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices)
    assert all(c.usage is None for c in chunks)


def test_completions_under_engines_path(stack: Stack, setup: dict[str, str]) -> None:
    """/engines/{model}/completions takes the model from the path."""
    response = httpx.post(
        f"{stack.base_url}/v1/engines/{setup['completion']}/completions",
        headers={"api-key": setup["key"]},
        json={"prompt": "x"},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings_float_and_base64(
    stack: Stack, setup: dict[str, str], check: Check, fake_openai: tuple[FakeOpenAI, str], encoding: str
) -> None:
    """Embeddings pass through in both encodings; the SDK decodes both to the same vectors."""
    fake, _ = fake_openai
    response = httpx.post(
        stack.base_url + "/embeddings",
        headers={"x-api-key": setup["key"]},
        json={"model": setup["embedding"], "input": ["hydite", "gateway"], "encoding_format": encoding},
    )
    assert response.status_code == 200, response.text
    if encoding == "float":
        check(response.json(), "CreateEmbeddingResponse")
    assert fake.requests[-1]["encoding_format"] == encoding
    vectors = _client(stack, setup["key"]).embeddings.create(model=setup["embedding"], input=["hydite"])
    assert vectors.data[0].embedding == pytest.approx(fake_embedding("hydite"))


def test_embeddings_are_billed_by_prompt_tokens(
    stack: Stack, setup: dict[str, str], admin: httpx.Client
) -> None:
    """An embedding call lands in spend logs with its prompt tokens and cost."""
    raw = _client(stack, setup["key"]).embeddings.with_raw_response.create(
        model=setup["embedding"], input="one two three"
    )
    request_id = raw.headers["x-request-id"]

    def row() -> dict[str, Any] | None:
        rows = admin.get("/spend/logs", params={"request_id": request_id}).json()
        return rows[0] if rows else None

    logged = wait_until(row, timeout=10.0, interval=0.05)
    assert logged["call_type"] == "embeddings"
    assert logged["prompt_tokens"] == raw.parse().usage.prompt_tokens > 0
    assert logged["spend"] == pytest.approx(logged["prompt_tokens"] * 0.000001)


def test_moderations(stack: Stack, setup: dict[str, str], check: Check) -> None:
    """Moderations pass through and match the spec."""
    result = _client(stack, setup["key"]).moderations.create(
        model=setup["moderation"], input="I will kill it"
    )
    check(result.model_dump(exclude_unset=True), "CreateModerationResponse")
    assert result.results[0].flagged


def test_models_list_shows_only_what_the_key_may_call(
    stack: Stack, setup: dict[str, str], check: Check
) -> None:
    """/v1/models lists the key's models; /v1/models/{id} finds them and hides the others."""
    client = _client(stack, setup["key"])
    listed = client.models.list()
    check(listed.model_dump(), "ListModelsResponse")
    assert {m.id for m in listed.data} == {setup["completion"], setup["embedding"], setup["moderation"]}
    assert client.models.retrieve(setup["embedding"]).id == setup["embedding"]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(setup["hidden"])
    bare = httpx.get(stack.base_url + "/models", headers={"Authorization": f"Bearer {setup['key']}"})
    assert bare.status_code == 200 and len(bare.json()["data"]) == 3


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/completions", {"model": "m"}, "prompt"),
        ("/v1/embeddings", {"model": "m", "input": ""}, "input"),
        ("/v1/moderations", {}, "input"),
    ],
)
def test_missing_required_fields_are_400(
    stack: Stack, setup: dict[str, str], path: str, body: dict[str, Any], param: str
) -> None:
    """Each operation names the required field the body lacks."""
    response = httpx.post(
        stack.base_url + path, headers={"Authorization": f"Bearer {setup['key']}"}, json=body
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_post_to_models_is_405(stack: Stack, setup: dict[str, str]) -> None:
    """/v1/models only answers GET; the Allow header says so."""
    response = httpx.post(stack.base_url + "/v1/models", headers={"Authorization": f"Bearer {setup['key']}"})
    assert response.status_code == 405 and response.headers["Allow"] == "GET"


def test_token_counter_counts_without_calling_the_model(
    stack: Stack, setup: dict[str, str], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """/utils/token_counter counts with the deployment's encoding and calls no provider."""
    fake, _ = fake_openai
    calls = len(fake.calls)
    response = httpx.post(
        stack.base_url + "/utils/token_counter",
        headers={"Authorization": f"Bearer {setup['key']}"},
        json={"model": setup["completion"], "prompt": "hello world"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total_tokens"] == 2 and body["model_used"] == "gpt-3.5-turbo-instruct"
    assert body["tokenizer_type"] == "openai_tokenizer:cl100k_base"
    assert len(fake.calls) == calls


def test_supported_openai_params(stack: Stack, setup: dict[str, str]) -> None:
    """The parameters a model's provider takes, per operation."""
    headers = {"Authorization": f"Bearer {setup['key']}"}
    embed = httpx.get(
        stack.base_url + "/utils/supported_openai_params",
        params={"model": setup["embedding"], "operation": "embeddings"},
        headers=headers,
    ).json()["supported_openai_params"]
    assert "encoding_format" in embed and "dimensions" in embed
    chat = httpx.get(
        stack.base_url + "/utils/supported_openai_params",
        params={"model": setup["embedding"]},
        headers=headers,
    ).json()["supported_openai_params"]
    assert "tools" in chat and "response_format" in chat
    hidden = httpx.get(
        stack.base_url + "/utils/supported_openai_params", params={"model": setup["hidden"]}, headers=headers
    )
    assert hidden.status_code == 404
