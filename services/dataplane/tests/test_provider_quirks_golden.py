"""Golden tests of the OpenAI-compatible family: one case per provider row, each showing the request
translation its row makes (path, auth, stream options, renames, value maps, clamps, flattening,
derived fields). ``<case>.request.json`` holds the provider, operation, client body and deployment;
``<case>.upstream.json`` the expected method, URL, headers and JSON body, compared whole."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from hydite_common.errors import InvalidRequestError
from hydite_common.provider_table import ROWS, ROWS_BY_NAME, default_api_base
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.params import for_provider
from hydite_dataplane.providers.mock import MockTransport
from hydite_dataplane.providers.registry import build_providers
from hydite_dataplane.request import InferenceRequest
from hydite_dataplane.resources.ids import ResourceIdCodec
from hydite_dataplane.upstream.errors import ERROR_BODY_PARSERS

GOLDEN_DIR = Path(__file__).parent / "golden" / "provider_quirks"
PROVIDERS = build_providers(MockTransport(), ResourceIdCodec("salt"))


def _case_names() -> list[str]:
    return sorted(p.name.removesuffix(".request.json") for p in GOLDEN_DIR.glob("*.request.json"))


def _load(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(value, dict), f"{path} must hold a JSON object"
    return value


def _target(make_target: Any, provider: str, deployment: dict[str, Any]) -> DeploymentTarget:
    """The deployment as decoding makes it: no api_base means the row's default."""
    target: DeploymentTarget = make_target(
        provider=provider,
        upstream_model=deployment["upstream_model"],
        api_base=deployment["api_base"] or default_api_base(provider),
        api_key=deployment["api_key"],
        extra_params=dict(deployment["extra_params"]),
    )
    return target


def _call(make_request: Any, make_target: Any, case: dict[str, Any]) -> dict[str, Any]:
    request: InferenceRequest = make_request(
        dict(case["body"]), operation=case["operation"], stream=case["stream"]
    )
    target = _target(make_target, case["provider"], case["deployment"])
    adapter = PROVIDERS[case["provider"]].for_deployment(target).operations[case["operation"]]
    call = adapter.build_call(request, target)
    return {"method": call.method, "url": call.url, "headers": call.headers, "body": orjson.loads(call.body)}


def test_every_row_has_a_golden_case() -> None:
    """Each provider row is covered, and every request file has its expected upstream file."""
    cases = [_load(GOLDEN_DIR / f"{name}.request.json") for name in _case_names()]
    assert {row.name for row in ROWS} <= {case["provider"] for case in cases}
    for name in _case_names():
        assert (GOLDEN_DIR / f"{name}.upstream.json").is_file(), name
    stray = {p.name for p in GOLDEN_DIR.iterdir() if not p.name.endswith((".request.json", ".upstream.json"))}
    assert stray == set()


@pytest.mark.parametrize("case", _case_names())
def test_build_call_matches_golden(case: str, make_request: Any, make_target: Any) -> None:
    """The row's adapter turns the case's request into exactly the recorded upstream call."""
    inbound = _load(GOLDEN_DIR / f"{case}.request.json")
    before = json.loads(json.dumps(inbound["body"]))
    assert _call(make_request, make_target, inbound) == _load(GOLDEN_DIR / f"{case}.upstream.json")
    assert inbound["body"] == before, "build_call must not modify the client's body"


def _chat_case(provider: str, body: dict[str, Any], api_base: str = "") -> dict[str, Any]:
    deployment = {"upstream_model": "m", "api_base": api_base, "api_key": "k", "extra_params": {}}
    return {
        "provider": provider,
        "operation": "chat",
        "stream": False,
        "body": body,
        "deployment": deployment,
    }


HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("effort", ["minimal", "low", "medium"])
def test_a_value_the_provider_refuses_is_a_400_naming_it(
    effort: str, make_request: Any, make_target: Any
) -> None:
    """Cohere's compatibility API takes reasoning_effort 'none' or 'high' only: the gateway says so
    before calling."""
    case = _chat_case("cohere_chat", {"model": "m", "messages": HI, "reasoning_effort": effort})
    with pytest.raises(InvalidRequestError) as refused:
        _call(make_request, make_target, case)
    assert refused.value.param == "reasoning_effort"


