"""Golden tests of the Gemini adapter, one folder per direction under golden/gemini/, each case a
pair of files ``<case>.in.json`` and ``<case>.out.json`` compared whole:

- request/: client body, stream flag and deployment -> the upstream call (method, URL, headers, body);
- response/: a GenerateContentResponse -> the chat.completion and the billed TokenUsage;
- stream/: a streamGenerateContent SSE transcript -> the chunks sent for each event, and what the
  relay learns from each (usage, response id, whether the usage is final);
- embeddings/: the client body and an embedContent / batchEmbedContents answer -> the embedding list;
- errors/: a Google error response -> the gateway error (status, type, code, message, retry-after).

The Gemini sides follow the shapes of Google's API reference and documented examples
(GenerateContentResponse, UsageMetadata, google.rpc.Status with RetryInfo).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from hydite_common.errors import InvalidRequestError
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.gemini import GeminiChat, GeminiEmbeddings, embedding_list
from hydite_dataplane.providers.gemini_response import chat_completion, token_usage
from hydite_dataplane.providers.gemini_stream import GeminiChatStream
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.upstream.errors import error_from_upstream
from hydite_dataplane.upstream.sse import events
from tests.openapi_spec import Check, spec_checker

GOLDEN = Path(__file__).parent / "golden" / "gemini"
CREATED = 1_750_000_000
FALLBACK_ID = "chatcmpl-golden"
RequestBuilder = Callable[..., InferenceRequest]
TargetBuilder = Callable[..., DeploymentTarget]
Json = dict[str, Any]

EXPECTED_CASES = {
    "request": {
        "anthropic_thinking_budget", "embeddings_batch", "embeddings_single", "gemini3_unsigned_call",
        "generation_config",
        "multimodal_and_merged_turns", "native_fields_and_dropped_params", "plain_chat",
        "reasoning_none_on_pro", "streaming", "tool_choice_and_native_tools", "tools_round_trip",
    },
    "response": {
        "candidates_two", "length_with_logprobs_and_audio", "parallel_function_calls", "prompt_blocked",
        "safety_finish", "text_with_thoughts",
    },
    "stream": {"cut_short", "error_mid_stream", "function_call", "prompt_blocked", "thinking_then_text"},
    "embeddings": {"batch_with_usage", "single_base64_without_usage"},
    "errors": {
        "api_key_invalid", "context_too_long", "internal", "not_found", "not_json", "overloaded",
        "quota_exhausted",
    },
}  # fmt: skip


BILLED_FIELDS = (
    "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "audio_prompt_tokens",
    "audio_completion_tokens",
)  # fmt: skip


def billed(usage: TokenUsage) -> Json:
    """The token counts a Gemini answer bills."""
    return {name: getattr(usage, name) for name in BILLED_FIELDS}


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _cases(direction: str) -> list[str]:
    return sorted(EXPECTED_CASES[direction])


def _target(deployment: Json, make_target: TargetBuilder) -> DeploymentTarget:
    return make_target(
        "dep-gemini",
        provider="gemini",
        **{
            k: deployment[k] for k in ("upstream_model", "api_base", "api_key", "api_version", "extra_params")
        },
    )


@pytest.fixture(scope="module")
def check() -> Check:
    """Validation against OpenAI's spec."""
    return spec_checker()


@pytest.mark.parametrize("direction", sorted(EXPECTED_CASES))
def test_golden_case_files_are_complete(direction: str) -> None:
    """Each direction holds exactly its expected cases, each with an input and an output file."""
    names = {p.name for p in (GOLDEN / direction).iterdir()}
    assert names == {f"{case}.{side}.json" for case in EXPECTED_CASES[direction] for side in ("in", "out")}


def upstream_call(case: Json, make_request: RequestBuilder, make_target: TargetBuilder) -> Json:
    """The upstream call the adapter builds for a request case."""
    operation = case["operation"]
    adapter = GeminiChat() if operation == "chat" else GeminiEmbeddings()
    request = make_request(case["body"], operation=operation, stream=case["stream"])
    call = adapter.build_call(request, _target(case["deployment"], make_target))
    return {"method": call.method, "url": call.url, "headers": call.headers, "body": orjson.loads(call.body)}


