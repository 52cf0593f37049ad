"""Golden tests of the Amazon Bedrock adapter, one folder per direction under golden/bedrock/, each
case a pair of files ``<case>.in.json`` and ``<case>.out.json`` compared whole:

- request/: client body, stream flag and deployment -> the unsigned Converse call (method, URL,
  headers, body);
- signed/: a built call, fixed credentials and a fixed clock -> the call botocore's SigV4 signer
  makes of it (URL, every header, the Authorization header) and the canonical request it signed;
- response/: a Converse answer -> the chat.completion and the billed TokenUsage;
- stream/: a recorded ConverseStream body (AWS event-stream binary framing, cut into pieces) -> the
  messages decoded, the chunks sent for each and what the relay learns from each;
- errors/: a Bedrock error response -> the gateway error (status, type, code, message).

The Bedrock sides follow the shapes of the Converse and ConverseStream API references (Message,
ContentBlock, TokenUsage, the ConverseStream events and exceptions, the x-amzn-ErrorType header).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from hydite_common.errors import InvalidRequestError, UpstreamError
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.bedrock import (
    AwsCredentials,
    BedrockChat,
    BedrockSigner,
    ChainCredentials,
    bedrock_operations,
    signed_call,
)
from hydite_dataplane.providers.bedrock_response import chat_completion, token_usage
from hydite_dataplane.providers.bedrock_stream import BedrockChatStream, event_stream_batches
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.upstream.errors import error_from_upstream
from hydite_dataplane.upstream.transport import UpstreamCall
from tests.openapi_spec import Check, spec_checker

GOLDEN = Path(__file__).parent / "golden" / "bedrock"
CREATED = 1_750_000_000
COMPLETION_ID = "chatcmpl-golden"
RequestBuilder = Callable[..., InferenceRequest]
TargetBuilder = Callable[..., DeploymentTarget]
Json = dict[str, Any]

EXPECTED_CASES = {
    "request": {
        "api_base_and_region_from_the_chain", "claude_thinking_on_inference_profile",
        "litellm_converse_route", "multimodal_and_tools_round_trip",
        "no_region_keeps_a_placeholder_for_the_signer", "plain_chat",
    },
    "signed": {"deployment_keys_with_session_token", "region_filled_from_the_chain"},
    "response": {"guardrail_intervened", "reasoning_and_cache", "text", "tool_use"},
    "stream": {"exception_mid_stream", "reasoning_then_tool_use", "text_with_usage"},
    "errors": {
        "access_denied", "bad_signature_redacted", "input_too_long", "model_not_ready", "not_json",
        "service_unavailable", "throttling", "validation",
    },
}  # fmt: skip
BILLED_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


def billed(usage: TokenUsage) -> Json:
    """The token counts a Bedrock answer bills."""
    return {name: getattr(usage, name) for name in BILLED_FIELDS}


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _cases(direction: str) -> list[str]:
    return sorted(EXPECTED_CASES[direction])


@pytest.fixture(scope="module")
def check() -> Check:
    """Validation against OpenAI's spec."""
    return spec_checker()


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Sets the time botocore's signer reads."""

    def at(moment: str) -> None:
        when = datetime.datetime.fromisoformat(moment)
        monkeypatch.setattr("botocore.auth.get_current_datetime", lambda remove_tzinfo=True: when)

    return at


@pytest.mark.parametrize("direction", sorted(EXPECTED_CASES))
def test_golden_case_files_are_complete(direction: str) -> None:
    """Each direction holds exactly its expected cases, each with an input and an output file."""
    names = {p.name for p in (GOLDEN / direction).iterdir()}
    assert names == {f"{case}.{side}.json" for case in EXPECTED_CASES[direction] for side in ("in", "out")}


def _target(deployment: Json, make_target: TargetBuilder) -> DeploymentTarget:
    return make_target(
        "dep-bedrock",
        provider="bedrock",
        upstream_model=deployment["upstream_model"],
        api_base=deployment["api_base"],
        extra_params=deployment["extra_params"],
    )


