"""A script written for LiteLLM's admin API, run unchanged against Hydite: the key and user bodies
LiteLLM's docs and end-to-end tests send (their own fields, nulls for "not set"), then calls
through the openai SDK with the keys they made, on the very next request after each admin call."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from hydite_common.devstack import Stack
from hydite_common.keys import hash_key
from tests.harness import ok_get, ok_post, unique, wait_until

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello!"},
]


class Models:
    """Two mock deployments with names of this module's own: the one aliases point at, another."""

    def __init__(self, admin: httpx.Client) -> None:
        self.served = unique("compat-gpt-35-turbo")
        self.other = unique("compat-gpt-4")
        self.ids = {}
        for name in (self.served, self.other):
            body = {
                "model_name": name,
                "litellm_params": {"model": f"mock/{name}"},
                "model_info": {"id": name},
            }
            self.ids[name] = ok_post(admin, "/model/new", body)["model_id"]


@pytest.fixture(scope="module")
def models(stack: Stack, admin: httpx.Client) -> Models:
    """The module's deployments."""
    return Models(admin)


def _sdk(stack: Stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)


def _served_by(stack: Stack, key: str, model: str) -> str:
    """The deployment that answered a chat for model (the openai SDK, as LiteLLM's tests call)."""
    raw = _sdk(stack, key).chat.completions.with_raw_response.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
    return raw.headers["x-hydite-deployment"]


def _refused(stack: Stack, key: str, model: str) -> int:
    try:
        _sdk(stack, key).chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
    except openai.APIStatusError as exc:
        return exc.status_code
    raise AssertionError(f"{model} was served")


def _generate_key(
    admin: httpx.Client, models: list[str], aliases: dict[str, str], **extra: Any
) -> dict[str, Any]:
    """LiteLLM's tests/test_keys.py generate_key body."""
    data = {
        "models": models,
        "aliases": aliases,
        "duration": None,
        "max_budget": None,
        "budget_duration": None,
    }
    body: dict[str, Any] = ok_post(admin, "/key/generate", {**data, **extra})
    return body


# ---------------------------------------------------------------- keys


def test_key_alias_serves_the_aliased_model_and_usage_keeps_the_asked_name(
    stack: Stack, admin: httpx.Client, models: Models
) -> None:
    """A key with aliases {"mistral-7b": <served>} calling "mistral-7b" is served by <served> at
    once, and its spend row records "mistral-7b" as the model asked for."""
    asked = unique("mistral-7b")
    key = _generate_key(admin, [models.served, "azure-models"], {asked: models.served})
    assert key["aliases"] == {asked: models.served}
    assert _served_by(stack, key["key"], asked) == models.ids[models.served]
    assert _served_by(stack, key["key"], models.served) == models.ids[models.served]

    def logged() -> list[dict[str, Any]]:
        return [r for r in ok_get(admin, "/spend/logs", api_key=hash_key(key["key"])) if r["model"] == asked]

    rows = wait_until(logged, timeout=10)
    assert rows[0]["model_id"] == models.ids[models.served]


def test_an_alias_is_checked_against_the_allowlist_by_the_model_it_names(
    stack: Stack, admin: httpx.Client, models: Models
) -> None:
    """As in LiteLLM, the model an alias names must be on the key's allowlist: an alias to a model
    the key may not call is refused, an alias name itself needs no allowlist entry."""
    asked = unique("gpt-4")
    narrow = _generate_key(admin, [models.served], {asked: models.other})
    assert _refused(stack, narrow["key"], asked) == 403
    assert _refused(stack, narrow["key"], models.other) == 403
    updated = ok_post(admin, "/key/update", {"key": narrow["key"], "aliases": {asked: models.served}})
    assert updated["aliases"] == {asked: models.served}
    assert _served_by(stack, narrow["key"], asked) == models.ids[models.served]
    cleared = ok_post(admin, "/key/update", {"key": narrow["key"], "aliases": None})
    assert cleared["aliases"] == {}
    assert _refused(stack, narrow["key"], asked) == 403


