"""Admin write routes refuse bad bodies with OpenAI-shaped 4xx errors, never a 500, and write nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

ERROR_KEYS = {"message", "type", "code", "param"}


def _uid(prefix: str = "val") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    """Assert an OpenAI-shaped error with this status (and param, if given); return the error object."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= ERROR_KEYS, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and isinstance(error["code"], str)
    if param is not None:
        assert error["param"] == param, error
    return dict(error)


def _drop_key_if_made(admin: httpx.Client, response: httpx.Response) -> None:
    """Delete the key a wrongly accepted /key/generate or /key/regenerate made, so it does not linger."""
    if response.status_code == 200 and "key" in response.json():
        admin.post("/key/delete", json={"keys": [response.json()["key"]]})


@dataclass(frozen=True)
class Objects:
    """Existing objects the bodies refer to, created with the master key."""

    user: str
    team: str
    organization: str
    customer: str
    group: str
    key: str
    key_alias: str
    model_id: str


@pytest.fixture(scope="module")
def objects(admin: httpx.Client) -> Objects:
    """One user, team, organization, customer, key group, aliased key and mock model."""
    ids = {kind: _uid(f"val-{kind}") for kind in ("user", "team", "organization", "customer", "group")}
    _ok(admin.post("/user/new", json={"user_id": ids["user"], "auto_create_key": False}))
    _ok(admin.post("/team/new", json={"team_id": ids["team"], "models": ["val-allowed-model"]}))
    _ok(admin.post("/organization/new", json={"organization_id": ids["organization"]}))
    _ok(admin.post("/customer/new", json={"user_id": ids["customer"]}))
    _ok(admin.post("/group/new", json={"name": ids["group"]}))
    alias = _uid("val-alias")
    key = _ok(admin.post("/key/generate", json={"key_alias": alias}))["key"]
    model = {"model_name": _uid("val-model"), "litellm_params": {"model": "mock/val"}}
    model_id = _ok(admin.post("/model/new", json=model))["model_id"]
    return Objects(key=key, key_alias=alias, model_id=model_id, **ids)


# ---------------------------------------------------------------- a valid body for every write route

Body = Callable[[Objects], dict[str, Any]]

VALID: dict[str, Body] = {
    "/key/generate": lambda o: {},
    "/key/update": lambda o: {"key": o.key},
    "/key/delete": lambda o: {"keys": ["sk-val-missing-key-000"]},
    "/key/regenerate": lambda o: {"key": "sk-val-missing-key-000"},
    "/key/block": lambda o: {"key": "sk-val-missing-key-000"},
    "/key/unblock": lambda o: {"key": "sk-val-missing-key-000"},
    "/user/new": lambda o: {"user_id": _uid(), "auto_create_key": False},
    "/user/update": lambda o: {"user_id": o.user},
    "/user/delete": lambda o: {"user_ids": ["val-missing"]},
    "/team/new": lambda o: {"team_id": _uid()},
    "/team/update": lambda o: {"team_id": o.team},
    "/team/delete": lambda o: {"team_ids": ["val-missing"]},
    "/team/member_add": lambda o: {"team_id": o.team, "member": {"user_id": _uid()}},
    "/team/member_delete": lambda o: {"team_id": o.team, "user_id": "val-missing"},
    "/team/block": lambda o: {"team_id": "val-missing"},
    "/team/unblock": lambda o: {"team_id": "val-missing"},
    "/organization/new": lambda o: {"organization_id": _uid()},
    "/organization/update": lambda o: {"organization_id": o.organization},
    "/organization/delete": lambda o: {"organization_ids": ["val-missing"]},
    "/customer/new": lambda o: {"user_id": _uid()},
    "/customer/update": lambda o: {"user_id": o.customer},
    "/customer/delete": lambda o: {"user_ids": ["val-missing"]},
    "/customer/block": lambda o: {"user_ids": ["val-missing"]},
    "/customer/unblock": lambda o: {"user_ids": ["val-missing"]},
    "/group/new": lambda o: {"name": _uid()},
    "/group/update": lambda o: {"name": o.group},
    "/group/delete": lambda o: {"names": ["val-missing"]},
    "/model/new": lambda o: {"model_name": _uid(), "litellm_params": {"model": "mock/val"}},
    "/model/update": lambda o: {"model_id": o.model_id},
    "/model/delete": lambda o: {"id": "val-missing"},
}
"""Write route -> a body that passes validation (so a 422 below is caused by the one change made)."""

