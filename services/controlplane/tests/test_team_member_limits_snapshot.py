"""A team's member limits in the snapshot: LiteLLM's team_member_* defaults become the Team's
`member_defaults`, each member's max_budget_in_team / rpm_limit / tpm_limit its `member_limits`
entry; a stored value no Limits can hold quarantines the team (a blocked stand-in)."""

from __future__ import annotations

from typing import Any

import pytest

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_controlplane.config.builder import RESOURCE_TABLES, build_resources, team_message
from hydite_controlplane.models import TeamRow

TEAMS = RESOURCE_TABLES[types.TEAM]


def team_row(
    extra_fields: dict[str, Any] | None = None, members: list[dict[str, Any]] | None = None
) -> TeamRow:
    """A team row as the admin API stores it."""
    return TeamRow(team_id="t1", extra_fields=extra_fields or {}, members_with_roles=members or [])


def test_member_defaults_and_each_members_own_limits() -> None:
    """The team's member defaults and each member's own limits are carried; members without any are absent."""
    row = team_row(
        {"team_member_budget": 5.0, "team_member_rpm_limit": 7, "team_member_tpm_limit": 900,
         "team_member_budget_duration": "1mo", "team_member_key_duration": "7d"},
        [{"user_id": "u1", "role": "user", "limits": {"max_budget_in_team": 2.5, "rpm_limit": 3}},
         {"user_id": "u2", "role": "admin"},
         {"user_id": "u3", "role": "user", "limits": {"tpm_limit": 40, "max_budget_in_team": None}}],
    )  # fmt: skip
    message = team_message(row)
    assert message.member_defaults == pb.Limits(
        max_budget=5.0, rpm_limit=7, tpm_limit=900, budget_duration="1mo"
    )
    assert dict(message.member_limits) == {
        "u1": pb.Limits(max_budget=2.5, rpm_limit=3),
        "u3": pb.Limits(tpm_limit=40),
    }


def test_no_member_limits_leave_both_unset() -> None:
    """A team without member limits has neither member_defaults nor member_limits (a duration alone
    sets none)."""
    message = team_message(team_row({"team_member_budget_duration": "1d"}, [{"user_id": "u1"}]))
    assert not message.HasField("member_defaults")
    assert len(message.member_limits) == 0


@pytest.mark.parametrize(
    ("extra_fields", "members"),
    [
        ({"team_member_rpm_limit": -1}, []),
        ({"team_member_budget": float("inf")}, []),
        ({"team_member_tpm_limit": "many"}, []),
        ({"team_member_rpm_limit": 2**64}, []),
        ({}, [{"user_id": "u1", "limits": {"rpm_limit": 1.5}}]),
        ({}, [{"user_id": "u1", "limits": {"max_budget_in_team": float("nan")}}]),
    ],
)
def test_a_member_limit_no_limits_can_hold_quarantines_the_team(
    extra_fields: dict[str, Any], members: list[dict[str, Any]]
) -> None:
    """A stored member limit written around the admin API's checks stands the team in, blocked."""
    built = build_resources(TEAMS, [team_row(extra_fields, members)])
    assert list(built.quarantined) == ["t1"]
    [stand_in] = built.resources
    team = pb.Team()
    assert stand_in.body.Unpack(team)
    assert team.blocked
