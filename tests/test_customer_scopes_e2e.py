"""End-user ids are per tenant, through the real processes: a team's end user (its block, its
limits) applies to that team's keys only; a global end user applies where the team has none."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from hydite_common.devstack import Stack
from tests.harness import ok_get, ok_post, synced, unique


@dataclass(frozen=True)
class Tenants:
    """Two teams, each with a key; team A has an admin with a client of its own."""

    stack: Stack
    model: str
    team_a: str
    team_b: str
    key_a: str
    key_b: str
    team_admin: httpx.Client

    def chat(self, key: str, user: str) -> httpx.Response:
        """A chat call naming the end user `user`."""
        return httpx.post(
            self.stack.base_url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": self.model, "messages": [{"role": "user", "content": "x"}], "user": user},
            timeout=10,
        )


@pytest.fixture(scope="module")
def tenants(stack: Stack, admin: httpx.Client) -> Iterator[Tenants]:
    model = unique("cs-mock")
    ok_post(admin, "/model/new", {"model_name": model, "litellm_params": {"model": "mock/x"}})
    team_a, team_b, admin_user = unique("cs-team-a"), unique("cs-team-b"), unique("cs-admin")
    ok_post(admin, "/user/new", {"user_id": admin_user, "auto_create_key": False})
    ok_post(
        admin,
        "/team/new",
        {"team_id": team_a, "members_with_roles": [{"user_id": admin_user, "role": "admin"}]},
    )
    ok_post(admin, "/team/new", {"team_id": team_b})
    key_a = ok_post(admin, "/key/generate", {"team_id": team_a})["key"]
    key_b = ok_post(admin, "/key/generate", {"team_id": team_b})["key"]
    admin_key = ok_post(admin, "/key/generate", {"user_id": admin_user})["key"]
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=10) as team_admin:
        yield Tenants(stack, model, team_a, team_b, key_a, key_b, team_admin)


def test_a_teams_blocked_end_user_blocks_only_that_teams_keys(tenants: Tenants, admin: httpx.Client) -> None:
    """Team A's admin blocks end user e1 of team A: team B's e1 is served, team A's is a 403."""
    e1 = unique("e1")
    created = ok_post(tenants.team_admin, "/customer/new", {"user_id": e1, "blocked": True})
    assert (created["user_id"], created["team_id"], created["blocked"]) == (e1, tenants.team_a, True)
    synced(admin)
    served = tenants.chat(tenants.key_b, e1)
    assert served.status_code == 200, served.text
    refused = tenants.chat(tenants.key_a, e1)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "customer_blocked", refused.text


def test_a_teams_end_user_limits_never_count_another_teams(tenants: Tenants, admin: httpx.Client) -> None:
    """Team A's e1 has one request a minute: team B's e1 keeps being served while A's is a 429."""
    e1 = unique("e1")
    ok_post(tenants.team_admin, "/customer/new", {"user_id": e1, "rpm_limit": 1})
    synced(admin)
    assert tenants.chat(tenants.key_a, e1).status_code == 200
    limited = tenants.chat(tenants.key_a, e1)
    assert limited.status_code == 429, limited.text
    for _ in range(3):
        served = tenants.chat(tenants.key_b, e1)
        assert served.status_code == 200, served.text


def test_a_global_end_user_applies_where_the_team_has_none(tenants: Tenants, admin: httpx.Client) -> None:
    """A global blocked g1 refuses team B's key; team A's own g1 (not blocked) takes precedence."""
    g1 = unique("g1")
    created = ok_post(admin, "/customer/new", {"user_id": g1, "blocked": True})
    assert created["team_id"] is None and created["organization_id"] is None
    ok_post(tenants.team_admin, "/customer/new", {"user_id": g1})
    synced(admin)
    refused = tenants.chat(tenants.key_b, g1)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "customer_blocked", refused.text
    served = tenants.chat(tenants.key_a, g1)
    assert served.status_code == 200, served.text


def test_admin_routes_resolve_end_users_within_the_callers_scope(
    tenants: Tenants, admin: httpx.Client
) -> None:
    """One id in team A, team B and global is three rows; info, block and list each see their own."""
    e1 = unique("e1")
    ok_post(tenants.team_admin, "/customer/new", {"user_id": e1, "alias": "a"})
    ok_post(admin, "/customer/new", {"user_id": e1, "team_id": tenants.team_b, "alias": "b"})
    assert admin.get("/customer/info", params={"end_user_id": e1}).status_code == 404
    ok_post(admin, "/customer/new", {"user_id": e1, "alias": "global"})
    assert ok_get(tenants.team_admin, "/customer/info", end_user_id=e1)["alias"] == "a"
    assert ok_get(admin, "/customer/info", end_user_id=e1)["alias"] == "global"
    assert ok_get(admin, "/customer/info", end_user_id=e1, team_id=tenants.team_b)["alias"] == "b"

    ok_post(tenants.team_admin, "/customer/block", {"user_ids": [e1]})
    blocked = {
        c["alias"]: c["blocked"]
        for c in ok_get(admin, "/customer/list", page_size=1000)
        if c["user_id"] == e1
    }
    assert blocked == {"a": True, "b": False, "global": False}
    listed = ok_get(tenants.team_admin, "/customer/list")
    assert {c["team_id"] for c in listed} == {tenants.team_a}

    other = tenants.team_admin.post("/customer/new", json={"user_id": e1, "team_id": tenants.team_b})
    assert other.status_code == 403, other.text
    duplicate = tenants.team_admin.post("/customer/new", json={"user_id": e1})
    assert duplicate.status_code == 409, duplicate.text
    scoped_looking = admin.post("/customer/new", json={"user_id": f"team:{tenants.team_a}:{unique('x')}"})
    assert scoped_looking.status_code == 422, scoped_looking.text
    ok_post(tenants.team_admin, "/customer/delete", {"user_ids": [e1]})
    assert ok_get(admin, "/customer/info", end_user_id=e1)["alias"] == "global"
