"""The fake Anthropic upstream speaks the Messages API as the official SDK reads it and acts out failures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import ToolChoiceToolParam, ToolParam

from tests.fakes.anthropic_server import (
    ANSWER_WORDS,
    OUTPUT_TOKENS,
    THINKING_WORDS,
    FakeAnthropic,
    count_input_tokens,
)
from tests.fakes.openai_server import FakeServerThread

KEY = "sk-ant-fake-upstream-test-key"
MODEL = "claude-sonnet-4-6"
MESSAGES: list[Any] = [{"role": "user", "content": "Hi"}]
WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
TIME: ToolParam = {
    "name": "get_time",
    "description": "The time in a timezone.",
    "input_schema": {"type": "object", "properties": {"timezone": {"type": "string"}}},
}
THINKING: Any = {"type": "adaptive"}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeAnthropic, str]]:
    """One fake upstream for the module and its base URL (without /v1)."""
    fake = FakeAnthropic(api_key=KEY)
    server = FakeServerThread(fake.app())
    base = server.start()
    yield fake, base
    server.stop()


@pytest.fixture(scope="module")
def fake(served: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    """The fake upstream's recorder."""
    return served[0]


@pytest.fixture(scope="module")
def client(served: tuple[FakeAnthropic, str]) -> Iterator[anthropic.Anthropic]:
    """The official SDK pointed at the fake, without retries."""
    with anthropic.Anthropic(base_url=served[1], api_key=KEY, max_retries=0) as sdk:
        yield sdk


def test_plain_message_parses_with_usage(client: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    """A plain request gets one text block, end_turn and full usage, and the request is recorded."""
    message = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == MODEL
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].type == "text" and message.content[0].text == "".join(ANSWER_WORDS)
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.usage.output_tokens == OUTPUT_TOKENS
    assert message.usage.input_tokens == count_input_tokens({"messages": MESSAGES})
    assert (message.usage.cache_creation_input_tokens, message.usage.cache_read_input_tokens) == (0, 0)
    assert fake.requests[-1] == {"model": MODEL, "max_tokens": 64, "messages": MESSAGES}
    assert fake.headers[-1]["Authorization"] == f"Bearer {KEY}" and fake.headers[-1]["anthropic-version"]
    assert fake.calls[-1] == ("/v1/messages", MODEL)


def test_tool_use_model_calls_one_tool(client: anthropic.Anthropic) -> None:
    """Model tool-use answers with one tool_use block whose input follows the schema."""
    message = client.messages.create(model="tool-use", max_tokens=64, messages=MESSAGES, tools=[WEATHER])
    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert block.type == "tool_use" and block.id.startswith("toolu_")
    assert (block.name, block.input) == ("get_weather", {"city": "fake", "days": 1})


def test_parallel_tools_model_calls_two_tools(client: anthropic.Anthropic) -> None:
    """Model parallel-tools answers with two tool_use blocks with distinct ids."""
    message = client.messages.create(
        model="parallel-tools", max_tokens=64, messages=MESSAGES, tools=[WEATHER, TIME]
    )
    assert message.stop_reason == "tool_use"
    blocks = [block for block in message.content if block.type == "tool_use"]
    assert [block.name for block in blocks] == ["get_weather", "get_time"]
    assert len({block.id for block in blocks}) == 2


def test_tool_choice_asks_for_a_named_tool(client: anthropic.Anthropic) -> None:
    """tool_choice of type tool calls that tool; tools with the default choice get text."""
    message = client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=MESSAGES,
        tools=[WEATHER, TIME],
        tool_choice=ToolChoiceToolParam(type="tool", name="get_time"),
    )
    assert [(b.type, getattr(b, "name", None)) for b in message.content] == [("tool_use", "get_time")]
    plain = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, tools=[WEATHER])
    assert plain.stop_reason == "end_turn" and plain.content[0].type == "text"


def test_thinking_comes_before_the_text_with_a_signature(client: anthropic.Anthropic) -> None:
    """With thinking enabled a thinking block with a signature precedes the text."""
    message = client.messages.create(model=MODEL, max_tokens=2048, messages=MESSAGES, thinking=THINKING)
    assert [block.type for block in message.content] == ["thinking", "text"]
    thinking = message.content[0]
    assert thinking.type == "thinking" and thinking.thinking == "".join(THINKING_WORDS)
    assert thinking.signature


def test_stream_sends_anthropics_event_sequence(served: tuple[FakeAnthropic, str]) -> None:
    """The raw stream: message_start, content_block_start, ping, deltas, block stop, message_delta, stop."""
    _, base = served
    with httpx.stream(
        "POST",
        base + "/v1/messages",
        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
        json={"model": MODEL, "max_tokens": 64, "messages": MESSAGES, "stream": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("event: ") for line in response.iter_lines() if line.startswith("event:")]
    words = len(ANSWER_WORDS)
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * words,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_stream_builds_the_final_message(client: anthropic.Anthropic) -> None:
    """messages.stream yields the text deltas and a final message equal to the non-stream answer."""
    with client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert texts == ANSWER_WORDS
    assert final.content[0].type == "text" and final.content[0].text == "".join(ANSWER_WORDS)
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == OUTPUT_TOKENS
    assert final.usage.input_tokens == count_input_tokens({"messages": MESSAGES})


def test_stream_builds_thinking_and_parallel_tool_inputs(client: anthropic.Anthropic) -> None:
    """Streamed thinking (thinking and signature deltas) and tool inputs (partial JSON) add up."""
    with client.messages.stream(
        model="parallel-tools", max_tokens=2048, messages=MESSAGES, tools=[WEATHER, TIME], thinking=THINKING
    ) as stream:
        kinds = {event.delta.type for event in stream if event.type == "content_block_delta"}
        final = stream.get_final_message()
    assert kinds == {"thinking_delta", "signature_delta", "input_json_delta"}
    assert [block.type for block in final.content] == ["thinking", "tool_use", "tool_use"]
    thinking, weather, clock = final.content
    assert thinking.type == "thinking" and thinking.thinking == "".join(THINKING_WORDS)
    assert thinking.signature
    assert weather.type == "tool_use" and weather.input == {"city": "fake", "days": 1}
    assert clock.type == "tool_use" and clock.input == {"timezone": "fake"}
    assert final.stop_reason == "tool_use"


def test_stream_error_raises_after_the_first_deltas(client: anthropic.Anthropic) -> None:
    """Model stream-error sends text deltas, then an error event the SDK raises as overloaded_error."""
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="stream-error", max_tokens=64, messages=MESSAGES) as stream,
    ):
        received.extend(stream.text_stream)
    assert received == ANSWER_WORDS
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


