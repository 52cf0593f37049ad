"""Builders the data plane's unit tests share: inference requests as inbound decoding makes them,
and deployments."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from hydite.config.v1 import config_pb2 as pb
from hydite_common.pricing import FREE
from hydite_dataplane.config.decode import empty_snapshot
from hydite_dataplane.config.snapshot import DeploymentTarget, Snapshot
from hydite_dataplane.inbound.openai import gateway_options
from hydite_dataplane.request import Caller, InferenceRequest

RequestBuilder = Callable[..., InferenceRequest]
TargetBuilder = Callable[..., DeploymentTarget]
"""The fixtures' types (tests spell them out: a conftest is not imported)."""


@pytest.fixture(scope="session")
def make_request() -> RequestBuilder:
    """make_request(body=..., key=..., snapshot=..., ...): an inference request as inbound decoding
    makes it (the gateway's own fields taken out of the body); other keywords set request fields."""

    def build(
        body: dict[str, Any] | None = None,
        *,
        key: pb.VirtualKey | None = None,
        key_hash: str = "h",
        snapshot: Snapshot | None = None,
        model: str = "m",
        seconds_ago: float = 0.0,
        **fields: Any,
    ) -> InferenceRequest:
        body = dict(body or {})
        options = gateway_options(body)
        virtual_key = key if key is not None else pb.VirtualKey(key_hash=key_hash)
        caller = Caller.of(snapshot or empty_snapshot(), key_hash, virtual_key)
        fields.setdefault("requested_model", model)
        return InferenceRequest(
            request_id="r",
            operation=fields.pop("operation", "chat"),
            wire_format="openai",
            model=model,
            body=body,
            stream=fields.pop("stream", False),
            caller=caller,
            start_time=time.time(),
            start_perf=time.perf_counter() - seconds_ago,
            options=options,
            **fields,
        )

    return build


@pytest.fixture(scope="session")
def make_target() -> TargetBuilder:
    """make_target(deployment_id, ...): a free OpenAI deployment of model "m"; keywords override."""

    def build(deployment_id: str = "dep-1", **fields: Any) -> DeploymentTarget:
        values: dict[str, Any] = {
            "deployment_id": deployment_id, "model_name": "m", "provider": "openai", "upstream_model": "m",
            "api_base": "", "api_key": "", "api_version": "", "timeout_seconds": 0.0,
            "stream_timeout_seconds": 0.0, "weight": 1.0, "price": FREE, "extra_params": {},
            "model_info": {},
        }  # fmt: skip
        values.update(fields)
        return DeploymentTarget(**values)

    return build
