"""Golden tests of the Anthropic adapters, one folder per direction under golden/anthropic/, each
case a pair of files ``<case>.in.*`` and ``<case>.out.json`` compared whole:

- request/: client body, stream flag, client headers and deployment -> the upstream call (method,
  URL, headers, body) of chat, of the Messages passthrough, or of count_tokens;
- response/: the chat request and an Anthropic message -> the chat.completion and the billed TokenUsage;
- stream/: an Anthropic SSE transcript (``<case>.in.sse``, the request in ``<case>.in.json``) ->
  the chat events sent for each Anthropic event, and what the relay learns from each (usage,
  response id, whether the usage is final);
- error/: an Anthropic error response -> the body's fields and the gateway error (status, body,
  headers, whether the router retries it or takes context-window fallbacks).

The Anthropic sides follow the API reference's documented examples (messages, streaming events,
extended thinking, tool use, prompt caching usage, errors).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from hydite_common.errors import InvalidRequestError
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.anthropic import (
    AnthropicChat,
    AnthropicMessages,
    anthropic_operations,
    count_tokens_call,
)
from hydite_dataplane.providers.anthropic_request import json_answer_tool
from hydite_dataplane.providers.anthropic_response import anthropic_error_fields, completion_from_message
from hydite_dataplane.providers.anthropic_stream import AnthropicChatStream
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.router import CONTEXT_WINDOW_CODES, is_retryable
from hydite_dataplane.upstream.errors import error_from_upstream
from hydite_dataplane.upstream.sse import data_of
from hydite_dataplane.upstream.transport import UpstreamCall
from tests.openapi_spec import Check, spec_checker

GOLDEN = Path(__file__).parent / "golden" / "anthropic"
CREATED = 1_750_000_000
RequestBuilder = Callable[..., InferenceRequest]
TargetBuilder = Callable[..., DeploymentTarget]
Json = dict[str, Any]

EXPECTED_CASES = {
    "request": {
        "client_thinking_wins_over_reasoning_effort", "consecutive_turns_of_one_role_merged", "count_tokens",
        "default_max_tokens_from_model_info", "deployment_settings_and_client_headers",
        "json_object_with_tools_and_thinking", "json_schema_by_tool_on_an_older_model", "json_schema_native",
        "messages_passthrough", "openai_only_fields_left_out_and_anthropic_fields_passed", "plain_chat",
        "reasoning_effort_high_under_the_default_max_tokens", "reasoning_effort_none",
        "reasoning_effort_with_thinking_blocks_passed_back", "system_blocks_and_cache_control",
        "tool_choice_named_on_an_older_model", "tool_choice_none_keeps_tools", "tools_round_trip",
        "vision_and_documents",
    },
    "response": {
        "json_answer_tool", "max_tokens_with_prompt_caching", "parallel_tool_use", "pause_turn",
        "refusal", "stop_sequence", "text", "thinking_and_redacted_thinking", "tool_use",
    },
    "stream": {
        "error_mid_stream", "json_answer_tool", "parallel_tool_use", "text", "text_without_usage_option",
        "thinking", "tool_use", "usage_in_message_delta",
    },
    "error": {
        "authentication_error", "context_limit_with_max_tokens", "invalid_request_error", "not_json",
        "overloaded_error", "prompt_too_long", "rate_limit_error", "request_too_large",
    },
}  # fmt: skip
SUFFIXES = {"request": ".in.json", "response": ".in.json", "stream": ".in.sse", "error": ".in.json"}


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _counts(usage: TokenUsage) -> Json:
    """The usage's non-zero counts (the golden files name what a provider reported, nothing more)."""
    return {name: value for name, value in asdict(usage).items() if value}


@pytest.fixture(scope="module")
def check() -> Check:
    """Validation against OpenAI's spec."""
    return spec_checker()