def test_key_bodies_with_litellm_fields_are_stored_and_shown_back(
    admin: httpx.Client, models: Models
) -> None:
    """/key/generate, /key/update and /key/info keep LiteLLM's own key fields (the ones Hydite does
    not act on are shown as given); key_type sets the routes, spend is set as given."""
    generated = _generate_key(
        admin,
        [models.served],
        {},
        config={"temperature": 0.2},
        permissions={"pii_masking": False},
        model_max_budget={models.served: {"max_budget": 5.0, "budget_duration": "1d"}},
        allowed_cache_controls=["no-cache"],
        enforced_params=["user"],
        tags=["team-a"],
        soft_budget=1.5,
        send_invite_email=False,
        key_type="llm_api",
        rpm_limit_type="best_effort_throughput",
        object_permission={"vector_stores": ["vs-1"]},
        agent_id=None,
        spend=0,
        metadata={"app": "compat"},
    )
    key = generated["key"]
    assert generated["allowed_routes"] == ["llm_api_routes"]
    info = ok_get(admin, "/key/info", key=key)["info"]
    assert info["config"] == {"temperature": 0.2}
    assert info["permissions"] == {"pii_masking": False}
    assert info["model_max_budget"] == {models.served: {"max_budget": 5.0, "budget_duration": "1d"}}
    assert info["allowed_cache_controls"] == ["no-cache"]
    assert info["enforced_params"] == ["user"]
    assert info["key_type"] == "llm_api"
    assert info["object_permission"] == {"vector_stores": ["vs-1"]}
    assert "agent_id" not in info
    assert (info["spend"], info["soft_budget"], info["tags"]) == (0.0, 1.5, ["team-a"])

    expiry = "2031-01-01T00:00:00+00:00"
    body = {
        "key": key,
        "spend": 2.5,
        "temp_budget_increase": 10,
        "temp_budget_expiry": expiry,
        "config": None,
    }
    updated = ok_post(admin, "/key/update", body)
    assert updated["spend"] == 2.5
    assert updated["temp_budget_increase"] == 10.0
    assert updated["temp_budget_expiry"].startswith(expiry[:19])
    assert "config" not in updated and updated["permissions"] == {"pii_masking": False}
    half = admin.post("/key/update", json={"key": key, "temp_budget_increase": 10})
    assert half.status_code == 422, half.text


def test_key_type_management_reaches_admin_routes_only(
    stack: Stack, admin: httpx.Client, models: Models
) -> None:
    """key_type "management" limits a key to LiteLLM's management routes: its own /key/info works,
    a chat does not."""
    key = _generate_key(admin, [], {}, key_type="management")
    assert key["allowed_routes"] == ["management_routes"]
    info = httpx.get(stack.base_url + "/key/info", headers={"Authorization": f"Bearer {key['key']}"})
    assert info.status_code == 200, info.text
    assert _refused(stack, key["key"], models.served) == 403


