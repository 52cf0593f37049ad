"""LiteLLM's internal users manage their own keys: an `internal_user` creates, changes, blocks,
regenerates and deletes its personal keys within its user's models and max_budget, and each key
works (or stops) on the very next request; an `internal_user_viewer` only reads its own keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from hydite_common.devstack import Stack
from hydite_common.keys import hash_key
from tests.harness import ok_get, ok_post, unique


@dataclass
class People:
    """An internal user (models a and b, max_budget 10) and a viewer, each with a client on its own
    key, the models, and another user."""

    user: httpx.Client
    user_id: str
    viewer: httpx.Client
    viewer_id: str
    other_id: str
    models: tuple[str, str, str]  # the user may call the first two


def _client(stack: Stack, key: str) -> httpx.Client:
    return httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


@pytest.fixture(scope="module")
def people(stack: Stack, admin: httpx.Client) -> Iterator[People]:
    """The module's users, their first keys and the models."""
    names = (unique("own-a"), unique("own-b"), unique("own-outside"))
    for name in names:
        ok_post(admin, "/model/new", {"model_name": name, "litellm_params": {"model": f"mock/{name}"}})
    user = ok_post(
        admin,
        "/user/new",
        {
            "user_id": unique("internal"),
            "user_role": "internal_user",
            "models": list(names[:2]),
            "max_budget": 10,
        },
    )
    viewer = ok_post(admin, "/user/new", {"user_id": unique("viewer"), "user_role": "internal_user_viewer"})
    other = ok_post(admin, "/user/new", {"user_id": unique("other"), "auto_create_key": False})
    with _client(stack, user["key"]) as user_client, _client(stack, viewer["key"]) as viewer_client:
        yield People(user_client, user["user_id"], viewer_client, viewer["user_id"], other["user_id"], names)


def _chat(stack: Stack, key: str, model: str) -> int:
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0)
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def _refused(response: httpx.Response, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "permission_error"
    if param is not None:
        assert error["param"] == param
    return error


def test_internal_user_creates_its_own_key_and_it_works_at_once(stack: Stack, people: People) -> None:
    """/key/generate by an internal user makes a key of its own user that serves the next request,
    within the user's models."""
    created = people.user.post(
        "/key/generate", json={"models": [people.models[0]], "key_alias": unique("own")}
    )
    assert created.status_code == 200, created.text
    key = created.json()
    assert key["user_id"] == people.user_id and key["team_id"] is None
    assert _chat(stack, key["key"], people.models[0]) == 200
    assert _chat(stack, key["key"], people.models[1]) == 403
    assert _chat(stack, ok_post(people.user, "/key/generate", {})["key"], people.models[1]) == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"models": ["a-model-the-user-may-not-call"]}, "models"),
        ({"max_budget": 11}, "max_budget"),
        ({"spend": 3}, "spend"),
        ({"key_group": "any-group"}, "key_group"),
        ({"organization_id": "any-org"}, "organization_id"),
    ],
)
def test_internal_user_key_stays_within_its_user(people: People, body: dict[str, Any], param: str) -> None:
    """An internal user's key may not name models outside its user's, a larger budget than its
    user's, a spend, a key group or an organization."""
    _refused(people.user.post("/key/generate", json=body), param)


def test_internal_user_may_not_make_keys_for_others_or_teams(people: People, admin: httpx.Client) -> None:
    """A key for another user, or of a team it does not administer, is a 403."""
    _refused(people.user.post("/key/generate", json={"user_id": people.other_id}), "user_id")
    team = ok_post(admin, "/team/new", {"members_with_roles": [{"user_id": people.user_id, "role": "user"}]})
    _refused(people.user.post("/key/generate", json={"team_id": team["team_id"]}))
    other_key = ok_post(admin, "/key/generate", {"user_id": people.other_id})["key"]
    for path, body in (
        ("/key/update", {"key": other_key, "metadata": {"x": 1}}),
        ("/key/block", {"key": other_key}),
        ("/key/regenerate", {"key": other_key}),
        ("/key/delete", {"keys": [other_key]}),
    ):
        _refused(people.user.post(path, json=body))
    assert people.user.get("/key/info", params={"key": other_key}).status_code == 404


