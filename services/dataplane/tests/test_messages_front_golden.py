"""Golden tests of Anthropic's Messages API over chat completions, and of Anthropic's error shape.

Each case is a pair of files under golden/messages_front/<kind>/: ``<case>.in.json`` and
``<case>.out.json``, compared whole:

- request: a Messages request -> the chat completions request (for upstream model "upstream-model");
- response: {"request", "completion"} -> the `message` object;
- stream: {"request", "events"} (chat chunks, "[DONE]") -> the Anthropic events, as {"event", "data"};
- errors: a gateway error -> its HTTP status, headers and body, and its in-stream event;
- call: {"deployment", "body"} -> the upstream call `messages_via_chat(OpenAIChat())` makes.

Every message and event is also parsed with the official SDK's types, and checked field by field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from hydite.config.v1 import config_pb2 as pb
from hydite_common import errors
from hydite_common.errors import InvalidRequestError
from hydite_common.pricing import UNPRICED
from hydite_dataplane.config.decode import empty_snapshot
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.errors import ERROR_RENDERERS
from hydite_dataplane.inbound.openai import gateway_options
from hydite_dataplane.providers.messages_request import reasoning_effort, to_chat_request
from hydite_dataplane.providers.messages_response import RAW_ARGUMENTS_KEY, from_chat_response
from hydite_dataplane.providers.messages_stream import chat_to_messages_translator
from hydite_dataplane.providers.messages_via_chat import messages_via_chat
from hydite_dataplane.providers.openai import OpenAIChat
from hydite_dataplane.request import Caller, InferenceRequest

GOLDEN_DIR = Path(__file__).parent / "golden" / "messages_front"
UPSTREAM_MODEL = "upstream-model"
EXPECTED_CASES = {
    "request": {
        "claude_code_shape", "output_config", "plain_text", "tool_result_with_image", "tool_round_trip",
        "vision_and_documents",
    },
    "response": {
        "reasoning_cut_at_length", "refusal", "stop_sequence_named", "text_with_cache",
        "thinking_with_signature", "tool_calls",
    },
    "stream": {"error_mid_stream", "stop_sequence_without_usage", "text", "thinking_then_text", "tool_calls"},
    "call": {"output_limit_and_stream", "under_the_limit"},
    "errors": {
        "bad_key", "body_too_large", "model_not_allowed", "model_not_found", "not_configured", "rate_limited",
        "unprocessable", "upstream_failed", "upstream_overloaded", "upstream_timeout",
    },
}  # fmt: skip
EVENTS = TypeAdapter[Any](RawMessageStreamEvent)


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _cases(kind: str) -> list[str]:
    return sorted(p.name.removesuffix(".in.json") for p in (GOLDEN_DIR / kind).glob("*.in.json"))


def translate_stream(request: dict[str, Any], events: list[Any]) -> list[dict[str, Any]]:
    """The Anthropic events a chat chunk transcript becomes, each as its name and its data."""
    translator = chat_to_messages_translator(request)
    out: list[dict[str, Any]] = []
    for item in events:
        raw = b"data: [DONE]\n\n" if item == "[DONE]" else b"data: " + orjson.dumps(item) + b"\n\n"
        for event in translator.translate(raw):
            assert event.endswith(b"\n\n")
            name_line, data_line = event.rstrip(b"\n").split(b"\n")
            assert name_line.startswith(b"event: ") and data_line.startswith(b"data: ")
            out.append({"event": name_line[7:].decode(), "data": orjson.loads(data_line[6:])})
    return out


def render_error(case: dict[str, Any]) -> dict[str, Any]:
    """A gateway error's Anthropic response and stream event."""
    error_class: type[errors.HyditeError] = getattr(errors, case["error"])
    error = error_class(
        case["message"], code=case.get("code"), param=case.get("param"), headers=case.get("headers")
    )
    renderer = ERROR_RENDERERS["anthropic"]
    response = renderer.response(error)
    assert response.body is not None and isinstance(response.body, bytes)
    event = renderer.stream_event(error)
    name_line, data_line = event.rstrip(b"\n").split(b"\n")
    return {
        "status": response.status,
        "headers": {k.lower(): v for k, v in response.headers.items() if k.lower() != "content-length"},
        "body": orjson.loads(response.body),
        "stream_event": {"event": name_line[7:].decode(), "data": orjson.loads(data_line[6:])},
    }


