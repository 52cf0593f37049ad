"""The proxy's budget in the config snapshot: LiteLLM's litellm_settings.max_budget and
budget_duration become the one GlobalLimits resource "proxy" of every snapshot; without a
max_budget there is none."""

from __future__ import annotations

import pytest

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_controlplane.bootstrap import BootstrapError, parse_bootstrap
from hydite_controlplane.config.builder import global_limits_resource
from hydite_controlplane.config.cache import SnapshotCache


def _proxy_limits(source: str) -> pb.GlobalLimits | None:
    settings = parse_bootstrap(source).litellm_settings
    resource = global_limits_resource(settings.max_budget, settings.budget_duration)
    if resource is None:
        return None
    assert resource.name == "proxy"
    assert resource.body.type_url == types.GLOBAL_LIMITS
    message = pb.GlobalLimits()
    assert resource.body.Unpack(message)
    return message


def test_max_budget_and_budget_duration_become_the_proxy_limits() -> None:
    """max_budget with its reset period is the GlobalLimits "proxy"."""
    limits = _proxy_limits("litellm_settings:\n  max_budget: 1000.0\n  budget_duration: 30d\n")
    assert limits == pb.GlobalLimits(limits=pb.Limits(max_budget=1000.0, budget_duration="30d"))


def test_a_zero_budget_is_a_budget() -> None:
    """max_budget: 0 (LiteLLM's own example) refuses everything: it is published, not dropped."""
    limits = _proxy_limits("litellm_settings:\n  max_budget: 0\n")
    assert limits is not None and limits.limits.HasField("max_budget")
    assert limits.limits.max_budget == 0.0 and limits.limits.budget_duration == ""


@pytest.mark.parametrize(
    "source",
    [
        "model_list: []\n",
        "litellm_settings:\n  drop_params: true\n",
        "litellm_settings:\n  budget_duration: 1d\n",
    ],
)
def test_no_max_budget_no_proxy_limits(source: str) -> None:
    """Without litellm_settings.max_budget the snapshot has no GlobalLimits."""
    assert _proxy_limits(source) is None


@pytest.mark.parametrize(
    "source",
    [
        "litellm_settings:\n  max_budget: -1\n",
        "litellm_settings:\n  max_budget: .inf\n",
        "litellm_settings:\n  max_budget: 1.0e300\n",
        "litellm_settings:\n  max_budget: 10\n  budget_duration: sometimes\n",
    ],
)
def test_a_proxy_budget_no_limit_can_hold_refuses_the_file(source: str) -> None:
    """A negative, infinite or huge max_budget, or a bad duration, is a bootstrap error naming it."""
    with pytest.raises(BootstrapError, match="litellm_settings"):
        parse_bootstrap(source)


def test_every_snapshot_holds_the_proxy_limits() -> None:
    """As a fixed resource, the proxy limits are in the cache's snapshot at every version."""
    resource = global_limits_resource(5.0, "1d")
    assert resource is not None
    cache = SnapshotCache(fixed=[resource])
    cache.reset(3, {})
    assert cache.resource((types.GLOBAL_LIMITS, "proxy")) == resource
    _, chunk, _ = cache.responses_since(None)[0]
    assert [r.name for r in chunk.snapshot_chunk.resources] == ["proxy"]
