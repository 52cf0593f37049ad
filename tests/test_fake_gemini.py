"""The fake Gemini upstream speaks the Gemini API as the google-genai SDK reads it and acts out failures."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest
from google import genai
from google.genai import errors, types

from tests.fakes.gemini_server import (
    ANSWER_WORDS,
    EMBEDDING_DIMENSIONS,
    THOUGHT_TEXT,
    THOUGHT_TOKENS,
    FakeGemini,
    count_tokens,
)
from tests.fakes.openai_server import FakeServerThread, fake_embedding

KEY = "AIza-fake-upstream-test-key"
MODEL = "gemini-2.5-flash"
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="The weather in a city.",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={
            "city": types.Schema(type=types.Type.STRING),
            "days": types.Schema(type=types.Type.INTEGER),
        },
        required=["city"],
    ),
)
TIME = types.FunctionDeclaration(
    name="get_time",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"zone": types.Schema(type=types.Type.STRING)}
    ),
)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeGemini, str]]:
    """One fake upstream for the module and its base URL (without the API version)."""
    fake = FakeGemini(api_key=KEY)
    server = FakeServerThread(fake.app())
    base = server.start()
    yield fake, base
    server.stop()


@pytest.fixture(scope="module")
def fake(served: tuple[FakeGemini, str]) -> FakeGemini:
    """The fake upstream's recorder."""
    return served[0]


def _client(base: str, key: str = KEY) -> genai.Client:
    """The official SDK pointed at the fake's v1beta, without retries."""
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=base, api_version="v1beta"))


@pytest.fixture(scope="module")
def client(served: tuple[FakeGemini, str]) -> Iterator[genai.Client]:
    """The SDK client for the module."""
    with _client(served[1]) as sdk:
        yield sdk


def test_generate_content_answers_text_with_usage(client: genai.Client, fake: FakeGemini) -> None:
    """A plain request gets one text candidate, STOP, usage, model version and response id."""
    response = client.models.generate_content(model=MODEL, contents="Hi there")
    assert response.text == "".join(ANSWER_WORDS)
    [candidate] = response.candidates or []
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content is not None and candidate.content.role == "model"
    usage = response.usage_metadata
    assert usage is not None
    prompt = count_tokens(fake.requests[-1]["contents"])
    assert (usage.prompt_token_count, usage.candidates_token_count) == (prompt, len(ANSWER_WORDS))
    assert usage.total_token_count == prompt + len(ANSWER_WORDS)
    assert usage.cached_content_token_count == 0 and usage.thoughts_token_count is None
    assert response.model_version and response.model_version.startswith(MODEL)
    assert response.response_id
    assert fake.requests[-1]["contents"] == [{"parts": [{"text": "Hi there"}], "role": "user"}]
    assert fake.headers[-1]["x-goog-api-key"] == KEY
    assert fake.calls[-1] == (f"/v1beta/models/{MODEL}:generateContent", MODEL)


def test_max_output_tokens_cuts_the_answer(client: genai.Client) -> None:
    """A maxOutputTokens below the answer's length cuts it and finishes with MAX_TOKENS."""
    response = client.models.generate_content(
        model=MODEL, contents="Hi", config=types.GenerateContentConfig(max_output_tokens=2)
    )
    assert response.text == "".join(ANSWER_WORDS[:2])
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


def test_function_declarations_get_function_calls(client: genai.Client) -> None:
    """Declared functions are each called, with typed args and an id."""
    response = client.models.generate_content(
        model=MODEL,
        contents="Weather and time in Paris?",
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER, TIME])]),
    )
    calls = response.function_calls or []
    assert [(call.name, call.args) for call in calls] == [
        ("get_weather", {"city": "fake", "days": 1}),
        ("get_time", {"zone": "fake"}),
    ]
    assert all(call.id for call in calls) and len({call.id for call in calls}) == 2
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP


