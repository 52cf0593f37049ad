"""Key lifecycle through the admin API: update, regenerate, delete by alias, info, list, health."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import httpx

from hydite_common.devstack import Stack
from hydite_common.keys import hash_key


def _alias() -> str:
    return f"k-{secrets.token_hex(4)}"


def test_update_changes_only_the_given_fields(admin: httpx.Client) -> None:
    """/key/update leaves fields it was not given as they were, and accepts the hash instead of the key."""
    created = admin.post(
        "/key/generate", json={"key_alias": _alias(), "models": ["a"], "rpm_limit": 5, "metadata": {"x": 1}}
    ).json()
    updated = admin.post(
        "/key/update", json={"key": created["token"], "tpm_limit": 100, "models": ["a", "b"]}
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["tpm_limit"] == 100 and body["models"] == ["a", "b"]
    assert (
        body["rpm_limit"] == 5 and body["metadata"] == {"x": 1} and body["key_alias"] == created["key_alias"]
    )


def test_limits_beyond_32_bits_are_stored(admin: httpx.Client) -> None:
    """Large tenants' TPM limits pass 2^31; they are kept exactly, for keys, teams and deployments."""
    big = 10**12
    key = admin.post("/key/generate", json={"key_alias": _alias(), "tpm_limit": big, "rpm_limit": big})
    assert key.status_code == 200, key.text
    info = admin.get("/key/info", params={"key": key.json()["key"]}).json()["info"]
    assert info["tpm_limit"] == big and info["rpm_limit"] == big
    team = admin.post(
        "/team/new", json={"team_alias": _alias(), "tpm_limit": big, "max_parallel_requests": big}
    )
    assert team.status_code == 200 and team.json()["tpm_limit"] == big, team.text
    model = admin.post(
        "/model/new",
        json={"model_name": _alias(), "litellm_params": {"model": "openai/gpt-4o", "tpm": big, "rpm": big}},
    )
    assert model.status_code == 200, model.text


def test_expires_can_be_set_directly(admin: httpx.Client) -> None:
    """`expires` takes an ISO time; giving both duration and expires is refused."""
    when = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    created = admin.post("/key/generate", json={"expires": when.isoformat()})
    assert created.status_code == 200, created.text
    assert datetime.fromisoformat(created.json()["expires"]) == when
    both = admin.post("/key/generate", json={"expires": when.isoformat(), "duration": "1h"})
    assert both.status_code == 422


def test_regenerate_keeps_settings_and_alias_and_kills_the_old_secret(
    stack: Stack, admin: httpx.Client
) -> None:
    """The regenerated key has a new secret and hash but the same alias and limits; the old key is gone."""
    alias = _alias()
    old = admin.post("/key/generate", json={"key_alias": alias, "rpm_limit": 7}).json()
    fresh = admin.post(f"/key/{old['key']}/regenerate", json={"tpm_limit": 9})
    assert fresh.status_code == 200, fresh.text
    new = fresh.json()
    assert new["key"] != old["key"] and new["token"] == hash_key(new["key"])
    assert new["key_alias"] == alias and new["rpm_limit"] == 7 and new["tpm_limit"] == 9
    assert admin.get("/key/info", params={"key": old["token"]}).status_code == 404
    assert admin.get("/key/info", params={"key": new["key"]}).json()["info"]["key_alias"] == alias


def test_delete_by_alias_and_all_or_nothing(admin: httpx.Client) -> None:
    """Keys can be deleted by alias; a missing key in the same call deletes nothing."""
    alias = _alias()
    key = admin.post("/key/generate", json={"key_alias": alias}).json()
    refused = admin.post("/key/delete", json={"key_aliases": [alias], "keys": ["sk-hydite-missing-0000"]})
    assert refused.status_code == 404
    assert admin.get("/key/info", params={"key": key["token"]}).status_code == 200
    deleted = admin.post("/key/delete", json={"key_aliases": [alias]})
    assert deleted.status_code == 200 and deleted.json()["deleted_keys"] == [key["token"]]
    assert admin.get("/key/info", params={"key": key["token"]}).status_code == 404


def test_info_without_arguments_is_the_callers_own_key(stack: Stack, admin: httpx.Client) -> None:
    """A plain key reads itself with /key/info and /key/health; another key is a 404, as if unknown."""
    mine = admin.post("/key/generate", json={"key_alias": _alias()}).json()
    other = admin.post("/key/generate", json={}).json()
    headers = {"Authorization": f"Bearer {mine['key']}"}
    own = httpx.get(stack.base_url + "/key/info", headers=headers)
    assert own.status_code == 200 and own.json()["key"] == mine["token"]
    assert own.json()["info"]["key_alias"] == mine["key_alias"]
    foreign = httpx.get(stack.base_url + "/key/info", params={"key": other["token"]}, headers=headers)
    assert foreign.status_code == 404
    health = httpx.get(stack.base_url + "/key/health", headers=headers)
    assert health.status_code == 200 and health.json()["key"] == "healthy"


def test_list_pages_and_filters(admin: httpx.Client) -> None:
    """/key/list pages through keys and filters by user and alias, with LiteLLM's list shape."""
    user = f"u-{secrets.token_hex(3)}"
    tokens = {admin.post("/key/generate", json={"user_id": user}).json()["token"] for _ in range(3)}
    first = admin.get("/key/list", params={"user_id": user, "size": 2, "page": 1}).json()
    second = admin.get("/key/list", params={"user_id": user, "size": 2, "page": 2}).json()
    assert first["total_count"] == 3 and first["total_pages"] == 2 and first["current_page"] == 1
    assert set(first["keys"]) | set(second["keys"]) == tokens
    full = admin.get("/key/list", params={"user_id": user, "return_full_object": "true"}).json()
    assert {k["token"] for k in full["keys"]} == tokens and all(k["user_id"] == user for k in full["keys"])
    bad = admin.get("/key/list", params={"size": "lots"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "size"