def test_internal_user_changes_blocks_regenerates_and_deletes_its_key(stack: Stack, people: People) -> None:
    """Each write on an own key shows on the next request: a narrower allowlist, a block and its
    lifting, a new secret, the delete; the key may not be moved to another user, nor unblocked by
    its user after an admin blocked it."""
    key = ok_post(people.user, "/key/generate", {})["key"]
    assert ok_post(people.user, "/key/update", {"key": key, "models": [people.models[1]]})["models"] == [
        people.models[1]
    ]
    assert _chat(stack, key, people.models[0]) == 403
    _refused(people.user.post("/key/update", json={"key": key, "user_id": people.other_id}), "user_id")
    _refused(people.user.post("/key/update", json={"key": key, "models": [people.models[2]]}), "models")

    ok_post(people.user, "/key/block", {"key": key})
    assert _chat(stack, key, people.models[1]) == 401
    ok_post(people.user, "/key/unblock", {"key": key})
    assert _chat(stack, key, people.models[1]) == 200

    fresh = ok_post(people.user, "/key/regenerate", {"key": key})["key"]
    assert _chat(stack, key, people.models[1]) == 401
    assert _chat(stack, fresh, people.models[1]) == 200
    listed = ok_get(people.user, "/key/list")["keys"]
    assert hash_key(fresh) in listed and hash_key(key) not in listed
    assert ok_post(people.user, "/key/delete", {"keys": [fresh]})["deleted_keys"] == [hash_key(fresh)]
    assert _chat(stack, fresh, people.models[1]) == 401


def test_an_admins_block_stays_for_the_internal_user(
    stack: Stack, admin: httpx.Client, people: People
) -> None:
    """An internal user may not lift a block an admin set on its key."""
    key = ok_post(people.user, "/key/generate", {})["key"]
    ok_post(admin, "/key/block", {"key": key})
    _refused(people.user.post("/key/unblock", json={"key": key}))
    assert _chat(stack, key, people.models[0]) == 401


def test_internal_user_lists_only_its_own_keys(admin: httpx.Client, people: People) -> None:
    """/key/list for an internal user holds its keys only; naming another user or a team is a 403."""
    other_key = ok_post(admin, "/key/generate", {"user_id": people.other_id})["key"]
    mine = ok_post(people.user, "/key/generate", {})["key"]
    full = ok_get(people.user, "/key/list", return_full_object="true", size=1000)["keys"]
    assert {k["user_id"] for k in full} == {people.user_id}
    assert hash_key(mine) in {k["token"] for k in full} and hash_key(other_key) not in {
        k["token"] for k in full
    }
    _refused(people.user.get("/key/list", params={"user_id": people.other_id}))
    _refused(people.user.get("/key/list", params={"team_id": "any-team"}))


def test_internal_viewer_reads_its_keys_but_writes_none(admin: httpx.Client, people: People) -> None:
    """An internal_user_viewer reads its own keys (/key/info, /key/list) and may not create, change
    or delete any."""
    own = ok_post(admin, "/key/generate", {"user_id": people.viewer_id})["key"]
    assert ok_get(people.viewer, "/key/info", key=own)["info"]["user_id"] == people.viewer_id
    assert hash_key(own) in ok_get(people.viewer, "/key/list")["keys"]
    _refused(people.viewer.post("/key/generate", json={}))
    for path, body in (
        ("/key/update", {"key": own, "metadata": {"x": 1}}),
        ("/key/regenerate", {"key": own}),
        ("/key/delete", {"keys": [own]}),
    ):
        _refused(people.viewer.post(path, json=body))
    assert ok_get(admin, "/key/info", key=own)["info"]["metadata"] == {}