WRITE_ROUTES = list(VALID)

# Route -> (field, wrongly typed value, the param the 422 names).
WRONG_TYPES: dict[str, tuple[str, Any, str]] = {
    "/key/generate": ("max_budget", "lots", "max_budget"),
    "/key/update": ("rpm_limit", "many", "rpm_limit"),
    "/key/delete": ("keys", "sk-not-a-list", "keys"),
    "/key/regenerate": ("key", 123, "key"),
    "/key/block": ("key", ["sk-x"], "key"),
    "/key/unblock": ("key", None, "key"),
    "/user/new": ("models", "gpt-4o", "models"),
    "/user/update": ("blocked", "maybe", "blocked"),
    "/user/delete": ("user_ids", "one", "user_ids"),
    "/team/new": ("members_with_roles", "everyone", "members_with_roles"),
    "/team/update": ("tpm_limit", 1.5, "tpm_limit"),
    "/team/delete": ("team_ids", [1], "team_ids.0"),
    "/team/member_add": ("member", "bob", "member"),
    "/team/member_delete": ("user_id", 5, "user_id"),
    "/team/block": ("team_id", 5, "team_id"),
    "/team/unblock": ("team_id", None, "team_id"),
    "/organization/new": ("models", {"a": 1}, "models"),
    "/organization/update": ("max_budget", "x", "max_budget"),
    "/organization/delete": ("organization_ids", "o", "organization_ids"),
    "/customer/new": ("allowed_models", "m", "allowed_models"),
    "/customer/update": ("blocked", "maybe", "blocked"),
    "/customer/delete": ("user_ids", 3, "user_ids"),
    "/customer/block": ("user_ids", "c", "user_ids"),
    "/customer/unblock": ("user_ids", [None], "user_ids.0"),
    "/group/new": ("models", "m", "models"),
    "/group/update": ("rpm_limit", "x", "rpm_limit"),
    "/group/delete": ("names", "g", "names"),
    "/model/new": ("model_name", 5, "model_name"),
    "/model/update": ("litellm_params", {"rpm": "x"}, "litellm_params.rpm"),
    "/model/delete": ("id", 7, "id"),
}


def test_every_write_route_has_a_valid_body_and_a_wrong_type_case() -> None:
    """The tables below cover all 30 admin write routes."""
    assert len(WRITE_ROUTES) == 30
    assert set(WRONG_TYPES) == set(WRITE_ROUTES)


@pytest.mark.parametrize("path", WRITE_ROUTES)
def test_unknown_field_is_422_naming_it(admin: httpx.Client, objects: Objects, path: str) -> None:
    """An otherwise valid body with one unknown field is a 422 whose param is that field."""
    body = {**VALID[path](objects), "surprise_field": 1}
    error = _error(admin.post(path, json=body), 422, "surprise_field")
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("path", WRITE_ROUTES)
def test_wrong_type_is_422_naming_the_field(admin: httpx.Client, objects: Objects, path: str) -> None:
    """A wrongly typed field is a 422 that names it."""
    field, value, param = WRONG_TYPES[path]
    _error(admin.post(path, json={**VALID[path](objects), field: value}), 422, param)


@pytest.mark.parametrize("path", WRITE_ROUTES)
def test_malformed_json_and_non_objects_are_400_invalid_json(admin: httpx.Client, path: str) -> None:
    """A body that is not JSON, or not a JSON object (empty too, see below), is a 400 invalid_json."""
    for raw in (b'{"key": ', b"[1, 2]", b'"text"', b""):
        response = admin.post(path, content=raw, headers={"Content-Type": "application/json"})
        if raw == b"" and path == "/key/regenerate":
            # The key may come in the path (/key/{key}/regenerate), so no body means "no fields".
            _error(response, 422, "key")
        else:
            assert _error(response, 400)["code"] == "invalid_json"


