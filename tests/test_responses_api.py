"""The Responses API: translation over chat completions (pure, checked against the OpenAPI spec)
and end to end through the data plane with the official SDK."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import openai
import orjson
import pytest

from hydite_common.devstack import Stack
from hydite_common.errors import InvalidRequestError
from hydite_dataplane.providers.responses_via_chat import (
    chat_to_responses_translator,
    from_chat_response,
    to_chat_request,
)
from tests.harness import FAKE_UPSTREAM_KEY, wait_until
from tests.openapi_spec import Check, spec_checker

TOOL = {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}


@pytest.fixture(scope="module")
def check() -> Check:
    """Validation against the spec's component schemas."""
    return spec_checker()


def test_request_translation_covers_items_tools_and_formats() -> None:
    """Instructions, message items, function calls and outputs, tools and json_schema map onto chat."""
    body = {
        "model": "m",
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"role": "developer", "content": "Answer in French."},
        ],
        "tools": [TOOL],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "max_output_tokens": 50,
        "text": {
            "format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}
        },
        "stream": True,
    }
    assert to_chat_request(body, "gpt-4o-mini") == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "system", "content": "Answer in French."},
        ],
        "max_completion_tokens": 50,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather",
                    "parameters": {"type": "object"},
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
        },
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": "x", "tools": [{"type": "web_search"}]}, "tools"),
        ({"input": 3}, "input"),
        ({"input": [{"type": "reasoning"}]}, "input"),
    ],
)
def test_untranslatable_requests_are_clear_400s(body: dict[str, Any], param: str) -> None:
    """What chat completions cannot express is refused, naming the parameter."""
    with pytest.raises(InvalidRequestError) as caught:
        to_chat_request({"model": "m", **body}, "m")
    assert caught.value.param == param


