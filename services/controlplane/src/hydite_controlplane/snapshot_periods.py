"""Budget periods of the entities whose limits exist only as snapshot resources: a team member
(the team's member_defaults, filled in by its member_limits entry), a tag, and the proxy budget
(the GlobalLimits resource named "proxy"). Read from the control plane's head snapshot, which is
exactly what the data planes enforce."""

from __future__ import annotations

from hydite.config.v1 import config_pb2 as pb
from hydite_common.config_types import GLOBAL_LIMITS, TAG, TEAM
from hydite_controlplane.budget_periods import Period, periods_of_limits
from hydite_controlplane.config.cache import SnapshotCache

PROXY = "proxy"
"""The name of the GlobalLimits resource of the proxy-wide budget."""


def proxy_limits(cache: SnapshotCache) -> pb.Limits | None:
    """The proxy budget's limits, if the snapshot has one."""
    resource = cache.resource((GLOBAL_LIMITS, PROXY))
    if resource is None:
        return None
    message = pb.GlobalLimits()
    resource.body.Unpack(message)
    return message.limits


def member_limits(cache: SnapshotCache, team_member: str) -> pb.Limits | None:
    """The limits of a team member (`team_id:user_id`): the team's member defaults with the
    member's own entry over them; None when the team is not in the snapshot."""
    team_id, _, user_id = team_member.partition(":")
    resource = cache.resource((TEAM, team_id))
    if resource is None:
        return None
    team = pb.Team()
    resource.body.Unpack(team)
    limits = pb.Limits()
    limits.CopyFrom(team.member_defaults)
    if user_id in team.member_limits:
        limits.MergeFrom(team.member_limits[user_id])
    return limits


def tag_limits(cache: SnapshotCache, tag: str) -> pb.Limits | None:
    """A tag's limits, if the snapshot has the tag."""
    resource = cache.resource((TAG, tag))
    if resource is None:
        return None
    message = pb.Tag()
    resource.body.Unpack(message)
    return message.limits


def alert_periods_of_limits(limits: pb.Limits) -> list[Period]:
    """The periods alerts watch for a Limits message: its periods, and its all-time budget when it
    has a max_budget or soft_budget without a budget_duration."""
    periods = periods_of_limits(limits)
    if not limits.budget_duration and (limits.HasField("max_budget") or limits.HasField("soft_budget")):
        max_budget = limits.max_budget if limits.HasField("max_budget") else None
        soft_budget = limits.soft_budget if limits.HasField("soft_budget") else None
        periods.append(Period("", max_budget, soft_budget, main=True))
    return periods