# ---------------------------------------------------------------- values out of range


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/key/generate", "max_budget", -1),
        ("/key/generate", "soft_budget", -0.5),
        ("/key/update", "tpm_limit", -1),
        ("/key/update", "max_parallel_requests", -1),
        ("/key/update", "model_rpm_limit", {"gpt": -1}),
        ("/user/new", "max_budget", -1),
        ("/team/new", "rpm_limit", -1),
        ("/team/update", "max_budget", -10),
        ("/organization/new", "max_budget", -1),
        ("/customer/new", "max_budget", -1),
        ("/customer/update", "model_tpm_limit", {"gpt": -5}),
        ("/group/new", "max_budget", -1),
        ("/key/generate", "tpm_limit", 2**63),
        ("/team/update", "rpm_limit", 2**64),
        ("/key/update", "model_tpm_limit", {"gpt": 2**63}),
    ],
)
def test_out_of_range_budgets_and_limits_are_422(
    admin: httpx.Client, objects: Objects, path: str, field: str, value: Any
) -> None:
    """Budgets and limits below zero, or beyond what a 64-bit counter holds, are a 422 naming the field."""
    _error(admin.post(path, json={**VALID[path](objects), field: value}), 422, field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rpm", -1),
        ("tpm", -1),
        ("weight", 0),
        ("timeout", 0),
        ("max_retries", -1),
        ("input_cost_per_token", -0.1),
        ("api_base", "ftp://upstream.example"),
        ("api_base", "upstream.example/v1"),
    ],
)
def test_model_new_and_update_refuse_bad_litellm_params(
    admin: httpx.Client, objects: Objects, field: str, value: Any
) -> None:
    """Out-of-range litellm_params and non-http(s) api_base are a 422 on /model/new and /model/update."""
    new = {"model_name": _uid(), "litellm_params": {"model": "mock/val", field: value}}
    _error(admin.post("/model/new", json=new), 422, f"litellm_params.{field}")
    update = {"model_id": objects.model_id, "litellm_params": {field: value}}
    _error(admin.post("/model/update", json=update), 422, f"litellm_params.{field}")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/key/generate", "duration"),
        ("/key/update", "duration"),
        ("/key/regenerate", "duration"),
        ("/team/new", "budget_duration"),
        ("/user/update", "budget_duration"),
        ("/customer/new", "budget_duration"),
    ],
)
@pytest.mark.parametrize("bad", ["7x", "1y", "d7", "-1d"])
def test_bad_durations_are_422(
    admin: httpx.Client, objects: Objects, path: str, field: str, bad: str
) -> None:
    """A duration that is not like 30s/5m/1h/7d/2w/1mo is a 422 naming the field."""
    _error(admin.post(path, json={**VALID[path](objects), field: bad}), 422, field)


def test_key_budget_duration_is_validated(admin: httpx.Client, objects: Objects) -> None:
    """budget_duration '7x' is a 422 on /key/generate, /key/update and /key/regenerate, as on other routes."""
    key = _ok(admin.post("/key/generate", json={}))["key"]
    for path in ("/key/generate", "/key/update", "/key/regenerate"):
        body = {**VALID[path](objects), "budget_duration": "7x"} | (
            {} if path == "/key/generate" else {"key": key}
        )
        response = admin.post(path, json=body)
        _drop_key_if_made(admin, response)
        _error(response, 422, "budget_duration")


def test_user_new_bad_duration_is_422(admin: httpx.Client) -> None:
    """/user/new with duration '7x' (for the user's first key) is a 422, and no user is created."""
    user_id = _uid()
    _error(admin.post("/user/new", json={"user_id": user_id, "duration": "7x"}), 422, "duration")
    assert admin.get("/user/info", params={"user_id": user_id}).status_code == 404


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/group/new", "routing_strategy", "round-robin"),
        ("/group/update", "routing_strategy", "fastest"),
        ("/user/new", "user_role", "superuser"),
        ("/user/update", "user_role", "master"),
        ("/team/new", "members_with_roles", [{"user_id": "u", "role": "owner"}]),
    ],
)
def test_unknown_enum_values_are_422(
    admin: httpx.Client, objects: Objects, path: str, field: str, value: Any
) -> None:
    """Routing strategies, user roles and team roles outside the known set are a 422."""
    error = _error(admin.post(path, json={**VALID[path](objects), field: value}), 422)
    assert error["param"].startswith(field)