def test_count_tokens_matches_the_message_usage(client: anthropic.Anthropic) -> None:
    """count_tokens counts deterministically, the same as a message's input_tokens."""
    request: dict[str, Any] = {"messages": MESSAGES, "system": "Be brief.", "tools": [WEATHER]}
    counted = client.messages.count_tokens(model=MODEL, **request)
    message = client.messages.create(model=MODEL, max_tokens=64, **request)
    assert counted.input_tokens == count_input_tokens(request) == message.usage.input_tokens
    short = client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    longer = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Hi" * 100}])
    assert longer.input_tokens > short.input_tokens


@pytest.mark.parametrize(
    ("model", "error", "status", "error_type", "message"),
    [
        ("fail-529", anthropic.OverloadedError, 529, "overloaded_error", "Overloaded"),
        ("fail-429", anthropic.RateLimitError, 429, "rate_limit_error", "rate limit"),
        ("fail-400-too-long", anthropic.BadRequestError, 400, "invalid_request_error", "prompt is too long"),
        ("fail-500", anthropic.InternalServerError, 500, "api_error", "Internal server error"),
    ],
)
def test_error_models_raise_the_sdks_exceptions(
    client: anthropic.Anthropic,
    fake: FakeAnthropic,
    model: str,
    error: type[anthropic.APIStatusError],
    status: int,
    error_type: str,
    message: str,
) -> None:
    """Each fail-* model raises its SDK exception with Anthropic's error body and a request id."""
    with pytest.raises(error) as caught:
        client.messages.create(model=model, max_tokens=64, messages=MESSAGES)
    assert caught.value.status_code == status
    assert caught.value.type == error_type
    assert caught.value.api_message is not None and message in caught.value.api_message
    assert caught.value.request_id is not None and caught.value.request_id.startswith("req_")
    assert caught.value.response.json()["type"] == "error"
    if model == "fail-429":
        assert caught.value.response.headers["retry-after"] == "1"
    assert fake.calls[-1] == ("/v1/messages", model)


def test_wrong_key_and_missing_version_are_rejected(served: tuple[FakeAnthropic, str]) -> None:
    """A wrong x-api-key is a 401 authentication_error; no anthropic-version header is a 400."""
    fake, base = served
    seen = len(fake.requests)
    with (
        anthropic.Anthropic(base_url=base, api_key="sk-ant-wrong", max_retries=0) as wrong,
        pytest.raises(anthropic.AuthenticationError) as caught,
    ):
        wrong.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert caught.value.type == "authentication_error"
    response = httpx.post(
        base + "/v1/messages",
        headers={"x-api-key": KEY},
        json={"model": MODEL, "max_tokens": 64, "messages": MESSAGES},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert len(fake.requests) == seen


@pytest.mark.parametrize("missing", ["model", "max_tokens", "messages"])
def test_a_missing_required_field_is_an_invalid_request(
    served: tuple[FakeAnthropic, str], missing: str
) -> None:
    """A body without model, max_tokens or messages is a 400 invalid_request_error naming the field."""
    _, base = served
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "messages": MESSAGES}
    del body[missing]
    response = httpx.post(
        base + "/v1/messages", headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"}, json=body
    )
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert missing in error["error"]["message"]


def test_drop_is_a_connection_error(client: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    """Model drop makes the SDK see a connection error, and the attempt is still recorded."""
    before = fake.attempts("drop")
    with pytest.raises(anthropic.APIConnectionError) as caught:
        client.messages.create(model="drop", max_tokens=64, messages=MESSAGES)
    assert not isinstance(caught.value, anthropic.APITimeoutError)
    assert fake.attempts("drop") == before + 1


def test_slow_outlasts_an_impatient_client(client: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    """Model slow answers after slow_seconds, so a shorter client timeout expires first."""
    fake.slow_seconds = 0.5
    try:
        started = time.monotonic()
        with pytest.raises(anthropic.APITimeoutError):
            client.with_options(timeout=0.2).messages.create(model="slow", max_tokens=64, messages=MESSAGES)
        assert time.monotonic() - started < 0.45
        started = time.monotonic()
        message = client.with_options(timeout=5).messages.create(
            model="slow", max_tokens=64, messages=MESSAGES
        )
        assert time.monotonic() - started >= 0.45
        assert message.content[0].type == "text"
    finally:
        fake.slow_seconds = 2.0
