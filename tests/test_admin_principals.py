"""Users, teams, organizations, customers and key groups through the admin API, enforced on the data plane."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from hydite_common.devstack import Stack
from tests.harness import ok_get, ok_post, synced, unique, wait_until

SYNC_TIMEOUT = 2.0
PROPAGATION_TIMEOUT = 1.0


def _client(stack: Stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)


def _outcome(client: openai.OpenAI, model: str) -> tuple[int, str | None]:
    """(HTTP status, error code) of one chat call through the SDK."""
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    except openai.APIStatusError as exc:
        return exc.status_code, exc.code
    return 200, None


def _wait_outcome(
    client: openai.OpenAI, model: str, expected: tuple[int, str | None], timeout: float
) -> None:
    wait_until(lambda: _outcome(client, model) == expected, timeout=timeout, interval=0.02)


def _key(admin: httpx.Client, **settings: Any) -> dict[str, Any]:
    body: dict[str, Any] = ok_post(admin, "/key/generate", settings)
    return body


@pytest.fixture(scope="module")
def models(stack: Stack, admin: httpx.Client) -> tuple[str, str]:
    """Two mock models (names unique to this module): one to allow, one to leave out."""
    names = (unique("allowed"), unique("denied"))
    for name in names:
        ok_post(admin, "/model/new", {"model_name": name, "litellm_params": {"model": "mock/anything"}})
    synced(admin, SYNC_TIMEOUT)
    return names


# ---------------------------------------------------------------- users


def test_user_new_info_update_list_delete(admin: httpx.Client) -> None:
    """A user goes through new, info, a partial update, the paged list and delete."""
    org = ok_post(admin, "/organization/new", {"organization_alias": "users-org"})["organization_id"]
    user_id = unique("user")
    created = ok_post(
        admin,
        "/user/new",
        {
            "user_id": user_id,
            "user_email": "ada@example.com",
            "user_role": "internal_user_viewer",
            "organization_id": org,
            "max_budget": 12.5,
            "metadata": {"cost_center": "R&D"},
            "auto_create_key": False,
        },
    )
    assert created["user_id"] == user_id and "key" not in created

    info = ok_get(admin, "/user/info", user_id=user_id)
    assert info["user_info"]["user_email"] == "ada@example.com"
    assert info["keys"] == []

    updated = ok_post(admin, "/user/update", {"user_id": user_id, "user_email": "grace@example.com"})
    assert updated["user_email"] == "grace@example.com"
    after = ok_get(admin, "/user/info", user_id=user_id)["user_info"]
    assert after["user_email"] == "grace@example.com"
    assert after["user_role"] == "internal_user_viewer"
    assert after["organization_id"] == org
    assert after["max_budget"] == 12.5
    assert after["metadata"] == {"cost_center": "R&D"}

    listed = ok_get(admin, "/user/list", organization_id=org)
    assert set(listed) == {"users", "total", "page", "page_size", "total_pages"}
    assert [u["user_id"] for u in listed["users"]] == [user_id]
    assert (listed["total"], listed["page"], listed["total_pages"]) == (1, 1, 1)

    deleted = ok_post(admin, "/user/delete", {"user_ids": [user_id]})
    assert deleted["deleted_users"] == [user_id] and deleted["deleted_keys"] == []
    assert admin.get("/user/info", params={"user_id": user_id}).status_code == 404


def test_user_list_pages_through_a_filtered_set(admin: httpx.Client) -> None:
    """/user/list splits the users of an organization into pages with total and total_pages."""
    org = ok_post(admin, "/organization/new", {})["organization_id"]
    ids = {
        ok_post(admin, "/user/new", {"organization_id": org, "auto_create_key": False})["user_id"]
        for _ in range(3)
    }
    first = ok_get(admin, "/user/list", organization_id=org, page=1, page_size=2)
    second = ok_get(admin, "/user/list", organization_id=org, page=2, page_size=2)
    assert (first["total"], first["page"], first["page_size"], first["total_pages"]) == (3, 1, 2, 2)
    assert (second["page"], len(first["users"]), len(second["users"])) == (2, 2, 1)
    assert {u["user_id"] for u in first["users"] + second["users"]} == ids


def test_user_new_creates_a_first_key_that_works_once_acked(
    stack: Stack, admin: httpx.Client, models: tuple[str, str]
) -> None:
    """/user/new returns a first key by default; it serves inference once the data plane has it."""
    allowed, _ = models
    created = ok_post(admin, "/user/new", {"key_alias": unique("first-key")})
    assert created["key"].startswith("sk-hydite-") and created["token"]
    keys = ok_get(admin, "/user/info", user_id=created["user_id"])["keys"]
    assert [k["token"] for k in keys] == [created["token"]]
    synced(admin, SYNC_TIMEOUT)
    assert _outcome(_client(stack, created["key"]), allowed) == (200, None)


def test_deleting_a_user_deletes_its_keys_on_the_data_plane(
    stack: Stack, admin: httpx.Client, models: tuple[str, str]
) -> None:
    """Deleting a user deletes every key it owns; those keys get 401 within about a second."""
    allowed, _ = models
    user = ok_post(admin, "/user/new", {})
    second = _key(admin, user_id=user["user_id"])
    synced(admin, SYNC_TIMEOUT)
    clients = [_client(stack, user["key"]), _client(stack, second["key"])]
    assert [_outcome(c, allowed) for c in clients] == [(200, None), (200, None)]

    deleted = ok_post(admin, "/user/delete", {"user_ids": [user["user_id"]]})
    assert deleted["deleted_keys"] == sorted([user["token"], second["token"]])
    for client in clients:
        _wait_outcome(client, allowed, (401, "invalid_api_key"), PROPAGATION_TIMEOUT)
    assert admin.get("/key/info", params={"key": second["token"]}).status_code == 404


# ---------------------------------------------------------------- teams


def test_team_new_info_update_list_delete(admin: httpx.Client, models: tuple[str, str]) -> None:
    """A team goes through new, info (with keys and team_info), a partial update, list and delete."""
    allowed, _ = models
    org = ok_post(admin, "/organization/new", {})["organization_id"]
    team_id = unique("team")
    ok_post(
        admin,
        "/team/new",
        {
            "team_id": team_id,
            "team_alias": "red",
            "organization_id": org,
            "models": [allowed],
            "max_budget": 3.0,
            "metadata": {"tier": "gold"},
        },
    )
    key = _key(admin, team_id=team_id)

    info = ok_get(admin, "/team/info", team_id=team_id)
    assert info["team_id"] == team_id
    assert info["team_info"]["team_alias"] == "red"
    assert [k["token"] for k in info["keys"]] == [key["token"]]

    updated = ok_post(admin, "/team/update", {"team_id": team_id, "team_alias": "blue"})
    assert updated["team_alias"] == "blue"
    after = ok_get(admin, "/team/info", team_id=team_id)["team_info"]
    assert after["team_alias"] == "blue"
    assert after["models"] == [allowed]
    assert after["organization_id"] == org
    assert after["max_budget"] == 3.0
    assert after["metadata"] == {"tier": "gold"}

    listed = ok_get(admin, "/team/list", organization_id=org)
    assert isinstance(listed, list) and [t["team_id"] for t in listed] == [team_id]

    deleted = ok_post(admin, "/team/delete", {"team_ids": [team_id]})
    assert deleted["deleted_teams"] == [team_id] and deleted["deleted_keys"] == [key["token"]]
    assert admin.get("/team/info", params={"team_id": team_id}).status_code == 404


def test_team_members_are_added_and_removed_and_users_follow(admin: httpx.Client) -> None:
    """member_add takes one member or a list (admin/user roles); the users' teams lists follow."""
    ada, bob = (ok_post(admin, "/user/new", {"auto_create_key": False})["user_id"] for _ in range(2))
    team_id = ok_post(admin, "/team/new", {})["team_id"]

    def members() -> dict[str, str]:
        team = ok_get(admin, "/team/info", team_id=team_id)["team_info"]
        return {m["user_id"]: m["role"] for m in team["members_with_roles"]}

    def teams_of(user_id: str) -> list[str]:
        teams: list[str] = ok_get(admin, "/user/info", user_id=user_id)["user_info"]["teams"]
        return teams

    ok_post(admin, "/team/member_add", {"team_id": team_id, "member": {"user_id": ada, "role": "admin"}})
    assert members() == {ada: "admin"}
    assert teams_of(ada) == [team_id]

    ok_post(
        admin,
        "/team/member_add",
        {"team_id": team_id, "member": [{"user_id": bob, "role": "user"}, {"user_id": ada, "role": "user"}]},
    )
    assert members() == {ada: "user", bob: "user"}
    assert teams_of(bob) == [team_id]

    ok_post(admin, "/team/member_delete", {"team_id": team_id, "user_id": ada})
    assert members() == {bob: "user"}
    assert teams_of(ada) == [] and teams_of(bob) == [team_id]
    again = admin.post("/team/member_delete", json={"team_id": team_id, "user_id": ada})
    assert again.status_code == 404, again.text

    bad_role = admin.post(
        "/team/member_add", json={"team_id": team_id, "member": {"user_id": ada, "role": "boss"}}
    )
    assert bad_role.status_code == 422, bad_role.text


