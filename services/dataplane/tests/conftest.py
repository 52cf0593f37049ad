"""Builders the data plane's unit tests share: inference requests as inbound decoding makes them,
and deployments; and a JetStream server with a connection of each test's own."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NatsClient

from hydite.config.v1 import config_pb2 as pb
from hydite_common.embedded import ensure_nats
from hydite_common.pricing import UNPRICED
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
            request_id=fields.pop("request_id", "r"),
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
    """make_target(deployment_id, ...): an unpriced OpenAI deployment of model "m"; keywords override."""

    def build(deployment_id: str = "dep-1", **fields: Any) -> DeploymentTarget:
        values: dict[str, Any] = {
            "deployment_id": deployment_id, "model_name": "m", "provider": "openai", "upstream_model": "m",
            "api_base": "", "api_key": "", "api_version": "", "timeout_seconds": 0.0,
            "stream_timeout_seconds": 0.0, "weight": 1.0, "price": UNPRICED, "extra_params": {},
            "model_info": {},
        }  # fmt: skip
        values.update(fields)
        return DeploymentTarget(**values)

    return build


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JetStream server: the one at HYDITE_NATS_URL (or 127.0.0.1:4222), else an embedded one."""
    server = ensure_nats(
        os.environ.get("HYDITE_NATS_URL", "nats://127.0.0.1:4222"), Path(tmp_path_factory.mktemp("nats"))
    )
    yield server.url
    server.stop()


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NatsClient]:
    """A connection of the test's own."""
    client = await nats.connect(nats_url)
    yield client
    await client.close()