def test_member_add_with_an_unknown_role_is_422(admin: httpx.Client, objects: Objects) -> None:
    """/team/member_add with role 'owner' is a 422 and the member is not added."""
    member = _uid()
    body = {"team_id": objects.team, "member": {"user_id": member, "role": "owner"}}
    _error(admin.post("/team/member_add", json=body), 422, "member.role")
    team = _ok(admin.get("/team/info", params={"team_id": objects.team}))
    assert member not in {m["user_id"] for m in team["members_with_roles"]}


def test_member_add_with_an_unknown_member_field_is_422(admin: httpx.Client, objects: Objects) -> None:
    """An unknown field inside `member` (a typo of `role`) is a 422, not a silent plain-member add."""
    member = _uid()
    body = {"team_id": objects.team, "member": {"user_id": member, "rol": "admin"}}
    _error(admin.post("/team/member_add", json=body), 422, "member.rol")


# ---------------------------------------------------------------- keys chosen by the caller


@pytest.mark.parametrize(
    "custom",
    [
        "hydite-0123456789abcdef0123456789abcdef",
        "sk-short",
        "sk-0123456789ab",
        "sk-" + "a" * 31,
        "pk-0123456789abcdef0123456789abcdef",
        "sk-0123456789abcdef 0123456789abcdef",
    ],
)
def test_custom_keys_must_start_with_sk_and_be_long_enough(
    admin: httpx.Client, objects: Objects, custom: str
) -> None:
    """A custom key (generate) or new_key (regenerate) not 'sk-' + 32 or more visible characters is a 422."""
    _error(admin.post("/key/generate", json={"key": custom}), 422, "key")
    _error(admin.post("/key/regenerate", json={"key": objects.key, "new_key": custom}), 422, "new_key")
    _error(admin.post(f"/key/{objects.key}/regenerate", json={"new_key": custom}), 422, "new_key")
    assert admin.get("/key/info", params={"key": objects.key}).status_code == 200


# ---------------------------------------------------------------- providers


def test_model_new_with_an_unknown_custom_provider_is_400(admin: httpx.Client) -> None:
    """custom_llm_provider outside the accepted set is a 400 naming litellm_params.model."""
    body = {"model_name": _uid(), "litellm_params": {"model": "claude-3", "custom_llm_provider": "bedrok"}}
    _error(admin.post("/model/new", json=body), 400, "litellm_params.model")


def test_model_new_with_an_unknown_provider_prefix_is_400(admin: httpx.Client) -> None:
    """/model/new with model 'antropic/claude-3-haiku' (a provider no one knows) is a 400."""
    name = _uid()
    body = {"model_name": name, "litellm_params": {"model": "antropic/claude-3-haiku"}}
    response = admin.post("/model/new", json=body)
    if response.status_code == 200:
        _ok(admin.post("/model/delete", json={"id": response.json()["model_id"]}))
    _error(response, 400, "litellm_params.model")


def test_model_update_of_only_the_provider_is_not_a_500(admin: httpx.Client, objects: Objects) -> None:
    """Changing only litellm_params.custom_llm_provider answers 200 (or a 4xx), never a 500."""
    body = {"model_id": objects.model_id, "litellm_params": {"custom_llm_provider": "mock"}}
    response = admin.post("/model/update", json=body)
    assert response.status_code < 500, response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(
            "/user/update",
            {"user_role": None},
            id="user_role",
        ),
        pytest.param(
            "/group/update",
            {"routing_strategy": None},
            id="routing_strategy",
        ),
        pytest.param(
            "/model/update",
            {"litellm_params": {"weight": None}},
            id="weight",
        ),
        pytest.param(
            "/team/update", {"team_alias": None, "models": None, "metadata": None}, id="team-nullables"
        ),
        pytest.param(
            "/key/update", {"key_alias": None, "duration": None, "models": None}, id="key-nullables"
        ),
    ],
)
def test_explicit_nulls_are_accepted_or_422_never_500(
    admin: httpx.Client, objects: Objects, path: str, body: dict[str, Any]
) -> None:
    """Sending null for a field either clears it (200) or is a 422; it never reaches the database as a 500."""
    target = VALID[path](objects)
    if path == "/team/update":
        target["team_id"] = _uid()
        _ok(admin.post("/team/new", json={"team_id": target["team_id"], "models": ["m"]}))
    elif path == "/key/update":
        target["key"] = _ok(admin.post("/key/generate", json={"key_alias": _uid("val-alias")}))["key"]
    response = admin.post(path, json={**target, **body})
    if response.status_code != 200:
        _error(response, 422)


