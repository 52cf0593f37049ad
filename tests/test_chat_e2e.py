"""The tracer bullet: key and model through the admin API, chat through the data plane, spend logged."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import openai
import psycopg
import pytest

from hydite_common.devstack import Stack
from hydite_common.settings import to_libpq_url, with_database_name
from tests.fakes.openai_server import FAKE_USAGE, STREAM_WORDS, FakeOpenAI
from tests.harness import FAKE_UPSTREAM_KEY, synced, wait_until
from tests.openapi_spec import spec_checker

INPUT_COST = 0.000002
OUTPUT_COST = 0.000008

ERROR_KEYS = {"message", "type", "code", "param"}


@pytest.fixture(scope="module")
def model_and_key(stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]) -> dict[str, Any]:
    """A model on the fake upstream and a key allowed to call it, both acked by the data plane."""
    _, fake_base = fake_openai
    model = admin.post(
        "/model/new",
        json={
            "model_name": "fake-gpt",
            "litellm_params": {
                "model": "openai/gpt-4o-mini",
                "api_base": fake_base,
                "api_key": FAKE_UPSTREAM_KEY,
                "input_cost_per_token": INPUT_COST,
                "output_cost_per_token": OUTPUT_COST,
            },
            "model_info": {"mode": "chat"},
        },
    )
    assert model.status_code == 200, model.text
    other = admin.post(
        "/model/new", json={"model_name": "other-model", "litellm_params": {"model": "mock/other"}}
    )
    assert other.status_code == 200, other.text
    key = admin.post("/key/generate", json={"models": ["fake-gpt"], "key_alias": "e2e", "duration": "1h"})
    assert key.status_code == 200, key.text
    synced(admin)
    return {"model": model.json(), "key": key.json()}


def _client(stack: Stack, key: str, v1: bool = True) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url + ("/v1" if v1 else ""), api_key=key, max_retries=0)


def test_key_generate_returns_litellm_shape_and_stores_only_the_hash(
    stack: Stack, model_and_key: dict[str, Any]
) -> None:
    """/key/generate returns an sk-hydite- key whose sha256 is the token, and Postgres holds no plaintext."""
    body = model_and_key["key"]
    key = body["key"]
    assert key.startswith("sk-hydite-")
    assert body["token"] == hashlib.sha256(key.encode()).hexdigest()
    assert body["key_name"] == "sk-..." + key[-4:]
    assert body["models"] == ["fake-gpt"]
    assert body["expires"] is not None
    assert stack.postgres is not None
    db_url = with_database_name(to_libpq_url(stack.postgres.url), stack.config.database_name)
    with psycopg.connect(db_url) as conn:
        dump = str(conn.execute("SELECT * FROM virtual_keys").fetchall())
    assert body["token"] in dump
    assert key not in dump


def test_model_new_masks_and_encrypts_the_credential(stack: Stack, model_and_key: dict[str, Any]) -> None:
    """/model/new answers with the credential masked, and Postgres stores it encrypted."""
    params = model_and_key["model"]["litellm_params"]
    assert params["model"] == "openai/gpt-4o-mini"
    assert FAKE_UPSTREAM_KEY not in str(model_and_key["model"])
    assert stack.postgres is not None
    db_url = with_database_name(to_libpq_url(stack.postgres.url), stack.config.database_name)
    with psycopg.connect(db_url) as conn:
        (blob,) = conn.execute(
            "SELECT api_key_encrypted FROM deployments WHERE model_name = 'fake-gpt'"
        ).fetchone() or (b"",)
    assert blob and FAKE_UPSTREAM_KEY.encode() not in bytes(blob)


def test_admin_change_reaches_the_data_plane_over_the_stream_within_a_second(
    stack: Stack, admin: httpx.Client, model_and_key: dict[str, Any]
) -> None:
    """A new key is acked by the data plane and usable within one second of the admin write."""
    key = admin.post("/key/generate", json={"models": ["fake-gpt"]}).json()["key"]
    synced(admin)
    response = httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("v1", [True, False], ids=["with-v1", "without-v1"])
def test_chat_non_streaming_relays_the_upstream_answer(
    stack: Stack, model_and_key: dict[str, Any], fake_openai: tuple[FakeOpenAI, str], v1: bool
) -> None:
    """The openai SDK gets the upstream's completion; the upstream saw its own model name and key."""
    fake, _ = fake_openai
    client = _client(stack, model_and_key["key"]["key"], v1=v1)
    raw = client.chat.completions.with_raw_response.create(
        model="fake-gpt", messages=[{"role": "user", "content": "Hello"}]
    )
    completion = raw.parse()
    assert completion.id == f"chatcmpl-fake-{fake._counter}"
    assert completion.choices[0].message.content == "".join(STREAM_WORDS)
    assert completion.usage is not None and completion.usage.total_tokens == FAKE_USAGE["total_tokens"]
    assert fake.requests[-1]["model"] == "gpt-4o-mini"
    assert raw.headers["x-request-id"]
    assert raw.headers["x-hydite-deployment"] == model_and_key["model"]["model_id"]
    assert float(raw.headers["x-hydite-overhead-ms"]) >= 0


