"""The hook slots run in order, and an empty eligible set is a 503."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from hydite.config.v1 import config_pb2 as pb
from hydite_common.errors import RateLimitError, ServiceUnavailableError
from hydite_common.pricing import FREE
from hydite_dataplane.hooks import CallRecord, Hooks
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.snapshot import DeploymentTarget, Snapshot, empty_snapshot


def _request() -> InferenceRequest:
    return InferenceRequest(
        request_id="r-1",
        operation="chat",
        wire_format="openai",
        model="m",
        body={},
        stream=False,
        key_hash="h",
        key=pb.VirtualKey(key_hash="h"),
        start_time=time.time(),
        start_perf=time.perf_counter(),
    )


def _target(deployment_id: str) -> DeploymentTarget:
    return DeploymentTarget(deployment_id, "m", "openai", "m", "", "", "", 0.0, 0.0, 1.0, FREE, {}, {})


class Refuse:
    """A pre-call hook that refuses everything."""

    async def before_call(self, request: InferenceRequest, snapshot: Snapshot) -> None:
        """Refuse with a 429."""
        raise RateLimitError("budget exhausted")


class DropFirst:
    """A deployment filter that drops the first deployment."""

    def eligible(
        self, request: InferenceRequest, deployments: Sequence[DeploymentTarget]
    ) -> Sequence[DeploymentTarget]:
        """All but the first."""
        return deployments[1:]


class Remember:
    """A post-call hook that keeps what it saw."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def after_call(self, request: InferenceRequest, record: CallRecord) -> None:
        """Remember the record."""
        self.records.append(record)


async def test_pre_call_hook_can_refuse() -> None:
    """A pre-call hook's error propagates to the caller."""
    with pytest.raises(RateLimitError):
        await Hooks(pre_call=[Refuse()]).before_call(_request(), empty_snapshot())


def test_filters_narrow_and_empty_is_503() -> None:
    """Filters apply in order; when none is left the request is a 503."""
    hooks = Hooks(deployment_filters=[DropFirst()])
    assert [d.deployment_id for d in hooks.eligible(_request(), [_target("a"), _target("b")])] == ["b"]
    with pytest.raises(ServiceUnavailableError):
        hooks.eligible(_request(), [_target("a")])


def test_post_call_hooks_each_see_the_record() -> None:
    """Every post-call hook gets the same record once."""
    first, second = Remember(), Remember()
    record = CallRecord(None, TokenUsage(1, 2), "success", 200)
    Hooks(post_call=[first, second]).after_call(_request(), record)
    assert first.records == [record] and second.records == [record]