def test_deleting_a_team_deletes_its_keys_on_the_data_plane(
    stack: Stack, admin: httpx.Client, models: tuple[str, str]
) -> None:
    """Deleting a team lists its keys as deleted; they get 401 on the data plane within about a second."""
    allowed, _ = models
    team_id = ok_post(admin, "/team/new", {})["team_id"]
    keys = [_key(admin, team_id=team_id) for _ in range(2)]
    synced(admin, SYNC_TIMEOUT)
    clients = [_client(stack, k["key"]) for k in keys]
    assert [_outcome(c, allowed) for c in clients] == [(200, None), (200, None)]

    deleted = ok_post(admin, "/team/delete", {"team_ids": [team_id]})
    assert deleted["deleted_keys"] == sorted(k["token"] for k in keys)
    for client in clients:
        _wait_outcome(client, allowed, (401, "invalid_api_key"), PROPAGATION_TIMEOUT)


def test_team_block_refuses_its_keys_and_unblock_restores_them(
    stack: Stack, admin: httpx.Client, models: tuple[str, str]
) -> None:
    """/team/block makes the team's keys get 403 team_blocked; /team/unblock lets them through again."""
    allowed, _ = models
    team_id = ok_post(admin, "/team/new", {})["team_id"]
    client = _client(stack, _key(admin, team_id=team_id)["key"])
    synced(admin, SYNC_TIMEOUT)
    assert _outcome(client, allowed) == (200, None)

    assert ok_post(admin, "/team/block", {"team_id": team_id})["blocked"] is True
    _wait_outcome(client, allowed, (403, "team_blocked"), PROPAGATION_TIMEOUT)

    assert ok_post(admin, "/team/unblock", {"team_id": team_id})["blocked"] is False
    _wait_outcome(client, allowed, (200, None), PROPAGATION_TIMEOUT)


