"""Gemini as a provider behind the OpenAI API: the official `openai` SDK calls the real stack, whose
deployments name `gemini/...` models on the fake Gemini upstream; every answer is OpenAI-shaped and
every call is billed with Gemini's token counts and the deployment's prices in /spend/logs."""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolUnionParam,
)

from hydite_common.devstack import Stack
from tests.fakes.gemini_server import (
    ANSWER_WORDS,
    LEGACY_EMBEDDING_MODEL,
    THOUGHT_TEXT,
    THOUGHT_TOKENS,
    FakeGemini,
    count_tokens,
)
from tests.fakes.openai_server import fake_embedding
from tests.harness import FAKE_UPSTREAM_KEY, ok_post, spend_row, unique
from tests.openapi_spec import Check, spec_checker

INPUT_COST = 0.000003
OUTPUT_COST = 0.000011
ANSWER = "".join(ANSWER_WORDS)
WEATHER: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TIME: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}
TOOLS: list[ChatCompletionToolUnionParam] = [WEATHER, TIME]
# A 1x1 transparent PNG.
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="

Gemini = tuple[FakeGemini, str]


def _deploy(admin: httpx.Client, base: str, name: str, upstream: str, **info: Any) -> str:
    """A deployment of model group `name` on the fake's model `upstream`, priced; its id."""
    model_id = unique(f"gemini-{upstream}")
    ok_post(
        admin,
        "/model/new",
        {
            "model_name": name,
            "litellm_params": {
                "model": f"gemini/{upstream}",
                "api_base": base,
                "api_key": FAKE_UPSTREAM_KEY,
                "input_cost_per_token": INPUT_COST,
                "output_cost_per_token": OUTPUT_COST,
            },
            "model_info": {"id": model_id, **info},
        },
    )
    return model_id


@pytest.fixture(scope="module")
def models(admin: httpx.Client, fake_gemini: Gemini) -> dict[str, str]:
    """Model group names by role, all on the fake Gemini upstream."""
    _, base = fake_gemini
    names = {role: unique(f"gem-{role}") for role in ("chat", "blocked", "embed", "legacy", "long", "short")}
    names |= {role: unique(f"gem-{role}") for role in ("plain-short", "limited", "pair", "flaky")}
    _deploy(admin, base, names["chat"], "gemini-2.5-flash")
    _deploy(admin, base, names["blocked"], "blocked")
    _deploy(admin, base, names["embed"], "gemini-embedding-001")
    _deploy(admin, base, names["legacy"], LEGACY_EMBEDDING_MODEL)
    names["long-id"] = _deploy(admin, base, names["long"], "gemini-2.5-pro")
    _deploy(admin, base, names["short"], "fail-400-too-long", context_window_fallbacks=[names["long"]])
    _deploy(admin, base, names["plain-short"], "fail-400-too-long")
    _deploy(admin, base, names["limited"], "fail-429")
    names["pair-good"] = _deploy(admin, base, names["pair"], "gemini-2.5-flash")
    _deploy(admin, base, names["pair"], "fail-429")
    _deploy(admin, base, names["flaky"], "flaky-2")
    return names


@pytest.fixture(scope="module")
def key(admin: httpx.Client, models: dict[str, str]) -> str:
    """A key that may call every model."""
    return str(ok_post(admin, "/key/generate", {})["key"])


@pytest.fixture(scope="module")
def client(stack: Stack, key: str) -> Iterator[openai.OpenAI]:
    """The official SDK on the gateway, without retries of its own."""
    with openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def check() -> Check:
    """Validation against OpenAI's spec."""
    return spec_checker()


def assert_billed(
    admin: httpx.Client, request_id: str, prompt: int, completion: int, reasoning: int = 0
) -> None:
    """The request's spend row holds these tokens and their cost at the deployment's prices."""
    row = spend_row(admin, request_id)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion), row
    assert row["metadata"]["reasoning_tokens"] == reasoning
    assert row["spend"] == pytest.approx(prompt * INPUT_COST + completion * OUTPUT_COST)
    assert row["custom_llm_provider"] == "gemini" and row["status"] == "success"


def _prompt_tokens(body: dict[str, Any]) -> int:
    """The fake's prompt count of the request it saw."""
    return count_tokens([body.get("contents"), body.get("systemInstruction")])


