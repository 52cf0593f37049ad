"""Amazon Bedrock as a provider behind the OpenAI API: the official `openai` SDK calls the real stack,
whose deployments name `bedrock/...` models on the fake Bedrock Runtime. Every call is SigV4-signed
with the deployment's keys (the fake verifies the signature with botocore), answered over Converse
or ConverseStream (binary event-stream framing) and billed with Bedrock's token counts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)

from hydite_common.devstack import Stack
from tests.fakes.bedrock_server import (
    ACCESS_KEY_ID,
    ANSWER_WORDS,
    REGION,
    RESULT_PREFIX,
    SECRET_ACCESS_KEY,
    FakeBedrock,
    count_tokens,
)
from tests.fakes.openai_server import FakeServerThread
from tests.harness import ok_post, spend_row, unique

INPUT_COST = 0.000002
OUTPUT_COST = 0.000010
ANSWER = "".join(ANSWER_WORDS)
CLAUDE = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
WEATHER: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
Bedrock = tuple[FakeBedrock, str]


@pytest.fixture(scope="module")
def fake_bedrock() -> Iterator[Bedrock]:
    """A fake Bedrock Runtime and its base URL (the api_base a deployment names)."""
    fake = FakeBedrock()
    server = FakeServerThread(fake.app())
    base = server.start()
    yield fake, base
    server.stop()


def _deploy(
    admin: httpx.Client, base: str, name: str, upstream: str, secret: str = SECRET_ACCESS_KEY
) -> None:
    ok_post(
        admin,
        "/model/new",
        {
            "model_name": name,
            "litellm_params": {
                "model": f"bedrock/{upstream}",
                "api_base": base,
                "aws_access_key_id": ACCESS_KEY_ID,
                "aws_secret_access_key": secret,
                "aws_region_name": REGION,
                "input_cost_per_token": INPUT_COST,
                "output_cost_per_token": OUTPUT_COST,
            },
            "model_info": {"id": unique(f"bedrock-{upstream}")},
        },
    )


@pytest.fixture(scope="module")
def models(admin: httpx.Client, fake_bedrock: Bedrock) -> dict[str, str]:
    """Model group names by role, all on the fake Bedrock Runtime."""
    _, base = fake_bedrock
    names = {role: unique(f"br-{role}") for role in ("chat", "throttled", "long", "forged", "cut")}
    _deploy(admin, base, names["chat"], CLAUDE)
    _deploy(admin, base, names["throttled"], "fail-throttle")
    _deploy(admin, base, names["long"], "fail-too-long")
    _deploy(admin, base, names["cut"], "stream-throttle")
    _deploy(admin, base, names["forged"], CLAUDE, secret="not-the-secret/0123456789abcdefghijklmno")
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


def assert_billed(admin: httpx.Client, request_id: str, prompt: int, completion: int) -> None:
    """The request's spend row holds these tokens and their cost at the deployment's prices."""

    row = spend_row(admin, request_id)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion), row
    assert row["spend"] == pytest.approx(prompt * INPUT_COST + completion * OUTPUT_COST)
    assert row["custom_llm_provider"] == "bedrock" and row["status"] == "success"


def _prompt_tokens(body: dict[str, Any]) -> int:
    return count_tokens([body.get("system"), body.get("messages")])


def test_chat_is_signed_answered_and_billed(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], fake_bedrock: Bedrock
) -> None:
    """A chat completion reaches /model/{id}/converse signed for bedrock in the deployment's region
    (the fake verified it), and comes back OpenAI-shaped with Bedrock's counts."""
    fake, _ = fake_bedrock
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
    assert completion.choices[0].message.content == ANSWER and completion.choices[0].finish_reason == "stop"
    path, model = fake.calls[-1]
    assert path == "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse" and model == CLAUDE
    sent, headers = fake.requests[-1], fake.headers[-1]
    assert (
        f"Credential={ACCESS_KEY_ID}/" in headers["Authorization"]
        and f"/{REGION}/bedrock/" in headers["Authorization"]
    )
    assert sent["system"] == [{"text": "Be brief."}]
    assert sent["inferenceConfig"] == {"maxTokens": 100, "temperature": 0.3}
    prompt = _prompt_tokens(sent)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (prompt, len(ANSWER_WORDS))
    assert_billed(admin, raw.headers["x-request-id"], prompt, len(ANSWER_WORDS))