def _target(deployment: dict[str, Any]) -> DeploymentTarget:
    return DeploymentTarget(
        deployment_id="dep-1",
        model_name="public-model",
        provider="openai",
        upstream_model=deployment["upstream_model"],
        api_base=deployment["api_base"],
        api_key=deployment["api_key"],
        api_version="",
        timeout_seconds=30.0,
        stream_timeout_seconds=0.0,
        weight=1.0,
        price=UNPRICED,
        extra_params=dict(deployment["extra_params"]),
        model_info=dict(deployment["model_info"]),
    )


def build_call(case: dict[str, Any]) -> dict[str, Any]:
    """The upstream call for a Messages request, decoded as the Anthropic route decodes it."""
    body = dict(case["body"])
    options = gateway_options(body)
    before = json.loads(json.dumps(body))
    request = InferenceRequest(
        request_id="req-1",
        operation="messages",
        wire_format="anthropic",
        model=str(body["model"]),
        body=body,
        stream=body.get("stream") is True,
        caller=Caller(empty_snapshot(), "0" * 64, pb.VirtualKey(key_hash="0" * 64)),
        start_time=0.0,
        start_perf=0.0,
        options=options,
        client_wants_stream_usage=True,
    )
    call = messages_via_chat(OpenAIChat()).build_call(request, _target(case["deployment"]))
    assert body == before, "build_call leaves the client's body as it is"
    return {"method": call.method, "url": call.url, "headers": call.headers, "body": orjson.loads(call.body)}


PRODUCERS = {
    "request": lambda case: to_chat_request(case, UPSTREAM_MODEL),
    "response": lambda case: from_chat_response(case["request"], case["completion"]),
    "stream": lambda case: translate_stream(case["request"], case["events"]),
    "errors": render_error,
    "call": build_call,
}


@pytest.mark.parametrize("kind", sorted(EXPECTED_CASES))
def test_every_case_has_both_files(kind: str) -> None:
    """The cases on disk are exactly the expected ones, each with its expected output."""
    assert set(_cases(kind)) == EXPECTED_CASES[kind]
    for case in EXPECTED_CASES[kind]:
        assert (GOLDEN_DIR / kind / f"{case}.out.json").is_file(), case


@pytest.mark.parametrize(
    ("kind", "case"), [(kind, case) for kind in sorted(EXPECTED_CASES) for case in _cases(kind)]
)
def test_golden(kind: str, case: str) -> None:
    """The translation of each input equals its expected output, whole."""
    given = _load(GOLDEN_DIR / kind / f"{case}.in.json")
    expected = _load(GOLDEN_DIR / kind / f"{case}.out.json")
    assert PRODUCERS[kind](given) == expected


@pytest.mark.parametrize("case", sorted(EXPECTED_CASES["response"]))
def test_messages_parse_as_the_sdk_message_type(case: str) -> None:
    """Every translated message is an anthropic.types.Message with the same fields."""
    given = _load(GOLDEN_DIR / "response" / f"{case}.in.json")
    produced = from_chat_response(given["request"], given["completion"])
    message = Message.model_validate(produced)
    assert message.model_dump(exclude_none=True) == {k: v for k, v in produced.items() if v is not None}


def test_tool_calls_become_tool_use_blocks_with_parsed_input() -> None:
    """Arguments are parsed into input; arguments that are not an object keep their text."""
    given = _load(GOLDEN_DIR / "response" / "tool_calls.in.json")
    message = Message.model_validate(from_chat_response(given["request"], given["completion"]))
    blocks = [b for b in message.content if b.type == "tool_use"]
    assert [(b.id, b.name) for b in blocks] == [
        ("call_a", "get_weather"),
        ("call_b", "get_weather"),
        ("toolu_t1_2", "get_time"),
    ]
    assert blocks[0].input == {"city": "Paris"}
    assert blocks[1].input == {RAW_ARGUMENTS_KEY: '{"city": Rom'}
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 30 and message.usage.output_tokens == 20


@pytest.mark.parametrize("case", sorted(EXPECTED_CASES["stream"]))
def test_stream_events_parse_as_sdk_events(case: str) -> None:
    """Every translated event (error events aside) is a RawMessageStreamEvent of its named type."""
    given = _load(GOLDEN_DIR / "stream" / f"{case}.in.json")
    for item in translate_stream(given["request"], given["events"]):
        if item["event"] == "error":
            assert item["data"]["type"] == "error" and item["data"]["error"]["message"]
            continue
        parsed = EVENTS.validate_python(item["data"])
        assert parsed.type == item["event"]