def test_team_models_limit_the_keys_of_the_team(
    stack: Stack, admin: httpx.Client, models: tuple[str, str]
) -> None:
    """A key of a team whose models leave a model out gets 403 for it."""
    allowed, denied = models
    team_id = ok_post(admin, "/team/new", {"models": [allowed]})["team_id"]
    client = _client(stack, _key(admin, team_id=team_id)["key"])
    synced(admin, SYNC_TIMEOUT)
    assert _outcome(client, allowed) == (200, None)
    assert _outcome(client, denied) == (403, "permission_denied")


# ---------------------------------------------------------------- organizations


def test_organization_new_info_update_list_delete(admin: httpx.Client) -> None:
    """An organization goes through new, info, a partial update, list and delete."""
    org_id = unique("org")
    ok_post(
        admin,
        "/organization/new",
        {"organization_id": org_id, "organization_alias": "acme", "models": ["gpt-x"], "max_budget": 100.0},
    )
    assert ok_get(admin, "/organization/info", organization_id=org_id)["organization_alias"] == "acme"

    ok_post(admin, "/organization/update", {"organization_id": org_id, "organization_alias": "acme-2"})
    after = ok_get(admin, "/organization/info", organization_id=org_id)
    assert after["organization_alias"] == "acme-2"
    assert after["models"] == ["gpt-x"] and after["max_budget"] == 100.0

    listed = ok_get(admin, "/organization/list", page_size=1000)
    assert isinstance(listed, list) and org_id in {o["organization_id"] for o in listed}

    deleted = ok_post(admin, "/organization/delete", {"organization_ids": [org_id]})
    assert deleted["deleted_organizations"] == [org_id]
    assert admin.get("/organization/info", params={"organization_id": org_id}).status_code == 404


def test_organization_with_teams_cannot_be_deleted(admin: httpx.Client) -> None:
    """Deleting an organization that still has teams is a 409; once the team is gone it works."""
    org_id = ok_post(admin, "/organization/new", {})["organization_id"]
    team_id = ok_post(admin, "/team/new", {"organization_id": org_id})["team_id"]
    refused = admin.post("/organization/delete", json={"organization_ids": [org_id]})
    assert refused.status_code == 409, refused.text
    assert ok_get(admin, "/organization/info", organization_id=org_id)["organization_id"] == org_id

    ok_post(admin, "/team/delete", {"team_ids": [team_id]})
    ok_post(admin, "/organization/delete", {"organization_ids": [org_id]})