def test_included_thoughts_come_first_and_are_counted(client: genai.Client) -> None:
    """includeThoughts puts a thought part before the answer and fills thoughtsTokenCount."""
    response = client.models.generate_content(
        model=MODEL,
        contents="Hi",
        config=types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True)),
    )
    assert response.candidates and response.candidates[0].content
    parts = response.candidates[0].content.parts or []
    assert [(part.thought, part.text) for part in parts] == [
        (True, THOUGHT_TEXT),
        (None, "".join(ANSWER_WORDS)),
    ]
    assert response.usage_metadata and response.usage_metadata.thoughts_token_count == THOUGHT_TOKENS


def test_blocked_model_finishes_with_safety(client: genai.Client) -> None:
    """Model blocked answers no content, finishReason SAFETY and the rating that blocked it."""
    response = client.models.generate_content(model="blocked", contents="Hi")
    [candidate] = response.candidates or []
    assert candidate.finish_reason == types.FinishReason.SAFETY and candidate.content is None
    blocked = [rating for rating in candidate.safety_ratings or [] if rating.blocked]
    assert [(r.category, r.probability) for r in blocked] == [
        (types.HarmCategory.HARM_CATEGORY_DANGEROUS_CONTENT, types.HarmProbability.HIGH)
    ]
    assert response.text is None


def test_stream_sends_sse_chunks_that_add_up(client: genai.Client, fake: FakeGemini) -> None:
    """generate_content_stream reads one chunk per word; the last carries STOP and the full usage."""
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Hi"))
    assert [chunk.text for chunk in chunks] == ANSWER_WORDS
    assert [c.candidates[0].finish_reason if c.candidates else None for c in chunks] == [None] * (
        len(ANSWER_WORDS) - 1
    ) + [types.FinishReason.STOP]
    last = chunks[-1].usage_metadata
    assert last is not None and last.candidates_token_count == len(ANSWER_WORDS)
    assert len({chunk.response_id for chunk in chunks}) == 1
    assert fake.calls[-1] == (f"/v1beta/models/{MODEL}:streamGenerateContent", MODEL)


def test_raw_stream_is_sse_data_lines(served: tuple[FakeGemini, str]) -> None:
    """With alt=sse the body is data: lines of GenerateContentResponse JSON; the key may come as ?key=."""
    _, base = served
    with httpx.stream(
        "POST",
        f"{base}/v1beta/models/{MODEL}:streamGenerateContent",
        params={"alt": "sse", "key": KEY},
        json={"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert len(lines) == len(ANSWER_WORDS) and all(line.startswith("data: {") for line in lines)


def test_stream_carries_function_calls(client: genai.Client) -> None:
    """A streamed answer to declared functions carries the function calls."""
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL,
            contents="Weather?",
            config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])]),
        )
    )
    calls = [call for chunk in chunks for call in chunk.function_calls or []]
    assert [(call.name, call.args) for call in calls] == [("get_weather", {"city": "fake", "days": 1})]


def test_count_tokens_matches_the_usage(client: genai.Client) -> None:
    """countTokens counts the same as a response's promptTokenCount, and longer text counts more."""
    text = "Count the tokens of this sentence, please."
    counted = client.models.count_tokens(model=MODEL, contents=text)
    answered = client.models.generate_content(model=MODEL, contents=text)
    assert answered.usage_metadata is not None
    assert counted.total_tokens == answered.usage_metadata.prompt_token_count == len(text) // 4
    assert (client.models.count_tokens(model=MODEL, contents=text * 4).total_tokens or 0) > (
        counted.total_tokens or 0
    )