def test_the_sdk_accumulates_a_translated_stream_into_the_message() -> None:
    """The SDK's own accumulation of a tool-call stream gives the blocks, inputs, stop reason and usage."""
    from anthropic.lib.streaming._messages import accumulate_event

    given = _load(GOLDEN_DIR / "stream" / "tool_calls.in.json")
    snapshot = None
    buffers: dict[int, bytes] = {}
    for item in translate_stream(given["request"], given["events"]):
        event = EVENTS.validate_python(item["data"])
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)
    assert snapshot is not None
    assert [b.type for b in snapshot.content] == ["text", "tool_use", "tool_use"]
    assert snapshot.content[0].text == "Checking."  # type: ignore[union-attr]
    assert [b.input for b in snapshot.content[1:]] == [{"city": "Paris"}, {"city": "Rome"}]  # type: ignore[union-attr]
    assert snapshot.stop_reason == "tool_use"
    assert (snapshot.usage.input_tokens, snapshot.usage.output_tokens) == (40, 25)


SDK_ERRORS: dict[int, type[anthropic.APIStatusError]] = {
    401: anthropic.AuthenticationError,
    403: anthropic.PermissionDeniedError,
    404: anthropic.NotFoundError,
    413: anthropic.ContentTooLargeError,
    422: anthropic.UnprocessableEntityError,
    429: anthropic.RateLimitError,
    502: anthropic.InternalServerError,
    503: anthropic.ServiceUnavailableError,
    504: anthropic.GatewayTimeoutError,
    529: anthropic.OverloadedError,
}


@pytest.mark.parametrize("case", sorted(EXPECTED_CASES["errors"]))
def test_error_bodies_are_what_the_sdk_reads(case: str) -> None:
    """The SDK turns each error response into the exception class of its status, with its type."""
    rendered = render_error(_load(GOLDEN_DIR / "errors" / f"{case}.in.json"))
    request = httpx2.Request("POST", "http://gateway/v1/messages")
    response = httpx2.Response(rendered["status"], json=rendered["body"], request=request)
    client = anthropic.Anthropic(api_key="x", base_url="http://gateway")
    error = client._make_status_error_from_response(response)
    assert isinstance(error, SDK_ERRORS[rendered["status"]])
    assert isinstance(error.body, dict) and error.body["error"]["type"] == rendered["body"]["error"]["type"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages.0.content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t"}]}]},
            "messages.0.content",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]},
            "messages.0.content",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "u"}}]}
                ]
            },
            "messages.0.content",
        ),
        ({"system": 5}, "system"),
        ({"system": [{"type": "image"}]}, "system"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools"),
        ({"tools": [{"name": "f", "input_schema": {}}], "tool_choice": {"type": "sometimes"}}, "tool_choice"),
        ({"thinking": {"type": "enabled", "budget_tokens": "many"}}, "thinking.budget_tokens"),
        ({"output_config": {"format": {"type": "regex"}}}, "output_config.format"),
        ({"mcp_servers": [{"type": "url", "url": "https://mcp.example"}]}, "mcp_servers"),
    ],
)
def test_untranslatable_requests_are_clear_400s(body: dict[str, Any], param: str) -> None:
    """What chat completions cannot express, or a malformed block, is a 400 naming the parameter."""
    request = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}], **body}
    with pytest.raises(InvalidRequestError) as refused:
        to_chat_request(request, UPSTREAM_MODEL)
    assert refused.value.status == 400 and refused.value.param == param


@pytest.mark.parametrize(
    ("body", "effort"),
    [
        ({}, None),
        ({"thinking": {"type": "disabled"}}, None),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4000}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 10000}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 31999}}, "high"),
        ({"thinking": {"type": "adaptive"}}, "medium"),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 1024}, "output_config": {"effort": "high"}},
            "high",
        ),
        ({"output_config": {"effort": "max"}}, "high"),
    ],
)
def test_thinking_budget_sets_reasoning_effort(body: dict[str, Any], effort: str | None) -> None:
    """Budgets map onto low/medium/high; an explicit effort wins."""
    assert reasoning_effort(body) == effort