def test_chat_answers_openai_shaped_and_is_billed(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], fake_gemini: Gemini, check: Check
) -> None:
    """A chat completion reaches generateContent with the key in a header, and its answer and usage
    come back as OpenAI's, valid per the spec."""
    fake, _ = fake_gemini
    raw = client.chat.completions.with_raw_response.create(
        model=models["chat"],
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello, please"},
        ],
        max_tokens=100,
        temperature=0.3,
    )
    completion = raw.parse()
    check(completion.model_dump(exclude_unset=True), "CreateChatCompletionResponse")
    assert completion.choices[0].message.content == ANSWER and completion.choices[0].finish_reason == "stop"
    sent, path = fake.requests[-1], fake.calls[-1][0]
    assert path == "/v1beta/models/gemini-2.5-flash:generateContent" and "key=" not in path
    assert fake.headers[-1]["x-goog-api-key"] == FAKE_UPSTREAM_KEY
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["generationConfig"] == {"temperature": 0.3, "maxOutputTokens": 100}
    prompt = _prompt_tokens(sent)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (prompt, len(ANSWER_WORDS))
    assert completion.id.startswith("fake") and completion.model.startswith("gemini-2.5-flash")
    assert_billed(admin, raw.headers["x-request-id"], prompt, len(ANSWER_WORDS))


def test_stream_relays_deltas_then_usage_then_done(
    stack: Stack,
    key: str,
    client: openai.OpenAI,
    admin: httpx.Client,
    models: dict[str, str],
    fake_gemini: Gemini,
) -> None:
    """A stream with include_usage gets one id, the words as deltas, finish_reason stop, a usage
    chunk and [DONE]; without include_usage no usage chunk is shown, yet both are billed."""
    fake, _ = fake_gemini
    raw = client.chat.completions.with_raw_response.create(
        model=models["chat"],
        messages=[{"role": "user", "content": "Stream a greeting"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(raw.parse())
    assert fake.calls[-1][0] == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert len({c.id for c in chunks}) == 1 and chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    prompt = _prompt_tokens(fake.requests[-1])
    assert not chunks[-1].choices and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, len(ANSWER_WORDS))
    assert_billed(admin, raw.headers["x-request-id"], prompt, len(ANSWER_WORDS))
    with httpx.stream(
        "POST",
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": models["chat"], "messages": [{"role": "user", "content": "hi"}], "stream": True},
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
        request_id = response.headers["x-request-id"]
    assert lines[-1] == "data: [DONE]" and lines.count("data: [DONE]") == 1
    assert all('"usage"' not in line for line in lines)
    assert_billed(admin, request_id, _prompt_tokens(fake.requests[-1]), len(ANSWER_WORDS))


def test_tools_round_trip_with_parallel_calls_and_results(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], fake_gemini: Gemini
) -> None:
    """Two declared tools get two calls (ids kept, finish tool_calls), streamed as indexed deltas
    too; their results go back as functionResponse parts of one user turn."""
    fake, _ = fake_gemini
    question: ChatCompletionMessageParam = {"role": "user", "content": "Weather and time in Paris?"}
    raw = client.chat.completions.with_raw_response.create(
        model=models["chat"], messages=[question], tools=TOOLS, tool_choice="auto"
    )
    answer = raw.parse().choices[0]
    calls = [
        call
        for call in answer.message.tool_calls or []
        if isinstance(call, ChatCompletionMessageFunctionToolCall)
    ]
    assert answer.finish_reason == "tool_calls"
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == {"city": "fake", "days": 1}
    declared = fake.requests[-1]["tools"][0]["functionDeclarations"][0]
    assert declared["parametersJsonSchema"]["additionalProperties"] is False and "strict" not in declared
    assert fake.requests[-1]["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert_billed(admin, raw.headers["x-request-id"], _prompt_tokens(fake.requests[-1]), 2)
    replayed: Any = answer.message.model_dump(exclude_none=True)
    follow_up = client.chat.completions.create(
        model=models["chat"],
        messages=[
            question,
            replayed,
            {"role": "tool", "tool_call_id": calls[0].id, "content": '{"sky": "clear"}'},
            {"role": "tool", "tool_call_id": calls[1].id, "content": "14:05"},
        ],
        tools=TOOLS,
        tool_choice="none",
    )
    assert follow_up.choices[0].message.content == ANSWER
    model_turn, results_turn = fake.requests[-1]["contents"][1:]
    assert [p["functionCall"]["id"] for p in model_turn["parts"]] == [c.id for c in calls]
    assert results_turn == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"sky": "clear"}, "id": calls[0].id}},
            {"functionResponse": {"name": "get_time", "response": {"result": "14:05"}, "id": calls[1].id}},
        ],
    }
    streamed = list(
        client.chat.completions.create(model=models["chat"], messages=[question], tools=TOOLS, stream=True)
    )
    deltas = [call for c in streamed if c.choices for call in c.choices[0].delta.tool_calls or []]
    assert [(d.index, d.function.name if d.function else None) for d in deltas] == [
        (0, "get_weather"),
        (1, "get_time"),
    ]
    assert [c.choices[0].finish_reason for c in streamed if c.choices][-1] == "tool_calls"


