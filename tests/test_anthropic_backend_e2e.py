"""Anthropic deployments behind Hydite's OpenAI API, end to end: the official `openai` SDK calls
the data plane, which speaks the Messages API to the fake Anthropic upstream; every call is
billed from Anthropic's own usage, and Anthropic's failures reach the router as it expects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from hydite_common.devstack import Stack
from tests.fakes.anthropic_server import (
    ANSWER_WORDS,
    OUTPUT_TOKENS,
    THINKING_WORDS,
    FakeAnthropic,
    count_input_tokens,
)
from tests.harness import FAKE_UPSTREAM_KEY, ok_post, spend_row, unique
from tests.openapi_spec import Check, spec_checker

INPUT_COST = 0.000003
OUTPUT_COST = 0.000015
ANSWER = "".join(ANSWER_WORDS)
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
TIME: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}},
    },
}
CONTACT_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "vip": {"type": "boolean"}},
    "required": ["name", "vip"],
    "additionalProperties": False,
}
Groups = dict[str, str]


def _deploy(admin: httpx.Client, base: str, name: str, upstream: str, **params: Any) -> None:
    """A deployment of model group name on the fake Anthropic upstream's model upstream, priced."""
    litellm_params = {
        "model": f"anthropic/{upstream}",
        "api_base": base,
        "api_key": FAKE_UPSTREAM_KEY,
        "input_cost_per_token": INPUT_COST,
        "output_cost_per_token": OUTPUT_COST,
        **params,
    }
    ok_post(admin, "/model/new", {"model_name": name, "litellm_params": litellm_params})


@pytest.fixture(scope="module")
def groups(admin: httpx.Client, fake_anthropic: tuple[FakeAnthropic, str]) -> Groups:
    """Model groups by role: a current Claude, an older one (JSON through a tool), tool callers,
    and groups with a failing deployment beside a healthy one."""
    _, base = fake_anthropic
    names = {role: unique(f"anth-{role}") for role in ("claude", "older", "tools", "parallel")}
    names |= {role: unique(f"anth-{role}") for role in ("overloaded", "limited", "too-long", "broken")}
    _deploy(admin, base, names["claude"], "claude-sonnet-4-5")
    _deploy(admin, base, names["older"], "claude-3-5-haiku-20241022")
    _deploy(admin, base, names["tools"], "tool-use")
    _deploy(admin, base, names["parallel"], "parallel-tools")
    # The failing deployment is all but always picked first; the healthy one answers the retry.
    for role, failing in (("overloaded", "fail-529"), ("limited", "fail-429")):
        _deploy(admin, base, names[role], failing, weight=1_000_000)
        _deploy(admin, base, names[role], "claude-sonnet-4-5")
    _deploy(admin, base, names["too-long"], "fail-400-too-long")
    _deploy(admin, base, names["broken"], "stream-error")
    return names


@pytest.fixture(scope="module")
def client(stack: Stack, admin: httpx.Client, groups: Groups) -> Iterator[openai.OpenAI]:
    """The official SDK with a key that may call every model."""
    key = ok_post(admin, "/key/generate", {})["key"]
    with openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def check() -> Check:
    """Validation against OpenAI's spec."""
    return spec_checker()


def _assert_billed(admin: httpx.Client, request_id: str, fake: FakeAnthropic, call_type: str = "") -> None:
    """The spend row holds the fake's counts for its last request, priced at the deployment's prices."""
    prompt = count_input_tokens(fake.requests[-1])
    row = spend_row(admin, request_id)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, OUTPUT_TOKENS)
    assert row["spend"] == pytest.approx(prompt * INPUT_COST + OUTPUT_TOKENS * OUTPUT_COST)
    assert row["status"] == "success"
    if call_type:
        assert row["call_type"] == call_type


