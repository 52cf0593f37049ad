"""What a team admin and a plain team member may do with a team's keys and organization."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from hydite_common.devstack import Stack
from tests.harness import ok_get, ok_post, unique


@dataclass
class Team:
    """A team with an admin, a plain member and a proxy_admin member, each with a key of the team."""

    team_id: str
    organization_id: str
    admin: httpx.Client
    member: httpx.Client
    member_key: str
    proxy_admin_key: str
    ordinary_key: str


def _client(stack: Stack, key: str) -> httpx.Client:
    return httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture
def team(stack: Stack, admin: httpx.Client) -> Iterator[Team]:
    """A fresh team in a fresh organization, its callers and keys (created by the master key)."""
    org, team_id = unique("tal-org"), unique("tal-team")
    ok_post(admin, "/organization/new", {"organization_id": org})
    boss, member, root = unique("tal-admin"), unique("tal-member"), unique("tal-root")
    for user, role in ((boss, "internal_user"), (member, "internal_user"), (root, "proxy_admin")):
        ok_post(admin, "/user/new", {"user_id": user, "user_role": role, "auto_create_key": False})
    members = [{"user_id": boss, "role": "admin"}, {"user_id": member}, {"user_id": root}]
    ok_post(admin, "/team/new", {"team_id": team_id, "organization_id": org, "members_with_roles": members})

    def key(user: str | None) -> str:
        return str(ok_post(admin, "/key/generate", {"team_id": team_id, "user_id": user})["key"])

    boss_client, member_key = _client(stack, key(boss)), key(member)
    member_client = _client(stack, member_key)
    yield Team(team_id, org, boss_client, member_client, member_key, key(root), key(None))
    boss_client.close()
    member_client.close()


def test_team_admin_may_not_manage_a_proxy_admins_key(team: Team) -> None:
    """Block, update, regenerate and delete of a proxy_admin's key in the team are 403 for a team admin."""
    target = team.proxy_admin_key
    for path, body in (
        ("/key/block", {"key": target}),
        ("/key/unblock", {"key": target}),
        ("/key/update", {"key": target, "tags": ["x"]}),
        ("/key/regenerate", {"key": target}),
        ("/key/delete", {"keys": [target]}),
    ):
        response = team.admin.post(path, json=body)
        assert response.status_code == 403, f"{path}: {response.text}"
    assert team.admin.post("/key/block", json={"key": team.member_key}).status_code == 200


def test_team_admin_may_not_lift_an_admins_block(team: Team, admin: httpx.Client) -> None:
    """A master-key block stays for a team admin; a block by the team admin it may lift."""
    ok_post(admin, "/key/block", {"key": team.ordinary_key})
    for path, body in (
        ("/key/unblock", {"key": team.ordinary_key}),
        ("/key/update", {"key": team.ordinary_key, "blocked": False}),
    ):
        response = team.admin.post(path, json=body)
        assert response.status_code == 403, f"{path}: {response.text}"
    assert ok_get(admin, "/key/info", key=team.ordinary_key)["info"]["blocked"] is True
    ok_post(admin, "/key/unblock", {"key": team.ordinary_key})
    ok_post(team.admin, "/key/block", {"key": team.ordinary_key})
    assert ok_post(team.admin, "/key/unblock", {"key": team.ordinary_key})["blocked"] is False


def test_plain_member_sees_only_its_own_keys_in_team_info(team: Team) -> None:
    """A plain member's /team/info lists its own key only; the team admin's lists all of them."""
    own = ok_get(team.member, "/team/info", team_id=team.team_id)["keys"]
    assert [k["user_id"] for k in own] == [ok_get(team.member, "/key/info")["info"]["user_id"]]
    assert len(ok_get(team.admin, "/team/info", team_id=team.team_id)["keys"]) == 4


def test_key_info_of_an_invisible_key_is_a_404_like_an_unknown_key(team: Team, admin: httpx.Client) -> None:
    """A team admin asking for another team's key gets the same 404 as for a key that does not exist."""
    other = unique("tal-other")
    ok_post(admin, "/team/new", {"team_id": other})
    foreign = ok_post(admin, "/key/generate", {"team_id": other})["key"]
    for client in (team.admin, team.member):
        seen = client.get("/key/info", params={"key": foreign})
        unknown = client.get("/key/info", params={"key": "sk-hydite-no-such-key-" + "0" * 32})
        assert seen.status_code == unknown.status_code == 404
        assert seen.json() == unknown.json()


def test_team_keys_are_in_the_team_organization(team: Team, admin: httpx.Client) -> None:
    """A team key gets its team's organization; another organization_id is a 400 naming it, for anyone."""
    other_org = unique("tal-org2")
    ok_post(admin, "/organization/new", {"organization_id": other_org})
    made = ok_post(team.admin, "/key/generate", {"team_id": team.team_id})
    assert made["organization_id"] == team.organization_id
    for client in (team.admin, admin):
        for path, body in (
            ("/key/generate", {"team_id": team.team_id, "organization_id": other_org}),
            ("/key/update", {"key": made["key"], "organization_id": other_org}),
        ):
            response = client.post(path, json=body)
            assert response.status_code == 400, f"{path}: {response.text}"
            assert response.json()["error"]["param"] == "organization_id"
    ok_post(admin, "/team/update", {"team_id": team.team_id, "organization_id": other_org})
    assert ok_get(admin, "/key/info", key=made["key"])["info"]["organization_id"] == other_org