def test_embed_content_honours_output_dimensionality(client: genai.Client, fake: FakeGemini) -> None:
    """embed_content (the SDK calls batchEmbedContents) gives one fixed vector per text, sized as asked."""
    result = client.models.embed_content(
        model="gemini-embedding-001",
        contents=["alpha", "beta"],
        config=types.EmbedContentConfig(output_dimensionality=16),
    )
    vectors = [embedding.values for embedding in result.embeddings or []]
    assert vectors == [fake_embedding("alpha", 16), fake_embedding("beta", 16)]
    assert fake.calls[-1][0] == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    default = client.models.embed_content(model="gemini-embedding-001", contents="alpha")
    assert default.embeddings and len(default.embeddings[0].values or []) == EMBEDDING_DIMENSIONS


def test_embed_content_endpoint_answers_one_embedding(served: tuple[FakeGemini, str]) -> None:
    """The single embedContent endpoint answers {"embedding": {"values": [...]}}, unit length."""
    _, base = served
    response = httpx.post(
        f"{base}/v1beta/models/gemini-embedding-001:embedContent",
        headers={"x-goog-api-key": KEY},
        json={"content": {"parts": [{"text": "alpha"}]}, "outputDimensionality": 8},
    )
    values = response.json()["embedding"]["values"]
    assert values == fake_embedding("alpha", 8)
    assert math.isclose(math.fsum(v * v for v in values), 1.0, rel_tol=1e-5)


@pytest.mark.parametrize(
    ("model", "error", "code", "status"),
    [
        ("fail-429", errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
        ("fail-500", errors.ServerError, 500, "INTERNAL"),
        ("fail-400", errors.ClientError, 400, "INVALID_ARGUMENT"),
    ],
)
@pytest.mark.parametrize("endpoint", ["generate", "stream", "count", "embed"])
def test_error_models_raise_api_errors(
    client: genai.Client,
    fake: FakeGemini,
    model: str,
    error: type[errors.APIError],
    code: int,
    status: str,
    endpoint: str,
) -> None:
    """Each fail-* model raises the SDK's APIError subclass with Google's code and status everywhere."""
    with pytest.raises(error) as caught:
        _call(client, endpoint, model)
    assert isinstance(caught.value, errors.APIError)
    assert (caught.value.code, caught.value.status) == (code, status)
    assert caught.value.message
    assert fake.calls[-1][1] == model


def test_keys_are_checked_as_google_checks_them(served: tuple[FakeGemini, str]) -> None:
    """A wrong key is a 400 API_KEY_INVALID, a missing one a 403 PERMISSION_DENIED; neither is recorded."""
    fake, base = served
    seen = len(fake.requests)
    with _client(base, key="AIza-wrong") as wrong, pytest.raises(errors.ClientError) as caught:
        wrong.models.generate_content(model=MODEL, contents="Hi")
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert caught.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    missing = httpx.post(f"{base}/v1beta/models/{MODEL}:generateContent", json={"contents": []})
    assert missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"
    assert len(fake.requests) == seen


def test_drop_is_a_transport_error(client: genai.Client, fake: FakeGemini) -> None:
    """Model drop closes the connection unanswered: the SDK raises its HTTP client's transport error."""
    before = fake.attempts("drop")
    with pytest.raises(httpx2.TransportError):
        client.models.generate_content(model="drop", contents="Hi")
    assert fake.attempts("drop") == before + 1


def _call(client: genai.Client, endpoint: str, model: str) -> Any:
    """One request to the endpoint with the given model."""
    if endpoint == "generate":
        return client.models.generate_content(model=model, contents="Hi")
    if endpoint == "stream":
        return list(client.models.generate_content_stream(model=model, contents="Hi"))
    if endpoint == "count":
        return client.models.count_tokens(model=model, contents="Hi")
    return client.models.embed_content(model=model, contents="Hi")


def test_the_sdks_default_v1_path_answers_too(served: tuple[FakeGemini, str]) -> None:
    """A client left on the SDK's default API version (v1) reaches the same fake."""
    fake, base = served
    with genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=base)) as default:
        assert default.models.generate_content(model=MODEL, contents="Hi").text == "".join(ANSWER_WORDS)
    assert fake.calls[-1] == (f"/v1/models/{MODEL}:generateContent", MODEL)
