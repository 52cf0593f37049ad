"""Anthropic's Messages API in front of every provider, through the data plane with the official
`anthropic` SDK: an Anthropic deployment natively, OpenAI, the mock and Gemini translated; plain and
streamed, tools, count_tokens, Anthropic-shaped errors, and usage billed once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam, ToolParam, ToolResultBlockParam

from hydite_common.devstack import Stack
from hydite_dataplane.messages_count_tokens import local_count
from tests.fakes.anthropic_server import ANSWER_WORDS as CLAUDE_WORDS
from tests.fakes.anthropic_server import OUTPUT_TOKENS as CLAUDE_OUTPUT_TOKENS
from tests.fakes.anthropic_server import FakeAnthropic, count_input_tokens
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.openai_server import FAKE_USAGE, STREAM_WORDS, FakeOpenAI
from tests.harness import FAKE_UPSTREAM_KEY, spend_row

INPUT_COST = 0.000003
OUTPUT_COST = 0.000015
WEATHER_TOOL: ToolParam = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
HELLO: list[MessageParam] = [{"role": "user", "content": "Hello"}]


@dataclass(frozen=True)
class Setup:
    """The model groups of this module and a key that may use all but `forbidden`."""

    key: str
    openai: str
    mock: str
    claude: str
    gemini: str
    openai_429: str
    openai_stream_error: str
    claude_529: str
    forbidden: str


@pytest.fixture(scope="module")
def setup(
    stack: Stack,
    admin: httpx.Client,
    fake_openai: tuple[FakeOpenAI, str],
    fake_anthropic: tuple[FakeAnthropic, str],
    fake_gemini: tuple[FakeGemini, str],
) -> Setup:
    """One deployment per provider (priced per token), failing ones, and a key."""
    tag = secrets.token_hex(3)
    prices = {"input_cost_per_token": INPUT_COST, "output_cost_per_token": OUTPUT_COST}

    def deploy(name: str, model: str, api_base: str | None = None) -> str:
        params: dict[str, Any] = {"model": model, **prices}
        if api_base is not None:
            params |= {"api_base": api_base, "api_key": FAKE_UPSTREAM_KEY}
        group = f"msg-{name}-{tag}"
        response = admin.post("/model/new", json={"model_name": group, "litellm_params": params})
        assert response.status_code == 200, response.text
        return group

    models = Setup(
        key="",
        openai=deploy("openai", "openai/gpt-4o-mini", fake_openai[1]),
        mock=deploy("mock", "mock/m"),
        claude=deploy("claude", "anthropic/claude-sonnet-4-5", fake_anthropic[1]),
        gemini=deploy("gemini", "gemini/gemini-2.5-flash", fake_gemini[1]),
        openai_429=deploy("openai-429", "openai/fail-429", fake_openai[1]),
        openai_stream_error=deploy("openai-stream-error", "openai/stream-error-echo-key", fake_openai[1]),
        claude_529=deploy("claude-529", "anthropic/fail-529", fake_anthropic[1]),
        forbidden=deploy("forbidden", "mock/m"),
    )
    allowed = [name for name in vars(models).values() if name and name != models.forbidden]
    key = admin.post("/key/generate", json={"models": allowed}).json()["key"]
    return Setup(**{**vars(models), "key": key})


def _client(stack: Stack, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.base_url, api_key=key, max_retries=0)


def _assertspend_row(
    row: dict[str, Any], usage: anthropic.types.Usage | anthropic.types.beta.BetaUsage
) -> None:
    """The row bills every input token (cache reads and writes too) and every output token, priced."""
    prompt = (
        usage.input_tokens + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    )
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, usage.output_tokens)
    assert row["call_type"] == "messages" and row["status"] == "success"
    assert row["spend"] == pytest.approx(prompt * INPUT_COST + usage.output_tokens * OUTPUT_COST)


def test_openai_backed_message_is_translated_and_billed_once(
    stack: Stack, admin: httpx.Client, setup: Setup, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """create() on an OpenAI deployment: the chat request carries the Anthropic fields, the answer
    is a Message with the upstream's text and usage, billed once at the deployment's prices."""
    fake, _ = fake_openai
    raw = _client(stack, setup.key).messages.with_raw_response.create(
        model=setup.openai,
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=HELLO,
        stop_sequences=["END"],
        metadata={"user_id": "end-user-1"},
        extra_body={"temperature": 0.5, "top_k": 5},
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant" and message.model == setup.openai
    assert message.id.startswith("msg_") and message.stop_reason == "end_turn"
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", "".join(STREAM_WORDS))]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (
        FAKE_USAGE["prompt_tokens"],
        FAKE_USAGE["completion_tokens"],
    )
    sent = fake.requests[-1]
    assert sent["model"] == "gpt-4o-mini" and sent["max_tokens"] == 64 and sent["stop"] == ["END"]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
    ]
    assert sent["user"] == "end-user-1" and sent["temperature"] == 0.5 and "top_k" not in sent
    row = spend_row(admin, raw.headers["x-request-id"])
    _assertspend_row(row, message.usage)
    assert row["end_user"] == "end-user-1"


def test_openai_backed_stream_through_both_sdk_styles(
    stack: Stack, admin: httpx.Client, setup: Setup
) -> None:
    """messages.stream() accumulates the translated events into the message; create(stream=True)
    yields Anthropic's event sequence; the stream is billed with the upstream's usage."""
    client = _client(stack, setup.key)
    with client.messages.stream(model=setup.openai, max_tokens=64, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
    assert text == "".join(STREAM_WORDS) and final.content[0].type == "text"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (
        FAKE_USAGE["prompt_tokens"],
        FAKE_USAGE["completion_tokens"],
    )
    _assertspend_row(spend_row(admin, request_id), final.usage)
    events = list(client.messages.create(model=setup.openai, max_tokens=64, messages=HELLO, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert kinds.count("content_block_delta") == len(STREAM_WORDS)
    delta = events[-2]
    assert delta.type == "message_delta" and delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == FAKE_USAGE["completion_tokens"]


def test_mock_provider_answers_messages(stack: Stack, setup: Setup) -> None:
    """The built-in mock answers through the Messages API, plain and streamed."""
    client = _client(stack, setup.key)
    message = client.messages.create(
        model=setup.mock, max_tokens=10, messages=HELLO, extra_body={"mock_response": "General Kenobi"}
    )
    assert message.content[0].type == "text" and message.content[0].text == "General Kenobi"
    assert message.usage.output_tokens > 0
    with client.messages.stream(
        model=setup.mock, max_tokens=10, messages=HELLO, extra_body={"mock_response": "a b c"}
    ) as stream:
        assert "".join(stream.text_stream) == "a b c"
        assert stream.get_final_message().usage.output_tokens > 0


@pytest.mark.parametrize("backend", ["openai", "mock", "claude", "gemini"])
def test_every_backend_streams_anthropic_events(stack: Stack, setup: Setup, backend: str) -> None:
    """create(stream=True) gives Anthropic's event sequence whatever the provider: message_start,
    text deltas in one block, message_delta with the stop reason and output tokens, message_stop."""
    stream = _client(stack, setup.key).messages.create(
        model=getattr(setup, backend), max_tokens=64, messages=HELLO, stream=True
    )
    events = list(stream)
    assert events[0].type == "message_start" and events[0].message.role == "assistant"
    assert [e.type for e in events[-4:]] == [
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    text = "".join(
        e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text.strip()
    delta = events[-2]
    assert delta.type == "message_delta" and delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens > 0


def test_anthropic_backed_message_passes_through_natively(
    stack: Stack, admin: httpx.Client, setup: Setup, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    """An Anthropic deployment gets the client's body and beta header as they are (?beta=true is
    accepted), and its message comes back untranslated, billed with its usage."""
    fake, _ = fake_anthropic
    client = _client(stack, setup.key)
    raw = client.beta.messages.with_raw_response.create(
        model=setup.claude,
        max_tokens=2048,
        messages=[{"role": "user", "content": "Hello"}],
        thinking={"type": "enabled", "budget_tokens": 1024},
        betas=["interleaved-thinking-2025-05-14"],
        extra_body={"top_k": 3},
    )
    message = raw.parse()
    assert message.id.startswith("msg_fake")
    assert [b.type for b in message.content] == ["thinking", "text"]
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.signature
    assert text.type == "text" and text.text == "".join(CLAUDE_WORDS)
    sent, headers = fake.requests[-1], fake.headers[-1]
    assert (
        sent["model"] == "claude-sonnet-4-5"
        and sent["top_k"] == 3
        and sent["thinking"]["budget_tokens"] == 1024
    )
    assert "interleaved-thinking-2025-05-14" in headers["anthropic-beta"] and headers["anthropic-version"]
    assert headers["x-api-key"] == FAKE_UPSTREAM_KEY
    _assertspend_row(spend_row(admin, raw.headers["x-request-id"]), message.usage)
    with client.messages.stream(model=setup.claude, max_tokens=64, messages=HELLO) as stream:
        assert "".join(stream.text_stream) == "".join(CLAUDE_WORDS)
        final = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
    assert final.usage.output_tokens == CLAUDE_OUTPUT_TOKENS
    _assertspend_row(spend_row(admin, request_id), final.usage)


def test_anthropic_backed_tool_round_trip(
    stack: Stack, setup: Setup, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    """tool_use from an Anthropic deployment goes back as tool_result and reaches it as such."""
    fake, _ = fake_anthropic
    client = _client(stack, setup.key)
    first = client.messages.create(
        model=setup.claude, max_tokens=64, messages=HELLO, tools=[WEATHER_TOOL], tool_choice={"type": "any"}
    )
    assert first.stop_reason == "tool_use"
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input["city"], str)
    result: ToolResultBlockParam = {"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}
    second = client.messages.create(
        model=setup.claude,
        max_tokens=64,
        messages=[
            *HELLO,
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [result]},
        ],
        tools=[WEATHER_TOOL],
    )
    assert second.stop_reason == "end_turn"
    assert fake.requests[-1]["messages"][-1]["content"] == [result]


def test_gemini_backed_tools_stream_and_round_trip(
    stack: Stack, admin: httpx.Client, setup: Setup, fake_gemini: tuple[FakeGemini, str]
) -> None:
    """A Gemini deployment answers text, and tool calls as tool_use blocks (plain and streamed,
    the input parsed from the streamed JSON); the tool_result reaches Gemini as a functionResponse."""
    fake, _ = fake_gemini
    client = _client(stack, setup.key)
    raw = client.messages.with_raw_response.create(model=setup.gemini, max_tokens=64, messages=HELLO)
    plain = raw.parse()
    assert plain.content[0].type == "text" and "Gemini" in plain.content[0].text
    assert plain.stop_reason == "end_turn"
    _assertspend_row(spend_row(admin, raw.headers["x-request-id"]), plain.usage)
    with client.messages.stream(
        model=setup.gemini, max_tokens=64, messages=HELLO, tools=[WEATHER_TOOL]
    ) as stream:
        streamed = stream.get_final_message()
    (call,) = [b for b in streamed.content if b.type == "tool_use"]
    assert streamed.stop_reason == "tool_use" and call.name == "get_weather"
    assert isinstance(call.input["city"], str)
    result: ToolResultBlockParam = {
        "type": "tool_result",
        "tool_use_id": call.id,
        "content": '{"forecast": "rain"}',
    }
    client.messages.create(
        model=setup.gemini,
        max_tokens=64,
        messages=[
            *HELLO,
            {"role": "assistant", "content": streamed.content},
            {"role": "user", "content": [result]},
        ],
        tools=[WEATHER_TOOL],
    )
    parts = [part for turn in fake.requests[-1]["contents"] for part in turn["parts"]]
    assert any(p.get("functionCall", {}).get("name") == "get_weather" for p in parts)
    responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
    assert responses and responses[0]["name"] == "get_weather"
    assert responses[0]["response"] == {"forecast": "rain"}


def test_openai_backed_tool_history_reaches_chat(
    stack: Stack, setup: Setup, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """A conversation with tool_use and tool_result (Claude Code's shape) reaches an OpenAI
    deployment as tool_calls and tool messages, tools as functions, cache_control dropped."""
    fake, _ = fake_openai
    history: list[MessageParam] = [
        *HELLO,
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C", "is_error": False},
                {"type": "text", "text": "And now?", "cache_control": {"type": "ephemeral"}},
            ],
        },
    ]
    tool: ToolParam = {**WEATHER_TOOL, "cache_control": {"type": "ephemeral"}}
    _client(stack, setup.key).messages.create(
        model=setup.openai,
        max_tokens=64,
        messages=history,
        tools=[tool],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    sent = fake.requests[-1]
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    assert sent["messages"][2:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "user", "content": "And now?"},
    ]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER_TOOL["input_schema"],
            },
        }
    ]
    assert sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is False


def test_count_tokens_native_and_local_and_notspend_row(
    stack: Stack, admin: httpx.Client, setup: Setup, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    """count_tokens asks an Anthropic deployment, counts locally for others, and bills nothing."""
    fake, _ = fake_anthropic
    key = admin.post("/key/generate", json={"models": [setup.openai, setup.claude]}).json()["key"]
    client = _client(stack, key)
    request: dict[str, Any] = {"system": "Be brief.", "messages": HELLO, "tools": [WEATHER_TOOL]}
    native = client.messages.count_tokens(model=setup.claude, **request)
    assert native.input_tokens == count_input_tokens(request)
    assert (
        fake.calls[-1][0] == "/v1/messages/count_tokens" and fake.requests[-1]["model"] == "claude-sonnet-4-5"
    )
    local = client.messages.count_tokens(model=setup.openai, **request)
    assert local.input_tokens == local_count(request, "gpt-4o-mini") > 0
    bare = httpx.post(
        stack.base_url + "/messages/count_tokens",
        headers={"x-api-key": key},
        json={"model": setup.openai, "messages": HELLO},
    )
    assert bare.status_code == 200 and bare.json() == {
        "input_tokens": local_count({"messages": HELLO}, "gpt-4o-mini")
    }
    billed = client.messages.with_raw_response.create(model=setup.openai, max_tokens=8, messages=HELLO)
    spend_row(admin, billed.headers["x-request-id"])
    rows = admin.get("/spend/logs", params={"api_key": key}).json()
    assert [row["request_id"] for row in rows] == [billed.headers["x-request-id"]]


def test_count_tokens_errors_are_anthropic_shaped(stack: Stack, admin: httpx.Client, setup: Setup) -> None:
    """A bad key, a forbidden model, an unknown one (for a key that may call any) and a missing
    field each get Anthropic's error."""
    client = _client(stack, setup.key)
    with pytest.raises(anthropic.PermissionDeniedError) as forbidden:
        client.messages.count_tokens(model=setup.forbidden, messages=HELLO)
    assert forbidden.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    any_model = _client(stack, admin.post("/key/generate", json={}).json()["key"])
    with pytest.raises(anthropic.NotFoundError) as unknown:
        any_model.messages.count_tokens(model=f"no-such-{secrets.token_hex(3)}", messages=HELLO)
    assert unknown.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError):
        _client(stack, "sk-hydite-wrong").messages.count_tokens(model=setup.openai, messages=HELLO)
    missing = httpx.post(
        stack.base_url + "/v1/messages/count_tokens",
        headers={"x-api-key": setup.key},
        json={"model": setup.openai},
    )
    assert missing.status_code == 400
    assert missing.json()["type"] == "error" and missing.json()["error"]["type"] == "invalid_request_error"