@pytest.mark.parametrize("v1", [True, False], ids=["with-v1", "without-v1"])
def test_chat_streaming_relays_every_chunk_and_strips_unrequested_usage(
    stack: Stack, model_and_key: dict[str, Any], fake_openai: tuple[FakeOpenAI, str], v1: bool
) -> None:
    """Streaming works through the SDK; usage was asked of the upstream but not shown to this client."""
    fake, _ = fake_openai
    client = _client(stack, model_and_key["key"]["key"], v1=v1)
    chunks = list(
        client.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(STREAM_WORDS)
    assert all(c.usage is None for c in chunks)
    assert fake.requests[-1]["stream_options"] == {"include_usage": True}


def test_chat_streaming_keeps_usage_when_the_client_asks(stack: Stack, model_and_key: dict[str, Any]) -> None:
    """With stream_options.include_usage the client gets the usage chunk too."""
    client = _client(stack, model_and_key["key"]["key"])
    chunks = list(
        client.chat.completions.create(
            model="fake-gpt",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].prompt_tokens == FAKE_USAGE["prompt_tokens"]


def test_usage_reaches_spend_logs_with_tokens_and_cost(
    stack: Stack, admin: httpx.Client, model_and_key: dict[str, Any]
) -> None:
    """A call's usage event goes through JetStream and spend-ingest into /spend/logs (key or hash)."""
    key = model_and_key["key"]["key"]
    raw = _client(stack, key).chat.completions.with_raw_response.create(
        model="fake-gpt", messages=[{"role": "user", "content": "bill me"}]
    )
    request_id = raw.headers["x-request-id"]

    def logged_row() -> dict[str, Any] | None:
        rows = admin.get("/spend/logs", params={"api_key": key}).json()
        return next((r for r in rows if r["request_id"] == request_id), None)

    row = wait_until(logged_row, timeout=10.0, interval=0.05)
    assert row["api_key"] == model_and_key["key"]["token"]
    assert row["prompt_tokens"] == FAKE_USAGE["prompt_tokens"]
    assert row["completion_tokens"] == FAKE_USAGE["completion_tokens"]
    assert row["spend"] == pytest.approx(11 * INPUT_COST + 7 * OUTPUT_COST)
    assert row["model"] == "fake-gpt" and row["status"] == "success"
    by_hash = admin.get("/spend/logs", params={"api_key": row["api_key"]}).json()
    assert any(r["request_id"] == request_id for r in by_hash)


def _assert_openai_error(response: httpx.Response, status: int, error_type: str, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS
    assert error["type"] == error_type and error["code"] == code and error["message"]


def test_bad_key_is_401_openai_shaped(stack: Stack, model_and_key: dict[str, Any]) -> None:
    """An unknown key gets exactly the documented 401 body, from the SDK's point of view too."""
    response = httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": "Bearer sk-hydite-not-a-real-key"},
        json={"model": "fake-gpt", "messages": [{"role": "user", "content": "x"}]},
    )
    _assert_openai_error(response, 401, "authentication_error", "invalid_api_key")
    assert response.json()["error"]["param"] is None
    with pytest.raises(openai.AuthenticationError):
        _client(stack, "sk-hydite-not-a-real-key").chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "x"}]
        )