# ---------------------------------------------------------------- ids: missing, unknown, duplicate


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        ("/key/update", {"metadata": {}}, 422, "key"),
        ("/key/regenerate", {}, 422, "key"),
        ("/key/block", {}, 422, "key"),
        ("/key/delete", {}, 422, None),
        ("/user/update", {"max_budget": 1}, 400, "user_id"),
        ("/team/update", {"max_budget": 1}, 400, "team_id"),
        ("/team/member_add", {"member": {"user_id": "u"}}, 422, "team_id"),
        ("/team/member_delete", {"team_id": "t"}, 422, "user_id"),
        ("/organization/update", {"max_budget": 1}, 400, "organization_id"),
        ("/customer/new", {"max_budget": 1}, 400, "user_id"),
        ("/customer/update", {"max_budget": 1}, 400, "user_id"),
        ("/group/new", {"models": ["m"]}, 400, "name"),
        ("/group/update", {"models": ["m"]}, 400, "name"),
        ("/model/update", {"model_name": "renamed"}, 400, "model_id"),
        ("/model/delete", {}, 422, "id"),
        ("/user/delete", {"user_ids": []}, 422, "user_ids"),
    ],
)
def test_missing_ids_are_4xx_naming_the_id(
    admin: httpx.Client, path: str, body: dict[str, Any], status: int, param: str | None
) -> None:
    """A body without the id it needs is a 400 or 422 naming that id."""
    _error(admin.post(path, json=body), status, param)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/key/update", {"key": "sk-val-missing-key-000", "max_budget": 1}, "key"),
        ("/key/regenerate", {"key": "sk-val-missing-key-000"}, "key"),
        ("/key/block", {"key": "sk-val-missing-key-000"}, "key"),
        ("/key/unblock", {"key": "sk-val-missing-key-000"}, "key"),
        ("/team/update", {"team_id": "val-missing", "max_budget": 1}, "team_id"),
        ("/team/member_add", {"team_id": "val-missing", "member": {"user_id": "u"}}, "team_id"),
        ("/team/block", {"team_id": "val-missing"}, "team_id"),
        ("/organization/update", {"organization_id": "val-missing", "max_budget": 1}, "organization_id"),
        ("/customer/update", {"user_id": "val-missing", "max_budget": 1}, "user_id"),
        ("/group/update", {"name": "val-missing", "max_budget": 1}, "name"),
        ("/model/update", {"model_id": "val-missing", "model_name": "x"}, "model_id"),
        ("/model/delete", {"id": "val-missing"}, "id"),
    ],
)
def test_unknown_ids_are_404(admin: httpx.Client, path: str, body: dict[str, Any], param: str) -> None:
    """Updating, blocking or deleting something that does not exist is a 404 naming the id."""
    _error(admin.post(path, json=body), 404, param)


def test_user_update_of_an_unknown_user_creates_it(admin: httpx.Client) -> None:
    """LiteLLM's /user/update creates a user it does not know (its tests reset the proxy budget
    user this way); the user exists afterwards with the fields given."""
    user_id = _uid()
    _ok(admin.post("/user/update", json={"user_id": user_id, "spend": 0, "max_budget": 5}))
    info = admin.get("/user/info", params={"user_id": user_id})
    assert info.status_code == 200
    assert info.json()["user_info"]["max_budget"] == 5


def test_member_delete_of_a_non_member_is_404(admin: httpx.Client, objects: Objects) -> None:
    """Removing a user who is not in the team is a 404 naming user_id."""
    body = {"team_id": objects.team, "user_id": "val-not-a-member"}
    _error(admin.post("/team/member_delete", json=body), 404, "user_id")


