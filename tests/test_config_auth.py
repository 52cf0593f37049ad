"""The config stream serves only data planes that show the config token: anyone else gets no
snapshot and cannot post a NACK; outside dev a service refuses to start without a token."""

from __future__ import annotations

import asyncio

import grpc
import httpx
import pytest
from pydantic import ValidationError

from hydite.config.v1 import config_pb2 as pb
from hydite.config.v1 import config_pb2_grpc as pb_grpc
from hydite_common.devstack import Stack
from hydite_common.settings import CONFIG_TOKEN_METADATA
from hydite_controlplane.settings import ControlplaneSettings
from hydite_dataplane.settings import DataplaneSettings
from tests.harness import ok_get, ok_post


async def _refusal(stack: Stack, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    """How the control plane ends a stream opened with metadata, before anything is written."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.config.grpc_port}") as channel:
        call = pb_grpc.ConfigServiceStub(channel).Stream(metadata=metadata)  # type: ignore[no-untyped-call]
        code: grpc.StatusCode = await asyncio.wait_for(call.code(), 10)
        return code


async def _first_message(stack: Stack, metadata: tuple[tuple[str, str], ...], node_id: str) -> str:
    """The kind of the first message the control plane answers a Hello from node_id with."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.config.grpc_port}") as channel:
        call = pb_grpc.ConfigServiceStub(channel).Stream(metadata=metadata)  # type: ignore[no-untyped-call]
        await call.write(pb.StreamRequest(hello=pb.Hello(node_id=node_id, version=0)))
        response = await asyncio.wait_for(call.read(), 10)
        call.cancel()
        kind: str = response.WhichOneof("message")
        return kind


@pytest.mark.parametrize("metadata", [(), ((CONFIG_TOKEN_METADATA, "not-the-token"),)], ids=["none", "wrong"])
async def test_a_stream_without_the_token_gets_nothing(
    stack: Stack, admin: httpx.Client, metadata: tuple[tuple[str, str], ...]
) -> None:
    """Without the token (or with another) the stream is refused before it reads a message, so no
    snapshot goes out and no Hello or NACK is recorded in /config/status."""

    def nodes() -> set[str]:
        return {node["node_id"] for node in ok_get(admin, "/config/status")["nodes"]}

    before = nodes()
    assert await _refusal(stack, metadata) == grpc.StatusCode.UNAUTHENTICATED
    assert nodes() == before
    assert ok_post(admin, "/key/generate", {})["key"]


async def test_the_token_opens_the_stream(stack: Stack) -> None:
    """With the stack's token the control plane starts sending the snapshot."""
    metadata = ((CONFIG_TOKEN_METADATA, stack.config.config_token),)
    assert await _first_message(stack, metadata, "token-holder") == "snapshot_begin"


@pytest.mark.parametrize("settings_class", [ControlplaneSettings, DataplaneSettings])
def test_outside_dev_a_token_is_required(
    settings_class: type[ControlplaneSettings | DataplaneSettings],
) -> None:
    """In test or prod the settings refuse a missing or short token; in dev none is needed."""
    for environment in ("test", "prod"):
        with pytest.raises(ValidationError, match="HYDITE_CONFIG_TOKEN"):
            settings_class.model_validate(
                {"environment": environment, "master_key": "sk-real-master", "salt_key": "real-salt"}
            )
    assert settings_class(environment="dev").config_token == ""
