"""Parameters a provider cannot honour: refused with a 400 naming them, or dropped when
drop_params is set by the request, the deployment or the proxy; vendor fields pass untouched."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import immutables
import pytest

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_common.config_types import ADDITIONAL_DROP_PARAMS_SETTING, DROP_PARAMS_SETTING
from hydite_common.errors import InvalidRequestError
from hydite_common.openai_params import CHAT_PARAMS
from hydite_common.pricing import UNPRICED
from hydite_dataplane.config.decode import empty_snapshot
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.inbound.openai import gateway_options
from hydite_dataplane.params import for_provider, unsupported_params
from hydite_dataplane.providers.openai import OpenAIChat
from hydite_dataplane.request import Caller, InferenceRequest

TARGET = DeploymentTarget(
    deployment_id="dep-1",
    model_name="m",
    provider="example",
    upstream_model="m",
    api_base="http://127.0.0.1:9",
    api_key="",
    api_version="",
    timeout_seconds=30.0,
    stream_timeout_seconds=0.0,
    weight=1.0,
    price=UNPRICED,
    extra_params={},
    model_info={},
)


class NoPenalties(OpenAIChat):
    """A chat adapter whose provider takes neither penalty nor logit_bias."""

    def __init__(self) -> None:
        super().__init__()
        self.supported_params = CHAT_PARAMS - {"presence_penalty", "frequency_penalty", "logit_bias"}


def _request(body: dict[str, Any]) -> InferenceRequest:
    body = dict(body)
    return InferenceRequest(
        request_id="req-1",
        operation="chat",
        wire_format="openai",
        model="m",
        body=body,
        stream=False,
        caller=Caller(empty_snapshot(), "0" * 64, pb.VirtualKey(key_hash="0" * 64)),
        start_time=0.0,
        start_perf=0.0,
        options=gateway_options(body),
    )


BODY = {
    "model": "m",
    "messages": [{"role": "user", "content": "hi"}],
    "temperature": 0.2,
    "logit_bias": {"1": 2},
    "presence_penalty": 0.5,
    "safety_settings": [{"category": "x"}],
}


def test_unsupported_standard_params_are_named_in_a_400() -> None:
    """Both OpenAI parameters the provider lacks are named; the vendor field is not one of them."""
    request = _request(BODY)
    assert unsupported_params(request, NoPenalties()) == ["logit_bias", "presence_penalty"]
    with pytest.raises(InvalidRequestError) as raised:
        for_provider(request, NoPenalties(), TARGET)
    assert raised.value.code == "unsupported_params"
    assert raised.value.param == "logit_bias"
    assert "'logit_bias', 'presence_penalty'" in raised.value.message
    assert "drop_params" in raised.value.message


def test_drop_params_of_the_request_drops_them_and_keeps_vendor_fields() -> None:
    """drop_params in the body: the provider sees the rest, vendor fields included; the client's
    request is left whole for another attempt."""
    request = _request({**BODY, "drop_params": True})
    sent = for_provider(request, NoPenalties(), TARGET)
    assert set(sent.body) == {"model", "messages", "temperature", "safety_settings"}
    assert "logit_bias" in request.body


def test_drop_params_of_the_deployment_applies_unless_the_request_says_false() -> None:
    """The deployment's drop_params drops; the request's explicit false still refuses."""
    dropping = replace(TARGET, drop_params=True)
    assert "presence_penalty" not in for_provider(_request(BODY), NoPenalties(), dropping).body
    with pytest.raises(InvalidRequestError):
        for_provider(_request({**BODY, "drop_params": False}), NoPenalties(), dropping)


def test_additional_drop_params_are_never_sent() -> None:
    """LiteLLM's additional_drop_params, from the deployment or the request, leave the body."""
    body = {"model": "m", "messages": [], "temperature": 0.2, "safety_settings": []}
    by_deployment = replace(TARGET, additional_drop_params=("safety_settings",))
    assert "safety_settings" not in for_provider(_request(body), OpenAIChat(), by_deployment).body
    sent = for_provider(_request({**body, "additional_drop_params": ["temperature"]}), OpenAIChat(), TARGET)
    assert "temperature" not in sent.body


def test_a_provider_that_honours_everything_gets_the_same_request() -> None:
    """Nothing to drop: the very same request object goes on (no copy on the hot path)."""
    request = _request(BODY)
    assert for_provider(request, OpenAIChat(), TARGET) is request


def _with_settings(request: InferenceRequest, settings: dict[str, bytes]) -> InferenceRequest:
    snapshot = empty_snapshot()
    collections = {**snapshot.collections, types.SETTING: immutables.Map(settings)}
    caller = Caller(replace(snapshot, collections=collections), "0" * 64, pb.VirtualKey(key_hash="0" * 64))
    return replace(request, caller=caller)


def test_proxy_wide_settings_drop_when_request_and_deployment_say_nothing() -> None:
    """litellm_settings' drop_params and additional_drop_params, carried as snapshot settings."""
    proxy = {DROP_PARAMS_SETTING: b"true", ADDITIONAL_DROP_PARAMS_SETTING: b'["safety_settings"]'}
    sent = for_provider(_with_settings(_request(BODY), proxy), NoPenalties(), TARGET)
    assert set(sent.body) == {"model", "messages", "temperature"}
    with pytest.raises(InvalidRequestError):
        for_provider(_with_settings(_request({**BODY, "drop_params": False}), proxy), NoPenalties(), TARGET)
