"""Concurrent admin read-modify-writes of one aggregate lose nothing (row locks, fixed lock order)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from hydite_common.devstack import Stack
from tests.harness import ok_get, ok_post, unique


def _post_all(stack: Stack, calls: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """Send every call at once, each from its own thread and connection, as the master key."""
    headers = {"Authorization": f"Bearer {stack.config.master_key}"}

    def send(call: tuple[str, dict[str, Any]]) -> httpx.Response:
        with httpx.Client(base_url=stack.base_url, headers=headers, timeout=60) as client:
            return client.post(call[0], json=call[1])

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(send, calls))


def test_concurrent_member_adds_keep_every_member(stack: Stack, admin: httpx.Client) -> None:
    """60 concurrent /team/member_add calls on one team leave 60 members, each user listing the team."""
    team = unique("conc-team")
    ok_post(admin, "/team/new", {"team_id": team})
    users = [unique("conc-user") for _ in range(60)]
    for user in users[:10]:
        ok_post(admin, "/user/new", {"user_id": user, "auto_create_key": False})
    responses = _post_all(
        stack, [("/team/member_add", {"team_id": team, "member": {"user_id": u}}) for u in users]
    )
    assert [r.status_code for r in responses] == [200] * 60, [r.text for r in responses if r.is_error]
    members = ok_get(admin, "/team/info", team_id=team)["team_info"]["members_with_roles"]
    assert sorted(m["user_id"] for m in members) == sorted(users)
    for user in users[:10]:
        assert team in ok_get(admin, "/user/info", user_id=user)["user_info"]["teams"]


def test_concurrent_key_updates_of_different_fields_keep_all(stack: Stack, admin: httpx.Client) -> None:
    """Concurrent /key/update calls, each setting another field of one key, all land."""
    key = ok_post(admin, "/key/generate", {})["key"]
    changes: list[dict[str, Any]] = [
        {"models": ["m-a", "m-b"]},
        {"tags": ["t1"]},
        {"rpm_limit": 7},
        {"tpm_limit": 700},
        {"max_budget": 3.5},
        {"key_alias": unique("conc-alias")},
        {"metadata": {"owner": "x"}},
        {"allowed_routes": ["/v1/chat/completions"]},
    ] * 3
    responses = _post_all(stack, [("/key/update", {"key": key, **change}) for change in changes])
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.is_error]
    info = ok_get(admin, "/key/info", key=key)["info"]
    for change in changes:
        for field, value in change.items():
            if field != "key_alias":
                assert info[field] == value, field
    assert info["key_alias"] is not None


def test_concurrent_user_teams_update_and_member_add_keep_both(stack: Stack, admin: httpx.Client) -> None:
    """/user/update of `teams` racing /team/member_add of the same user to other teams loses no membership."""
    user = unique("conc-user")
    ok_post(admin, "/user/new", {"user_id": user, "auto_create_key": False})
    by_user, by_team = [unique("conc-ut") for _ in range(5)], [unique("conc-tt") for _ in range(5)]
    for team in by_user + by_team:
        ok_post(admin, "/team/new", {"team_id": team})
    calls = [("/team/member_add", {"team_id": t, "member": {"user_id": user}}) for t in by_team]
    calls.insert(2, ("/user/update", {"user_id": user, "teams": by_user}))
    responses = _post_all(stack, calls)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.is_error]
    teams = set(ok_get(admin, "/user/info", user_id=user)["user_info"]["teams"])
    # The user update ran at some point among the member_adds: it keeps its teams, and every
    # member_add that ran after it is kept too; whatever the order, both sides agree.
    assert set(by_user) <= teams
    for team in by_user + by_team:
        members = {
            m["user_id"] for m in ok_get(admin, "/team/info", team_id=team)["team_info"]["members_with_roles"]
        }
        assert (user in members) == (team in teams), team
