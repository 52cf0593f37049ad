"""LiteLLM's team member limits over the admin API: team_member_* on /team/new and /team/update,
max_budget_in_team / rpm_limit / tpm_limit per member, shown by /team/info as LiteLLM shows them,
and refused at the edge when no limit can hold them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FakeOpenAI
from tests.harness import deploy_fake, ok_get, ok_post, unique, wait_until

LIMIT_FIELDS = (
    "team_member_budget", "team_member_rpm_limit", "team_member_tpm_limit",
    "max_budget_in_team", "rpm_limit", "tpm_limit",
)  # fmt: skip


def test_team_member_defaults_and_member_limits_show_in_team_info(admin: httpx.Client) -> None:
    """/team/info shows the team's member budget table and every member's budget over it."""
    team_id, alice, bob = unique("tml-team"), unique("tml-alice"), unique("tml-bob")
    ok_post(
        admin, "/team/new",
        {"team_id": team_id, "team_member_budget": 5.0, "team_member_rpm_limit": 7,
         "team_member_budget_duration": "1mo", "members_with_roles": [{"user_id": alice}]},
    )  # fmt: skip
    ok_post(
        admin, "/team/member_add", {"team_id": team_id, "member": {"user_id": bob}, "max_budget_in_team": 2.0}
    )
    ok_post(admin, "/team/member_update", {"team_id": team_id, "user_id": bob, "tpm_limit": 300})
    ok_post(admin, "/team/update", {"team_id": team_id, "team_member_tpm_limit": 1000})
    info = ok_get(admin, "/team/info", team_id=team_id)
    assert info["team_info"]["team_member_budget_table"] == {
        "budget_id": None, "max_budget": 5.0, "soft_budget": None, "max_parallel_requests": None,
        "tpm_limit": 1000, "rpm_limit": 7, "model_max_budget": None, "budget_duration": "1mo",
    }  # fmt: skip
    assert info["team_info"]["team_member_budget"] == 5.0
    tables = {m["user_id"]: m["litellm_budget_table"] for m in info["team_memberships"]}
    assert set(tables) == {alice, bob}
    assert (tables[alice]["max_budget"], tables[alice]["tpm_limit"], tables[alice]["rpm_limit"]) == (
        5.0,
        1000,
        7,
    )
    assert (tables[bob]["max_budget"], tables[bob]["tpm_limit"], tables[bob]["rpm_limit"]) == (2.0, 300, 7)
    assert tables[bob]["budget_duration"] == "1mo"
    assert [m["spend"] for m in info["team_memberships"]] == [0.0, 0.0]


def test_a_team_without_member_limits_has_no_member_budget_table(admin: httpx.Client) -> None:
    """Without team_member_* limits, team_member_budget_table is null and memberships list none."""
    team_id = unique("tml-plain")
    ok_post(admin, "/team/new", {"team_id": team_id, "members_with_roles": [{"user_id": unique("tml-u")}]})
    info = ok_get(admin, "/team/info", team_id=team_id)
    assert info["team_info"]["team_member_budget_table"] is None
    assert info["team_memberships"] == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/team/new", '{"team_member_budget": -1}'),
        ("/team/new", '{"team_member_budget": 1e300}'),
        ("/team/new", '{"team_member_budget": 1e999}'),
        ("/team/new", '{"team_member_rpm_limit": -5}'),
        ("/team/new", '{"team_member_tpm_limit": 99999999999999999999999}'),
        ("/team/new", '{"team_member_rpm_limit": 1.5}'),
        ("/team/update", '{"team_id": "TEAM", "team_member_tpm_limit": -1}'),
        ("/team/member_add", '{"team_id": "TEAM", "member": {"user_id": "x"}, "max_budget_in_team": -2}'),
        ("/team/member_update", '{"team_id": "TEAM", "user_id": "x", "max_budget_in_team": 1e999}'),
        ("/team/member_update", '{"team_id": "TEAM", "user_id": "x", "rpm_limit": 18446744073709551616}'),
    ],
)
def test_member_limits_no_limit_can_hold_are_refused(admin: httpx.Client, path: str, body: str) -> None:
    """Negative, huge and non-finite member limits are an OpenAI-shaped 4xx naming the field."""
    team_id = unique("tml-bad")
    ok_post(admin, "/team/new", {"team_id": team_id})
    response = admin.post(
        path, content=body.replace("TEAM", team_id), headers={"content-type": "application/json"}
    )
    # A number JSON parsing cannot hold is refused with the body (400), any other with the field (422).
    assert response.status_code in (400, 422), response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"message", "type", "code", "param"}
    assert error["type"] == "invalid_request_error"
    assert response.status_code == 400 or error["param"] in LIMIT_FIELDS
    assert ok_get(admin, "/team/info", team_id=team_id)["team_info"]["team_member_budget_table"] is None


def test_team_info_shows_each_members_live_spend_in_the_team(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """A member's call with a key of the team counts in their membership's spend on /team/info."""
    _, base = fake_openai
    model = unique("tml-model")
    deploy_fake(admin, base, model, "gpt-4o-mini", input_cost_per_token=1e-6, output_cost_per_token=2e-6)
    team_id, user = unique("tml-spend-team"), unique("tml-spender")
    ok_post(admin, "/user/new", {"user_id": user, "auto_create_key": False})
    ok_post(
        admin,
        "/team/new",
        {"team_id": team_id, "team_member_budget": 1.0, "members_with_roles": [{"user_id": user}]},
    )
    key = ok_post(admin, "/key/generate", {"team_id": team_id, "user_id": user})["key"]
    response = httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert response.status_code == 200, response.text

    def member_spend() -> float | None:
        [membership] = ok_get(admin, "/team/info", team_id=team_id)["team_memberships"]
        spent = float(membership["spend"])
        return spent if spent > 0 else None

    spent = wait_until(member_spend, timeout=15.0, interval=0.1)
    assert spent == pytest.approx(ok_get(admin, "/team/info", team_id=team_id)["team_info"]["spend"])