ENTITIES = {
    "user": ("user_id", "user_ids", "user_id"),
    "team": ("team_id", "team_ids", "team_id"),
    "organization": ("organization_id", "organization_ids", "organization_id"),
    "customer": ("user_id", "user_ids", "user_id"),
    "group": ("name", "names", "name"),
}
"""Kind -> (id field on /new, list field on /delete, query parameter of /info)."""


@pytest.mark.parametrize("kind", list(ENTITIES))
def test_delete_with_one_missing_id_is_404_and_deletes_nothing(admin: httpx.Client, kind: str) -> None:
    """/<kind>/delete naming one existing and one missing id is a 404, and the existing one survives."""
    id_field, list_field, query = ENTITIES[kind]
    existing = _uid()
    _ok(admin.post(f"/{kind}/new", json={id_field: existing}))
    response = admin.post(f"/{kind}/delete", json={list_field: [existing, _uid("missing")]})
    _error(response, 404, id_field)
    assert admin.get(f"/{kind}/info", params={query: existing}).status_code == 200


def test_key_delete_is_all_or_nothing(admin: httpx.Client) -> None:
    """/key/delete with an existing key plus a missing key (or alias) is a 404 and deletes neither."""
    alias = _uid("val-alias")
    key = _ok(admin.post("/key/generate", json={"key_alias": alias}))["key"]
    other = _ok(admin.post("/key/generate", json={}))["key"]
    _error(admin.post("/key/delete", json={"keys": [key, "sk-val-missing-key-000"]}), 404, "key")
    _error(
        admin.post("/key/delete", json={"keys": [other], "key_aliases": [alias, "val-missing"]}),
        404,
        "key_aliases",
    )
    for value in (key, other):
        assert admin.get("/key/info", params={"key": value}).status_code == 200
    assert _ok(admin.post("/key/delete", json={"keys": [other], "key_aliases": [alias]}))["deleted_keys"]


def test_customer_block_is_all_or_nothing(admin: httpx.Client, objects: Objects) -> None:
    """/customer/block naming an existing and a missing end user is a 404 and blocks neither."""
    _error(
        admin.post("/customer/block", json={"user_ids": [objects.customer, "val-missing"]}), 404, "user_id"
    )
    assert _ok(admin.get("/customer/info", params={"user_id": objects.customer}))["blocked"] is False


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/user/new", lambda o: {"user_id": o.user, "auto_create_key": False}),
        ("/team/new", lambda o: {"team_id": o.team}),
        ("/organization/new", lambda o: {"organization_id": o.organization}),
        ("/customer/new", lambda o: {"user_id": o.customer}),
        ("/group/new", lambda o: {"name": o.group}),
        ("/key/generate", lambda o: {"key": o.key}),
        (
            "/model/new",
            lambda o: {
                "model_name": "dup",
                "litellm_params": {"model": "mock/x"},
                "model_info": {"id": o.model_id},
            },
        ),
    ],
)
def test_duplicate_ids_on_new_are_409(admin: httpx.Client, objects: Objects, path: str, body: Body) -> None:
    """Creating something whose id (or key value) already exists is a 409."""
    _error(admin.post(path, json=body(objects)), 409)


def test_empty_id_on_new_is_refused(admin: httpx.Client) -> None:
    """/organization/new with organization_id '' is a 400 or 422, not an organization named ''."""
    response = admin.post("/organization/new", json={"organization_id": ""})
    if response.status_code == 200:
        _ok(admin.post("/organization/delete", json={"organization_ids": [""]}))
    assert response.status_code in (400, 422), response.text


def test_duplicate_key_alias_is_409(admin: httpx.Client, objects: Objects) -> None:
    """An alias already used by another key is a 409 on /key/generate, /key/regenerate and /user/new."""
    _error(admin.post("/key/generate", json={"key_alias": objects.key_alias}), 409, "key_alias")
    other = _ok(admin.post("/key/generate", json={}))["key"]
    _error(
        admin.post("/key/regenerate", json={"key": other, "key_alias": objects.key_alias}), 409, "key_alias"
    )
    assert admin.get("/key/info", params={"key": other}).status_code == 200
    user = {"user_id": _uid(), "key_alias": objects.key_alias}
    _error(admin.post("/user/new", json=user), 409, "key_alias")
    assert admin.get("/user/info", params={"user_id": user["user_id"]}).status_code == 404


