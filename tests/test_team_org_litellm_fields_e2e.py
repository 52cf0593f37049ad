"""Teams and organizations take LiteLLM's own request fields, members by user_id or user_email,
and LiteLLM's member routes, through the data plane's base URL (plain HTTP; the team's model
aliases are called with the openai SDK). Every check runs right after the admin call returns."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FakeOpenAI
from tests.harness import deploy_fake, ok_get, ok_post, unique


def _client(stack: Stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)


def _status(client: openai.OpenAI, model: str) -> int:
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def _key(admin: httpx.Client, **settings: Any) -> str:
    return str(ok_post(admin, "/key/generate", settings)["key"])


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


# ---------------------------------------------------------------- A: LiteLLM's team and org fields


def test_team_new_takes_every_litellm_field_and_shows_back_what_it_keeps(admin: httpx.Client) -> None:
    """/team/new with LiteLLM's NewTeamRequest fields (nulls included) is a 200; what Hydite does
    not act on is kept and shown by /team/new, /team/info and /team/list."""
    team_id = unique("lt-team")
    body = {
        "team_id": team_id, "team_alias": "litellm team", "models": None, "max_budget": None,
        "members_with_roles": [], "admins": [], "members": [], "team_member_permissions": ["/key/generate"],
        "metadata": {"owner": "ops"}, "tpm_limit": 1000, "rpm_limit": None, "budget_duration": "30d",
        "blocked": False, "router_settings": {"routing_strategy": "simple-shuffle"}, "access_group_ids": None,
        "model_aliases": {"cheap": "gpt-4o-mini"}, "tags": ["prod"], "guardrails": ["pii"],
        "policies": None, "prompts": None, "object_permission": {"vector_stores": ["vs-1"]},
        "allowed_passthrough_routes": ["/anthropic"], "secret_manager_settings": None,
        "model_rpm_limit": {"gpt-4o-mini": 10}, "model_tpm_limit": None,
        "rpm_limit_type": "best_effort_throughput", "tpm_limit_type": None, "team_member_budget": 5.0,
        "team_member_rpm_limit": 7,
        "team_member_tpm_limit": None, "team_member_key_duration": "7d", "team_member_budget_duration": "1mo",
        "allowed_vector_store_indexes": [{"index_name": "docs", "index_permissions": ["read"]}],
        "enforced_batch_output_expires_after": None, "enforced_file_expires_after": {"anchor": "created_at"},
    }  # fmt: skip
    created = ok_post(admin, "/team/new", body)
    kept = {
        "team_member_permissions": ["/key/generate"],
        "router_settings": {"routing_strategy": "simple-shuffle"}, "tags": ["prod"], "guardrails": ["pii"],
        "object_permission": {"vector_stores": ["vs-1"]},
        "allowed_passthrough_routes": ["/anthropic"], "rpm_limit_type": "best_effort_throughput",
        "team_member_budget": 5.0, "team_member_rpm_limit": 7, "team_member_key_duration": "7d",
        "team_member_budget_duration": "1mo", "enforced_file_expires_after": {"anchor": "created_at"},
        "allowed_vector_store_indexes": [{"index_name": "docs", "index_permissions": ["read"]}],
    }  # fmt: skip
    info = ok_get(admin, "/team/info", team_id=team_id)
    listed = next(t for t in ok_get(admin, "/team/list") if t["team_id"] == team_id)
    for shown in (created, info["team_info"], listed):
        assert {k: shown.get(k) for k in kept} == kept
        assert shown["models"] == [] and shown["max_budget"] is None and shown["rpm_limit"] is None
        assert shown["model_aliases"] == {"cheap": "gpt-4o-mini"} and shown["tpm_limit"] == 1000
        assert "policies" not in shown and "extra_fields" not in shown


def test_team_update_null_means_not_set(admin: httpx.Client) -> None:
    """On /team/update, null leaves a list or map as it is, clears a number, and unsets a kept
    LiteLLM field; LiteLLM's answer shape {team_id, data} comes with the team's own fields."""
    team_id = unique("lt-null")
    ok_post(
        admin,
        "/team/new",
        {"team_id": team_id, "models": ["m1"], "max_budget": 3.0, "tags": ["a"], "model_aliases": {"x": "y"}},
    )
    updated = ok_post(
        admin,
        "/team/update",
        {"team_id": team_id, "models": None, "max_budget": None, "tags": None, "model_aliases": None,
         "team_alias": "renamed"},
    )  # fmt: skip
    assert updated["data"]["team_alias"] == "renamed" == updated["team_alias"]
    team = ok_get(admin, "/team/info", team_id=team_id)["team_info"]
    assert team["models"] == ["m1"] and team["model_aliases"] == {"x": "y"}
    assert team["max_budget"] is None and "tags" not in team


def test_unknown_and_unbounded_team_and_org_fields_are_422s_naming_the_field(admin: httpx.Client) -> None:
    """A field neither LiteLLM nor Hydite defines, or a value past the bounds, is still a 422 naming it."""
    cases = [
        ("/team/new", {"team_alias": "x", "model_alias": {"a": "b"}}, "model_alias"),
        ("/team/new", {"team_member_budget": -1}, "team_member_budget"),
        ("/team/new", {"router_settings": {"k": "\x00"}}, "router_settings"),
        ("/team/new", {"model_aliases": {"a": "b" * 300}}, "model_aliases.a"),
        ("/team/new", {"rpm_limit_type": "dynamic"}, "rpm_limit_type"),
        ("/team/new", {"team_member_key_duration": "soon"}, "team_member_key_duration"),
        ("/team/new", {"members_with_roles": [{"role": "user"}]}, "members_with_roles.0.user_id"),
        ("/organization/new", {"organization_alias": "o", "budgetid": "b"}, "budgetid"),
        ("/organization/new", {"object_permission": {"m": "\x00"}}, "object_permission"),
        ("/team/member_update", {"team_id": "t", "user_id": "u", "tpm_limit": 2**63}, "tpm_limit"),
    ]
    for path, body, param in cases:
        assert _error(admin.post(path, json=body), 422)["param"] == param, body


def test_organization_new_and_update_take_litellm_fields(admin: httpx.Client) -> None:
    """/organization/new with NewOrganizationRequest's fields and PATCH /organization/update with
    LiteLLM_OrganizationTableUpdate's keep what Hydite does not act on and show it back."""
    org = ok_post(
        admin,
        "/organization/new",
        {
            "organization_alias": "acme", "models": None, "max_budget": None, "budget_id": "b-acme",
            "soft_budget": 1.0, "max_parallel_requests": 4, "tpm_limit": 100, "rpm_limit": 10,
            "model_max_budget": {"gpt-4o": 1.5}, "budget_duration": "1d", "metadata": {"tier": "gold"},
            "model_rpm_limit": None, "model_tpm_limit": None, "object_permission": {"mcp_servers": ["s1"]},
        },
    )  # fmt: skip
    org_id = org["organization_id"]
    assert org["models"] == [] and org["budget_id"] == "b-acme" and org["model_max_budget"] == {"gpt-4o": 1.5}
    assert org["litellm_budget_table"]["max_parallel_requests"] == 4
    patched = admin.patch(
        "/organization/update",
        json={"organization_id": org_id, "organization_alias": "acme2", "spend": 0.5, "updated_by": "ops",
              "models": ["m"], "budget_id": None},
    )  # fmt: skip
    assert patched.status_code == 200, patched.text
    info = ok_get(admin, "/organization/info", organization_id=org_id)
    assert info["organization_alias"] == "acme2" and info["models"] == ["m"] and info["spend"] == 0.5
    assert "budget_id" not in info and info["litellm_budget_table"]["budget_id"] is None