def test_chat_is_translated_answered_and_billed(
    client: openai.OpenAI,
    admin: httpx.Client,
    groups: Groups,
    fake_anthropic: tuple[FakeAnthropic, str],
    check: Check,
) -> None:
    """A plain chat reaches /v1/messages as Anthropic wants it and comes back an OpenAI completion."""
    fake, _ = fake_anthropic
    raw = client.chat.completions.with_raw_response.create(
        model=groups["claude"],
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        temperature=0.5,
        user="end-user-1",
    )
    completion = raw.parse()
    check(completion.model_dump(exclude_unset=True), "CreateChatCompletionResponse")
    sent = fake.requests[-1]
    assert sent["system"] == "Be brief." and sent["messages"] == [{"role": "user", "content": "Hello"}]
    assert sent["model"] == "claude-sonnet-4-5" and sent["max_tokens"] == 64000
    assert sent["metadata"] == {"user_id": "end-user-1"} and "user" not in sent
    assert completion.choices[0].message.content == ANSWER
    assert completion.choices[0].finish_reason == "stop" and completion.id.startswith("msg_")
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == count_input_tokens(sent)
    assert completion.usage.completion_tokens == OUTPUT_TOKENS
    headers = fake.headers[-1]
    assert headers["x-api-key"] == FAKE_UPSTREAM_KEY and headers["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in headers
    _assert_billed(admin, raw.headers["x-request-id"], fake, "chat")


def test_client_anthropic_headers_reach_the_upstream(
    client: openai.OpenAI, groups: Groups, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    """anthropic-beta and anthropic-version sent by the client are what Anthropic receives."""
    fake, _ = fake_anthropic
    client.chat.completions.create(
        model=groups["claude"],
        messages=[{"role": "user", "content": "Hi"}],
        extra_headers={"anthropic-beta": "context-1m-2025-08-07", "anthropic-version": "2023-01-01"},
    )
    headers = fake.headers[-1]
    assert headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert headers["anthropic-version"] == "2023-01-01"


def test_stream_with_include_usage_is_translated_and_billed(
    client: openai.OpenAI, admin: httpx.Client, groups: Groups, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    """Anthropic's events become chat chunks with one id, a finish reason and the usage chunk asked for."""
    fake, _ = fake_anthropic
    with client.chat.completions.with_streaming_response.create(
        model=groups["claude"],
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = list(response.parse())
    assert fake.requests[-1]["stream"] is True and "stream_options" not in fake.requests[-1]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert len({c.id for c in chunks}) == 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and not chunks[-1].choices
    assert usage[0].prompt_tokens == count_input_tokens(fake.requests[-1])
    assert usage[0].completion_tokens == OUTPUT_TOKENS
    _assert_billed(admin, request_id, fake)
    quiet = list(
        client.chat.completions.create(
            model=groups["claude"], messages=[{"role": "user", "content": "Hi"}], stream=True
        )
    )
    assert all(c.usage is None for c in quiet) and quiet[-1].choices[0].finish_reason == "stop"


def test_parallel_tool_calls_and_their_results_round_trip(
    client: openai.OpenAI, admin: httpx.Client, groups: Groups, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    """Two tool_use blocks come back as two tool calls; their results go back as one user turn."""
    fake, _ = fake_anthropic
    question: Any = {"role": "user", "content": "Weather and time in Paris?"}
    raw = client.chat.completions.with_raw_response.create(
        model=groups["parallel"],
        messages=[question],
        tools=[WEATHER, TIME],
    )
    completion = raw.parse()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls is not None
    calls: Any = choice.message.tool_calls
    reply: Any = choice.message.model_dump(exclude_none=True)
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == {"city": "fake", "days": 1}
    assert fake.requests[-1]["tools"][0]["input_schema"] == WEATHER["function"]["parameters"]
    _assert_billed(admin, raw.headers["x-request-id"], fake)
    follow_up = client.chat.completions.create(
        model=groups["claude"],
        messages=[
            question,
            reply,
            {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
            {"role": "tool", "tool_call_id": calls[1].id, "content": "noon"},
        ],
        tools=[WEATHER, TIME],
    )
    assert follow_up.choices[0].message.content == ANSWER
    assistant, results = fake.requests[-1]["messages"][1:]
    assert [b["type"] for b in assistant["content"]] == ["tool_use", "tool_use"]
    assert assistant["content"][0]["input"] == {"city": "fake", "days": 1}
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny"},
            {"type": "tool_result", "tool_use_id": calls[1].id, "content": "noon"},
        ],
    }


def test_streamed_tool_call_arguments_arrive_whole(
    client: openai.OpenAI, groups: Groups, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    """input_json_delta pieces become tool-call argument deltas that add up to the tool's input."""
    chunks = list(
        client.chat.completions.create(
            model=groups["tools"],
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[WEATHER],
            parallel_tool_calls=False,
            stream=True,
        )
    )
    fake, _ = fake_anthropic
    assert fake.requests[-1]["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    deltas = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    assert deltas[0].id and deltas[0].function is not None and deltas[0].function.name == "get_weather"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function is not None)
    assert json.loads(arguments) == {"city": "fake", "days": 1}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_images_by_base64_and_by_url_become_image_blocks(
    client: openai.OpenAI, admin: httpx.Client, groups: Groups, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    """A data: URL becomes a base64 source, an https URL a url source."""
    fake, _ = fake_anthropic
    pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    raw = client.chat.completions.with_raw_response.create(
        model=groups["claude"],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What are these?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{pixel}"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/ant.jpg", "detail": "low"},
                    },
                ],
            }
        ],
    )
    assert raw.parse().choices[0].message.content == ANSWER
    assert fake.requests[-1]["messages"][0]["content"] == [
        {"type": "text", "text": "What are these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": pixel}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/ant.jpg"}},
    ]
    _assert_billed(admin, raw.headers["x-request-id"], fake)


def test_reasoning_effort_thinks_and_thinking_blocks_go_back_next_turn(
    client: openai.OpenAI, admin: httpx.Client, groups: Groups, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    """reasoning_effort turns thinking on; the answer's reasoning_content and signed thinking_blocks
    are sent back first in the assistant turn of the next request."""
    fake, _ = fake_anthropic
    question: Any = {"role": "user", "content": "Why is the sky blue?"}
    raw = client.chat.completions.with_raw_response.create(
        model=groups["claude"], messages=[question], reasoning_effort="low"
    )
    message = raw.parse().choices[0].message
    assert fake.requests[-1]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    extra = message.model_extra or {}
    assert extra["reasoning_content"] == "".join(THINKING_WORDS)
    (block,) = extra["thinking_blocks"]
    assert block["type"] == "thinking" and block["signature"].startswith("Ev")
    _assert_billed(admin, raw.headers["x-request-id"], fake)
    turns: Any = [
        question,
        {"role": "assistant", "content": message.content, "thinking_blocks": extra["thinking_blocks"]},
        {"role": "user", "content": "And at sunset?"},
    ]
    client.chat.completions.create(model=groups["claude"], messages=turns, reasoning_effort="low")
    assistant = fake.requests[-1]["messages"][1]
    assert assistant["content"][0] == block
    assert assistant["content"][1] == {"type": "text", "text": ANSWER}
    chunks = list(
        client.chat.completions.create(
            model=groups["claude"], messages=[question], reasoning_effort="medium", stream=True
        )
    )
    deltas = [(c.choices[0].delta.model_extra or {}) for c in chunks if c.choices]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "".join(THINKING_WORDS)
    signed = [b for d in deltas for b in d.get("thinking_blocks", [])]
    assert signed == [block]


def test_json_schema_output_natively_and_through_a_tool(
    client: openai.OpenAI, admin: httpx.Client, groups: Groups, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    """A current Claude gets output_config.format; an older one a forced tool whose input is the
    answer; either way the client reads JSON content."""
    fake, _ = fake_anthropic
    response_format: Any = {
        "type": "json_schema",
        "json_schema": {"name": "contact", "schema": CONTACT_SCHEMA},
    }
    messages: Any = [{"role": "user", "content": "Who is John?"}]
    native = client.chat.completions.create(
        model=groups["claude"], messages=messages, response_format=response_format
    )
    assert fake.requests[-1]["output_config"] == {"format": {"type": "json_schema", "schema": CONTACT_SCHEMA}}
    assert json.loads(native.choices[0].message.content or "") == {"name": "fake", "vip": True}
    raw = client.chat.completions.with_raw_response.create(
        model=groups["older"], messages=messages, response_format=response_format
    )
    by_tool = raw.parse()
    assert fake.requests[-1]["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert "output_config" not in fake.requests[-1]
    _assert_billed(admin, raw.headers["x-request-id"], fake)
    choice = by_tool.choices[0]
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert json.loads(choice.message.content or "") == {"name": "fake", "vip": True}
    streamed = list(
        client.chat.completions.create(
            model=groups["older"], messages=messages, response_format={"type": "json_object"}, stream=True
        )
    )
    assert json.loads("".join(c.choices[0].delta.content or "" for c in streamed if c.choices)) == {}


def test_responses_api_on_an_anthropic_model(
    client: openai.OpenAI,
    admin: httpx.Client,
    groups: Groups,
    fake_anthropic: tuple[FakeAnthropic, str],
    check: Check,
) -> None:
    """client.responses.create answers through chat over the Messages API, plain and streamed, billed."""
    fake, _ = fake_anthropic
    raw = client.responses.with_raw_response.create(
        model=groups["claude"], input="Hello", instructions="Be brief."
    )
    response = raw.parse()
    check(response.model_dump(exclude_unset=True), "Response")
    assert response.output_text == ANSWER and fake.requests[-1]["system"] == "Be brief."
    assert response.usage is not None and response.usage.output_tokens == OUTPUT_TOKENS
    _assert_billed(admin, raw.headers["x-request-id"], fake, "responses")
    events = list(client.responses.create(model=groups["claude"], input="Hi", stream=True))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == ANSWER
    completed = events[-1]
    assert completed.type == "response.completed" and completed.response.usage is not None
    assert completed.response.usage.input_tokens == count_input_tokens(fake.requests[-1])


def test_n_above_one_is_refused_naming_n(client: openai.OpenAI, groups: Groups) -> None:
    """Anthropic answers one choice: n=2 is a 400 that names n."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=groups["claude"], messages=[{"role": "user", "content": "Hi"}], n=2
        )
    body = refused.value.body
    assert isinstance(body, dict) and body["param"] == "n"


def test_overloaded_529_is_retried_on_the_next_deployment(
    client: openai.OpenAI, groups: Groups, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    """Anthropic's 529 overloaded_error is a provider failure: the router tries the other deployment."""
    fake, _ = fake_anthropic
    before = fake.attempts("fail-529")
    raw = client.chat.completions.with_raw_response.create(
        model=groups["overloaded"], messages=[{"role": "user", "content": "Hi"}]
    )
    assert raw.parse().choices[0].message.content == ANSWER
    assert fake.attempts("fail-529") == before + 1 and raw.headers["x-hydite-attempts"] == "2"


def test_rate_limited_deployment_is_retried_elsewhere_and_cooled_down(
    client: openai.OpenAI, groups: Groups, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    """A 429 rate_limit_error moves the call to the healthy deployment and keeps the limited one
    out for the next call."""
    fake, _ = fake_anthropic
    before = fake.attempts("fail-429")
    for _ in range(2):
        completion = client.chat.completions.create(
            model=groups["limited"], messages=[{"role": "user", "content": "Hi"}]
        )
        assert completion.choices[0].message.content == ANSWER
    assert fake.attempts("fail-429") == before + 1


def test_prompt_too_long_moves_to_the_context_window_fallback(
    client: openai.OpenAI, groups: Groups, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    """ "prompt is too long" is context_length_exceeded: not retried, the request's
    context_window_fallbacks answer; without one the client gets that code."""
    fake, _ = fake_anthropic
    before = fake.attempts("fail-400-too-long")
    completion = client.chat.completions.create(
        model=groups["too-long"],
        messages=[{"role": "user", "content": "A very long prompt"}],
        extra_body={"context_window_fallbacks": [groups["claude"]]},
    )
    assert completion.choices[0].message.content == ANSWER
    assert fake.attempts("fail-400-too-long") == before + 1
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=groups["too-long"], messages=[{"role": "user", "content": "x"}])
    body = refused.value.body
    assert isinstance(body, dict) and body["code"] == "context_length_exceeded"
    assert "prompt is too long" in body["message"]


def test_an_error_event_mid_stream_reaches_the_client_as_an_openai_error(
    client: openai.OpenAI, groups: Groups
) -> None:
    """Anthropic's overloaded_error event after some text: the SDK gets the text, then an APIError."""
    seen: list[str] = []
    stream = client.chat.completions.create(
        model=groups["broken"], messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    with pytest.raises(openai.APIError) as failed:
        seen.extend(chunk.choices[0].delta.content or "" for chunk in stream)
    assert "".join(seen) == ANSWER
    assert "Overloaded" in failed.value.message