@pytest.mark.parametrize("direction", sorted(EXPECTED_CASES))
def test_golden_case_files_are_complete(direction: str) -> None:
    """Every expected case has its input and output files, and no stray files exist."""
    folder = GOLDEN / direction
    found = {p.name.removesuffix(SUFFIXES[direction]) for p in folder.glob(f"*{SUFFIXES[direction]}")}
    assert found == EXPECTED_CASES[direction]
    allowed = {f"{case}{end}" for case in found for end in (SUFFIXES[direction], ".in.json", ".out.json")}
    assert {p.name for p in folder.iterdir()} <= allowed
    for case in found:
        assert (folder / f"{case}.out.json").is_file(), case


def _anthropic_target(make_target: TargetBuilder, deployment: Json) -> DeploymentTarget:
    return make_target("dep-anthropic", provider="anthropic", **deployment)


def _call_of(case: Json, make_request: RequestBuilder, make_target: TargetBuilder) -> UpstreamCall:
    target = _anthropic_target(make_target, case["deployment"])
    body, headers = case["body"], case["provider_headers"]
    if case["operation"] == "count_tokens":
        return count_tokens_call(body, target, headers)
    request = make_request(
        json.loads(json.dumps(body)),
        operation=case["operation"],
        stream=case["stream"],
        provider_headers=headers,
    )
    adapter = AnthropicChat() if case["operation"] == "chat" else AnthropicMessages()
    return adapter.build_call(request, target)