def test_regenerate_with_a_grace_period_keeps_the_old_key_working_for_it(
    stack: Stack, admin: httpx.Client, models: Models
) -> None:
    """/key/regenerate with grace_period: both keys work; without one the old key stops at once;
    new_master_key is refused (the master key is a setting)."""
    old = _generate_key(admin, [models.served], {})["key"]
    fresh = ok_post(admin, "/key/regenerate", {"key": old, "grace_period": "1h", "spend": None})
    assert _served_by(stack, fresh["key"], models.served) == models.ids[models.served]
    assert _served_by(stack, old, models.served) == models.ids[models.served]
    assert ok_get(admin, "/key/info", key=old)["info"]["expires"] is not None
    newest = ok_post(admin, f"/key/{fresh['key']}/regenerate", {})
    assert _served_by(stack, newest["key"], models.served) == models.ids[models.served]
    assert _refused(stack, fresh["key"], models.served) == 401
    master = admin.post("/key/regenerate", json={"key": newest["key"], "new_master_key": "sk-" + "m" * 40})
    assert master.status_code == 400 and master.json()["error"]["param"] == "new_master_key"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/key/generate", {"modles": ["gpt-4"]}, "modles"),
        ("/key/update", {"key": "sk-whatever-it-is", "max_bugdet": 1}, "max_bugdet"),
        ("/user/new", {"user_emial": "a@example.com"}, "user_emial"),
        ("/user/update", {"user_id": "u", "spnd": 0}, "spnd"),
        ("/customer/new", {"user_id": "c", "defualt_model": "gpt-4"}, "defualt_model"),
        ("/end_user/new", {"user_id": "c", "allowed_region": "eu"}, "allowed_region"),
        ("/budget/new", {"max_bugdet": 1}, "max_bugdet"),
    ],
)
def test_a_name_neither_product_defines_is_a_422_naming_it(
    admin: httpx.Client, path: str, body: dict[str, Any], field: str
) -> None:
    """A misspelt field is never accepted silently."""
    response = admin.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == field


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/key/generate", {"aliases": {"a\u0000b": "c"}}, "aliases"),
        ("/key/generate", {"aliases": {"a": "x" * 257}}, "aliases.a"),
        ("/key/generate", {"spend": -1}, "spend"),
        ("/key/generate", {"config": {"deep": 1e300}}, "config"),
        ("/user/new", {"aliases": {"": "b"}}, "aliases."),
        ("/user/new", {"spend": 1e300}, "spend"),
        ("/user/new", {"password": "short"}, "password"),
        ("/customer/new", {"user_id": "c", "allowed_model_region": "mars"}, "allowed_model_region"),
        ("/budget/new", {"tpm_limit": 2**64}, "tpm_limit"),
    ],
)
def test_new_fields_keep_the_bounds(admin: httpx.Client, path: str, body: dict[str, Any], field: str) -> None:
    """The new fields are bounded like every other: NUL, overlong names, negative or huge numbers
    and values outside LiteLLM's choices are 422s naming the field."""
    response = admin.post(path, json=body)
    assert response.status_code == 422, response.text
    assert str(response.json()["error"]["param"]).startswith(field)


def test_key_info_of_an_unknown_key_is_a_404_for_every_caller(stack: Stack, admin: httpx.Client) -> None:
    """/key/info?key=<unknown> is a 404 for the master key, a plain key and an internal user's key
    alike (not a 403)."""
    user = ok_post(admin, "/user/new", {"user_id": unique("compat-info"), "user_role": "internal_user"})
    plain = ok_post(admin, "/key/generate", {})["key"]
    unknown = "sk-" + "0" * 40
    for caller in (stack.config.master_key, plain, user["key"]):
        response = httpx.get(
            stack.base_url + "/key/info",
            params={"key": unknown},
            headers={"Authorization": f"Bearer {caller}"},
        )
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "key_not_found"


# ---------------------------------------------------------------- users


def _new_user(admin: httpx.Client, **extra: Any) -> dict[str, Any]:
    """LiteLLM's tests/test_users.py new_user body."""
    data = {"models": ["azure-models"], "aliases": {"mistral-7b": "gpt-3.5-turbo"}, "duration": None}
    body: dict[str, Any] = ok_post(
        admin, "/user/new", {**data, "max_budget": None, "budget_duration": None, **extra}
    )
    return body


def test_user_new_with_team_id_aliases_and_litellm_fields(
    stack: Stack, admin: httpx.Client, models: Models
) -> None:
    """/user/new with team_id joins the team as a member (role "user") and puts the first key in it;
    the user's aliases serve its keys; LiteLLM's user fields are shown back, the password never."""
    team = ok_post(admin, "/team/new", {"team_id": unique("compat-team")})["team_id"]
    asked = unique("mistral-7b")
    user_id = unique("compat-user")
    created = _new_user(
        admin,
        user_id=user_id,
        models=[models.served],
        aliases={asked: models.served},
        team_id=team,
        user_alias="Ada",
        user_role="internal_user",
        send_invite_email=False,
        organizations=None,
        password="a-long-password",
        spend=0,
        metadata={},
    )
    assert created["aliases"] == {asked: models.served} and created["user_alias"] == "Ada"
    assert "password" not in created and created["teams"] == [team]
    members = ok_get(admin, "/team/info", team_id=team)["team_info"]["members_with_roles"]
    assert [(m["user_id"], m["role"]) for m in members] == [(user_id, "user")]
    key = ok_get(admin, "/key/info", key=created["key"])["info"]
    assert (key["user_id"], key["team_id"]) == (user_id, team)
    assert _served_by(stack, created["key"], asked) == models.ids[models.served]

    info = ok_get(admin, "/user/info", user_id=user_id)
    assert info["user_info"]["user_alias"] == "Ada" and info["user_info"]["spend"] == 0
    assert "password" not in str(info)


