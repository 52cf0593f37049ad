"""Golden tests of the OpenAI chat adapter: inbound body + deployment -> exact upstream call.

Each case is a pair of files under golden/openai/: ``<case>.request.json`` holds the client's
body, the stream flag and the deployment; ``<case>.upstream.json`` holds the expected method,
URL, headers and JSON body. Values are compared whole, so any added or dropped field fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from hydite.config.v1 import config_pb2 as pb
from hydite_common.pricing import UNPRICED
from hydite_dataplane.config.decode import empty_snapshot
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.inbound.openai import gateway_options
from hydite_dataplane.providers.base import StreamEventInfo
from hydite_dataplane.providers.openai import OpenAIChat
from hydite_dataplane.request import Caller, InferenceRequest, TokenUsage

GOLDEN_DIR = Path(__file__).parent / "golden" / "openai"

EXPECTED_CASES = {
    "api_base_trailing_slash",
    "default_api_base",
    "extra_params_merged",
    "gateway_fields_removed",
    "no_api_key",
    "plain_chat",
    "streaming",
    "streaming_client_options",
}


def _case_names() -> list[str]:
    return sorted(p.name.removesuffix(".request.json") for p in GOLDEN_DIR.glob("*.request.json"))


def _load(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(value, dict), f"{path} must hold a JSON object"
    return value


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
        model_info={},
    )


def _request(body: dict[str, Any], *, stream: bool) -> InferenceRequest:
    """The request as inbound decoding makes it: the gateway's own fields taken out of the body."""
    body = dict(body)
    options = gateway_options(body)
    return InferenceRequest(
        request_id="req-1",
        operation="chat",
        wire_format="openai",
        model=str(body.get("model", "")),
        body=body,
        stream=stream,
        caller=Caller(empty_snapshot(), "0" * 64, pb.VirtualKey(key_hash="0" * 64)),
        start_time=0.0,
        start_perf=0.0,
        options=options,
    )


def test_golden_case_files_are_complete() -> None:
    """Every expected case has both a request and an upstream file, and no stray files exist."""
    assert set(_case_names()) == EXPECTED_CASES
    for name in EXPECTED_CASES:
        assert (GOLDEN_DIR / f"{name}.upstream.json").is_file(), name
    stray = {p.name for p in GOLDEN_DIR.iterdir() if not p.name.endswith((".request.json", ".upstream.json"))}
    assert stray == set()


@pytest.mark.parametrize("case", sorted(EXPECTED_CASES))
def test_build_call_matches_golden(case: str) -> None:
    """Inbound decoding and build_call turn the case's request into exactly the recorded upstream call."""
    inbound = _load(GOLDEN_DIR / f"{case}.request.json")
    expected = _load(GOLDEN_DIR / f"{case}.upstream.json")
    body = inbound["body"]
    before = json.loads(json.dumps(body))
    call = OpenAIChat().build_call(_request(body, stream=inbound["stream"]), _target(inbound["deployment"]))
    actual = {
        "method": call.method,
        "url": call.url,
        "headers": call.headers,
        "body": orjson.loads(call.body),
    }
    assert actual == expected
    assert body == before, "build_call must not modify the client's body"


# ---------------------------------------------------------------- usage


def test_usage_from_response_full() -> None:
    """Prompt, completion, cached and reasoning tokens are read from a chat.completion."""
    body = {
        "object": "chat.completion",
        "usage": {
            "prompt_tokens": 120,
            "completion_tokens": 30,
            "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 100},
            "completion_tokens_details": {"reasoning_tokens": 12},
        },
    }
    usage = OpenAIChat().usage_from_response(body)
    assert usage == TokenUsage(
        prompt_tokens=120, completion_tokens=30, cached_tokens=100, reasoning_tokens=12
    )
    assert usage.total_tokens == 150


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"usage": None},
        {"usage": "lots"},
        {"usage": {}},
        {"usage": {"prompt_tokens": None, "prompt_tokens_details": None}},
    ],
    ids=["missing", "null", "not-object", "empty", "nulls"],
)
def test_usage_from_response_missing_is_zero(body: dict[str, Any]) -> None:
    """A response without usable usage counts as zero tokens."""
    assert OpenAIChat().usage_from_response(body) == TokenUsage()


def _sse(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


USAGE = {
    "prompt_tokens": 9,
    "completion_tokens": 4,
    "total_tokens": 13,
    "prompt_tokens_details": {"cached_tokens": 2},
}
CHOICE = {"index": 0, "delta": {"content": "hi"}, "finish_reason": None}

STREAM_CASES: dict[str, tuple[bytes, StreamEventInfo]] = {
    "usage-only-chunk": (
        _sse({"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": USAGE}),
        StreamEventInfo(
            usage=TokenUsage(prompt_tokens=9, completion_tokens=4, cached_tokens=2),
            usage_only=True,
            response_id="c1",
        ),
    ),
    "usage-only-chunk-no-choices-key": (
        _sse({"id": "c1", "usage": USAGE}),
        StreamEventInfo(
            usage=TokenUsage(prompt_tokens=9, completion_tokens=4, cached_tokens=2),
            usage_only=True,
            response_id="c1",
        ),
    ),
    "choices-and-usage": (
        _sse({"id": "c1", "choices": [CHOICE], "usage": USAGE}),
        StreamEventInfo(
            usage=TokenUsage(prompt_tokens=9, completion_tokens=4, cached_tokens=2),
            usage_only=False,
            response_id="c1",
        ),
    ),
    "done": (b"data: [DONE]\n\n", StreamEventInfo(done=True)),
    "chunk-without-usage": (_sse({"id": "c1", "choices": [CHOICE]}), StreamEventInfo()),
    "usage-null": (
        _sse({"id": "c1", "choices": [CHOICE], "usage": None}),
        StreamEventInfo(),
    ),
    "usage-null-spaced": (
        b'data: {"id": "c1", "choices": [], "usage": null}\n\n',
        StreamEventInfo(),
    ),
    "malformed-json": (b'data: {"id": "c1", "usage": {"prompt_tokens": 3\n\n', StreamEventInfo()),
    "usage-not-object": (_sse({"id": "c1", "choices": [], "usage": 5}), StreamEventInfo()),
    "comment-only": (b": keep-alive\n\n", StreamEventInfo()),
}


@pytest.mark.parametrize(("event", "expected"), list(STREAM_CASES.values()), ids=list(STREAM_CASES))
def test_inspect_stream_event(event: bytes, expected: StreamEventInfo) -> None:
    """Each kind of SSE event is classified with the usage it carries, if any."""
    assert OpenAIChat().inspect_stream_event(event) == expected


def test_inspect_stream_event_multiline_data() -> None:
    """A JSON payload split over several data: lines is joined before parsing."""
    event = b'data: {"id": "c1", "choices": [],\ndata: "usage": {"prompt_tokens": 1}}\n\n'
    info = OpenAIChat().inspect_stream_event(event)
    assert info == StreamEventInfo(usage=TokenUsage(prompt_tokens=1), usage_only=True, response_id="c1")
