"""A key falls under the whole owner chain: its user's allowlist, and the organization of its team
(or user) when it names none itself, with that organization's allowlist, limits and block."""

from __future__ import annotations

import httpx

from hydite_common.devstack import Stack
from tests.harness import ok_post, synced, unique, wait_until


def _chat(stack: Stack, key: str, model: str) -> httpx.Response:
    return httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )


def _mock_model(admin: httpx.Client) -> str:
    name = unique("chain")
    ok_post(admin, "/model/new", {"model_name": name, "litellm_params": {"model": "mock/x"}})
    return name


def test_a_team_key_is_held_to_its_teams_organization(stack: Stack, admin: httpx.Client) -> None:
    """The team's organization allows one model and one request a minute; its block refuses the key."""
    allowed, other = _mock_model(admin), _mock_model(admin)
    org = unique("org")
    ok_post(admin, "/organization/new", {"organization_id": org, "models": [allowed], "rpm_limit": 1})
    team = unique("team")
    ok_post(admin, "/team/new", {"team_id": team, "organization_id": org})
    key = ok_post(admin, "/key/generate", {"team_id": team})["key"]
    synced(admin)
    denied = _chat(stack, key, other)
    assert denied.status_code == 403 and denied.json()["error"]["param"] == "model"
    assert _chat(stack, key, allowed).status_code == 200
    limited = _chat(stack, key, allowed)
    assert limited.status_code == 429 and "organization" in limited.json()["error"]["message"]
    ok_post(admin, "/organization/update", {"organization_id": org, "blocked": True})
    synced(admin)
    blocked = _chat(stack, key, allowed)
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "organization_blocked"


def test_a_users_models_hold_for_every_key_of_the_user(stack: Stack, admin: httpx.Client) -> None:
    """A user limited to one model cannot reach another through a key that names no models."""
    allowed, other = _mock_model(admin), _mock_model(admin)
    user = unique("user")
    ok_post(admin, "/user/new", {"user_id": user, "models": [allowed], "auto_create_key": False})
    key = ok_post(admin, "/key/generate", {"user_id": user})["key"]
    synced(admin)
    assert _chat(stack, key, allowed).status_code == 200
    assert _chat(stack, key, other).status_code == 403


def test_usage_is_attributed_to_the_organization_of_the_chain(stack: Stack, admin: httpx.Client) -> None:
    """A team key's calls land in the spend logs under its team's organization."""
    model = _mock_model(admin)
    org, team = unique("org"), unique("team")
    ok_post(admin, "/organization/new", {"organization_id": org})
    ok_post(admin, "/team/new", {"team_id": team, "organization_id": org})
    key = ok_post(admin, "/key/generate", {"team_id": team})["key"]
    synced(admin)
    request_id = _chat(stack, key, model).headers["x-request-id"]

    def logged() -> object:
        rows = admin.get("/spend/logs", params={"request_id": request_id}).json()
        return rows[0] if rows else None

    row = wait_until(logged, timeout=15, interval=0.1)
    assert row["organization_id"] == org and row["team_id"] == team