def test_organization_models_limit_its_keys(
    stack: Stack, admin: httpx.Client, models: tuple[str, str]
) -> None:
    """A key with an organization_id may call only the organization's models."""
    allowed, denied = models
    org_id = ok_post(admin, "/organization/new", {"models": [allowed]})["organization_id"]
    client = _client(stack, _key(admin, organization_id=org_id)["key"])
    synced(admin, SYNC_TIMEOUT)
    assert _outcome(client, allowed) == (200, None)
    assert _outcome(client, denied) == (403, "permission_denied")


# ---------------------------------------------------------------- customers


def test_customer_new_info_update_list_delete(admin: httpx.Client) -> None:
    """A customer (end user) goes through new, info, a partial update, list and delete by user_ids."""
    user_id = unique("end-user")
    created = ok_post(
        admin,
        "/customer/new",
        {"user_id": user_id, "alias": "shop", "allowed_models": ["gpt-x"], "max_budget": 5.0},
    )
    assert created["user_id"] == user_id
    assert ok_get(admin, "/customer/info", user_id=user_id)["alias"] == "shop"
    assert ok_get(admin, "/customer/info", end_user_id=user_id)["user_id"] == user_id

    ok_post(admin, "/customer/update", {"user_id": user_id, "alias": "store"})
    after = ok_get(admin, "/customer/info", user_id=user_id)
    assert after["alias"] == "store"
    assert after["allowed_models"] == ["gpt-x"] and after["max_budget"] == 5.0 and after["blocked"] is False

    listed = ok_get(admin, "/customer/list", page_size=1000)
    assert isinstance(listed, list) and user_id in {c["user_id"] for c in listed}

    deleted = ok_post(admin, "/customer/delete", {"user_ids": [user_id]})
    assert deleted["deleted_customers"] == [user_id]
    assert admin.get("/customer/info", params={"user_id": user_id}).status_code == 404


def test_customer_new_needs_a_user_id(admin: httpx.Client) -> None:
    """A customer has no generated id: /customer/new without user_id is a 400."""
    response = admin.post("/customer/new", json={"alias": "nameless"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "user_id"


def test_customer_block_and_unblock(admin: httpx.Client) -> None:
    """/customer/block and /customer/unblock take user_ids and flip each customer's blocked flag."""
    ids = [ok_post(admin, "/customer/new", {"user_id": unique("end-user")})["user_id"] for _ in range(2)]
    assert ok_post(admin, "/customer/block", {"user_ids": ids}) == {"blocked_users": ids}
    assert all(ok_get(admin, "/customer/info", user_id=i)["blocked"] is True for i in ids)
    assert ok_post(admin, "/customer/unblock", {"user_ids": ids[:1]}) == {"unblocked_users": ids[:1]}
    assert [ok_get(admin, "/customer/info", user_id=i)["blocked"] for i in ids] == [False, True]
    missing = admin.post("/customer/block", json={"user_ids": [unique("nobody")]})
    assert missing.status_code == 404, missing.text


def _customer_outcome(client: openai.OpenAI, model: str, customer: str) -> tuple[int, str | None]:
    try:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], user=customer
        )
    except openai.APIStatusError as exc:
        return exc.status_code, exc.code
    return 200, None


def test_customer_block_and_allowed_models_apply_on_the_data_plane(
    stack: Stack, admin: httpx.Client, models: tuple[str, str]
) -> None:
    """A request whose `user` is a blocked customer gets 403 customer_blocked; allowed_models limit models."""
    allowed, denied = models
    customer = ok_post(admin, "/customer/new", {"user_id": unique("end-user"), "allowed_models": [allowed]})[
        "user_id"
    ]
    client = _client(stack, _key(admin)["key"])
    synced(admin, SYNC_TIMEOUT)
    assert _customer_outcome(client, allowed, customer) == (200, None)
    assert _customer_outcome(client, denied, customer) == (403, "permission_denied")

    ok_post(admin, "/customer/block", {"user_ids": [customer]})
    wait_until(
        lambda: _customer_outcome(client, allowed, customer) == (403, "customer_blocked"),
        timeout=PROPAGATION_TIMEOUT,
        interval=0.02,
    )
    assert _outcome(client, allowed) == (200, None)
    ok_post(admin, "/customer/unblock", {"user_ids": [customer]})
    wait_until(
        lambda: _customer_outcome(client, allowed, customer) == (200, None),
        timeout=PROPAGATION_TIMEOUT,
        interval=0.02,
    )


def test_customer_list_returns_every_customer(admin: httpx.Client) -> None:
    """/customer/list (a plain list, like LiteLLM's) returns every customer, not only the first 25."""
    prefix = unique("many")
    ids = {ok_post(admin, "/customer/new", {"user_id": f"{prefix}-{i:02d}"})["user_id"] for i in range(26)}
    listed = {c["user_id"] for c in ok_get(admin, "/customer/list")}
    assert ids <= listed