def test_user_new_with_team_objects_takes_their_roles(admin: httpx.Client) -> None:
    """teams given as LiteLLM's NewUserRequestTeam objects join with their user_role and budget."""
    admin_of, member_of = (ok_post(admin, "/team/new", {})["team_id"] for _ in range(2))
    user_id = unique("compat-teams")
    teams = [{"team_id": admin_of, "user_role": "admin", "max_budget_in_team": 5}, {"team_id": member_of}]
    created = ok_post(admin, "/user/new", {"user_id": user_id, "teams": teams, "auto_create_key": False})
    assert sorted(created["teams"]) == sorted([admin_of, member_of])
    for team, role in ((admin_of, "admin"), (member_of, "user")):
        members = ok_get(admin, "/team/info", team_id=team)["team_info"]["members_with_roles"]
        assert [(m["user_id"], m["role"]) for m in members] == [(user_id, role)]


def test_user_update_sets_spend_and_null_means_not_set(
    stack: Stack, admin: httpx.Client, models: Models
) -> None:
    """/user/update {"user_id", "spend": 0} (LiteLLM's reset of spend) sets spend; a null leaves a
    field as it is; new aliases reach the user's keys at once."""
    user_id = unique("compat-spend")
    created = _new_user(admin, user_id=user_id, models=[], user_role="proxy_admin_viewer", max_budget=3)
    ok_post(admin, "/user/update", {"user_id": user_id, "spend": 12.5})
    assert ok_get(admin, "/user/info", user_id=user_id)["user_info"]["spend"] == 12.5
    ok_post(admin, "/user/update", {"user_id": user_id, "spend": 0})
    body = {"user_id": user_id, "user_role": None, "models": None, "max_budget": 10, "teams": None}
    updated = ok_post(admin, "/user/update", body)
    assert (updated["spend"], updated["user_role"], updated["max_budget"]) == (0, "proxy_admin_viewer", 10)
    asked = unique("gpt-4")
    ok_post(admin, "/user/update", {"user_id": user_id, "aliases": {asked: models.other}})
    assert _served_by(stack, created["key"], asked) == models.ids[models.other]


def test_user_delete_with_litellm_body(admin: httpx.Client) -> None:
    """/user/delete {"user_ids": [...]} deletes the user and its keys."""
    created = _new_user(admin, user_id=unique("compat-delete"))
    deleted = ok_post(admin, "/user/delete", {"user_ids": [created["user_id"]]})
    assert deleted["deleted_keys"] == [created["token"]]


def test_user_info_lists_teams_as_team_objects_with_memberships(admin: httpx.Client) -> None:
    """LiteLLM's /user/info answers `teams` as team objects and `team_memberships` with the
    member's budget in each team (`user_info.teams` stays the ids)."""
    user_id, team_id = unique("info-user"), unique("info-team")
    ok_post(admin, "/user/new", {"user_id": user_id, "auto_create_key": False})
    ok_post(
        admin, "/team/new", {"team_id": team_id, "members_with_roles": [{"role": "user", "user_id": user_id}]}
    )
    ok_post(admin, "/team/member_update", {"team_id": team_id, "user_id": user_id, "max_budget_in_team": 3})
    info = ok_get(admin, "/user/info", user_id=user_id)
    assert [t["team_id"] for t in info["teams"]] == [team_id]
    assert info["user_info"]["teams"] == [team_id]
    [membership] = info["team_memberships"]
    assert membership["litellm_budget_table"]["max_budget"] == 3