def test_team_model_aliases_serve_the_teams_keys(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """A team's model_aliases send its keys' calls of the alias to the model it names, from the
    very next request; other keys do not know the alias, and an alias never passes an allowlist
    that refuses the model it names."""
    _, base = fake_openai
    target, other = unique("alias-target"), unique("alias-other")
    target_id = deploy_fake(admin, base, target, "gpt-4o-mini")
    other_id = deploy_fake(admin, base, other, "gpt-4o-mini")
    team_id = ok_post(admin, "/team/new", {"model_aliases": {"cheap-model": target}})["team_id"]
    team_client = _client(stack, _key(admin, team_id=team_id, models=[target, other]))
    raw = team_client.chat.completions.with_raw_response.create(
        model="cheap-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-hydite-deployment"] == target_id
    assert _status(_client(stack, _key(admin)), "cheap-model") == 404
    assert _status(_client(stack, _key(admin, team_id=team_id, models=[other])), "cheap-model") == 403

    ok_post(admin, "/team/update", {"team_id": team_id, "model_aliases": {"cheap-model": other}})
    raw = team_client.chat.completions.with_raw_response.create(
        model="cheap-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-hydite-deployment"] == other_id


# ---------------------------------------------------------------- B: team members by email


def test_members_named_by_email_are_found_or_created(admin: httpx.Client) -> None:
    """members_with_roles and /team/member_add (single and list) take members by user_email alone:
    the user with that email, else a new internal user; the users' `teams` follow."""
    existing = ok_post(
        admin, "/user/new", {"user_email": f"{unique('ada')}@example.com", "auto_create_key": False}
    )
    new_email = f"{unique('grace')}@example.com"
    team = ok_post(
        admin,
        "/team/new",
        {"members_with_roles": [{"role": "admin", "user_email": existing["user_email"].upper()},
                                {"role": "user", "user_email": new_email}]},
    )  # fmt: skip
    by_email = {m["user_email"].lower(): m for m in team["members_with_roles"]}
    assert by_email[existing["user_email"].lower()]["user_id"] == existing["user_id"]
    created_id = by_email[new_email]["user_id"]
    created = ok_get(admin, "/user/info", user_id=created_id)["user_info"]
    assert created["user_email"] == new_email and created["teams"] == [team["team_id"]]
    assert created["user_role"] == "internal_user"

    one, two = f"{unique('one')}@example.com", f"{unique('two')}@example.com"
    added = ok_post(
        admin, "/team/member_add", {"team_id": team["team_id"], "member": {"role": "user", "user_email": one}}
    )
    added = ok_post(
        admin,
        "/team/member_add",
        {"team_id": team["team_id"], "max_budget_in_team": 2.5,
         "member": [{"role": "user", "user_email": two}, {"role": "user", "user_email": one}]},
    )  # fmt: skip
    assert {u["user_email"] for u in added["updated_users"]} == {one, two}
    assert {m["litellm_budget_table"]["max_budget"] for m in added["updated_team_memberships"]} == {2.5}
    members = ok_get(admin, "/team/info", team_id=team["team_id"])["team_info"]["members_with_roles"]
    assert len(members) == 4 and all(set(m) == {"user_id", "user_email", "role"} for m in members)


def test_an_email_several_users_have_is_a_400(admin: httpx.Client) -> None:
    """A member email two users share names no one user: a 400 asking for user_id, nothing changes."""
    email = f"{unique('twin')}@example.com"
    for _ in range(2):
        ok_post(admin, "/user/new", {"user_email": email, "auto_create_key": False})
    team_id = ok_post(admin, "/team/new", {})["team_id"]
    error = _error(
        admin.post("/team/member_add", json={"team_id": team_id, "member": {"user_email": email}}), 400
    )
    assert error["param"] == "user_email"
    assert ok_get(admin, "/team/info", team_id=team_id)["team_info"]["members_with_roles"] == []


def test_member_delete_and_update_take_user_email(admin: httpx.Client) -> None:
    """/team/member_delete and /team/member_update name the member by user_id or user_email;
    member_update changes role, budget and limits in the team (kept, shown in team_memberships)."""
    email = f"{unique('m')}@example.com"
    team_id = ok_post(admin, "/team/new", {"members_with_roles": [{"user_email": email}]})["team_id"]
    updated = ok_post(
        admin,
        "/team/member_update",
        {"team_id": team_id, "user_email": email, "role": "admin", "max_budget_in_team": 0.5,
         "tpm_limit": 100, "rpm_limit": 5},
    )  # fmt: skip
    assert updated["team_id"] == team_id and updated["user_email"] == email
    assert (updated["role"], updated["max_budget_in_team"], updated["tpm_limit"], updated["rpm_limit"]) == (
        "admin", 0.5, 100, 5,
    )  # fmt: skip
    info = ok_get(admin, "/team/info", team_id=team_id)
    [membership] = info["team_memberships"]
    assert membership["user_id"] == updated["user_id"]
    budget = membership["litellm_budget_table"]
    assert (budget["max_budget"], budget["tpm_limit"], budget["rpm_limit"]) == (0.5, 100, 5)
    assert info["team_info"]["members_with_roles"][0]["role"] == "admin"

    _error(admin.post("/team/member_update", json={"team_id": team_id, "user_id": "nobody"}), 404)
    deleted = ok_post(admin, "/team/member_delete", {"team_id": team_id, "user_email": email.upper()})
    assert deleted["members_with_roles"] == []
    assert ok_get(admin, "/user/info", user_id=updated["user_id"])["user_info"]["teams"] == []


def test_a_team_admin_updates_members_of_its_team_only(stack: Stack, admin: httpx.Client) -> None:
    """A team admin may call /team/member_update for its own team; for another team it is a 403."""
    boss = ok_post(admin, "/user/new", {"auto_create_key": False})["user_id"]
    mine = ok_post(
        admin, "/team/new", {"members_with_roles": [{"user_id": boss, "role": "admin"}, {"user_id": "m1"}]}
    )
    theirs = ok_post(admin, "/team/new", {"members_with_roles": [{"user_id": "m1"}]})
    key = _key(admin, user_id=boss, team_id=mine["team_id"])
    with httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {key}"}) as boss_client:
        ok_post(
            boss_client, "/team/member_update", {"team_id": mine["team_id"], "user_id": "m1", "role": "admin"}
        )
        _error(
            boss_client.post("/team/member_update", json={"team_id": theirs["team_id"], "user_id": "m1"}), 403
        )


# ---------------------------------------------------------------- C: organization members


def test_organization_members_add_update_delete_and_show(stack: Stack, admin: httpx.Client) -> None:
    """LiteLLM's organization member routes (member_update as PATCH, member_delete as DELETE) by
    user_id or user_email; /organization/info and /organization/list show members and budget."""
    org_id = ok_post(admin, "/organization/new", {"organization_alias": unique("org"), "max_budget": 9.0})[
        "organization_id"
    ]
    user = ok_post(admin, "/user/new", {"user_email": f"{unique('u')}@example.com", "auto_create_key": False})
    email = f"{unique('new')}@example.com"
    added = ok_post(
        admin,
        "/organization/member_add",
        {"organization_id": org_id, "max_budget_in_organization": 3.0,
         "member": [{"role": "org_admin", "user_id": user["user_id"]},
                    {"role": "internal_user", "user_email": email}]},
    )  # fmt: skip
    assert added["organization_id"] == org_id
    assert {u["user_id"] for u in added["updated_users"]} >= {user["user_id"]}
    memberships = {m["user_id"]: m for m in added["updated_organization_memberships"]}
    assert memberships[user["user_id"]]["user_role"] == "org_admin"
    assert memberships[user["user_id"]]["litellm_budget_table"] == {"max_budget": 3.0}
    new_user = next(m for m in memberships.values() if m["user_email"] == email)

    patched = admin.patch(
        "/organization/member_update",
        json={"organization_id": org_id, "user_email": email, "role": "internal_user_viewer"},
    )
    assert patched.status_code == 200 and patched.json()["user_role"] == "internal_user_viewer", patched.text
    info = ok_get(admin, "/organization/info", organization_id=org_id)
    listed = next(o for o in ok_get(admin, "/organization/list") if o["organization_id"] == org_id)
    for shown in (info, listed):
        assert shown["litellm_budget_table"]["max_budget"] == 9.0
        assert {m["user_id"]: m["user_role"] for m in shown["members"]} == {
            user["user_id"]: "org_admin", new_user["user_id"]: "internal_user_viewer",
        }  # fmt: skip
    assert info["teams"] == []

    # The org_admin may manage the members itself; a plain key may not.
    org_admin_key = _key(admin, user_id=user["user_id"])
    with httpx.Client(
        base_url=stack.base_url, headers={"Authorization": f"Bearer {org_admin_key}"}
    ) as client:
        removed = client.request(
            "DELETE",
            "/organization/member_delete",
            json={"organization_id": org_id, "user_id": new_user["user_id"]},
        )
        assert removed.status_code == 200 and removed.json()["user_id"] == new_user["user_id"], removed.text
    with httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {_key(admin)}"}) as client:
        body = {"organization_id": org_id, "member": {"role": "org_admin", "user_id": "intruder"}}
        _error(client.post("/organization/member_add", json=body), 403)
    assert [m["user_id"] for m in ok_get(admin, "/organization/info", organization_id=org_id)["members"]] == [
        user["user_id"]
    ]
    _error(
        admin.post("/organization/member_update", json={"organization_id": org_id, "user_id": "nobody"}), 404
    )
    _error(
        admin.post(
            "/organization/member_add",
            json={"organization_id": org_id, "member": {"role": "admin", "user_id": "x"}},
        ),
        422,
    )


def test_organization_delete_answers_delete_as_well_as_post(admin: httpx.Client) -> None:
    """DELETE /organization/delete deletes (LiteLLM's method), like POST."""
    for method in ("DELETE", "POST"):
        org_id = ok_post(admin, "/organization/new", {"organization_alias": "gone"})["organization_id"]
        response = admin.request(method, "/organization/delete", json={"organization_ids": [org_id]})
        assert response.status_code == 200, response.text
        assert response.json()["deleted_organizations"] == [org_id]
        assert admin.get("/organization/info", params={"organization_id": org_id}).status_code == 404


@pytest.mark.parametrize("path", ["/organization/member_add", "/team/member_add"])
def test_member_add_to_a_missing_entity_is_a_404(admin: httpx.Client, path: str) -> None:
    """Adding a member to a team or organization that does not exist is a 404."""
    body: dict[str, Any] = {"member": {"user_email": "nobody@example.com"}}
    body["team_id" if path.startswith("/team") else "organization_id"] = unique("missing")
    _error(admin.post(path, json=body), 404)