@pytest.mark.parametrize("case", sorted(EXPECTED_CASES["request"]))
def test_request_matches_golden(case: str, make_request: RequestBuilder, make_target: TargetBuilder) -> None:
    """The client's request becomes exactly the recorded upstream call, the body left unchanged."""
    inbound = _load(GOLDEN / "request" / f"{case}.in.json")
    before = json.loads(json.dumps(inbound["body"]))
    call = _call_of(inbound, make_request, make_target)
    actual = {
        "method": call.method,
        "url": call.url,
        "headers": call.headers,
        "body": orjson.loads(call.body),
    }
    assert actual == _load(GOLDEN / "request" / f"{case}.out.json")
    assert inbound["body"] == before


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 2}, "n"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"max_tokens": "lots"}, "max_tokens"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"stop": [1]}, "stop"),
        (
            {"tool_choice": "sometimes", "tools": [{"type": "function", "function": {"name": "f"}}]},
            "tool_choice",
        ),
        ({"tools": [{"type": "function"}]}, "tools"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x"}}]}
                ]
            },
            "messages[0].content",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}
                ]
            },
            "messages[0].content",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": "data:image/png,x"}]}
                ]
            },
            "messages[0].content",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "t", "function": {"name": "f", "arguments": "{not json"}}],
                    },
                ]
            },
            "messages[1].tool_calls",
        ),
    ],
)
def test_untranslatable_requests_are_400s_naming_the_parameter(
    body: Json, param: str, make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """What the Messages API cannot express is a clear 400, never a call Anthropic would refuse."""
    full = {"model": "claude", "messages": [{"role": "user", "content": "hi"}], **body}
    target = _anthropic_target(make_target, {"upstream_model": "claude-3-5-haiku-20241022"})
    with pytest.raises(InvalidRequestError) as refused:
        AnthropicChat().build_call(make_request(full), target)
    assert refused.value.param == param and refused.value.status == 400


@pytest.mark.parametrize("case", sorted(EXPECTED_CASES["response"]))
def test_response_matches_golden(case: str, check: Check) -> None:
    """A message becomes exactly the recorded chat.completion (valid per OpenAI's spec) and usage."""
    inbound = _load(GOLDEN / "response" / f"{case}.in.json")
    message = inbound["message"]
    completion = completion_from_message(message, CREATED, json_answer_tool(inbound["request"]))
    usage = AnthropicChat().usage_from_response(message)
    assert {"completion": completion, "usage": _counts(usage)} == _load(
        GOLDEN / "response" / f"{case}.out.json"
    )
    check(completion, "CreateChatCompletionResponse")


def _events(transcript: str) -> list[bytes]:
    """The SSE events of a transcript, each ending with its blank line."""
    return [block.strip("\n").encode() + b"\n\n" for block in transcript.split("\n\n") if block.strip()]


def _shown(event: bytes) -> Any:
    data = data_of(event)
    return data.decode() if data == b"[DONE]" else orjson.loads(data)


@pytest.mark.parametrize("case", sorted(EXPECTED_CASES["stream"]))
def test_stream_matches_golden(case: str, check: Check) -> None:
    """Each Anthropic event becomes exactly the recorded chat events (each valid per the spec), and
    the relay learns the recorded usage from it."""
    options = _load(GOLDEN / "stream" / f"{case}.in.json")
    translator = AnthropicChatStream(
        answer_tool=json_answer_tool(options["request"]),
        include_usage=options["include_usage"],
        created=CREATED,
    )
    adapter = AnthropicChat()
    steps: list[Json] = []
    for event in _events((GOLDEN / "stream" / f"{case}.in.sse").read_text(encoding="utf-8")):
        sent = [_shown(out) for out in translator.translate(event)]
        info = adapter.inspect_stream_event(event)
        step: Json = {"sent": sent}
        if info.usage is not None:
            step["usage"] = _counts(info.usage)
            step["usage_final"] = info.usage_final
        if info.response_id:
            step["response_id"] = info.response_id
        steps.append(step)
    assert steps == _load(GOLDEN / "stream" / f"{case}.out.json")
    for step in steps:
        for payload in step["sent"]:
            if isinstance(payload, dict) and "error" not in payload:
                check(payload, "CreateChatCompletionStreamResponse")


def test_stream_billing_merges_message_start_and_message_delta() -> None:
    """What the relay bills for a whole stream: message_start's input counts, message_delta's output."""
    transcript = (GOLDEN / "stream" / "tool_use.in.sse").read_text(encoding="utf-8")
    adapter = AnthropicChat()
    billed: TokenUsage | None = None
    for event in _events(transcript):
        info = adapter.inspect_stream_event(event)
        if info.usage is not None:
            billed = info.usage if billed is None else billed.updated_by(info.usage)
    assert billed == TokenUsage(prompt_tokens=472, completion_tokens=89)


@pytest.mark.parametrize("case", sorted(EXPECTED_CASES["error"]))
def test_error_matches_golden(case: str) -> None:
    """An Anthropic error response becomes exactly the recorded gateway error."""
    inbound = _load(GOLDEN / "error" / f"{case}.in.json")
    raw = inbound["body"] if isinstance(inbound["body"], str) else json.dumps(inbound["body"])
    body = raw.encode()
    error = error_from_upstream(inbound["status"], body, inbound["headers"], "anthropic", credentials=())
    actual = {
        "fields": list(anthropic_error_fields(body)),
        "status": error.status,
        "body": error.to_body(),
        "headers": error.headers,
        "retried": is_retryable(error),
        "context_window_fallback": error.code in CONTEXT_WINDOW_CODES,
    }
    assert actual == _load(GOLDEN / "error" / f"{case}.out.json")


def test_supported_params_are_the_ones_anthropic_honours() -> None:
    """Chat lists what it translates and leaves out what Anthropic has no place for."""
    operations = anthropic_operations()
    chat = operations["chat"].supported_params
    assert {"tools", "response_format", "reasoning_effort", "stop", "max_completion_tokens"} <= chat
    assert chat.isdisjoint({"n", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty"})
    assert chat.isdisjoint({"logit_bias", "seed", "modalities", "audio"})
    assert {"thinking", "top_k", "system"} <= operations["messages"].supported_params
    assert set(operations) == {"chat", "responses", "messages"}


def test_messages_passthrough_translates_nothing(make_request: RequestBuilder) -> None:
    """The Messages API in its own shape: answers and streams pass as they are, usage is read."""
    adapter = AnthropicMessages()
    request = make_request({"model": "m", "messages": []}, operation="messages")
    message = {"id": "msg_1", "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 3}}
    assert adapter.translate_response(request, message) is None
    assert adapter.stream_translator(request) is None
    assert adapter.usage_from_response(message) == TokenUsage(
        prompt_tokens=15, completion_tokens=3, cached_tokens=5
    )