def test_response_translation_matches_the_spec(check: Check) -> None:
    """A chat completion with text and a tool call becomes a valid Response with usage."""
    completion = {
        "id": "chatcmpl-abc",
        "created": 1700000000,
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": "Sunny.",
                    "tool_calls": [
                        {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }
    response = from_chat_response({"model": "m", "input": "x", "tools": [TOOL]}, completion)
    check(response, "Response")
    assert response["id"] == "resp_abc" and response["status"] == "completed"
    assert [item["type"] for item in response["output"]] == ["message", "function_call"]
    assert response["usage"]["input_tokens"] == 9 and response["usage"]["total_tokens"] == 12
    cut = from_chat_response(
        {"model": "m"}, {**completion, "choices": [{"message": {"content": "a"}, "finish_reason": "length"}]}
    )
    assert cut["status"] == "incomplete" and cut["incomplete_details"] == {"reason": "max_output_tokens"}


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def test_stream_translation_emits_valid_events_in_order(check: Check) -> None:
    """Chat chunks become created, deltas, done and completed events, each valid per the spec."""
    translator = chat_to_responses_translator({"model": "m", "input": "x"})
    chunk = {"id": "chatcmpl-s1", "created": 1700000000, "object": "chat.completion.chunk", "model": "m"}
    events: list[bytes] = []
    events += translator.translate(
        _sse({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    )
    for word in ("Hel", "lo"):
        events += translator.translate(_sse({**chunk, "choices": [{"index": 0, "delta": {"content": word}}]}))
    events += translator.translate(
        _sse({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    )
    events += translator.translate(
        _sse({**chunk, "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}})
    )
    events += translator.translate(b"data: [DONE]\n\n")
    parsed = [orjson.loads(e.split(b"data: ", 1)[1]) for e in events]
    for payload in parsed:
        check(payload, "ResponseStreamEvent")
    kinds = [p["type"] for p in parsed]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds.count("response.output_text.delta") == 2 and kinds[-1] == "response.completed"
    assert [p["sequence_number"] for p in parsed] == list(range(len(parsed)))
    final = parsed[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == "Hello" and final["usage"]["output_tokens"] == 2


@pytest.fixture(scope="module")
def mock_model(stack: Stack, admin: httpx.Client) -> tuple[str, str]:
    """A mock-provider model (no native Responses API) and a key for it."""
    name = f"resp-mock-{secrets.token_hex(3)}"
    assert (
        admin.post("/model/new", json={"model_name": name, "litellm_params": {"model": "mock/m"}}).status_code
        == 200
    )
    key = admin.post("/key/generate", json={"models": [name]}).json()["key"]
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)
    wait_until(lambda: [m.id for m in client.models.list().data] == [name], timeout=2.0)
    return name, key


def test_responses_through_the_gateway_with_the_sdk(
    stack: Stack, admin: httpx.Client, mock_model: tuple[str, str], check: Check
) -> None:
    """client.responses.create works plain and streamed on a chat-only provider, and is billed."""
    name, key = mock_model
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)
    raw = client.responses.with_raw_response.create(
        model=name, input="hello there", extra_body={"mock_response": "General Kenobi"}
    )
    response = raw.parse()
    check(response.model_dump(exclude_unset=True), "Response")
    assert response.output_text == "General Kenobi"
    assert response.usage is not None and response.usage.output_tokens > 0
    streamed = client.responses.create(
        model=name, input="hi", stream=True, extra_body={"mock_response": "a b c"}
    )
    events = list(streamed)
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "a b c"
    request_id = raw.headers["x-request-id"]

    def logged() -> dict[str, Any] | None:
        rows = admin.get("/spend/logs", params={"request_id": request_id}).json()
        return rows[0] if rows else None

    row = wait_until(logged, timeout=10.0, interval=0.05)
    assert row["call_type"] == "responses" and row["completion_tokens"] == response.usage.output_tokens
    bare = httpx.post(
        stack.base_url + "/responses",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": name, "input": "x"},
    )
    assert bare.status_code == 200 and bare.json()["object"] == "response"


@pytest.fixture(scope="module")
def native_model(stack: Stack, admin: httpx.Client, fake_openai: tuple[Any, str]) -> tuple[str, str, str]:
    """A model on the fake OpenAI upstream (native Responses API) and two keys of different teams."""
    _, base = fake_openai
    name = f"resp-native-{secrets.token_hex(3)}"
    params = {"model": "openai/gpt-4o-mini", "api_base": base, "api_key": FAKE_UPSTREAM_KEY}
    assert admin.post("/model/new", json={"model_name": name, "litellm_params": params}).status_code == 200
    keys = []
    for team in ("team-a", "team-b"):
        team_id = f"{team}-{secrets.token_hex(3)}"
        assert admin.post("/team/new", json={"team_id": team_id}).status_code == 200
        keys.append(admin.post("/key/generate", json={"models": [name], "team_id": team_id}).json()["key"])
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=keys[0], max_retries=0)
    wait_until(lambda: [m.id for m in client.models.list().data] == [name], timeout=2.0)
    return name, keys[0], keys[1]


def test_native_responses_get_gateway_ids_that_only_their_owner_can_use(
    stack: Stack, native_model: tuple[str, str, str], fake_openai: tuple[Any, str], check: Check
) -> None:
    """Create, retrieve, list input items and delete through signed ids; another team gets 404."""
    fake, _ = fake_openai
    name, mine, theirs = native_model
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=mine, max_retries=0)
    created = client.responses.create(model=name, input="remember me")
    check(created.model_dump(exclude_unset=True), "Response")
    assert created.id.startswith("resp_hyd_") and created.id not in fake.stored_responses
    assert created.usage is not None and created.usage.total_tokens == 18
    fetched = client.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == created.output_text
    items = client.responses.input_items.list(created.id)
    assert "remember me" in items.data[0].model_dump_json()
    stranger = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=theirs, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        stranger.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id[:-4] + "0000")
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_native_response_stream_carries_the_gateway_id(
    stack: Stack, native_model: tuple[str, str, str]
) -> None:
    """Streamed response objects carry the gateway id, and the completed one can be retrieved."""
    name, mine, _ = native_model
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=mine, max_retries=0)
    events = list(client.responses.create(model=name, input="stream me", stream=True))
    ids = {e.response.id for e in events if hasattr(e, "response")}
    (gateway_id,) = ids
    assert gateway_id.startswith("resp_hyd_")
    assert client.responses.retrieve(gateway_id).status == "completed"