# ---------------------------------------------------------------- key groups


def test_key_group_new_info_update_list_delete(admin: httpx.Client) -> None:
    """A key group goes through new, info, a partial update, list and delete by names."""
    name = unique("group")
    ok_post(admin, "/group/new", {"name": name, "models": ["a", "b"], "routing_strategy": "least-busy"})
    assert ok_get(admin, "/group/info", name=name)["models"] == ["a", "b"]

    ok_post(admin, "/group/update", {"name": name, "models": ["c"]})
    after = ok_get(admin, "/group/info", name=name)
    assert after["models"] == ["c"] and after["routing_strategy"] == "least-busy"

    listed = ok_get(admin, "/group/list", page_size=1000)
    assert isinstance(listed, list) and name in {g["name"] for g in listed}

    assert ok_post(admin, "/group/delete", {"names": [name]})["deleted_groups"] == [name]
    assert admin.get("/group/info", params={"name": name}).status_code == 404


def test_key_group_in_use_cannot_be_deleted(admin: httpx.Client) -> None:
    """A key group that a key or a team still names is a 409 on delete."""
    name = ok_post(admin, "/group/new", {"name": unique("group")})["name"]
    token = _key(admin, key_group=name)["token"]
    team_id = ok_post(admin, "/team/new", {"key_group": name})["team_id"]
    cleanups = [("/key/delete", {"keys": [token]}), ("/team/delete", {"team_ids": [team_id]})]
    for path, body in cleanups:
        refused = admin.post("/group/delete", json={"names": [name]})
        assert refused.status_code == 409, refused.text
        assert ok_get(admin, "/group/info", name=name)["name"] == name
        ok_post(admin, path, body)
    ok_post(admin, "/group/delete", {"names": [name]})


def test_key_group_models_limit_its_keys_and_a_key_reads_its_group(
    stack: Stack, admin: httpx.Client, models: tuple[str, str]
) -> None:
    """A key of a group may call only the group's models, and /group/info with that key returns the group."""
    allowed, denied = models
    name = ok_post(admin, "/group/new", {"name": unique("group"), "models": [allowed]})["name"]
    key = _key(admin, key_group=name)["key"]
    client = _client(stack, key)
    synced(admin, SYNC_TIMEOUT)
    assert _outcome(client, allowed) == (200, None)
    assert _outcome(client, denied) == (403, "permission_denied")

    own = httpx.get(stack.base_url + "/group/info", headers={"Authorization": f"Bearer {key}"})
    assert own.status_code == 200, own.text
    assert own.json()["name"] == name and own.json()["models"] == [allowed]


# ---------------------------------------------------------------- regressions


def test_deleting_an_organization_never_widens_its_keys_access(
    stack: Stack, admin: httpx.Client, models: tuple[str, str]
) -> None:
    """Deleting an organization that keys still name must not let those keys call models it excluded."""
    allowed, denied = models
    org_id = ok_post(admin, "/organization/new", {"models": [allowed]})["organization_id"]
    client = _client(stack, _key(admin, organization_id=org_id)["key"])
    synced(admin, SYNC_TIMEOUT)
    assert _outcome(client, denied) == (403, "permission_denied")

    admin.post("/organization/delete", json={"organization_ids": [org_id]})
    synced(admin, SYNC_TIMEOUT)
    assert _outcome(client, denied)[0] in (401, 403)


def test_deleting_a_user_removes_it_from_its_teams(admin: httpx.Client) -> None:
    """After /user/delete the user is no longer a member (let alone an admin) of any team."""
    user_id = ok_post(admin, "/user/new", {"auto_create_key": False})["user_id"]
    team_id = ok_post(admin, "/team/new", {})["team_id"]
    ok_post(admin, "/team/member_add", {"team_id": team_id, "member": {"user_id": user_id, "role": "admin"}})
    ok_post(admin, "/user/delete", {"user_ids": [user_id]})
    members = ok_get(admin, "/team/info", team_id=team_id)["team_info"]["members_with_roles"]
    assert user_id not in {m["user_id"] for m in members}


def test_team_new_with_members_updates_their_teams(admin: httpx.Client) -> None:
    """Members given to /team/new see the team in their user `teams` list, as with /team/member_add."""
    user_id = ok_post(admin, "/user/new", {"auto_create_key": False})["user_id"]
    team_id = ok_post(admin, "/team/new", {"members_with_roles": [{"user_id": user_id, "role": "user"}]})[
        "team_id"
    ]
    assert ok_get(admin, "/user/info", user_id=user_id)["user_info"]["teams"] == [team_id]