def test_key_update_to_a_taken_alias_is_409(admin: httpx.Client, objects: Objects) -> None:
    """/key/update giving a key an alias another key has is a 409 naming key_alias."""
    other = _ok(admin.post("/key/generate", json={}))["key"]
    _error(admin.post("/key/update", json={"key": other, "key_alias": objects.key_alias}), 409, "key_alias")


def test_empty_key_alias_twice_is_not_a_500(admin: httpx.Client) -> None:
    """Two keys with key_alias '' are both accepted or refused with a 4xx; never a 500."""
    responses = [admin.post("/key/generate", json={"key_alias": ""}) for _ in range(2)]
    for response in responses:
        _drop_key_if_made(admin, response)
    assert all(r.status_code < 500 for r in responses), [r.text for r in responses]


# ---------------------------------------------------------------- references to other objects


def _state_of(admin: httpx.Client, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """What a refused write must leave unchanged: the target's info, or the would-be new object."""
    kind, _, action = path.strip("/").partition("/")
    if kind == "key":
        if action == "generate":
            response = admin.get("/key/list", params={"key_alias": body["key_alias"]})
        else:
            response = admin.get("/key/info", params={"key": body["key"]})
    else:
        id_field = {"user": "user_id", "team": "team_id"}[kind]
        response = admin.get(f"/{kind}/info", params={id_field: body[id_field]})
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/key/generate", "team_id"),
        ("/key/generate", "organization_id"),
        ("/key/generate", "key_group"),
        ("/key/update", "team_id"),
        ("/key/update", "key_group"),
        ("/key/regenerate", "organization_id"),
        ("/user/new", "organization_id"),
        ("/user/update", "organization_id"),
        ("/team/new", "organization_id"),
        ("/team/new", "key_group"),
        ("/team/update", "key_group"),
    ],
)
def test_missing_referenced_objects_are_400(
    admin: httpx.Client, objects: Objects, path: str, field: str
) -> None:
    """A team, organization or key group that does not exist is a 400 naming the field; nothing changes."""
    body = {**VALID[path](objects), field: "val-does-not-exist"}
    if path == "/key/generate":
        body["key_alias"] = _uid("val-alias")
    elif path == "/key/regenerate":
        body["key"] = objects.key
    before = _state_of(admin, path, body)
    _error(admin.post(path, json=body), 400, field)
    assert _state_of(admin, path, body) == before


def test_user_new_with_a_missing_team_is_400(admin: httpx.Client) -> None:
    """/user/new with teams naming a team that does not exist is a 400 naming teams."""
    _error(admin.post("/user/new", json={"user_id": _uid(), "teams": ["val-does-not-exist"]}), 400, "teams")


def test_key_models_outside_the_team_allowlist_are_400(admin: httpx.Client, objects: Objects) -> None:
    """A key of a team may not allow a model the team does not."""
    body = {"team_id": objects.team, "models": ["val-other-model"]}
    _error(admin.post("/key/generate", json=body), 400, "models")


def test_deleting_referenced_organizations_and_groups_is_409(admin: httpx.Client) -> None:
    """An organization with teams, or a key group with keys, cannot be deleted (409) and still exists."""
    org, group = _uid(), _uid()
    _ok(admin.post("/organization/new", json={"organization_id": org}))
    _ok(admin.post("/team/new", json={"team_id": _uid(), "organization_id": org}))
    _ok(admin.post("/group/new", json={"name": group}))
    _ok(admin.post("/key/generate", json={"key_group": group}))
    _error(admin.post("/organization/delete", json={"organization_ids": [org]}), 409)
    _error(admin.post("/group/delete", json={"names": [group]}), 409)
    assert admin.get("/organization/info", params={"organization_id": org}).status_code == 200
    assert admin.get("/group/info", params={"name": group}).status_code == 200