def test_vision_sends_inline_images_and_urls(
    client: openai.OpenAI, models: dict[str, str], fake_gemini: Gemini
) -> None:
    """A base64 data URL becomes inlineData and an https URL fileData with its guessed type."""
    fake, _ = fake_gemini
    completion = client.chat.completions.create(
        model=models["chat"],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What are these?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == ANSWER
    assert fake.requests[-1]["contents"][0]["parts"] == [
        {"text": "What are these?"},
        {"inlineData": {"mimeType": "image/png", "data": PIXEL}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp"}},
    ]


def test_reasoning_effort_shows_thoughts_and_bills_them_as_reasoning(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], fake_gemini: Gemini
) -> None:
    """reasoning_effort asks for a thinking budget with thoughts; they come back as reasoning_content
    (also streamed) and count as reasoning tokens inside the completion tokens."""
    fake, _ = fake_gemini
    raw = client.chat.completions.with_raw_response.create(
        model=models["chat"],
        messages=[{"role": "user", "content": "Think, then greet"}],
        reasoning_effort="low",
    )
    completion = raw.parse()
    message = completion.choices[0].message
    assert fake.requests[-1]["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 1024,
        "includeThoughts": True,
    }
    assert message.content == ANSWER and (message.model_extra or {})["reasoning_content"] == THOUGHT_TEXT
    usage = completion.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens == len(ANSWER_WORDS) + THOUGHT_TOKENS
    assert usage.completion_tokens_details.reasoning_tokens == THOUGHT_TOKENS
    prompt = _prompt_tokens(fake.requests[-1])
    assert_billed(
        admin, raw.headers["x-request-id"], prompt, len(ANSWER_WORDS) + THOUGHT_TOKENS, THOUGHT_TOKENS
    )
    streamed = list(
        client.chat.completions.create(
            model=models["chat"],
            messages=[{"role": "user", "content": "Think"}],
            reasoning_effort="low",
            stream=True,
        )
    )
    reasoning = [
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") for c in streamed if c.choices
    ]
    assert [r for r in reasoning if r] == [THOUGHT_TEXT]


def test_json_schema_output(client: openai.OpenAI, models: dict[str, str], fake_gemini: Gemini) -> None:
    """response_format json_schema asks Gemini for JSON under responseJsonSchema; the answer parses."""
    fake, _ = fake_gemini
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "warm": {"type": "boolean"}},
        "required": ["city", "warm"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model=models["chat"],
        messages=[{"role": "user", "content": "A city as JSON"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "place", "schema": schema, "strict": True},
        },
    )
    assert json.loads(completion.choices[0].message.content or "") == {"city": "fake", "warm": True}
    config = fake.requests[-1]["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}


def test_a_safety_block_finishes_with_content_filter(client: openai.OpenAI, models: dict[str, str]) -> None:
    """Gemini's SAFETY finish is finish_reason content_filter without content, plain and streamed."""
    completion = client.chat.completions.create(
        model=models["blocked"], messages=[{"role": "user", "content": "x"}]
    )
    assert (
        completion.choices[0].finish_reason == "content_filter"
        and completion.choices[0].message.content is None
    )
    chunks = list(
        client.chat.completions.create(
            model=models["blocked"], messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"


def test_embeddings_single_and_batch_with_dimensions(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], fake_gemini: Gemini, check: Check
) -> None:
    """One input uses embedContent, several batchEmbedContents (each naming its model); dimensions
    size the vectors, base64 packs them as float32, and Gemini's count (or the estimate) is billed."""
    fake, _ = fake_gemini
    raw = client.embeddings.with_raw_response.create(model=models["embed"], input="alpha", dimensions=16)
    single = raw.parse()
    check(single.model_dump(exclude_unset=True), "CreateEmbeddingResponse")
    assert single.data[0].embedding == fake_embedding("alpha", 16)
    assert fake.calls[-1][0] == "/v1beta/models/gemini-embedding-001:embedContent"
    assert fake.requests[-1]["outputDimensionality"] == 16
    tokens = count_tokens({"text": "alpha"})
    assert single.usage.prompt_tokens == tokens
    assert_billed(admin, raw.headers["x-request-id"], tokens, 0)
    batch = client.embeddings.create(model=models["embed"], input=["alpha", "beta"], dimensions=8)
    assert [d.embedding for d in batch.data] == [fake_embedding("alpha", 8), fake_embedding("beta", 8)]
    assert fake.calls[-1][0] == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert {r["model"] for r in fake.requests[-1]["requests"]} == {"models/gemini-embedding-001"}
    packed = client.embeddings.with_raw_response.create(
        model=models["legacy"], input=["alpha", "beta gamma"], dimensions=4, encoding_format="base64"
    )
    vectors = [d["embedding"] for d in json.loads(packed.text)["data"]]
    assert [list(struct.unpack("<4f", base64.b64decode(v))) for v in vectors] == [
        pytest.approx(fake_embedding(text, 4)) for text in ("alpha", "beta gamma")
    ]
    estimated = max(1, len("alpha") // 4) + max(1, len("beta gamma") // 4)
    assert json.loads(packed.text)["usage"] == {"prompt_tokens": estimated, "total_tokens": estimated}
    assert_billed(admin, packed.headers["x-request-id"], estimated, 0)


def test_the_responses_api_on_a_gemini_model(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], fake_gemini: Gemini, check: Check
) -> None:
    """client.responses.create works plain and streamed over generateContent, and is billed."""
    fake, _ = fake_gemini
    raw = client.responses.with_raw_response.create(
        model=models["chat"], input="hello there", instructions="Brief."
    )
    response = raw.parse()
    check(response.model_dump(exclude_unset=True), "Response")
    assert response.output_text == ANSWER and fake.requests[-1]["systemInstruction"] == {
        "parts": [{"text": "Brief."}]
    }
    prompt = _prompt_tokens(fake.requests[-1])
    assert response.usage is not None and response.usage.input_tokens == prompt
    row = spend_row(admin, raw.headers["x-request-id"])
    assert row["call_type"] == "responses" and row["completion_tokens"] == len(ANSWER_WORDS)
    events = list(client.responses.create(model=models["chat"], input="hi", stream=True))
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == ANSWER


def test_a_rate_limit_is_retried_after_its_delay_and_cools_the_deployment(
    stack: Stack, key: str, models: dict[str, str], fake_gemini: Gemini
) -> None:
    """RESOURCE_EXHAUSTED is a 429 whose RetryInfo delay is the retry-after; the gateway waits it out
    once, then surfaces it; beside a healthy deployment the limited one is cooled down."""
    fake, _ = fake_gemini
    before = fake.attempts("fail-429")
    started = time.monotonic()
    limited = _chat(stack, key, models["limited"], num_retries=1)
    assert limited.status_code == 429 and limited.json()["error"]["type"] == "rate_limit_error"
    assert limited.headers["retry-after"] == "1" and time.monotonic() - started >= 0.9
    assert fake.attempts("fail-429") - before == 2
    before = fake.attempts("fail-429")
    for _ in range(6):
        response = _chat(stack, key, models["pair"])
        assert response.status_code == 200 and response.headers["x-hydite-deployment"] == models["pair-good"]
    assert fake.attempts("fail-429") - before <= 1


def test_a_prompt_too_long_moves_to_the_context_window_fallback(
    stack: Stack, key: str, models: dict[str, str]
) -> None:
    """Gemini's input-token-count error is context_length_exceeded: the context-window fallback
    answers, and without one the client sees that code."""
    moved = _chat(stack, key, models["short"])
    assert moved.status_code == 200 and moved.headers["x-hydite-deployment"] == models["long-id"]
    refused = _chat(stack, key, models["plain-short"])
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "context_length_exceeded"


def test_server_errors_are_retried(stack: Stack, key: str, models: dict[str, str]) -> None:
    """Two INTERNAL errors, then an answer: the client sees one 200 after three attempts."""
    response = _chat(stack, key, models["flaky"])
    assert response.status_code == 200, response.text
    assert response.headers["x-hydite-attempts"] == "3"
    assert response.json()["choices"][0]["message"]["content"] == ANSWER


def test_supported_params_are_the_adapters(stack: Stack, key: str, models: dict[str, str]) -> None:
    """/utils/supported_openai_params lists what the Gemini adapter honours, not logit_bias, which
    is refused (or dropped with drop_params)."""
    response = httpx.get(
        stack.base_url + "/utils/supported_openai_params",
        params={"model": models["chat"]},
        headers={"Authorization": f"Bearer {key}"},
    )
    params = response.json()["supported_openai_params"]
    assert "reasoning_effort" in params and "tools" in params and "logit_bias" not in params
    refused = _chat(stack, key, models["chat"], logit_bias={"50256": -100})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "logit_bias"
    dropped = _chat(stack, key, models["chat"], logit_bias={"50256": -100}, drop_params=True)
    assert dropped.status_code == 200, dropped.text


def _chat(stack: Stack, key: str, model: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra},
        timeout=30,
    )