def _assert_anthropic_error(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type and body["error"]["message"]
    return body


def test_errors_are_anthropic_shaped(stack: Stack, setup: Setup) -> None:
    """Bad key (Bearer through the SDK, x-api-key raw), a model the key may not use, a missing
    max_tokens: Anthropic's status, error type and request id."""
    with pytest.raises(anthropic.AuthenticationError) as bad_key:
        _client(stack, "sk-hydite-wrong").messages.create(model=setup.openai, max_tokens=8, messages=HELLO)
    assert bad_key.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    url = stack.base_url + "/v1/messages"
    raw_bad = httpx.post(url, headers={"x-api-key": "sk-hydite-wrong"}, json={"model": setup.openai})
    _assert_anthropic_error(raw_bad, 401, "authentication_error")
    with pytest.raises(anthropic.PermissionDeniedError) as forbidden:
        _client(stack, setup.key).messages.create(model=setup.forbidden, max_tokens=8, messages=HELLO)
    assert forbidden.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    assert forbidden.value.request_id  # the SDK reads request-id
    missing = httpx.post(
        url, headers={"x-api-key": setup.key}, json={"model": setup.openai, "messages": HELLO}
    )
    body = _assert_anthropic_error(missing, 400, "invalid_request_error")
    assert "max_tokens" in body["error"]["message"] and body["request_id"] == missing.headers["x-request-id"]
    bad_stream = httpx.post(
        url,
        headers={"x-api-key": setup.key},
        json={"model": setup.openai, "messages": HELLO, "max_tokens": 0},
    )
    _assert_anthropic_error(bad_stream, 400, "invalid_request_error")


def test_raw_requests_with_x_api_key_with_and_without_v1(stack: Stack, setup: Setup) -> None:
    """/v1/messages and /messages both answer a raw request keyed by x-api-key, with Claude Code's
    headers and ?beta=true."""
    headers = {
        "x-api-key": setup.key,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219",
        "x-stainless-lang": "js",
    }
    body = {"model": setup.mock, "max_tokens": 8, "messages": HELLO}
    for path in ("/v1/messages?beta=true", "/messages"):
        response = httpx.post(stack.base_url + path, headers=headers, json=body)
        assert response.status_code == 200, (path, response.text)
        message = anthropic.types.Message.model_validate(response.json())
        assert message.type == "message" and message.content[0].type == "text"


def test_upstream_failures_keep_their_anthropic_meaning(stack: Stack, setup: Setup) -> None:
    """An upstream 429 is a rate_limit_error with retry-after; Anthropic's 529 stays an
    overloaded_error 529; an error mid-stream is Anthropic's error event, credentials redacted."""
    client = _client(stack, setup.key)
    no_retry = {"num_retries": 0}
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model=setup.openai_429, max_tokens=8, messages=HELLO, extra_body=no_retry)
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert limited.value.response.headers.get("retry-after")
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        client.messages.create(model=setup.claude_529, max_tokens=8, messages=HELLO, extra_body=no_retry)
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    stream = client.messages.create(
        model=setup.openai_stream_error, max_tokens=8, messages=HELLO, stream=True
    )
    with pytest.raises(anthropic.APIStatusError) as broken:
        list(stream)
    assert FAKE_UPSTREAM_KEY not in str(broken.value.body)
    assert isinstance(broken.value.body, dict) and broken.value.body["type"] == "error"
