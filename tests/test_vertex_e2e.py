"""Vertex AI as a provider behind the OpenAI API: the official `openai` SDK calls the real stack,
whose `vertex_ai/...` deployments name a service account (a throwaway RSA key made here) on the
fake Vertex AI. The data plane exchanges the account's signed JWT for a token at the fake's OAuth
endpoint once, and calls Gemini and Claude models with it; every answer is OpenAI-shaped and billed
with the upstream's token counts in /spend/logs. Credentials the token endpoint refuses, or cannot
be reached for, are a 401 or 502 naming the deployment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hydite_common.devstack import Stack
from hydite_common.openai_params import ANTHROPIC_CHAT_PARAMS, GEMINI_CHAT_PARAMS
from tests.fakes.anthropic_server import ANSWER_WORDS as CLAUDE_WORDS
from tests.fakes.anthropic_server import OUTPUT_TOKENS as CLAUDE_OUTPUT_TOKENS
from tests.fakes.anthropic_server import FakeAnthropic, count_input_tokens
from tests.fakes.gemini_server import ANSWER_WORDS as GEMINI_WORDS
from tests.fakes.gemini_server import FakeGemini, count_tokens
from tests.fakes.openai_server import FakeServerThread
from tests.fakes.vertex_server import FakeVertex
from tests.harness import FAKE_UPSTREAM_KEY, ok_post, spend_row, unique

INPUT_COST = 0.000002
OUTPUT_COST = 0.000010
PROJECT = "hydite-test"
Json = dict[str, Any]


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def service_account(email: str, key: rsa.RSAPrivateKey, token_uri: str) -> str:
    """A service-account key file, as Google Cloud hands it out, as a JSON string."""
    return json.dumps(
        {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": unique("key"),
            "private_key": _private_pem(key),
            "client_email": email,
            "client_id": "100000000000000000001",
            "token_uri": token_uri,
        }
    )


@pytest.fixture(scope="module")
def vertex(
    fake_gemini: tuple[FakeGemini, str], fake_anthropic: tuple[FakeAnthropic, str]
) -> Iterator[FakeVertex]:
    """The fake Vertex AI, in front of the fake Gemini and Anthropic upstreams."""
    fake = FakeVertex(
        gemini_base=fake_gemini[1], anthropic_base=fake_anthropic[1], upstream_key=FAKE_UPSTREAM_KEY
    )
    server = FakeServerThread(fake.app())
    fake.base_url = server.start()
    yield fake
    server.stop()


@pytest.fixture(scope="module")
def account(vertex: FakeVertex) -> tuple[str, str]:
    """A service account the fake knows: (client_email, key file JSON)."""
    key = _private_key()
    email = f"{unique('gateway')}@{PROJECT}.iam.gserviceaccount.com"
    vertex.register(email, _public_pem(key))
    return email, service_account(email, key, f"{vertex.base_url}/token")


def _deploy(
    admin: httpx.Client, vertex: FakeVertex, name: str, model: str, credentials: str, **params: Any
) -> str:
    """A priced Vertex deployment of model group `name`; its id."""
    model_id = unique("vertex")
    ok_post(
        admin,
        "/model/new",
        {
            "model_name": name,
            "litellm_params": {
                "model": f"vertex_ai/{model}",
                "api_base": vertex.base_url,
                "vertex_project": PROJECT,
                "vertex_location": "us-east5",
                "vertex_credentials": credentials,
                "input_cost_per_token": INPUT_COST,
                "output_cost_per_token": OUTPUT_COST,
                **params,
            },
            "model_info": {"id": model_id},
        },
    )
    return model_id


@pytest.fixture(scope="module")
def models(admin: httpx.Client, vertex: FakeVertex, account: tuple[str, str]) -> dict[str, str]:
    """Model group names by role (and deployment ids under `<role>-id`)."""
    _, credentials = account
    roles = ("gemini", "claude", "refused", "unreachable", "gemini-invalid", "claude-too-long")
    names = {role: unique(f"vx-{role}") for role in roles}
    _deploy(admin, vertex, names["gemini"], "gemini-2.5-flash", credentials)
    _deploy(admin, vertex, names["claude"], "claude-sonnet-4@20250514", credentials)
    _deploy(admin, vertex, names["gemini-invalid"], "fail-400", credentials)
    _deploy(
        admin,
        vertex,
        names["claude-too-long"],
        "fail-400-too-long",
        credentials,
        vertex_publisher="anthropic",
    )
    stranger = _private_key()
    impostor = f"{unique('impostor')}@{PROJECT}.iam.gserviceaccount.com"
    vertex.register(impostor, _public_pem(_private_key()))  # signed with another key than registered
    names["refused-id"] = _deploy(
        admin,
        vertex,
        names["refused"],
        "gemini-2.5-flash",
        service_account(impostor, stranger, f"{vertex.base_url}/token"),
    )
    closed = "http://127.0.0.1:9/token"  # the discard port: nothing listens
    names["unreachable-id"] = _deploy(
        admin,
        vertex,
        names["unreachable"],
        "gemini-2.5-flash",
        service_account(impostor, stranger, closed),
        max_retries=0,
    )
    return names


@pytest.fixture(scope="module")
def client(stack: Stack, admin: httpx.Client, models: dict[str, str]) -> Iterator[openai.OpenAI]:
    """The official SDK on the gateway with a key for every model, without retries of its own."""
    key = str(ok_post(admin, "/key/generate", {})["key"])
    with openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0) as sdk:
        yield sdk


def assert_billed(admin: httpx.Client, request_id: str, prompt: int, completion: int) -> None:
    """The request's spend row holds these tokens and their cost at the deployment's prices."""
    row = spend_row(admin, request_id)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion), row
    assert row["spend"] == pytest.approx(prompt * INPUT_COST + completion * OUTPUT_COST)
    assert row["custom_llm_provider"] == "vertex_ai" and row["status"] == "success"


def _gemini_prompt(body: Json) -> int:
    return count_tokens([body.get("contents"), body.get("systemInstruction")])


def test_gemini_chat_and_stream_reach_vertex_and_are_billed(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], vertex: FakeVertex
) -> None:
    """A Gemini model answers on its Vertex URL with the bearer token, OpenAI-shaped, stream or not."""
    raw = client.chat.completions.with_raw_response.create(
        model=models["gemini"], messages=[{"role": "user", "content": "Say hello"}], max_tokens=50
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "".join(GEMINI_WORDS)
    path, publisher = vertex.calls[-1]
    assert publisher == "google"
    google_models = f"/v1/projects/{PROJECT}/locations/us-east5/publishers/google/models"
    assert path == f"{google_models}/gemini-2.5-flash:generateContent"
    sent = vertex.bodies[-1]
    assert not {k for k in sent if k.startswith("vertex_")}
    prompt = _gemini_prompt(sent)
    assert completion.usage is not None and completion.usage.prompt_tokens == prompt
    assert_billed(admin, raw.headers["x-request-id"], prompt, len(GEMINI_WORDS))

    streamed = client.chat.completions.with_raw_response.create(
        model=models["gemini"],
        messages=[{"role": "user", "content": "Stream a greeting"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(streamed.parse())
    assert vertex.calls[-1][0].endswith("gemini-2.5-flash:streamGenerateContent")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(GEMINI_WORDS)
    usage = chunks[-1].usage
    prompt = _gemini_prompt(vertex.bodies[-1])
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (prompt, len(GEMINI_WORDS))
    assert_billed(admin, streamed.headers["x-request-id"], prompt, len(GEMINI_WORDS))


def test_claude_chat_and_stream_reach_vertex_and_are_billed(
    client: openai.OpenAI,
    admin: httpx.Client,
    models: dict[str, str],
    vertex: FakeVertex,
    fake_anthropic: tuple[FakeAnthropic, str],
) -> None:
    """A Claude model answers on rawPredict / streamRawPredict (the fake refuses a body with a
    model or without Vertex's anthropic_version), translated to OpenAI's shape."""
    anthropic, _ = fake_anthropic
    raw = client.chat.completions.with_raw_response.create(
        model=models["claude"],
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=100,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "".join(CLAUDE_WORDS)
    path, publisher = vertex.calls[-1]
    assert publisher == "anthropic"
    assert path.endswith("/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict")
    assert vertex.bodies[-1]["anthropic_version"] == "vertex-2023-10-16" and "model" not in vertex.bodies[-1]
    prompt = count_input_tokens(anthropic.requests[-1])
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        prompt,
        CLAUDE_OUTPUT_TOKENS,
    )
    assert_billed(admin, raw.headers["x-request-id"], prompt, CLAUDE_OUTPUT_TOKENS)

    streamed = client.chat.completions.with_raw_response.create(
        model=models["claude"],
        messages=[{"role": "user", "content": "Stream it"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(streamed.parse())
    assert vertex.calls[-1][0].endswith("claude-sonnet-4@20250514:streamRawPredict")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(CLAUDE_WORDS)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    prompt = count_input_tokens(anthropic.requests[-1])
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (
        prompt,
        CLAUDE_OUTPUT_TOKENS,
    )
    assert_billed(admin, streamed.headers["x-request-id"], prompt, CLAUDE_OUTPUT_TOKENS)


def test_one_token_serves_many_calls_of_both_publishers(
    client: openai.OpenAI, models: dict[str, str], vertex: FakeVertex, account: tuple[str, str]
) -> None:
    """The account's token is fetched once and shared by every call and deployment that uses it."""
    email, _ = account
    for _ in range(4):
        for group in (models["gemini"], models["claude"]):
            client.chat.completions.create(
                model=group, messages=[{"role": "user", "content": "hi"}], max_tokens=5
            )
    assert vertex.tokens_by_account[email] == 1


def test_refused_credentials_are_a_401_naming_the_deployment(
    client: openai.OpenAI, models: dict[str, str], vertex: FakeVertex
) -> None:
    """A service account the token endpoint refuses is a 401 that names the deployment, and no
    model call is made."""
    calls_before = len(vertex.calls)
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model=models["refused"], messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 401
    assert models["refused-id"] in refused.value.message and "invalid_grant" in refused.value.message
    assert "PRIVATE KEY" not in refused.value.message
    assert len(vertex.calls) == calls_before


def test_unreachable_token_endpoint_is_a_502_naming_the_deployment(
    client: openai.OpenAI, models: dict[str, str]
) -> None:
    """A token endpoint that cannot be reached is a 502 naming the deployment, never a 500."""
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(
            model=models["unreachable"], messages=[{"role": "user", "content": "hi"}]
        )
    assert failed.value.status_code == 502
    assert models["unreachable-id"] in failed.value.message


def test_each_publisher_error_is_read_in_its_own_wire_format(
    client: openai.OpenAI, models: dict[str, str], vertex: FakeVertex
) -> None:
    """A Gemini model's error is a google.rpc.Status (its status is the code), a Claude model's is
    Anthropic's (a prompt too long is context_length_exceeded, so context-window fallbacks apply),
    also for a model vertex_publisher assigns."""
    with pytest.raises(openai.BadRequestError) as gemini:
        client.chat.completions.create(
            model=models["gemini-invalid"], messages=[{"role": "user", "content": "hi"}]
        )
    assert gemini.value.code == "invalid_argument"
    with pytest.raises(openai.BadRequestError) as claude:
        client.chat.completions.create(
            model=models["claude-too-long"], messages=[{"role": "user", "content": "hi"}], max_tokens=5
        )
    assert vertex.calls[-1] == (
        f"/v1/projects/{PROJECT}/locations/us-east5/publishers/anthropic/models/fail-400-too-long:rawPredict",
        "anthropic",
    )
    assert claude.value.code == "context_length_exceeded" and "prompt is too long" in claude.value.message


def test_health_probes_and_supported_params_follow_each_deployment(
    stack: Stack, admin: httpx.Client, models: dict[str, str]
) -> None:
    """/health probes a Vertex deployment with its token; /utils/supported_openai_params answers
    Anthropic's set for a Claude group and Gemini's for a Gemini one."""
    for group in (models["gemini"], models["claude"]):
        health = admin.get("/health", params={"model": group}).json()
        assert health["healthy_count"] == 1 and health["unhealthy_count"] == 0, health

    def supported(group: str) -> set[str]:
        answer = admin.get("/utils/supported_openai_params", params={"model": group})
        assert answer.status_code == 200, answer.text
        return set(answer.json()["supported_openai_params"])

    assert supported(models["claude"]) == ANTHROPIC_CHAT_PARAMS
    assert supported(models["gemini"]) == GEMINI_CHAT_PARAMS


def test_claude_counts_tokens_with_anthropics_count_on_vertex(
    stack: Stack, admin: httpx.Client, models: dict[str, str], vertex: FakeVertex
) -> None:
    """/v1/messages/count_tokens for a Claude group asks Vertex's count-tokens model, with the token."""
    body = {"model": models["claude"], "messages": [{"role": "user", "content": "How many tokens is this?"}]}
    answer = admin.post("/v1/messages/count_tokens", json=body)
    assert answer.status_code == 200, answer.text
    path, publisher = vertex.calls[-1]
    assert publisher == "anthropic" and path.endswith("/publishers/anthropic/models/count-tokens:rawPredict")
    sent = vertex.bodies[-1]
    assert sent["model"] == "claude-sonnet-4@20250514" and sent["anthropic_version"] == "vertex-2023-10-16"
    assert answer.json() == {"input_tokens": count_input_tokens(sent)}
