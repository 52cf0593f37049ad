"""The audit trail: each admin write in GET /audit with actor, action, object, before/after, no secrets."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from hydite_common.devstack import Stack
from tests.harness import ok_get, ok_post, unique

PROVIDER_KEY = "sk-provider-audit-secret-0001"
NEW_PROVIDER_KEY = "sk-provider-audit-secret-0002"


def _entries(admin: httpx.Client, object_type: str, object_id: str) -> list[dict[str, Any]]:
    """The audit entries of one object, newest first."""
    entries: list[dict[str, Any]] = ok_get(
        admin, "/audit", object_type=object_type, object_id=object_id, page_size=1000
    )["entries"]
    return entries


def _actions(admin: httpx.Client, object_type: str, object_id: str) -> list[str]:
    return [e["action"] for e in _entries(admin, object_type, object_id)]


def _whole_audit(admin: httpx.Client) -> str:
    """Every page of the audit trail, as the raw JSON text the API returned."""
    pages: list[str] = []
    page = 1
    while True:
        response = admin.get("/audit", params={"page": page, "page_size": 1000})
        assert response.status_code == 200, response.text
        pages.append(response.text)
        if len(response.json()["entries"]) < 1000:
            return "\n".join(pages)
        page += 1


def test_key_writes_are_audited_with_before_and_after(admin: httpx.Client) -> None:
    """generate, update, block, unblock, regenerate and delete of a key each leave an entry."""
    alias, new_alias = unique("alias"), unique("alias")
    key = ok_post(admin, "/key/generate", {"key_alias": alias})
    token = key["token"]
    ok_post(admin, "/key/update", {"key": key["key"], "key_alias": new_alias})
    ok_post(admin, "/key/block", {"key": token})
    ok_post(admin, "/key/unblock", {"key": token})

    entries = _entries(admin, "key", token)
    assert [e["action"] for e in entries] == ["key.unblock", "key.block", "key.update", "key.generate"]
    assert all(e["actor"] == "master_key" and e["object_id"] == token for e in entries)
    unblock, block, update, generate = entries
    assert generate["before"] is None and generate["after"]["key_alias"] == alias
    assert (update["before"]["key_alias"], update["after"]["key_alias"]) == (alias, new_alias)
    assert (block["before"]["blocked"], block["after"]["blocked"]) == (False, True)
    assert (unblock["before"]["blocked"], unblock["after"]["blocked"]) == (True, False)
    assert entries[0]["id"] > entries[-1]["id"] and all(e["ts"] for e in entries)

    fresh = ok_post(admin, "/key/regenerate", {"key": token})
    assert _actions(admin, "key", fresh["token"]) == ["key.regenerate"]
    regenerate = _entries(admin, "key", fresh["token"])[0]
    assert regenerate["before"]["token"] == token and regenerate["after"]["token"] == fresh["token"]
    ok_post(admin, "/key/delete", {"keys": [fresh["token"]]})
    delete = _entries(admin, "key", fresh["token"])[0]
    assert delete["action"] == "key.delete" and delete["after"] is None
    assert delete["before"]["key_alias"] == new_alias


def test_team_writes_are_audited_with_before_and_after(admin: httpx.Client) -> None:
    """new, update, member_add, member_delete, block, unblock and delete of a team each leave an entry."""
    user_id = ok_post(admin, "/user/new", {"auto_create_key": False})["user_id"]
    team_id = ok_post(admin, "/team/new", {"team_alias": "before"})["team_id"]
    ok_post(admin, "/team/update", {"team_id": team_id, "team_alias": "after"})
    ok_post(admin, "/team/member_add", {"team_id": team_id, "member": {"user_id": user_id, "role": "admin"}})
    ok_post(admin, "/team/member_delete", {"team_id": team_id, "user_id": user_id})
    ok_post(admin, "/team/block", {"team_id": team_id})
    ok_post(admin, "/team/unblock", {"team_id": team_id})
    ok_post(admin, "/team/delete", {"team_ids": [team_id]})

    entries = _entries(admin, "team", team_id)
    assert [e["action"] for e in entries] == [
        "team.delete",
        "team.unblock",
        "team.block",
        "team.member_delete",
        "team.member_add",
        "team.update",
        "team.new",
    ]
    assert all(e["actor"] == "master_key" and e["object_type"] == "team" for e in entries)
    by_action = {e["action"]: e for e in entries}
    assert by_action["team.new"]["before"] is None
    assert by_action["team.new"]["after"]["team_alias"] == "before"
    update = by_action["team.update"]
    assert (update["before"]["team_alias"], update["after"]["team_alias"]) == ("before", "after")
    added = by_action["team.member_add"]
    assert added["before"]["members_with_roles"] == []
    assert added["after"]["members_with_roles"] == [{"user_id": user_id, "user_email": None, "role": "admin"}]
    assert by_action["team.member_delete"]["after"]["members_with_roles"] == []
    assert by_action["team.block"]["after"]["blocked"] is True
    delete = by_action["team.delete"]
    assert delete["before"]["team_alias"] == "after" and delete["after"] is None


@pytest.mark.parametrize(
    ("kind", "path", "id_field", "extra"),
    [
        ("user", "/user", "user_id", {"auto_create_key": False}),
        ("organization", "/organization", "organization_id", {}),
        ("customer", "/customer", "user_id", {}),
        ("group", "/group", "name", {}),
    ],
)
def test_other_principal_writes_are_audited(
    admin: httpx.Client, kind: str, path: str, id_field: str, extra: dict[str, Any]
) -> None:
    """new, update and delete of users, organizations, customers and key groups each leave an entry."""
    object_id = unique(kind)
    ok_post(admin, f"{path}/new", {id_field: object_id, "metadata": {"v": 1}, **extra})
    ok_post(admin, f"{path}/update", {id_field: object_id, "metadata": {"v": 2}})
    ok_post(admin, f"{path}/delete", {f"{id_field}s": [object_id]})
    entries = _entries(admin, kind, object_id)
    assert [e["action"] for e in entries] == [f"{kind}.delete", f"{kind}.update", f"{kind}.new"]
    delete, update, new = entries
    assert new["before"] is None and new["after"]["metadata"] == {"v": 1}
    assert (update["before"]["metadata"], update["after"]["metadata"]) == ({"v": 1}, {"v": 2})
    assert delete["before"]["metadata"] == {"v": 2} and delete["after"] is None
    assert {e["actor"] for e in entries} == {"master_key"}


def test_customer_block_and_unblock_are_audited(admin: httpx.Client) -> None:
    """/customer/block and /customer/unblock leave customer.block and customer.unblock entries."""
    customer = ok_post(admin, "/customer/new", {"user_id": unique("end-user")})["user_id"]
    ok_post(admin, "/customer/block", {"user_ids": [customer]})
    ok_post(admin, "/customer/unblock", {"user_ids": [customer]})
    entries = _entries(admin, "customer", customer)
    assert [e["action"] for e in entries] == ["customer.unblock", "customer.block", "customer.new"]
    assert (entries[1]["before"]["blocked"], entries[1]["after"]["blocked"]) == (False, True)


def test_deleting_an_owner_audits_each_of_its_keys(admin: httpx.Client) -> None:
    """Keys deleted along with their user are audited one by one as key.delete_with_owner."""
    user_id = ok_post(admin, "/user/new", {"auto_create_key": False})["user_id"]
    token = ok_post(admin, "/key/generate", {"user_id": user_id})["token"]
    ok_post(admin, "/user/delete", {"user_ids": [user_id]})
    entry = _entries(admin, "key", token)[0]
    assert entry["action"] == "key.delete_with_owner" and entry["actor"] == "master_key"
    assert entry["before"]["user_id"] == user_id and entry["after"] is None


def test_model_writes_are_audited_with_the_credential_masked(admin: httpx.Client) -> None:
    """model.new, model.update and model.delete are audited, the api_key only ever masked."""
    model_id = unique("dep")
    ok_post(
        admin,
        "/model/new",
        {
            "model_name": unique("audited"),
            "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": PROVIDER_KEY},
            "model_info": {"id": model_id},
        },
    )
    ok_post(
        admin,
        "/model/update",
        {"model_id": model_id, "litellm_params": {"api_key": NEW_PROVIDER_KEY, "weight": 2}},
    )
    ok_post(admin, "/model/delete", {"id": model_id})

    entries = _entries(admin, "model", model_id)
    assert [e["action"] for e in entries] == ["model.delete", "model.update", "model.new"]
    delete, update, new = entries
    assert new["before"] is None
    assert new["after"]["litellm_params"]["api_key"].endswith(PROVIDER_KEY[-4:])
    assert (
        update["before"]["litellm_params"]["weight"] == 1 and update["after"]["litellm_params"]["weight"] == 2
    )
    assert update["after"]["litellm_params"]["api_key"].endswith(NEW_PROVIDER_KEY[-4:])
    assert delete["after"] is None and delete["before"]["model_id"] == model_id
    text = str(entries)
    assert PROVIDER_KEY not in text and NEW_PROVIDER_KEY not in text


def test_secrets_never_appear_anywhere_in_the_audit_trail(admin: httpx.Client) -> None:
    """No plaintext virtual key and no provider api_key appears in any page of GET /audit."""
    secrets = [
        ok_post(admin, "/key/generate", {})["key"],
        ok_post(admin, "/key/generate", {"key": f"sk-custom-{uuid.uuid4().hex}"})["key"],
        ok_post(admin, "/user/new", {})["key"],
    ]
    regenerated = ok_post(admin, "/key/generate", {})
    secrets.append(ok_post(admin, "/key/regenerate", {"key": regenerated["key"]})["key"])
    secrets.append(regenerated["key"])
    model_id = ok_post(
        admin,
        "/model/new",
        {
            "model_name": unique("secret"),
            "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": PROVIDER_KEY},
        },
    )["model_id"]
    ok_post(admin, "/model/update", {"model_id": model_id, "litellm_params": {"api_key": NEW_PROVIDER_KEY}})
    secrets += [PROVIDER_KEY, NEW_PROVIDER_KEY]

    trail = _whole_audit(admin)
    assert model_id in trail and regenerated["token"] in trail
    leaked = [s for s in secrets if s in trail]
    assert leaked == []


def test_audit_filters_by_object_type_and_id(admin: httpx.Client) -> None:
    """?object_type= keeps one kind of object and ?object_id= one object."""
    first = ok_post(admin, "/organization/new", {})["organization_id"]
    second = ok_post(admin, "/organization/new", {})["organization_id"]
    ok_post(admin, "/organization/update", {"organization_id": first, "organization_alias": "x"})

    typed = ok_get(admin, "/audit", object_type="organization", page_size=1000)["entries"]
    assert typed and {e["object_type"] for e in typed} == {"organization"}
    assert {first, second} <= {e["object_id"] for e in typed}

    one = ok_get(admin, "/audit", object_id=first)["entries"]
    assert [(e["object_id"], e["action"]) for e in one] == [
        (first, "organization.update"),
        (first, "organization.new"),
    ]
    assert ok_get(admin, "/audit", object_type="team", object_id=first)["entries"] == []


def test_audit_pages_newest_first(admin: httpx.Client) -> None:
    """page and page_size split the trail into consecutive, non-overlapping pages, newest first."""
    team_id = ok_post(admin, "/team/new", {})["team_id"]
    for n in range(4):
        ok_post(admin, "/team/update", {"team_id": team_id, "metadata": {"n": n}})
    everything = _entries(admin, "team", team_id)
    assert len(everything) == 5

    pages = [
        ok_get(admin, "/audit", object_type="team", object_id=team_id, page=page, page_size=2)
        for page in (1, 2, 3, 4)
    ]
    assert [(p["page"], p["page_size"]) for p in pages] == [(1, 2), (2, 2), (3, 2), (4, 2)]
    assert [len(p["entries"]) for p in pages] == [2, 2, 1, 0]
    paged_ids = [e["id"] for p in pages for e in p["entries"]]
    assert paged_ids == [e["id"] for e in everything] == sorted(paged_ids, reverse=True)
    assert pages[0]["entries"][0]["after"]["metadata"] == {"n": 3}
    assert pages[2]["entries"][0]["action"] == "team.new"

    bad = admin.get("/audit", params={"page_size": 0})
    assert bad.status_code == 400, bad.text


def test_the_actor_is_the_calling_key_for_a_proxy_admin(stack: Stack, admin: httpx.Client) -> None:
    """A write made with a proxy_admin user's key is attributed to that key's hash prefix, not the master."""
    created = ok_post(admin, "/user/new", {"user_role": "proxy_admin"})
    with httpx.Client(
        base_url=stack.base_url, headers={"Authorization": f"Bearer {created['key']}"}, timeout=10
    ) as as_admin:
        team_id = ok_post(as_admin, "/team/new", {})["team_id"]
    entry = _entries(admin, "team", team_id)[0]
    assert entry["action"] == "team.new"
    assert entry["actor"] == f"key:{created['token'][:12]}"
    assert created["key"] not in str(entry)


def test_a_plain_key_may_not_read_the_audit_trail(stack: Stack, admin: httpx.Client) -> None:
    """GET /audit with an ordinary virtual key is a 403."""
    key = ok_post(admin, "/key/generate", {})["key"]
    response = httpx.get(stack.base_url + "/audit", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 403, response.text


def test_the_first_key_of_user_new_is_audited(admin: httpx.Client) -> None:
    """The key /user/new creates is an admin write too, so it has a key.generate entry."""
    created = ok_post(admin, "/user/new", {})
    assert _actions(admin, "user", created["user_id"]) == ["user.new"]
    assert _actions(admin, "key", created["token"]) == ["key.generate"]