def test_a_value_no_derived_field_exists_for_is_a_400(make_request: Any, make_target: Any) -> None:
    """DashScope's enable_thinking comes from a known reasoning_effort only."""
    case = _chat_case("dashscope", {"model": "m", "messages": HI, "reasoning_effort": "extreme"})
    with pytest.raises(InvalidRequestError) as refused:
        _call(make_request, make_target, case)
    assert refused.value.param == "reasoning_effort"


def test_an_explicit_provider_field_wins_over_the_derived_one(make_request: Any, make_target: Any) -> None:
    """A client that sends enable_thinking itself keeps it."""
    body = {"model": "m", "messages": HI, "reasoning_effort": "high", "enable_thinking": False}
    sent = _call(make_request, make_target, _chat_case("dashscope", body))["body"]
    assert sent["enable_thinking"] is False and "reasoning_effort" not in sent


@pytest.mark.parametrize("provider", ["hosted_vllm", "openai_compatible", "custom_openai"])
def test_a_provider_without_a_default_base_needs_one(
    provider: str, make_request: Any, make_target: Any
) -> None:
    """A self-hosted or custom deployment that names no api_base is a clear 400, never a call to OpenAI."""
    with pytest.raises(InvalidRequestError) as refused:
        _call(make_request, make_target, _chat_case(provider, {"model": "m", "messages": HI}))
    assert refused.value.code == "api_base_required"


def test_aliases_share_their_rows() -> None:
    """An alias is the same row under another LiteLLM name."""
    assert ROWS_BY_NAME["custom_openai"] is ROWS_BY_NAME["openai_compatible"]
    assert ROWS_BY_NAME["ollama_chat"] is ROWS_BY_NAME["ollama"]


MISTRAL_EXTRA_FIELD = (
    b'{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","stream_options",'
    b'"include_usage"],"msg":"Extra inputs are not permitted","input":true}]},'
    b'"type":"invalid_request_error","param":null,"code":null}'
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            MISTRAL_EXTRA_FIELD,
            (
                "stream_options.include_usage: Extra inputs are not permitted",
                None,
                "stream_options.include_usage",
            ),
        ),
        (
            b'{"object":"error","message":"Unauthorized","type":"authentication_error","code":"1000"}',
            ("Unauthorized", "1000", None),
        ),
        (b'{"error":{"message":"bad","code":"x","param":"p"}}', ("bad", "x", "p")),
        (b"upstream down", ("upstream down", None, None)),
    ],
    ids=["validation-detail", "flat", "openai-shape", "not-json"],
)
def test_mistral_error_bodies(body: bytes, expected: tuple[str, str | None, str | None]) -> None:
    """Mistral's error bodies (a validation detail list, or a flat message) give message, code, param."""
    assert ROWS_BY_NAME["mistral"].error_format == "mistral"
    assert ERROR_BODY_PARSERS["mistral"](body) == expected


def test_voyage_rerank_answers_in_cohere_shape(make_request: Any) -> None:
    """Voyage lists its ranking under `data`; the client gets Cohere's results and billed units."""
    adapter = PROVIDERS["voyage"].operations["rerank"]
    request = make_request({"model": "v", "query": "q", "documents": ["a", "b"]}, operation="rerank")
    answer = {
        "object": "list",
        "data": [{"index": 1, "relevance_score": 0.9, "document": "b"}, {"index": 0, "relevance_score": 0.1}],
        "model": "rerank-2.5",
        "usage": {"total_tokens": 12},
    }
    assert adapter.translate_response(request, answer) == {
        "id": "rerank-r",
        "results": [
            {"index": 1, "relevance_score": 0.9, "document": {"text": "b"}},
            {"index": 0, "relevance_score": 0.1},
        ],
        "meta": {"billed_units": {"total_tokens": 12}},
    }
    assert adapter.usage_from_response(answer).prompt_tokens == 12


