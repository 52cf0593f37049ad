"""Golden tests of the Vertex AI adapter, one folder per direction under golden/vertex/, each case a
pair of files ``<case>.in.json`` and ``<case>.out.json`` compared whole:

- request/: client body, stream flag and deployment -> the upstream call (method, URL, headers,
  body) before the bearer token is added: URLs per location (regional, global, multi-region, an
  api_base) and publisher (google, anthropic, by name or vertex_publisher), and what differs from
  the direct APIs (no key header; for Claude no `model` and Vertex's `anthropic_version` in the
  body; no Vertex setting in any body);
- embeddings/: a text-embedding predict answer -> the embedding list and the billed tokens.

Answers and streams are the Gemini and Anthropic adapters' own (their golden tests cover them);
the shapes here follow Vertex AI's REST reference (generateContent, rawPredict, predict).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from hydite_common.errors import InvalidRequestError
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.mock import MockTransport
from hydite_dataplane.providers.registry import vertex_ai_provider
from hydite_dataplane.providers.vertex import (
    VERTEX_PARAMS,
    VertexEmbeddings,
    vertex_anthropic_operations,
    vertex_count_tokens_call,
    vertex_gemini_operations,
)
from hydite_dataplane.request import InferenceRequest
from hydite_dataplane.upstream.transport import Transport

GOLDEN = Path(__file__).parent / "golden" / "vertex"
RequestBuilder = Callable[..., InferenceRequest]
TargetBuilder = Callable[..., DeploymentTarget]
Json = dict[str, Any]

EXPECTED_CASES = {
    "request": {
        "anthropic_chat_regional", "anthropic_messages_multi_region", "anthropic_stream_api_base",
        "embeddings_predict", "gemini_chat_regional", "gemini_default_location_api_base",
        "gemini_stream_global", "publisher_override",
    },
    "embeddings": {"base64_without_statistics", "two_predictions"},
}  # fmt: skip


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _target(deployment: Json, make_target: TargetBuilder) -> DeploymentTarget:
    return make_target(
        "dep-vertex",
        provider="vertex_ai",
        **{k: deployment[k] for k in ("upstream_model", "api_base", "api_key", "extra_params")},
    )


def _unused_transport() -> Transport:
    """Build calls only: nothing is sent."""
    return MockTransport()


@pytest.mark.parametrize("direction", sorted(EXPECTED_CASES))
def test_golden_case_files_are_complete(direction: str) -> None:
    """Each direction holds exactly its expected cases, each with an input and an output file."""
    names = {p.name for p in (GOLDEN / direction).iterdir()}
    assert names == {f"{case}.{side}.json" for case in EXPECTED_CASES[direction] for side in ("in", "out")}


def upstream_call(case: Json, make_request: RequestBuilder, make_target: TargetBuilder) -> Json:
    """The call the provider entry picked for the deployment builds for a request case."""
    target = _target(case["deployment"], make_target)
    provider = vertex_ai_provider(_unused_transport()).for_deployment(target)
    adapter = provider.operations[case["operation"]]
    request = make_request(
        case["body"],
        operation=case["operation"],
        stream=case["stream"],
        provider_headers=case.get("provider_headers", {}),
        deployment=target,
    )
    call = adapter.build_call(request, target)
    return {
        "method": call.method,
        "url": call.url,
        "headers": call.headers,
        "body": orjson.loads(call.body),
        "error_format": provider.error_format,
    }


@pytest.mark.parametrize("case", sorted(EXPECTED_CASES["request"]))
def test_request_translation_matches_golden(
    case: str, make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """The client's request becomes exactly the recorded Vertex call, with no deployment setting
    (credentials above all) in the body."""
    given = _load(GOLDEN / "request" / f"{case}.in.json")
    before = json.loads(json.dumps(given["body"]))
    actual = upstream_call(given, make_request, make_target)
    assert actual == _load(GOLDEN / "request" / f"{case}.out.json")
    assert not VERTEX_PARAMS.intersection(actual["body"])
    assert given["body"] == before, "build_call must not modify the client's body"


@pytest.mark.parametrize("case", sorted(EXPECTED_CASES["embeddings"]))
def test_predict_answer_matches_golden(
    case: str, make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """A predict answer becomes exactly the recorded embedding list, billed what its usage shows."""
    given = _load(GOLDEN / "embeddings" / f"{case}.in.json")
    adapter = VertexEmbeddings()
    target = make_target("dep-vertex", provider="vertex_ai", upstream_model="text-embedding-005")
    request = make_request(given["request"], operation="embeddings", deployment=target)
    answer = adapter.translate_response(request, given["response"])
    billed = adapter.usage_of_call(request, given["response"]).prompt_tokens
    assert answer is not None and answer["usage"]["prompt_tokens"] == billed
    assert {"answer": answer, "billed_prompt_tokens": billed} == _load(
        GOLDEN / "embeddings" / f"{case}.out.json"
    )


@pytest.mark.parametrize(
    ("extra_params", "message"),
    [
        ({}, "needs litellm_params.vertex_project"),
        ({"vertex_project": "acme/../other"}, "needs litellm_params.vertex_project"),
        ({"vertex_project": "acme", "vertex_location": "evil.example.com#"}, "not a Google Cloud location"),
        ({"vertex_project": "acme", "vertex_publisher": "meta"}, "vertex_publisher must be one of"),
    ],
)
def test_unusable_deployment_settings_are_a_clear_400(
    extra_params: Json, message: str, make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """Settings that would not make a Vertex URL are refused naming the deployment, never sent."""
    target = make_target(
        "dep-broken", provider="vertex_ai", upstream_model="gemini-2.5-flash", extra_params=extra_params
    )
    request = make_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, deployment=target)
    with pytest.raises(InvalidRequestError, match=message) as raised:
        vertex_ai_provider(_unused_transport()).for_deployment(target).operations["chat"].build_call(
            request, target
        )
    assert "dep-broken" in raised.value.message and raised.value.status == 400


def test_every_operation_of_both_publishers_reaches_vertex_urls(
    make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """The Responses API and the Messages API over chat use the Vertex call of their publisher."""
    google = make_target(
        "g", provider="vertex_ai", upstream_model="gemini-2.5-flash", extra_params={"vertex_project": "p"}
    )
    claude = make_target(
        "c",
        provider="vertex_ai",
        upstream_model="claude-sonnet-4@20250514",
        extra_params={"vertex_project": "p"},
    )
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    for operations, target, method in (
        (vertex_gemini_operations(), google, "/publishers/google/models/gemini-2.5-flash:generateContent"),
        (
            vertex_anthropic_operations(),
            claude,
            "/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict",
        ),
    ):
        responses = make_request({"model": "m", "input": "hi"}, operation="responses", deployment=target)
        assert operations["responses"].build_call(responses, target).url.endswith(method)
        messages = make_request(chat, operation="messages", deployment=target)
        assert operations["messages"].build_call(messages, target).url.endswith(method)


def test_claude_token_count_is_a_call_of_the_count_tokens_model(make_target: TargetBuilder) -> None:
    """Anthropic's count_tokens on Vertex: count-tokens:rawPredict, the model counted for and
    Vertex's anthropic_version in the body, no deployment setting in it."""
    target = make_target(
        "c",
        provider="vertex_ai",
        upstream_model="claude-sonnet-4@20250514",
        extra_params={"vertex_project": "acme", "vertex_location": "global", "vertex_credentials": "{}"},
    )
    call = vertex_count_tokens_call(
        {"model": "group", "messages": [{"role": "user", "content": "hi"}]},
        target,
        {"anthropic-beta": "token-counting-2024-11-01"},
    )
    assert call.url == (
        "https://aiplatform.googleapis.com/v1/projects/acme/locations/global/publishers/anthropic/models/"
        "count-tokens:rawPredict"
    )
    assert call.headers == {"content-type": "application/json", "anthropic-beta": "token-counting-2024-11-01"}
    assert orjson.loads(call.body) == {
        "model": "claude-sonnet-4@20250514",
        "messages": [{"role": "user", "content": "hi"}],
        "anthropic_version": "vertex-2023-10-16",
    }