@pytest.mark.parametrize("case", _cases("request"))
def test_request_translation_matches_golden(
    case: str, make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """The client's request becomes exactly the recorded Gemini call; the key never in the URL."""
    given = _load(GOLDEN / "request" / f"{case}.in.json")
    before = json.loads(json.dumps(given["body"]))
    actual = upstream_call(given, make_request, make_target)
    assert actual == _load(GOLDEN / "request" / f"{case}.out.json")
    assert given["deployment"]["api_key"] not in actual["url"]
    assert given["body"] == before, "build_call must not modify the client's body"


def completion_and_usage(response: Json) -> Json:
    """The chat.completion and billed usage of a GenerateContentResponse."""
    completion = chat_completion(response, model="gemini-2.5-flash", created=CREATED, fallback_id=FALLBACK_ID)
    return {"completion": completion, "billed": billed(token_usage(response.get("usageMetadata")))}


@pytest.mark.parametrize("case", _cases("response"))
def test_response_translation_matches_golden_and_the_spec(case: str, check: Check) -> None:
    """A Gemini answer becomes exactly the recorded chat.completion, valid per OpenAI's spec; the
    adapter bills what the completion's usage shows."""
    response = _load(GOLDEN / "response" / f"{case}.in.json")
    actual = completion_and_usage(response)
    assert actual == _load(GOLDEN / "response" / f"{case}.out.json")
    check(actual["completion"], "CreateChatCompletionResponse")
    charged = GeminiChat().usage_from_response(response)
    assert charged.total_tokens == actual["completion"]["usage"]["total_tokens"]


def _events(transcript: list[str]) -> list[bytes]:
    """The SSE events of a transcript, framed as the relay frames them."""

    async def pieces() -> AsyncIterator[bytes]:
        for piece in transcript:
            yield piece.encode()

    async def collected() -> list[bytes]:
        return [event async for event in events(pieces())]

    return asyncio.run(collected())


def stream_translation(case: Json) -> Json:
    """For each upstream event: the chunks sent and what inspect_stream_event reports."""
    translator = GeminiChatStream(
        model="gemini-2.5-flash",
        created=CREATED,
        fallback_id=FALLBACK_ID,
        candidates=case["candidates"],
        wants_usage=case["wants_usage"],
    )
    sent: list[list[Any]] = []
    inspected: list[Json] = []
    for event in _events(case["transcript"]):
        chunks = translator.translate(event)
        assert all(c.startswith(b"data: ") and c.endswith(b"\n\n") for c in chunks)
        sent.append([c.decode().removeprefix("data: ").strip() for c in chunks])
        info = GeminiChat().inspect_stream_event(event)
        usage = billed(info.usage) if info.usage is not None else None
        inspected.append({"usage": usage, "response_id": info.response_id, "usage_final": info.usage_final})
    return {
        "sent": [[c if c == "[DONE]" else json.loads(c) for c in chunks] for chunks in sent],
        "inspected": inspected,
    }


@pytest.mark.parametrize("case", _cases("stream"))
def test_stream_translation_matches_golden_and_the_spec(case: str, check: Check) -> None:
    """A Gemini stream becomes exactly the recorded chunks, each valid per OpenAI's spec, with one
    id throughout and [DONE] at most once, last."""
    given = _load(GOLDEN / "stream" / f"{case}.in.json")
    actual = stream_translation(given)
    assert actual == _load(GOLDEN / "stream" / f"{case}.out.json")
    flat = [chunk for chunks in actual["sent"] for chunk in chunks]
    assert flat.count("[DONE]") <= 1 and ("[DONE]" not in flat or flat[-1] == "[DONE]")
    chunks = [c for c in flat if c != "[DONE]" and "error" not in c]
    for chunk in chunks:
        check(chunk, "CreateChatCompletionStreamResponse")
    assert len({c["id"] for c in chunks}) <= 1


@pytest.mark.parametrize("case", _cases("embeddings"))
def test_embedding_answers_match_golden_and_the_spec(case: str, check: Check) -> None:
    """An embedContent / batchEmbedContents answer becomes exactly the recorded embedding list."""
    given = _load(GOLDEN / "embeddings" / f"{case}.in.json")
    actual = embedding_list(given["response"], given["request"], "gemini-embedding-001")
    assert actual == _load(GOLDEN / "embeddings" / f"{case}.out.json")
    if given["request"].get("encoding_format") != "base64":
        check(actual, "CreateEmbeddingResponse")


def gateway_error(case: Json) -> Json:
    """The gateway error for a Google error response."""
    error = error_from_upstream(
        case["status"],
        case["body"].encode() if isinstance(case["body"], str) else orjson.dumps(case["body"]),
        case.get("headers", {}),
        "gemini",
        credentials=case.get("credentials", []),
    )
    return {
        "status": error.status,
        "class": type(error).__name__,
        "body": error.to_body(),
        "headers": error.headers,
    }


@pytest.mark.parametrize("case", _cases("errors"))
def test_error_mapping_matches_golden(case: str) -> None:
    """A Google error response becomes exactly the recorded gateway error."""
    given = _load(GOLDEN / "errors" / f"{case}.in.json")
    assert gateway_error(given) == _load(GOLDEN / "errors" / f"{case}.out.json")


def test_the_responses_api_runs_over_gemini_chat(
    make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """The responses operation sends a generateContent call and answers a Response object."""
    from hydite_dataplane.providers.gemini import gemini_operations

    adapter = gemini_operations()["responses"]
    target = make_target(provider="gemini", upstream_model="gemini-2.5-flash", api_key="k")
    request = make_request({"model": "m", "input": "Hi", "instructions": "Be brief."}, operation="responses")
    request.deployment = target
    call = adapter.build_call(request, target)
    assert call.url.endswith("/v1beta/models/gemini-2.5-flash:generateContent")
    assert orjson.loads(call.body)["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    answer = _load(GOLDEN / "response" / "text_with_thoughts.in.json")
    response = adapter.translate_response(request, answer)
    assert response is not None and response["object"] == "response"
    spec_checker()(response, "Response")


HI = [{"role": "user", "content": "x"}]
CALL = {"id": "a", "function": {"name": "f", "arguments": "[1]"}}
BAD_REQUESTS: list[tuple[Json, str]] = [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "function", "content": "x"}]}, "messages[0]"),
    ({"messages": [{"role": "tool", "tool_call_id": "nowhere", "content": "x"}]}, "messages[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]},
     "messages[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "video", "video": {}}]}]}, "messages[0]"),
    ({"messages": [{"role": "assistant", "tool_calls": [CALL]}]}, "messages[0].tool_calls"),
    ({"messages": HI, "tools": [{"type": "custom", "custom": {}}]}, "tools[0]"),
    ({"messages": HI, "tool_choice": {"type": "allowed_tools"}}, "tool_choice"),
    ({"messages": HI, "reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"messages": HI, "response_format": {"type": "yaml"}}, "response_format"),
    ({"messages": HI, "temperature": "hot"}, "temperature"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "param"), BAD_REQUESTS)
def test_untranslatable_chat_requests_are_clear_400s(
    body: Json, param: str, make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """What Gemini cannot express is refused before any call, naming the parameter."""
    with pytest.raises(InvalidRequestError) as caught:
        GeminiChat().build_call(make_request({"model": "m", **body}), make_target(provider="gemini"))
    assert caught.value.status == 400 and caught.value.param == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": [1, 2, 3]}, "input"),
        ({"input": ""}, "input"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
    ],
)
def test_untranslatable_embedding_requests_are_clear_400s(
    body: Json, param: str, make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """Token arrays, empty input and a bad size are refused, naming the parameter."""
    request = make_request({"model": "m", **body}, operation="embeddings")
    with pytest.raises(InvalidRequestError) as caught:
        GeminiEmbeddings().build_call(request, make_target(provider="gemini"))
    assert caught.value.param == param


def test_supported_params_leave_out_what_gemini_cannot_honour() -> None:
    """logit_bias, parallel_tool_calls, service_tier and other OpenAI-only fields are not claimed."""
    claimed = GeminiChat.supported_params
    assert {"tools", "reasoning_effort", "response_format", "n", "logprobs"} <= claimed
    assert not {"logit_bias", "parallel_tool_calls", "service_tier", "prediction", "audio"} & claimed
    assert {"input", "dimensions", "encoding_format"} <= GeminiEmbeddings.supported_params


def test_a_stream_asked_without_usage_still_reports_it_to_the_relay(make_request: RequestBuilder) -> None:
    """The relay bills from the upstream's own events whatever the client asked to see."""
    request = replace(
        make_request({"model": "m", "messages": []}, stream=True), client_wants_stream_usage=False
    )
    translator = GeminiChat().stream_translator(request)
    assert isinstance(translator, GeminiChatStream)
    given = _load(GOLDEN / "stream" / "thinking_then_text.in.json")
    last = _events(given["transcript"])[-1]
    assert b'"usage"' not in b"".join(translator.translate(last))
    info = GeminiChat().inspect_stream_event(last)
    assert info.usage is not None and info.usage_final