def test_unknown_model_is_404(stack: Stack, admin: httpx.Client, model_and_key: dict[str, Any]) -> None:
    """A model no deployment serves is a 404 model_not_found for a key that may call any model; for
    a key limited to others it is a 403, whether or not the model exists (nothing is disclosed)."""
    unrestricted = admin.post("/key/generate", json={}).json()["key"]
    with pytest.raises(openai.NotFoundError) as caught:
        _client(stack, unrestricted).chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.PermissionDeniedError):
        _client(stack, model_and_key["key"]["key"]).chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )


def test_model_outside_the_allowlist_is_403(stack: Stack, model_and_key: dict[str, Any]) -> None:
    """A known model that is not on the key's allowlist is a 403."""
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _client(stack, model_and_key["key"]["key"]).chat.completions.create(
            model="other-model", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "permission_denied"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "missing_required_parameter"),
        (b'{"model": "fake-gpt", "messages": "nope"}', "invalid_request"),
    ],
    ids=["malformed", "not-an-object", "no-model", "bad-messages"],
)
def test_malformed_requests_are_400(
    stack: Stack, model_and_key: dict[str, Any], payload: bytes, code: str
) -> None:
    """Malformed bodies are OpenAI-shaped 400s, never 500s."""
    response = httpx.post(
        stack.base_url + "/chat/completions",
        headers={
            "Authorization": f"Bearer {model_and_key['key']['key']}",
            "Content-Type": "application/json",
        },
        content=payload,
    )
    _assert_openai_error(response, 400, "invalid_request_error", code)


@pytest.mark.parametrize("header", ["Authorization", "api-key", "x-api-key"])
def test_every_key_header_is_accepted(stack: Stack, model_and_key: dict[str, Any], header: str) -> None:
    """The key may come as Bearer token, api-key or x-api-key."""
    key = model_and_key["key"]["key"]
    value = f"Bearer {key}" if header == "Authorization" else key
    response = httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={header: value},
        json={"model": "fake-gpt", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 200, response.text


def test_admin_routes_need_the_master_key(stack: Stack, model_and_key: dict[str, Any]) -> None:
    """A virtual key cannot generate keys; no key at all is a 401."""
    forbidden = httpx.post(
        stack.base_url + "/key/generate",
        headers={"Authorization": f"Bearer {model_and_key['key']['key']}"},
        json={},
    )
    _assert_openai_error(forbidden, 403, "permission_error", "admin_only")
    anonymous = httpx.post(stack.base_url + "/key/generate", json={})
    assert anonymous.status_code == 401


def test_mock_provider_answers_offline_with_mock_response(
    stack: Stack, admin: httpx.Client, model_and_key: dict[str, Any]
) -> None:
    """The built-in mock provider answers without network, echoing `mock_response` when given."""
    key = admin.post("/key/generate", json={"models": ["other-model"]}).json()["key"]
    synced(admin)
    client = _client(stack, key)
    completion = client.chat.completions.create(
        model="other-model",
        messages=[{"role": "user", "content": "x"}],
        extra_body={"mock_response": "canned answer"},
    )
    assert completion.choices[0].message.content == "canned answer"
    streamed = client.chat.completions.create(
        model="other-model",
        messages=[{"role": "user", "content": "x"}],
        extra_body={"mock_response": "canned answer"},
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "canned answer"


def test_chat_responses_match_the_openapi_spec(stack: Stack, model_and_key: dict[str, Any]) -> None:
    """The relayed chat completion and every stream chunk validate against OpenAI's schemas."""
    check = spec_checker()
    client = _client(stack, model_and_key["key"]["key"])
    completion = client.chat.completions.create(model="fake-gpt", messages=[{"role": "user", "content": "x"}])
    check(completion.model_dump(exclude_unset=True), "CreateChatCompletionResponse")
    for chunk in client.chat.completions.create(
        model="fake-gpt",
        messages=[{"role": "user", "content": "x"}],
        stream=True,
        stream_options={"include_usage": True},
    ):
        check(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")


def test_azure_sdk_reaches_the_deployment_route(stack: Stack, model_and_key: dict[str, Any]) -> None:
    """The official AzureOpenAI client (api-key header, /openai/deployments/{model}, api-version) works."""
    client = openai.AzureOpenAI(
        azure_endpoint=stack.base_url,
        api_key=model_and_key["key"]["key"],
        api_version="2024-10-21",
        max_retries=0,
    )
    completion = client.chat.completions.create(model="fake-gpt", messages=[{"role": "user", "content": "x"}])
    assert completion.choices[0].message.content == "".join(STREAM_WORDS)
