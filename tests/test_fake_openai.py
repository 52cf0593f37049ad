"""The fake OpenAI upstream speaks OpenAI's wire format (per the spec) and acts out its failure modes."""

from __future__ import annotations

import base64
import itertools
import math
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.fakes.openai_server import (
    EMBEDDING_DIMENSIONS,
    FAKE_USAGE,
    STREAM_WORDS,
    FakeOpenAI,
    FakeServerThread,
    fake_embedding,
)
from tests.openapi_spec import Check, load_spec, spec_checker

KEY = "sk-fake-upstream-test-key"
MESSAGES: list[Any] = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """OpenAI's OpenAPI spec."""
    return load_spec()


@pytest.fixture(scope="module")
def check() -> Check:
    """Validation against the spec's component schemas."""
    return spec_checker()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeOpenAI, str]]:
    """One fake upstream for the module and its base URL (without /v1)."""
    fake = FakeOpenAI(api_key=KEY)
    server = FakeServerThread(fake.app())
    base = server.start()
    yield fake, base
    server.stop()


@pytest.fixture(scope="module")
def fake(served: tuple[FakeOpenAI, str]) -> FakeOpenAI:
    """The fake upstream's recorder."""
    return served[0]


@pytest.fixture(scope="module")
def client(served: tuple[FakeOpenAI, str]) -> Iterator[openai.OpenAI]:
    """The official SDK pointed at the fake's /v1, without retries."""
    with openai.OpenAI(base_url=served[1] + "/v1", api_key=KEY, max_retries=0) as sdk:
        yield sdk


def _sse_data(lines: Iterator[str]) -> list[str]:
    """The data fields of an SSE stream, in order."""
    return [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]


def _call(client: openai.OpenAI, endpoint: str, model: str) -> Any:
    """One non-streaming request to the endpoint with the given model."""
    if endpoint == "chat":
        return client.chat.completions.create(model=model, messages=MESSAGES)
    if endpoint == "completions":
        return client.completions.create(model=model, prompt="Say hi")
    return client.embeddings.create(model=model, input="hi", encoding_format="float")


def _streamed_text(client: openai.OpenAI, endpoint: str, model: str) -> Iterator[str]:
    """Stream from the endpoint, yielding each chunk's text as it arrives."""
    if endpoint == "chat":
        for chunk in client.chat.completions.create(model=model, messages=MESSAGES, stream=True):
            yield "".join(c.delta.content or "" for c in chunk.choices)
    else:
        for text_chunk in client.completions.create(model=model, prompt="Say hi", stream=True):
            yield "".join(c.text for c in text_chunk.choices)


def test_chat_completion_matches_the_spec(client: openai.OpenAI, fake: FakeOpenAI, check: Check) -> None:
    """A plain chat completion is a valid CreateChatCompletionResponse the SDK parses."""
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    check(orjson.loads(raw.content), "CreateChatCompletionResponse")
    completion = raw.parse()
    assert completion.id == f"chatcmpl-fake-{fake._counter}"
    assert completion.choices[0].message.content == "".join(STREAM_WORDS)
    assert completion.usage is not None and completion.usage.model_dump(exclude_unset=True) == FAKE_USAGE
    assert fake.requests[-1]["model"] == "gpt-4o-mini"
    assert fake.headers[-1]["Authorization"] == f"Bearer {KEY}"
    assert fake.calls[-1] == ("/v1/chat/completions", "gpt-4o-mini")


def test_chat_stream_matches_the_spec(client: openai.OpenAI, check: Check) -> None:
    """Every streamed chat event is a valid CreateChatCompletionStreamResponse, then usage, then [DONE]."""
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as response:
        data = _sse_data(response.iter_lines())
    assert data[-1] == "[DONE]"
    events = [orjson.loads(d) for d in data[:-1]]
    for event in events:
        check(event, "CreateChatCompletionStreamResponse")
    text = "".join(c["delta"].get("content") or "" for e in events for c in e["choices"])
    assert text == "".join(STREAM_WORDS)
    assert events[-1]["choices"] == [] and events[-1]["usage"] == FAKE_USAGE
    assert [c["finish_reason"] for c in events[-2]["choices"]] == ["stop"]