def test_converse_stream_is_decoded_into_chunks_with_usage(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], fake_bedrock: Bedrock
) -> None:
    """The binary event stream (written in pieces that cut its messages) arrives as chat chunks
    with one id, finish_reason stop, the usage chunk the client asked for, and is billed."""
    fake, _ = fake_bedrock
    raw = client.chat.completions.with_raw_response.create(
        model=models["chat"],
        messages=[{"role": "user", "content": "Stream a greeting"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(raw.parse())
    assert fake.calls[-1][0].endswith("/converse-stream")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert len({c.id for c in chunks}) == 1 and chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage, prompt = chunks[-1].usage, _prompt_tokens(fake.requests[-1])
    assert not chunks[-1].choices and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, len(ANSWER_WORDS))
    assert_billed(admin, raw.headers["x-request-id"], prompt, len(ANSWER_WORDS))


def test_tool_call_round_trip_streamed_and_not(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], fake_bedrock: Bedrock
) -> None:
    """A tool call comes back with Bedrock's toolUseId (and as indexed deltas in a stream); its
    result goes back as a toolResult block of the user turn and the model answers with it."""
    fake, _ = fake_bedrock
    question: ChatCompletionMessageParam = {"role": "user", "content": "Weather in Paris?"}
    raw = client.chat.completions.with_raw_response.create(
        model=models["chat"], messages=[question], tools=[WEATHER], tool_choice="required"
    )
    answer = raw.parse().choices[0]
    calls = [
        c for c in answer.message.tool_calls or [] if isinstance(c, ChatCompletionMessageFunctionToolCall)
    ]
    assert answer.finish_reason == "tool_calls" and [c.function.name for c in calls] == ["get_weather"]
    assert calls[0].id == "tooluse_fake0001" and json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert fake.requests[-1]["toolConfig"]["toolChoice"] == {"any": {}}
    assert_billed(admin, raw.headers["x-request-id"], _prompt_tokens(fake.requests[-1]), 1)
    streamed = list(
        client.chat.completions.create(
            model=models["chat"], messages=[question], tools=[WEATHER], stream=True
        )
    )
    pieces = [c.choices[0].delta.tool_calls or [] for c in streamed if c.choices]
    arguments = "".join(call.function.arguments or "" for delta in pieces for call in delta if call.function)
    assert json.loads(arguments) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in streamed if c.choices][-1] == "tool_calls"
    replayed: Any = answer.message.model_dump(exclude_none=True)
    follow_up = client.chat.completions.create(
        model=models["chat"],
        messages=[question, replayed, {"role": "tool", "tool_call_id": calls[0].id, "content": "18 C"}],
        tools=[WEATHER],
    )
    assert follow_up.choices[0].message.content == RESULT_PREFIX + "18 C"
    turns = fake.requests[-1]["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"toolUse": {"toolUseId": "tooluse_fake0001", "name": "get_weather", "input": {"city": "Paris"}}}
    ]
    assert turns[2]["content"] == [
        {"toolResult": {"toolUseId": "tooluse_fake0001", "content": [{"text": "18 C"}]}}
    ]


def test_bedrock_errors_map_to_openai_errors(client: openai.OpenAI, models: dict[str, str]) -> None:
    """ThrottlingException is a 429, an input over the window a 400 context_length_exceeded, and a
    signature AWS refuses the provider's 403, never a 500."""
    hello: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.RateLimitError) as throttled:
        client.chat.completions.create(model=models["throttled"], messages=hello)
    assert "Too many requests" in throttled.value.message
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(model=models["long"], messages=hello)
    assert too_long.value.code == "context_length_exceeded"
    with pytest.raises(openai.PermissionDeniedError) as forged:
        client.chat.completions.create(model=models["forged"], messages=hello)
    assert forged.value.status_code == 403 and forged.value.code == "InvalidSignatureException"


def test_an_exception_mid_stream_ends_it_with_an_error_event(
    stack: Stack, key: str, models: dict[str, str]
) -> None:
    """A throttlingException message after the first delta becomes an OpenAI error event."""
    with httpx.stream(
        "POST",
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": models["cut"], "messages": [{"role": "user", "content": "hi"}], "stream": True},
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert response.status_code == 200
    assert json.loads(lines[1].removeprefix("data: "))["choices"][0]["delta"] == {"content": "Hel"}
    error = json.loads(lines[-1].removeprefix("data: "))["error"]
    assert error["type"] == "rate_limit_error" and "Too many tokens" in error["message"]


def test_the_responses_api_streams_over_converse_stream(
    client: openai.OpenAI, admin: httpx.Client, models: dict[str, str], fake_bedrock: Bedrock
) -> None:
    """The Responses API over Bedrock: its events come from the decoded binary stream, and the
    call is billed with Bedrock's counts."""
    fake, _ = fake_bedrock
    with client.responses.with_streaming_response.create(
        model=models["chat"], input="Stream a greeting", instructions="Be brief.", stream=True
    ) as raw:
        request_id = raw.headers["x-request-id"]
        events = list(raw.parse())
    assert fake.calls[-1][0].endswith("/converse-stream")
    assert fake.requests[-1]["system"] == [{"text": "Be brief."}]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    completed = events[-1]
    assert text == ANSWER and completed.type == "response.completed"
    prompt = _prompt_tokens(fake.requests[-1])
    usage = completed.response.usage
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (prompt, len(ANSWER_WORDS))
    assert_billed(admin, request_id, prompt, len(ANSWER_WORDS))