@pytest.mark.parametrize("case", _cases("request"))
def test_request_translation_matches_golden(
    case: str, make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """The client's request becomes exactly the recorded Converse call; no credential in it."""
    given = _load(GOLDEN / "request" / f"{case}.in.json")
    before = json.loads(json.dumps(given["body"]))
    request = make_request(given["body"], stream=given["stream"])
    call = BedrockChat().build_call(request, _target(given["deployment"], make_target))
    actual = {
        "method": call.method,
        "url": call.url,
        "headers": call.headers,
        "body": orjson.loads(call.body),
    }
    assert actual == _load(GOLDEN / "request" / f"{case}.out.json")
    secret = given["deployment"]["extra_params"].get("aws_secret_access_key")
    assert secret is None or secret.encode() not in call.body + call.url.encode()
    assert given["body"] == before, "build_call must not modify the client's body"


def _canonical_request(call: UpstreamCall, credentials: Json) -> str:
    """The canonical request of a signed call, as AWS recomputes it from what it received (every
    header but Authorization)."""
    headers = {name: value for name, value in call.headers.items() if name != "Authorization"}
    request = AWSRequest(method=call.method, url=call.url, data=call.body, headers=headers)
    request.context["timestamp"] = call.headers["X-Amz-Date"]
    signer = SigV4Auth(
        Credentials(credentials["access_key"], credentials["secret_key"], credentials["token"]),
        "bedrock",
        credentials["region"],
    )
    canonical: str = signer.canonical_request(request)
    return canonical


@pytest.mark.parametrize("case", _cases("signed"))
def test_signed_call_matches_golden(case: str, fixed_clock: Callable[[str], None]) -> None:
    """With fixed credentials and clock, the signed call (URL, headers, Authorization) and the
    canonical request behind its signature are exactly the recorded ones."""
    given = _load(GOLDEN / "signed" / f"{case}.in.json")
    fixed_clock(given["clock"])
    spec = given["call"]
    call = UpstreamCall(spec["method"], spec["url"], spec["headers"], orjson.dumps(spec["body"]))
    signed = signed_call(call, AwsCredentials(**given["credentials"]))
    canonical = _canonical_request(signed, given["credentials"]).split("\n")
    actual = {
        "method": signed.method,
        "url": signed.url,
        "headers": signed.headers,
        "canonical_request": canonical,
    }
    assert actual == _load(GOLDEN / "signed" / f"{case}.out.json")
    assert signed.body == call.body
    assert f"SignedHeaders={canonical[-2]}, " in signed.headers["Authorization"]


class FixedChain(ChainCredentials):
    """The credential chain of a machine with the given identity (or none)."""

    def __init__(self, found: AwsCredentials) -> None:
        super().__init__()
        self.found = found
        self.asked = 0

    async def get(self, deployment_id: str) -> AwsCredentials:
        self.asked += 1
        return self.found


async def test_the_signer_uses_deployment_keys_without_asking_the_chain(make_target: TargetBuilder) -> None:
    """Keys and region on the deployment sign the call; the chain is never consulted."""
    chain = FixedChain(AwsCredentials("", "", None, ""))
    target = make_target(
        provider="bedrock",
        extra_params={
            "aws_access_key_id": "AKIA1",
            "aws_secret_access_key": "s" * 40,
            "aws_region_name": "us-west-2",
        },
    )
    call = UpstreamCall("POST", "https://bedrock-runtime.us-west-2.amazonaws.com/model/m/converse", {}, b"{}")
    signed = await BedrockSigner(chain).authorize(call, target)
    assert signed.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIA1/")
    assert "/us-west-2/bedrock/aws4_request" in signed.headers["Authorization"] and chain.asked == 0


async def test_the_signer_takes_keys_and_region_from_the_chain(make_target: TargetBuilder) -> None:
    """A deployment without keys is signed with the chain's (session token included), in its region."""
    chain = FixedChain(AwsCredentials("ASIACHAIN", "c" * 40, "session-token-1", "eu-west-3"))
    call = UpstreamCall("POST", "https://bedrock-runtime.{region}.amazonaws.com/model/m/converse", {}, b"{}")
    signed = await BedrockSigner(chain).authorize(call, make_target(provider="bedrock"))
    assert signed.url == "https://bedrock-runtime.eu-west-3.amazonaws.com/model/m/converse"
    assert signed.headers["X-Amz-Security-Token"] == "session-token-1"
    assert "Credential=ASIACHAIN/" in signed.headers["Authorization"]


async def test_no_credentials_anywhere_is_a_502_naming_the_deployment(make_target: TargetBuilder) -> None:
    """No keys on the deployment and no AWS identity: a gateway error, not a 500."""
    signer = BedrockSigner(FixedChain(AwsCredentials("", "", None, "us-east-1")))
    call = UpstreamCall("POST", "https://x/model/m/converse", {}, b"{}")
    with pytest.raises(UpstreamError) as caught:
        await signer.authorize(call, make_target("dep-aws-9", provider="bedrock"))
    assert caught.value.status == 502 and "dep-aws-9" in caught.value.message
    assert caught.value.code == "upstream_credentials_unavailable"


async def test_the_chain_is_resolved_off_the_loop_once_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's chain (here: environment keys) is asked in a thread once; later calls hit the cache."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "e" * 40)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    resolved: list[int] = []
    import hydite_dataplane.providers.bedrock as bedrock

    original = bedrock._resolved_with_lifetime

    def counted() -> tuple[AwsCredentials, float]:
        resolved.append(1)
        return original()

    monkeypatch.setattr(bedrock, "_resolved_with_lifetime", counted)
    chain = ChainCredentials()
    found = await asyncio.gather(*(chain.get("dep-1") for _ in range(5)))
    assert {f.access_key for f in found} == {"AKIAENVIRONMENT"} and found[0].region == "ap-south-1"
    assert (await chain.get("dep-1")).secret_key == "e" * 40
    assert len(resolved) == 1


@pytest.mark.parametrize("case", _cases("response"))
def test_response_translation_matches_golden_and_the_spec(case: str, check: Check) -> None:
    """A Converse answer becomes exactly the recorded chat.completion, valid per OpenAI's spec; the
    adapter bills what the completion's usage shows."""
    response = _load(GOLDEN / "response" / f"{case}.in.json")
    completion = chat_completion(
        response, model="anthropic.claude-3-5-sonnet", created=CREATED, completion_id=COMPLETION_ID
    )
    actual = {"completion": completion, "billed": billed(token_usage(response.get("usage")))}
    assert actual == _load(GOLDEN / "response" / f"{case}.out.json")
    check(completion, "CreateChatCompletionResponse")
    charged = BedrockChat().usage_from_response(response)
    assert charged.total_tokens == completion["usage"]["total_tokens"]


def _decoded(pieces: list[bytes]) -> list[bytes]:
    """The events the relay's framing makes of a binary transcript, read piece by piece."""

    async def chunks() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    async def collected() -> list[bytes]:
        return [event async for batch in event_stream_batches(chunks()) for event in batch]

    return asyncio.run(collected())


@pytest.mark.parametrize("case", _cases("stream"))
def test_stream_decoding_and_translation_match_golden(case: str, check: Check) -> None:
    """A recorded event-stream body is decoded message by message, however it was cut, and becomes
    exactly the recorded chunks (valid per OpenAI's spec, one id, [DONE] last) and usage."""
    given = _load(GOLDEN / "stream" / f"{case}.in.json")
    pieces = [base64.b64decode(p) for p in given["pieces_base64"]]
    events = _decoded(pieces)
    assert events == _decoded([b"".join(pieces)]), "decoding must not depend on how the body was cut"
    translator = BedrockChatStream(
        model="anthropic.claude-3-5-sonnet",
        created=CREATED,
        completion_id=COMPLETION_ID,
        wants_usage=given["wants_usage"],
    )
    adapter = BedrockChat()
    decoded: list[str] = []
    sent: list[list[Any]] = []
    inspected: list[Json | None] = []
    for event in events:
        decoded.append(event.decode())
        chunks = translator.translate(event)
        assert all(c.startswith(b"data: ") and c.endswith(b"\n\n") for c in chunks)
        texts = [c.decode().removeprefix("data: ").strip() for c in chunks]
        sent.append([t if t == "[DONE]" else json.loads(t) for t in texts])
        info = adapter.inspect_stream_event(event)
        inspected.append(billed(info.usage) if info.usage is not None else None)
    actual = {"decoded": decoded, "sent": sent, "inspected": inspected}
    assert actual == _load(GOLDEN / "stream" / f"{case}.out.json")
    flat = [chunk for chunks in sent for chunk in chunks]
    assert flat.count("[DONE]") <= 1 and ("[DONE]" not in flat or flat[-1] == "[DONE]")
    answered = [c for c in flat if c != "[DONE]" and "error" not in c]
    for chunk in answered:
        check(chunk, "CreateChatCompletionStreamResponse")
    assert {c["id"] for c in answered} == {COMPLETION_ID}


def test_a_frame_with_a_bad_checksum_is_a_broken_stream() -> None:
    """A corrupted message is never relayed: the stream ends with a gateway error."""
    given = _load(GOLDEN / "stream" / "text_with_usage.in.json")
    body = bytearray(b"".join(base64.b64decode(p) for p in given["pieces_base64"]))
    body[20] ^= 0xFF
    with pytest.raises(UpstreamError) as caught:
        _decoded([bytes(body)])
    assert caught.value.status == 502 and "event stream" in caught.value.message


@pytest.mark.parametrize("case", _cases("errors"))
def test_error_mapping_matches_golden(case: str) -> None:
    """A Bedrock error response becomes exactly the recorded gateway error."""
    given = _load(GOLDEN / "errors" / f"{case}.in.json")
    error = error_from_upstream(
        given["status"],
        given["body"].encode() if isinstance(given["body"], str) else orjson.dumps(given["body"]),
        given["headers"],
        "bedrock",
        credentials=given.get("credentials", []),
    )
    actual = {
        "status": error.status,
        "class": type(error).__name__,
        "body": error.to_body(),
        "headers": error.headers,
    }
    assert actual == _load(GOLDEN / "errors" / f"{case}.out.json")


def test_the_responses_and_messages_apis_run_over_converse(
    make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """Both fronts send a Converse call; a Responses stream decodes the binary framing too."""
    operations = bedrock_operations()
    target = make_target(provider="bedrock", upstream_model="amazon.nova-lite-v1:0", api_base="https://b")
    request = make_request({"model": "m", "input": "Hi", "instructions": "Be brief."}, operation="responses")
    request.deployment = target
    call = operations["responses"].build_call(request, target)
    assert call.url == "https://b/model/amazon.nova-lite-v1%3A0/converse"
    assert orjson.loads(call.body)["system"] == [{"text": "Be brief."}]
    assert hasattr(operations["responses"], "stream_batches") and hasattr(
        operations["messages"], "stream_batches"
    )


HI = [{"role": "user", "content": "x"}]
WEB_IMAGE = "https://x/a.png"
BMP_IMAGE = "data:image/bmp;base64,AA"
LIST_ARGUMENTS = {"id": "a", "function": {"name": "f", "arguments": "[1]"}}
BAD_REQUESTS: list[tuple[Json, str]] = [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": WEB_IMAGE}}]}]},
     "messages[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": BMP_IMAGE}}]}]},
     "messages[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "messages[0]"),
    ({"messages": [{"role": "assistant", "tool_calls": [LIST_ARGUMENTS]}]}, "messages[0]"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0]"),
    ({"messages": HI, "tools": [{"type": "custom", "custom": {}}]}, "tools[0]"),
    ({"messages": HI, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"x": 1}},
     "tool_choice"),
    ({"messages": HI, "reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"messages": HI, "temperature": "hot"}, "temperature"),
    ({"messages": HI, "max_tokens": 0}, "max_tokens"),
    ({"messages": HI, "stop": [1]}, "stop"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "param"), BAD_REQUESTS)
def test_untranslatable_chat_requests_are_clear_400s(
    body: Json, param: str, make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """What Converse cannot express is refused before any call, naming the parameter."""
    target = make_target(provider="bedrock", upstream_model="anthropic.claude-3-haiku-20240307-v1:0")
    with pytest.raises(InvalidRequestError) as caught:
        BedrockChat().build_call(make_request({"model": "m", **body}), target)
    assert caught.value.status == 400 and caught.value.param == param