def test_completion_matches_the_spec(client: openai.OpenAI, check: Check) -> None:
    """A legacy text completion is a valid CreateCompletionResponse the SDK parses."""
    raw = client.completions.with_raw_response.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    body = orjson.loads(raw.content)
    check(body, "CreateCompletionResponse")
    completion = raw.parse()
    assert completion.object == "text_completion" and completion.id.startswith("cmpl-fake-")
    assert completion.choices[0].text == "".join(STREAM_WORDS)
    assert body["usage"] == FAKE_USAGE


def test_completion_stream_matches_the_spec(client: openai.OpenAI, check: Check) -> None:
    """Streamed text_completion chunks carry the words, then a spec-valid stop chunk, usage and [DONE]."""
    with client.completions.with_streaming_response.create(
        model="gpt-3.5-turbo-instruct",
        prompt="Say hi",
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        data = _sse_data(response.iter_lines())
    assert data[-1] == "[DONE]"
    *words, stop, usage = [orjson.loads(d) for d in data[:-1]]
    assert "".join(w["choices"][0]["text"] for w in words) == "".join(STREAM_WORDS)
    # OpenAI streams finish_reason null until the end, which the schema shared with the plain answer omits.
    assert all(w["object"] == "text_completion" and w["choices"][0]["finish_reason"] is None for w in words)
    check(stop, "CreateCompletionResponse")
    assert stop["choices"][0]["finish_reason"] == "stop"
    check(usage, "CreateCompletionResponse")
    assert usage["choices"] == [] and usage["usage"] == FAKE_USAGE
    streamed = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == "".join(STREAM_WORDS)


def test_float_embeddings_match_the_spec_and_are_deterministic(
    client: openai.OpenAI, fake: FakeOpenAI, check: Check
) -> None:
    """Float embeddings are valid per the spec: 8-dim unit vectors that depend only on the input."""
    inputs = ["the quick brown fox", "jumps"]
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=inputs, encoding_format="float"
    )
    body = orjson.loads(raw.content)
    check(body, "CreateEmbeddingResponse")
    assert body["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    vectors = [d.embedding for d in raw.parse().data]
    assert vectors == [fake_embedding(text) for text in inputs]
    assert all(len(v) == EMBEDDING_DIMENSIONS for v in vectors)
    assert all(math.isclose(math.hypot(*v), 1.0, rel_tol=1e-6) for v in vectors)
    assert vectors[0] != vectors[1]
    again = client.embeddings.create(model="text-embedding-3-small", input="jumps", encoding_format="float")
    assert again.data[0].embedding == vectors[1]
    assert fake.requests[-1]["encoding_format"] == "float"


def test_base64_embeddings_decode_to_the_same_floats(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """The SDK asks for base64 by default and decodes the fake's little-endian float32 to the float answer."""
    floats = client.embeddings.create(model="text-embedding-3-small", input="hello", encoding_format="float")
    decoded = client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert fake.requests[-1]["encoding_format"] == "base64"
    assert decoded.data[0].embedding == floats.data[0].embedding
    explicit = client.embeddings.create(
        model="text-embedding-3-small", input="hello", encoding_format="base64"
    )
    packed = base64.b64decode(str(explicit.data[0].embedding))
    assert list(struct.unpack(f"<{EMBEDDING_DIMENSIONS}f", packed)) == floats.data[0].embedding


def test_embeddings_honour_dimensions_and_token_inputs(client: openai.OpenAI, check: Check) -> None:
    """`dimensions` sets the vector length, and token arrays are embedded and counted as tokens."""
    short = client.embeddings.create(
        model="text-embedding-3-small", input="hello", dimensions=3, encoding_format="float"
    )
    assert short.data[0].embedding == fake_embedding("hello", 3)
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=[[1, 2, 3], [4, 5]], encoding_format="float"
    )
    body = orjson.loads(raw.content)
    check(body, "CreateEmbeddingResponse")
    assert [d["embedding"] for d in body["data"]] == [fake_embedding([1, 2, 3]), fake_embedding([4, 5])]
    assert body["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    single = client.embeddings.create(model="text-embedding-3-small", input=[7, 8], encoding_format="float")
    assert single.data[0].embedding == fake_embedding([7, 8])
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="text-embedding-3-small", input="", encoding_format="float")


def test_moderation_matches_the_spec_and_flags_kill(
    client: openai.OpenAI, spec: dict[str, Any], check: Check
) -> None:
    """Moderation answers carry every category the spec requires and flag only inputs saying "kill"."""
    raw = client.moderations.with_raw_response.create(
        model="omni-moderation-latest", input=["I will KILL the process", "have a nice day", "skill"]
    )
    body = orjson.loads(raw.content)
    check(body, "CreateModerationResponse")
    result_schema = spec["components"]["schemas"]["CreateModerationResponse"]["properties"]["results"][
        "items"
    ]
    required = set(result_schema["properties"]["categories"]["required"])
    assert all(set(r["categories"]) == required for r in body["results"])
    assert body["id"].startswith("modr-fake-") and body["model"] == "omni-moderation-latest"
    results = raw.parse().results
    assert [r.flagged for r in results] == [True, False, False]
    assert results[0].categories.violence and not results[0].categories.sexual
    assert results[0].category_scores.violence > 0.5 > results[1].category_scores.violence


def test_models_list_and_retrieve_match_the_spec(
    client: openai.OpenAI, fake: FakeOpenAI, check: Check
) -> None:
    """GET /models and /models/{id} are valid per the spec; an unknown id is a 404 model_not_found."""
    raw = client.models.with_raw_response.list()
    check(orjson.loads(raw.content), "ListModelsResponse")
    assert [m.id for m in raw.parse()] == fake.models
    one = client.models.with_raw_response.retrieve("gpt-4o")
    check(orjson.loads(one.content), "Model")
    assert one.parse().owned_by == "system"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-nope")
    assert caught.value.code == "model_not_found"
    check(caught.value.response.json(), "ErrorResponse")
    assert fake.calls[-1] == ("/v1/models/gpt-nope", "gpt-nope")


def test_every_endpoint_answers_without_the_v1_prefix(served: tuple[FakeOpenAI, str]) -> None:
    """Each endpoint also answers at the path without /v1, and the call is recorded with that path."""
    fake, base = served
    with openai.OpenAI(base_url=base, api_key=KEY, max_retries=0) as bare:
        bare.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        bare.completions.create(model="gpt-3.5-turbo-instruct", prompt="x")
        bare.embeddings.create(model="text-embedding-3-small", input="x")
        bare.moderations.create(model="omni-moderation-latest", input="x")
        bare.models.list()
        bare.models.retrieve("gpt-4o")
    assert fake.calls[-6:] == [
        ("/chat/completions", "gpt-4o-mini"),
        ("/completions", "gpt-3.5-turbo-instruct"),
        ("/embeddings", "text-embedding-3-small"),
        ("/moderations", "omni-moderation-latest"),
        ("/models", ""),
        ("/models/gpt-4o", "gpt-4o"),
    ]


def test_a_wrong_key_is_401_on_every_endpoint(served: tuple[FakeOpenAI, str], check: Check) -> None:
    """Every endpoint wants the fake's Bearer key and answers others with an OpenAI 401."""
    fake, base = served
    with openai.OpenAI(base_url=base + "/v1", api_key="sk-wrong", max_retries=0) as wrong:
        calls: list[Callable[[], object]] = [
            lambda: _call(wrong, "chat", "gpt-4o-mini"),
            lambda: _call(wrong, "completions", "gpt-4o-mini"),
            lambda: _call(wrong, "embeddings", "gpt-4o-mini"),
            lambda: wrong.moderations.create(input="x"),
            lambda: wrong.models.list(),
            lambda: wrong.models.retrieve("gpt-4o"),
        ]
        seen = len(fake.requests)
        for call in calls:
            with pytest.raises(openai.AuthenticationError) as caught:
                call()
            assert caught.value.code == "invalid_api_key"
            check(caught.value.response.json(), "ErrorResponse")
    assert len(fake.requests) == seen


def test_malformed_json_is_an_openai_400(served: tuple[FakeOpenAI, str], check: Check) -> None:
    """A body that is not a JSON object gets an OpenAI-shaped 400, not a crash."""
    _, base = served
    response = httpx.post(
        base + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert response.status_code == 400
    check(response.json(), "ErrorResponse")


@pytest.mark.parametrize("endpoint", ["chat", "completions", "embeddings"])
@pytest.mark.parametrize(
    ("model", "error", "status", "error_type", "code"),
    [
        ("fail-500", openai.InternalServerError, 500, "server_error", None),
        ("fail-503", openai.InternalServerError, 503, "server_error", None),
        ("fail-429", openai.RateLimitError, 429, "requests", "rate_limit_exceeded"),
        ("fail-400-context", openai.BadRequestError, 400, "invalid_request_error", "context_length_exceeded"),
        ("fail-400-policy", openai.BadRequestError, 400, "invalid_request_error", "content_policy_violation"),
        ("fail-401", openai.AuthenticationError, 401, "invalid_request_error", "invalid_api_key"),
    ],
)
def test_error_models_answer_openai_errors(
    client: openai.OpenAI,
    fake: FakeOpenAI,
    check: Check,
    endpoint: str,
    model: str,
    error: type[openai.APIStatusError],
    status: int,
    error_type: str,
    code: str | None,
) -> None:
    """Each fail-* model gets its status and OpenAI error body on every endpoint, and the call is recorded."""
    with pytest.raises(error) as caught:
        _call(client, endpoint, model)
    response = caught.value.response
    assert response.status_code == status
    check(response.json(), "ErrorResponse")
    assert (caught.value.type, caught.value.code) == (error_type, code)
    assert fake.calls[-1][1] == model
    if model == "fail-429":
        assert response.headers["retry-after"] == "1"
    if model == "fail-500":
        assert response.json()["error"]["message"] == "The server had an error"
    if model == "fail-400-context":
        assert "maximum context length" in response.json()["error"]["message"]


@pytest.mark.parametrize("endpoint", ["chat", "completions", "embeddings"])
def test_drop_closes_the_connection_without_an_answer(
    client: openai.OpenAI, fake: FakeOpenAI, endpoint: str
) -> None:
    """The drop model makes the SDK see a connection error, and the attempt is still recorded."""
    before = fake.attempts("drop")
    with pytest.raises(openai.APIConnectionError) as caught:
        _call(client, endpoint, "drop")
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert fake.attempts("drop") == before + 1


def test_slow_times_out_an_impatient_client_and_answers_a_patient_one(client: openai.OpenAI) -> None:
    """The slow model outlasts a 0.5 s client timeout, yet answers normally after about 2 s."""
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.5).chat.completions.create(model="slow", messages=MESSAGES)
    assert time.monotonic() - started < 1.5
    started = time.monotonic()
    answer = client.with_options(timeout=5).embeddings.create(
        model="slow", input="x", encoding_format="float"
    )
    assert time.monotonic() - started >= 1.9
    assert answer.data[0].embedding == fake_embedding("x")


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_stream_delay_spaces_events_apart(client: openai.OpenAI, endpoint: str) -> None:
    """With the stream-delay model streamed events arrive at least 80 ms apart and complete."""
    received: list[str] = []
    arrivals: list[float] = []
    for text in _streamed_text(client, endpoint, "stream-delay"):
        arrivals.append(time.monotonic())
        received.append(text)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(gaps) >= len(STREAM_WORDS) and min(gaps) >= 0.08
    assert "".join(received) == "".join(STREAM_WORDS)


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_stream_break_raises_in_the_sdk_iterator(
    client: openai.OpenAI, fake: FakeOpenAI, endpoint: str
) -> None:
    """The stream-break model sends two content events, then the cut surfaces as an SDK connection error."""
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):  # noqa: PT012 - the chunks before the cut count too
        for text in _streamed_text(client, endpoint, "stream-break"):
            received.append(text)
    assert "".join(received) == "Hello from"
    assert fake.calls[-1][1] == "stream-break"


@pytest.mark.parametrize("model", ["stream-delay", "stream-break"])
def test_stream_models_answer_plain_requests_normally(client: openai.OpenAI, model: str) -> None:
    """Without stream: true the stream-* models give an ordinary completion."""
    completion = client.chat.completions.create(model=model, messages=MESSAGES)
    assert completion.choices[0].message.content == "".join(STREAM_WORDS)


def test_flaky_fails_n_times_per_model_name_then_succeeds(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """flaky-2 is a 500 twice and then answers; the count is kept per exact model name."""
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            _call(client, "chat", "flaky-2")
    assert _call(client, "chat", "flaky-2").choices[0].message.content == "".join(STREAM_WORDS)
    assert _call(client, "completions", "flaky-2").choices[0].text == "".join(STREAM_WORDS)
    assert fake.attempts("flaky-2") == 4
    with pytest.raises(openai.InternalServerError):
        _call(client, "embeddings", "flaky-1")
    assert _call(client, "embeddings", "flaky-1").data[0].embedding == fake_embedding("hi")
