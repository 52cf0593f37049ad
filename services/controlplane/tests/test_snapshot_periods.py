"""Budget periods read from the snapshot: the proxy budget (GlobalLimits "proxy"), a team member's
(the team's defaults with its own entry over them) and a tag's; the periods alerts watch."""

from __future__ import annotations

from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.message import Message

from hydite.config.v1 import config_pb2 as pb
from hydite_common.config_types import GLOBAL_LIMITS, TAG, TEAM
from hydite_controlplane.budget_periods import Period
from hydite_controlplane.config.cache import SnapshotCache
from hydite_controlplane.snapshot_periods import (
    alert_periods_of_limits,
    member_limits,
    proxy_limits,
    tag_limits,
)


def _resource(name: str, message: Message) -> pb.Resource:
    body = AnyMessage()
    body.Pack(message)
    return pb.Resource(name=name, body=body)


def _cache() -> SnapshotCache:
    team = pb.Team(
        team_id="t1",
        member_defaults=pb.Limits(max_budget=5.0, budget_duration="1d"),
        member_limits={"u2": pb.Limits(max_budget=8.0)},
    )
    cache = SnapshotCache()
    cache.reset(
        3,
        {
            GLOBAL_LIMITS: [
                _resource("proxy", pb.GlobalLimits(limits=pb.Limits(max_budget=100.0, budget_duration="30d")))
            ],
            TEAM: [_resource("t1", team)],
            TAG: [_resource("prod", pb.Tag(name="prod", limits=pb.Limits(soft_budget=2.0)))],
        },
    )
    return cache


def test_the_snapshot_s_limits_of_the_proxy_a_team_member_and_a_tag() -> None:
    """Each is the limits the data planes enforce; a member's own entry wins over the defaults."""
    cache = _cache()
    proxy = proxy_limits(cache)
    assert proxy is not None and (proxy.max_budget, proxy.budget_duration) == (100.0, "30d")
    own = member_limits(cache, "t1:u2")
    assert own is not None and (own.max_budget, own.budget_duration) == (8.0, "1d")
    default = member_limits(cache, "t1:u1")
    assert default is not None and default.max_budget == 5.0
    assert member_limits(cache, "t9:u1") is None
    tag = tag_limits(cache, "prod")
    assert tag is not None and alert_periods_of_limits(tag) == [Period("", None, 2.0, main=True)]
    assert alert_periods_of_limits(own) == [Period("1d", 8.0, None, main=True)]
    assert proxy_limits(SnapshotCache()) is None