def _xai_target(make_target: Any, model: str) -> DeploymentTarget:
    return _target(
        make_target, "xai", {"upstream_model": model, "api_base": "", "api_key": "k", "extra_params": {}}
    )


@pytest.mark.parametrize(
    ("model", "takes"),
    [("grok-3-mini", ["low", "high"]), ("grok-4.3", ["none", "low", "medium", "high"])],
)
def test_a_reasoning_effort_the_model_does_not_take_is_a_400_naming_its_values(
    model: str, takes: list[str], make_request: Any, make_target: Any
) -> None:
    """grok-3-mini thinks 'low' or 'high' only; grok-4.3 has no 'xhigh': a 400 listing what it takes."""
    case = _chat_case(
        "xai", {"model": "g", "messages": HI, "reasoning_effort": "medium" if takes[0] == "low" else "xhigh"}
    )
    case["deployment"]["upstream_model"] = model
    with pytest.raises(InvalidRequestError) as refused:
        _call(make_request, make_target, case)
    assert refused.value.param == "reasoning_effort"
    assert repr(takes) in refused.value.message


@pytest.mark.parametrize(
    ("model", "honours", "refuses"),
    [
        (
            "grok-3-mini",
            {"reasoning_effort", "temperature"},
            {"presence_penalty", "frequency_penalty", "stop"},
        ),
        ("grok-3-mini-fast", {"reasoning_effort"}, {"presence_penalty", "frequency_penalty", "stop"}),
        ("grok-3", {"presence_penalty", "frequency_penalty", "stop"}, {"reasoning_effort"}),
        (
            "grok-4-0709",
            {"temperature"},
            {"presence_penalty", "frequency_penalty", "stop", "reasoning_effort"},
        ),
        ("grok-4-fast-reasoning", set(), {"presence_penalty", "stop", "reasoning_effort"}),
        ("grok-4.3", {"reasoning_effort"}, {"presence_penalty", "frequency_penalty", "stop"}),
        ("grok-4-1-fast-non-reasoning", {"presence_penalty", "stop"}, {"reasoning_effort"}),
        ("grok-2-1212", {"presence_penalty", "stop", "reasoning_effort"}, set()),
    ],
)
def test_an_xai_deployment_honours_its_models_parameters(
    model: str, honours: set[str], refuses: set[str], make_target: Any
) -> None:
    """The drop_params check and /utils/supported_openai_params read the model's own set."""
    supported = (
        PROVIDERS["xai"].for_deployment(_xai_target(make_target, model)).operations["chat"].supported_params
    )
    assert honours <= supported and not refuses & supported


def test_the_model_entry_is_resolved_once_per_model_name(make_target: Any) -> None:
    """Every deployment of one model shares an entry; models of one pattern share its adapters."""
    xai = PROVIDERS["xai"]
    first = xai.for_deployment(_xai_target(make_target, "grok-4-0709"))
    assert xai.for_deployment(_xai_target(make_target, "grok-4-0709")) is first
    assert xai.for_deployment(_xai_target(make_target, "grok-4-latest")) is first
    assert xai.for_deployment(_xai_target(make_target, "grok-2-1212")).operations is xai.operations


def test_the_params_stage_refuses_or_drops_what_the_model_refuses(
    make_request: Any, make_target: Any
) -> None:
    """presence_penalty on a reasoning grok: a 400 unsupported_params naming it, or dropped."""
    target = _xai_target(make_target, "grok-3-mini")
    adapter = PROVIDERS["xai"].for_deployment(target).operations["chat"]
    body = {"model": "g", "messages": HI, "presence_penalty": 0.5, "reasoning_effort": "low"}
    with pytest.raises(InvalidRequestError) as refused:
        for_provider(make_request(dict(body)), adapter, target)
    assert (refused.value.code, refused.value.param) == ("unsupported_params", "presence_penalty")
    dropped = for_provider(make_request(dict(body)), adapter, replace(target, drop_params=True))
    assert dropped.body == {"model": "g", "messages": HI, "reasoning_effort": "low"}
