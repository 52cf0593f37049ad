"""Who may call which admin route: every route x every role, through the data plane.

Roles (see hydite_controlplane.admin.auth): the master key; a key of a `proxy_admin` user;
a key of a `proxy_admin_viewer` user; a team admin (a key whose user is an "admin" in
`members_with_roles` of team t-authz, and an `internal_user`); a key of an `internal_user` (its
own personal keys) and of an `internal_user_viewer` (reads its own keys); a plain key (no user); no
key; an unknown key.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from hydite_common.devstack import Stack
from tests.harness import wait_until

TEAM = "t-authz"
OTHER_TEAM = "t-authz-other"
ERROR_KEYS = {"message", "type", "code", "param"}
UPSTREAM_SECRET = "sk-upstream-authz-secret-0123"

# ---------------------------------------------------------------- the expectation table

ROLES = (
    "master", "proxy_admin", "viewer", "team_admin", "internal_user", "internal_viewer", "plain", "no_key",
    "bad_key",
)  # fmt: skip
WRITERS = frozenset({"master", "proxy_admin"})
READERS = WRITERS | {"viewer"}
TEAM_MANAGERS = WRITERS | {"team_admin"}
TEAM_READERS = READERS | {"team_admin"}
OWN_KEY_WRITERS = WRITERS | {"internal_user"}
OWN_KEY_READERS = TEAM_READERS | {"internal_user", "internal_viewer"}
ANY_KEY = READERS | {"team_admin", "internal_user", "internal_viewer", "plain"}

ALLOWED: dict[str, frozenset[str]] = {
    # keys: a team admin manages keys of its own team only; an internal user (the team admin's user
    # is one) its own personal keys, an internal viewer reads them; a plain key reads itself.
    "POST /key/generate": TEAM_MANAGERS,  # with team_id=t-authz
    "POST /key/generate [other team]": WRITERS,
    "POST /key/generate [no team]": WRITERS | {"team_admin", "internal_user"},  # an own key
    "POST /key/update [internal user's key]": OWN_KEY_WRITERS,
    "POST /key/delete [internal user's key]": OWN_KEY_WRITERS,
    "POST /key/regenerate [internal user's key]": OWN_KEY_WRITERS,
    "POST /key/block [internal user's key]": OWN_KEY_WRITERS,
    "GET /key/info [internal user's key]": READERS | {"internal_user"},
    "GET /key/info [internal viewer's key]": READERS | {"internal_viewer"},
    "POST /key/update": TEAM_MANAGERS,  # a key of t-authz
    "POST /key/update [other team's key]": WRITERS,
    "POST /key/delete": TEAM_MANAGERS,
    "POST /key/delete [other team's key]": WRITERS,
    "POST /key/regenerate": TEAM_MANAGERS,
    "POST /key/{key}/regenerate": TEAM_MANAGERS,
    "POST /key/regenerate [other team's key]": WRITERS,
    "POST /key/block": TEAM_MANAGERS,
    "POST /key/block [other team's key]": WRITERS,
    "POST /key/unblock": WRITERS,  # of a key the master key blocked: a team admin may not lift it
    "GET /key/info [own key]": ANY_KEY,  # the master key gets a 400: it has no key info
    "GET /key/info [t-authz key]": TEAM_READERS,
    "GET /key/info [other team's key]": READERS,
    "GET /key/list": OWN_KEY_READERS,  # a team admin sees its teams' keys, an internal user its own
    "GET /key/list [other team]": READERS,
    "GET /key/health": ANY_KEY,
    # users, teams, organizations, customers, key groups: admins write, viewers read.
    "POST /user/new": WRITERS,
    "POST /user/update": WRITERS,
    "POST /user/delete": WRITERS,
    "GET /user/info": READERS,
    "GET /user/list": READERS,
    "POST /team/new": WRITERS,
    "POST /team/update": WRITERS,
    "POST /team/delete": WRITERS,
    "POST /team/member_add": TEAM_MANAGERS,
    "POST /team/member_add [other team]": WRITERS,
    "POST /team/member_delete": TEAM_MANAGERS,
    "POST /team/member_update": TEAM_MANAGERS,
    "POST /team/member_update [other team]": WRITERS,
    "POST /team/block": WRITERS,
    "POST /team/unblock": WRITERS,
    "GET /team/info": TEAM_READERS,
    "GET /team/info [other team]": READERS,
    "GET /team/list": READERS,
    "POST /organization/new": WRITERS,
    "POST /organization/update": WRITERS,
    "POST /organization/delete": WRITERS,
    "DELETE /organization/delete": WRITERS,
    "POST /organization/member_add": WRITERS,
    "POST /organization/member_update": WRITERS,
    "POST /organization/member_delete": WRITERS,
    "GET /organization/info": READERS,
    "GET /organization/list": READERS,
    # A team admin keeps end users of its own team (a global one is not in its scope: 404).
    "POST /customer/new": TEAM_MANAGERS,
    "POST /customer/update": WRITERS,
    "POST /customer/delete": WRITERS,
    "POST /customer/block": WRITERS,
    "POST /customer/unblock": WRITERS,
    "GET /customer/info": READERS,
    "GET /customer/list": TEAM_READERS,
    # /end_user/* is LiteLLM's older name of /customer/*: the same handlers.
    "POST /end_user/new": TEAM_MANAGERS,
    "POST /end_user/update": WRITERS,
    "POST /end_user/delete": WRITERS,
    "POST /end_user/block": WRITERS,
    "POST /end_user/unblock": WRITERS,
    "GET /end_user/info": READERS,
    "GET /end_user/list": TEAM_READERS,
    # budgets: admins write, viewers read.
    "POST /budget/new": WRITERS,
    "POST /budget/update": WRITERS,
    "POST /budget/delete": WRITERS,
    "POST /budget/info": READERS,
    "GET /budget/info": READERS,
    "GET /budget/list": READERS,
    "POST /group/new": WRITERS,
    "POST /group/update": WRITERS,
    "POST /group/delete": WRITERS,
    "GET /group/info": READERS,
    "GET /group/list": READERS,
    # models: admins write; every key reads the models it may call.
    "POST /model/new": WRITERS,
    "POST /model/new [team model]": TEAM_MANAGERS,  # model_info.team_id=t-authz
    "POST /model/new [other team's model]": WRITERS,
    "POST /model/update": WRITERS,
    "POST /model/delete": WRITERS,
    "GET /model/info": ANY_KEY,
    "GET /v1/model/info": ANY_KEY,
    "GET /v2/model/info": ANY_KEY,
    "GET /model_group/info": ANY_KEY,
    # spend, audit, config status.
    "GET /spend/logs": ANY_KEY,  # a plain key sees its own rows only
    "GET /spend/logs [another key's api_key]": READERS,
    "GET /audit": READERS,
    "GET /config/status": READERS,
}
"""Case ("METHOD /path [variant]") -> roles allowed; other roles get 403 (401 without a valid key)."""

# Allowed calls answer 2xx, except these, which are allowed but deliberately not satisfiable.
NOT_2XX = {("GET /key/info [own key]", "master"): 400}

# Denied calls answer 403, except these: a key the caller may not see is a 404, like an unknown key.
OWN_KEYS_ONLY = ("team_admin", "internal_user", "internal_viewer", "plain")
"""Roles that see a key only when it is theirs (their own, their team's, their user's)."""

DENIED_AS = {
    **{("GET /key/info [other team's key]", role): 404 for role in OWN_KEYS_ONLY},
    **{("GET /key/info [t-authz key]", role): 404 for role in ("internal_user", "internal_viewer", "plain")},
    **{
        (f"GET /key/info [{owner}'s key]", role): 404
        for owner in ("internal user", "internal viewer")
        for role in OWN_KEYS_ONLY
    },
    **{
        (f"{method} /{kind}/{route}", "team_admin"): 404
        for kind in ("customer", "end_user")
        for method, route in (
            ("POST", "update"),
            ("POST", "delete"),
            ("POST", "block"),
            ("POST", "unblock"),
            ("GET", "info"),
        )
    },
}

ADMIN_ROUTES = [
    *(f"POST /key/{r}" for r in ("generate", "update", "delete", "regenerate", "block", "unblock")),
    *(f"GET /key/{r}" for r in ("info", "list", "health")),
    *(f"POST /user/{r}" for r in ("new", "update", "delete")),
    *(
        f"POST /team/{r}"
        for r in (
            "new",
            "update",
            "delete",
            "member_add",
            "member_delete",
            "member_update",
            "block",
            "unblock",
        )
    ),
    *(
        f"POST /organization/{r}"
        for r in ("new", "update", "delete", "member_add", "member_update", "member_delete")
    ),
    "DELETE /organization/delete",
    *(
        f"POST /{k}/{r}"
        for k in ("customer", "end_user")
        for r in ("new", "update", "delete", "block", "unblock")
    ),
    *(f"GET /end_user/{r}" for r in ("info", "list")),
    *(f"POST /budget/{r}" for r in ("new", "update", "delete", "info")),
    *(f"GET /budget/{r}" for r in ("info", "list")),
    *(f"POST /group/{r}" for r in ("new", "update", "delete")),
    *(f"POST /model/{r}" for r in ("new", "update", "delete")),
    *(
        f"GET /{e}/{r}"
        for e in ("user", "team", "organization", "customer", "group")
        for r in ("info", "list")
    ),
    "GET /model/info",
    "GET /v1/model/info",
    "GET /v2/model/info",
    "GET /model_group/info",
    "GET /spend/logs",
    "GET /audit",
    "GET /config/status",
]


# ---------------------------------------------------------------- the objects the routes need


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _fresh_key(admin: httpx.Client, team: str | None = TEAM, **body: Any) -> str:
    return str(_ok(admin.post("/key/generate", json={"team_id": team, **body}))["key"])


def _fresh(admin: httpx.Client, kind: str, id_field: str, **body: Any) -> str:
    new_id = _uid(f"authz-{kind}")
    _ok(admin.post(f"/{kind}/new", json={id_field: new_id, **body}))
    return new_id


def _fresh_model(admin: httpx.Client, name: str | None = None, **params: Any) -> str:
    body = {"model_name": name or _uid("authz-model"), "litellm_params": {"model": "mock/authz", **params}}
    return str(_ok(admin.post("/model/new", json=body))["model_id"])


@dataclass
class World:
    """Clients per role and the objects the matrix calls refer to (created by the master key)."""

    admin: httpx.Client
    clients: dict[str, httpx.Client]
    keys: dict[str, str]  # role -> its key
    users: dict[str, str]  # role -> its user_id
    user: str
    organization: str
    customer: str
    group: str
    budget: str
    model_id: str
    visible_model: str
    hidden_model: str
    team_key: str
    other_team_key: str

    def read(self, path: str, **params: str) -> tuple[int, Any]:
        """Status and body of a GET as the master key."""
        response = self.admin.get(path, params=params)
        return response.status_code, response.json()

    def key(self, team: str = TEAM) -> str:
        """A fresh key of team."""
        return _fresh_key(self.admin, team)

    def own_key(self, role: str) -> str:
        """A fresh personal key (no team) of role's user."""
        return _fresh_key(self.admin, None, user_id=self.users[role])

    def new(self, kind: str, id_field: str, **body: Any) -> str:
        """A fresh user, team, organization, customer or key group; returns its id."""
        return _fresh(self.admin, kind, id_field, **body)

    def model(self) -> str:
        """A fresh mock deployment; returns its id."""
        return _fresh_model(self.admin)


@pytest.fixture(scope="module")
def world(stack: Stack, admin: httpx.Client) -> Iterator[World]:
    """Users with each role and their keys, team t-authz with its admin, keys in and out of it."""
    suffix = uuid.uuid4().hex[:8]
    user_roles = {
        "proxy_admin": "proxy_admin",
        "viewer": "proxy_admin_viewer",
        "team_admin": "internal_user",
        "internal_user": "internal_user",
        "internal_viewer": "internal_user_viewer",
    }
    users = {role: f"authz-{role}-{suffix}" for role in user_roles}
    for role, user_id in users.items():
        body = {"user_id": user_id, "user_role": user_roles[role], "auto_create_key": False}
        _ok(admin.post("/user/new", json=body))
    members = [{"user_id": users["team_admin"], "role": "admin"}]
    _ok(admin.post("/team/new", json={"team_id": TEAM, "members_with_roles": members}))
    _ok(admin.post("/team/new", json={"team_id": OTHER_TEAM}))
    visible, hidden = _uid("authz-visible"), _uid("authz-hidden")
    for name in (visible, hidden):
        _fresh_model(admin, name, api_key=UPSTREAM_SECRET)
    keys = {
        role: str(_ok(admin.post("/key/generate", json={"user_id": u}))["key"]) for role, u in users.items()
    }
    keys["plain"] = str(_ok(admin.post("/key/generate", json={"models": [visible]}))["key"])
    keys["bad_key"] = "sk-hydite-not-a-key-" + suffix
    headers: dict[str, dict[str, str]] = {role: {"Authorization": f"Bearer {k}"} for role, k in keys.items()}
    headers["master"] = {"Authorization": f"Bearer {stack.config.master_key}"}
    headers["no_key"] = {}
    world = World(
        admin=admin,
        clients={
            role: httpx.Client(base_url=stack.base_url, headers=h, timeout=10) for role, h in headers.items()
        },
        keys=keys,
        users=users,
        user=_fresh(admin, "user", "user_id", auto_create_key=False),
        organization=_fresh(admin, "organization", "organization_id"),
        customer=_fresh(admin, "customer", "user_id"),
        group=_fresh(admin, "group", "name"),
        budget=str(_ok(admin.post("/budget/new", json={"max_budget": 10}))["budget_id"]),
        model_id=_fresh_model(admin),
        visible_model=visible,
        hidden_model=hidden,
        team_key=_fresh_key(admin, TEAM, models=[visible]),
        other_team_key=_fresh_key(admin, OTHER_TEAM),
    )
    try:
        yield world
    finally:
        for client in world.clients.values():
            client.close()


# ---------------------------------------------------------------- how each case is called


@dataclass(frozen=True)
class Call:
    """One request, and (for writes) what must look the same after a denied attempt."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    state: Callable[[], object] | None = None


def _key_call(path: str, team: str = TEAM, **extra: Any) -> Callable[[World], Call]:
    def build(w: World) -> Call:
        key = w.key(team)
        return Call("POST", path, {"key": key, **extra}, state=lambda: w.read("/key/info", key=key))

    return build


def _key_delete(team: str) -> Callable[[World], Call]:
    def build(w: World) -> Call:
        key = w.key(team)
        return Call("POST", "/key/delete", {"keys": [key]}, state=lambda: w.read("/key/info", key=key))

    return build


def _key_regenerate_in_path(w: World) -> Call:
    key = w.key()
    return Call("POST", f"/key/{key}/regenerate", {}, state=lambda: w.read("/key/info", key=key))


def _key_generate(team: str | None) -> Callable[[World], Call]:
    def build(w: World) -> Call:
        alias = _uid("authz-alias")
        body: dict[str, Any] = {"key_alias": alias} | ({"team_id": team} if team else {})
        return Call("POST", "/key/generate", body, state=lambda: w.read("/key/list", key_alias=alias))

    return build


def _own_key_call(path: str, role: str, **extra: Any) -> Callable[[World], Call]:
    def build(w: World) -> Call:
        key = w.own_key(role)
        body = {"keys": [key]} if path == "/key/delete" else {"key": key, **extra}
        return Call("POST", path, body, state=lambda: w.read("/key/info", key=key))

    return build


def _own_key_info(role: str) -> Callable[[World], Call]:
    return lambda w: Call("GET", "/key/info", params={"key": w.own_key(role)})


def _key_unblock(w: World) -> Call:
    key = w.key()
    _ok(w.admin.post("/key/block", json={"key": key}))
    return Call("POST", "/key/unblock", {"key": key}, state=lambda: w.read("/key/info", key=key))


ENTITY_IDS = {
    "user": ("user_id", "user_id"),
    "team": ("team_id", "team_id"),
    "organization": ("organization_id", "organization_id"),
    "customer": ("user_id", "user_id"),
    "group": ("name", "name"),
}


def _entity_new(kind: str) -> Callable[[World], Call]:
    id_field, query = ENTITY_IDS[kind]

    def build(w: World) -> Call:
        new_id = _uid(f"authz-{kind}")
        body: dict[str, Any] = {id_field: new_id} | ({"auto_create_key": False} if kind == "user" else {})
        return Call("POST", f"/{kind}/new", body, state=lambda: w.read(f"/{kind}/info", **{query: new_id}))

    return build


def _shared_id(w: World, kind: str) -> str:
    return {
        "user": w.user,
        "team": OTHER_TEAM,
        "organization": w.organization,
        "customer": w.customer,
        "group": w.group,
    }[kind]


def _entity_update(kind: str) -> Callable[[World], Call]:
    id_field, query = ENTITY_IDS[kind]

    def build(w: World) -> Call:
        target = _shared_id(w, kind)
        body = {id_field: target, "metadata": {"touched": uuid.uuid4().hex}}
        return Call("POST", f"/{kind}/update", body, state=lambda: w.read(f"/{kind}/info", **{query: target}))

    return build


def _entity_delete(kind: str) -> Callable[[World], Call]:
    id_field, query = ENTITY_IDS[kind]

    def build(w: World) -> Call:
        target = w.new(kind, id_field, **({"auto_create_key": False} if kind == "user" else {}))
        body = {f"{id_field}s": [target]}
        return Call("POST", f"/{kind}/delete", body, state=lambda: w.read(f"/{kind}/info", **{query: target}))

    return build


def _entity_get(kind: str, action: str) -> Callable[[World], Call]:
    _, query = ENTITY_IDS[kind]

    def build(w: World) -> Call:
        params = {query: _shared_id(w, kind)} if action == "info" else None
        return Call("GET", f"/{kind}/{action}", params=params)

    return build


def _member_add(team: str) -> Callable[[World], Call]:
    def build(w: World) -> Call:
        body = {"team_id": team, "member": {"user_id": _uid("authz-member"), "role": "user"}}
        return Call("POST", "/team/member_add", body, state=lambda: w.read("/team/info", team_id=team))

    return build


def _member_delete(w: World) -> Call:
    member = _uid("authz-member")
    _ok(w.admin.post("/team/member_add", json={"team_id": TEAM, "member": {"user_id": member}}))
    body = {"team_id": TEAM, "user_id": member}
    return Call("POST", "/team/member_delete", body, state=lambda: w.read("/team/info", team_id=TEAM))


def _member_update(team: str) -> Callable[[World], Call]:
    def build(w: World) -> Call:
        member = _uid("authz-member")
        _ok(w.admin.post("/team/member_add", json={"team_id": team, "member": {"user_id": member}}))
        body = {"team_id": team, "user_id": member, "role": "admin", "max_budget_in_team": 1.0}
        return Call("POST", "/team/member_update", body, state=lambda: w.read("/team/info", team_id=team))

    return build


def _org_member(action: str) -> Callable[[World], Call]:
    def build(w: World) -> Call:
        org, member = w.organization, _uid("authz-member")
        adding: dict[str, Any] = {
            "organization_id": org,
            "member": {"user_id": member, "role": "internal_user"},
        }
        if action != "add":
            _ok(w.admin.post("/organization/member_add", json=adding))
        body: dict[str, Any] = {
            "add": adding,
            "update": {"organization_id": org, "user_id": member, "role": "org_admin"},
            "delete": {"organization_id": org, "user_id": member},
        }[action]
        state = lambda: w.read("/organization/info", organization_id=org)  # noqa: E731
        return Call("POST", f"/organization/member_{action}", body, state=state)

    return build


def _org_delete_by_delete(w: World) -> Call:
    org = w.new("organization", "organization_id")
    state = lambda: w.read("/organization/info", organization_id=org)  # noqa: E731
    return Call("DELETE", "/organization/delete", {"organization_ids": [org]}, state=state)


def _team_block(action: str) -> Callable[[World], Call]:
    def build(w: World) -> Call:
        team = w.new("team", "team_id", blocked=action == "unblock")
        return Call(
            "POST", f"/team/{action}", {"team_id": team}, state=lambda: w.read("/team/info", team_id=team)
        )

    return build


def _customer_block(action: str) -> Callable[[World], Call]:
    def build(w: World) -> Call:
        customer = w.new("customer", "user_id", blocked=action == "unblock")
        body = {"user_ids": [customer]}
        return Call(
            "POST", f"/customer/{action}", body, state=lambda: w.read("/customer/info", user_id=customer)
        )

    return build


def _as_end_user(build: Callable[[World], Call]) -> Callable[[World], Call]:
    """The same call on /end_user/ instead of /customer/."""

    def on_end_user(w: World) -> Call:
        call = build(w)
        return replace(call, path=call.path.replace("/customer/", "/end_user/"))

    return on_end_user


def _budget_new(w: World) -> Call:
    budget_id = _uid("authz-budget")
    return Call(
        "POST", "/budget/new", {"budget_id": budget_id, "tpm_limit": 2},
        state=lambda: w.read("/budget/info", budget_id=budget_id),
    )  # fmt: skip


def _budget_update(w: World) -> Call:
    body = {"budget_id": w.budget, "rpm_limit": uuid.uuid4().int % 1000}
    return Call("POST", "/budget/update", body, state=lambda: w.read("/budget/info", budget_id=w.budget))


def _budget_delete(w: World) -> Call:
    budget_id = str(_ok(w.admin.post("/budget/new", json={}))["budget_id"])
    return Call(
        "POST", "/budget/delete", {"id": budget_id}, state=lambda: w.read("/budget/info", budget_id=budget_id)
    )


def _model_new(w: World) -> Call:
    model_id = _uid("authz-model-id")
    body = {
        "model_name": _uid("authz-model"),
        "litellm_params": {"model": "mock/authz"},
        "model_info": {"id": model_id},
    }
    return Call("POST", "/model/new", body, state=lambda: w.read("/model/info", model_id=model_id))


def _team_model_new(team: str) -> Callable[[World], Call]:
    def build(w: World) -> Call:
        model_id = _uid("authz-team-model-id")
        body = {
            "model_name": _uid("authz-team-model"),
            "litellm_params": {"model": "mock/authz"},
            "model_info": {"id": model_id, "team_id": team},
        }
        return Call("POST", "/model/new", body, state=lambda: w.read("/model/info", model_id=model_id))

    return build


def _model_update(w: World) -> Call:
    body = {"model_id": w.model_id, "model_info": {"touched": uuid.uuid4().hex}}
    return Call("POST", "/model/update", body, state=lambda: w.read("/model/info", model_id=w.model_id))


def _model_delete(w: World) -> Call:
    model_id = w.model()
    return Call(
        "POST", "/model/delete", {"id": model_id}, state=lambda: w.read("/model/info", model_id=model_id)
    )


def _get(path: str, **params: str) -> Callable[[World], Call]:
    return lambda w: Call("GET", path, params=params or None)


CUSTOMER_REQUESTS: dict[str, Callable[[World], Call]] = {
    "POST /customer/new": _entity_new("customer"),
    "POST /customer/update": _entity_update("customer"),
    "POST /customer/delete": _entity_delete("customer"),
    "POST /customer/block": _customer_block("block"),
    "POST /customer/unblock": _customer_block("unblock"),
    "GET /customer/info": _entity_get("customer", "info"),
    "GET /customer/list": _entity_get("customer", "list"),
}

REQUESTS: dict[str, Callable[[World], Call]] = {
    "POST /key/generate": _key_generate(TEAM),
    "POST /key/generate [other team]": _key_generate(OTHER_TEAM),
    "POST /key/generate [no team]": _key_generate(None),
    "POST /key/update": _key_call("/key/update", metadata={"touched": "yes"}),
    "POST /key/update [other team's key]": _key_call("/key/update", OTHER_TEAM, metadata={"touched": "yes"}),
    "POST /key/delete": _key_delete(TEAM),
    "POST /key/delete [other team's key]": _key_delete(OTHER_TEAM),
    "POST /key/regenerate": _key_call("/key/regenerate"),
    "POST /key/{key}/regenerate": _key_regenerate_in_path,
    "POST /key/regenerate [other team's key]": _key_call("/key/regenerate", OTHER_TEAM),
    "POST /key/block": _key_call("/key/block"),
    "POST /key/block [other team's key]": _key_call("/key/block", OTHER_TEAM),
    "POST /key/unblock": _key_unblock,
    "GET /key/info [own key]": _get("/key/info"),
    "GET /key/info [t-authz key]": lambda w: Call("GET", "/key/info", params={"key": w.team_key}),
    "GET /key/info [other team's key]": lambda w: Call("GET", "/key/info", params={"key": w.other_team_key}),
    "GET /key/list": _get("/key/list"),
    "GET /key/list [other team]": _get("/key/list", team_id=OTHER_TEAM),
    "GET /key/health": _get("/key/health"),
    "POST /key/update [internal user's key]": _own_key_call(
        "/key/update", "internal_user", metadata={"v": 1}
    ),
    "POST /key/delete [internal user's key]": _own_key_call("/key/delete", "internal_user"),
    "POST /key/regenerate [internal user's key]": _own_key_call("/key/regenerate", "internal_user"),
    "POST /key/block [internal user's key]": _own_key_call("/key/block", "internal_user"),
    "GET /key/info [internal user's key]": _own_key_info("internal_user"),
    "GET /key/info [internal viewer's key]": _own_key_info("internal_viewer"),
    "POST /team/member_add": _member_add(TEAM),
    "POST /team/member_add [other team]": _member_add(OTHER_TEAM),
    "POST /team/member_delete": _member_delete,
    "POST /team/member_update": _member_update(TEAM),
    "POST /team/member_update [other team]": _member_update(OTHER_TEAM),
    "POST /organization/member_add": _org_member("add"),
    "POST /organization/member_update": _org_member("update"),
    "POST /organization/member_delete": _org_member("delete"),
    "DELETE /organization/delete": _org_delete_by_delete,
    "POST /team/block": _team_block("block"),
    "POST /team/unblock": _team_block("unblock"),
    "GET /team/info": _get("/team/info", team_id=TEAM),
    "GET /team/info [other team]": _get("/team/info", team_id=OTHER_TEAM),
    "POST /customer/block": _customer_block("block"),
    "POST /customer/unblock": _customer_block("unblock"),
    **{f"POST /{kind}/new": _entity_new(kind) for kind in ENTITY_IDS},
    **{f"POST /{kind}/update": _entity_update(kind) for kind in ENTITY_IDS},
    **{f"POST /{kind}/delete": _entity_delete(kind) for kind in ENTITY_IDS},
    **{f"GET /{kind}/info": _entity_get(kind, "info") for kind in ENTITY_IDS if kind != "team"},
    **{f"GET /{kind}/list": _entity_get(kind, "list") for kind in ENTITY_IDS},
    **{
        case.replace("/customer/", "/end_user/"): _as_end_user(build)
        for case, build in CUSTOMER_REQUESTS.items()
    },
    "POST /budget/new": _budget_new,
    "POST /budget/update": _budget_update,
    "POST /budget/delete": _budget_delete,
    "POST /budget/info": lambda w: Call("POST", "/budget/info", {"budgets": [w.budget]}),
    "GET /budget/info": lambda w: Call("GET", "/budget/info", params={"budget_id": w.budget}),
    "GET /budget/list": _get("/budget/list"),
    "POST /model/new": _model_new,
    "POST /model/new [team model]": _team_model_new(TEAM),
    "POST /model/new [other team's model]": _team_model_new(OTHER_TEAM),
    "POST /model/update": _model_update,
    "POST /model/delete": _model_delete,
    "GET /model/info": _get("/model/info"),
    "GET /v1/model/info": _get("/v1/model/info"),
    "GET /v2/model/info": _get("/v2/model/info"),
    "GET /model_group/info": _get("/model_group/info"),
    "GET /spend/logs": _get("/spend/logs"),
    "GET /spend/logs [another key's api_key]": lambda w: Call(
        "GET", "/spend/logs", params={"api_key": w.team_key}
    ),
    "GET /audit": _get("/audit"),
    "GET /config/status": _get("/config/status"),
}


def _expected(case: str, role: str) -> int | None:
    """401, 403 (or its DENIED_AS stand-in), or None for 'allowed'."""
    if role in ("no_key", "bad_key"):
        return 401
    return None if role in ALLOWED[case] else DENIED_AS.get((case, role), 403)


# ---------------------------------------------------------------- tests


def test_the_table_covers_every_admin_route_and_every_case_has_a_request() -> None:
    """Every admin route appears in the expectation table, and table and requests name the same cases."""
    assert set(ALLOWED) == set(REQUESTS)
    covered = {
        " ".join(case.split()[:2]).replace("/key/{key}/regenerate", "/key/regenerate") for case in ALLOWED
    }
    assert set(ADMIN_ROUTES) <= covered, sorted(set(ADMIN_ROUTES) - covered)
    assert all(roles <= set(ROLES) - {"no_key", "bad_key"} for roles in ALLOWED.values())


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", list(ALLOWED))
def test_route_answers_each_role_as_the_table_says(world: World, case: str, role: str) -> None:
    """Table roles are allowed, no valid key is 401, the rest 403, and a denied write changes nothing."""
    call = REQUESTS[case](world)
    before = call.state() if call.state else None
    response = world.clients[role].request(call.method, call.path, json=call.json, params=call.params)
    expected = _expected(case, role)
    assert response.status_code < 500, response.text
    if expected is None:
        want = NOT_2XX.get((case, role))
        if want is None:
            assert 200 <= response.status_code < 300, response.text
        else:
            assert response.status_code == want, response.text
        return
    assert response.status_code == expected, response.text
    error = response.json()["error"]
    assert set(error) >= ERROR_KEYS
    kinds = {401: "authentication_error", 403: "permission_error", 404: "invalid_request_error"}
    assert error["type"] == kinds[expected]
    if call.state is not None:
        assert call.state() == before, f"a denied {case} by {role} changed something"


def test_denied_key_delete_leaves_the_key_working(world: World) -> None:
    """A team admin's forbidden /key/delete of another team's key leaves that key usable."""
    key = world.key(OTHER_TEAM)
    denied = world.clients["team_admin"].post("/key/delete", json={"keys": [key]})
    assert denied.status_code == 403, denied.text
    with httpx.Client(base_url=world.admin.base_url, headers={"Authorization": f"Bearer {key}"}) as owner:
        assert owner.get("/key/health").status_code == 200
    assert world.read("/key/info", key=key)[0] == 200


def test_team_admin_key_list_is_restricted_to_its_team(world: World) -> None:
    """/key/list for a team admin returns only keys of t-authz, never the other team's."""
    body = _ok(world.clients["team_admin"].get("/key/list", params={"size": "1000"}))
    team_key_hash = hashlib.sha256(world.team_key.encode()).hexdigest()
    other_hash = hashlib.sha256(world.other_team_key.encode()).hexdigest()
    assert team_key_hash in body["keys"]
    assert other_hash not in body["keys"]
    full = _ok(world.clients["team_admin"].get("/key/list", params={"return_full_object": "true"}))
    assert {k["team_id"] for k in full["keys"]} == {TEAM}


def test_plain_key_sees_only_the_models_it_may_call_and_no_credentials(world: World) -> None:
    """A plain key's /model/info lists only its allowed model, without api_key; admins see all, masked."""
    for path in ("/model/info", "/v1/model/info"):
        data = _ok(world.clients["plain"].get(path))["data"]
        assert {d["model_name"] for d in data} == {world.visible_model}
        assert all("api_key" not in d["litellm_params"] for d in data)
    admin_view = _ok(world.clients["viewer"].get("/model/info"))["data"]
    by_name = {d["model_name"]: d for d in admin_view}
    assert {world.visible_model, world.hidden_model} <= set(by_name)
    masked = by_name[world.hidden_model]["litellm_params"]["api_key"]
    assert masked and UPSTREAM_SECRET not in str(admin_view)


def _acked_everywhere(admin: httpx.Client) -> bool:
    status = admin.get("/config/status").json()
    nodes = [n for n in status["nodes"] if n["connected"]]
    return bool(nodes) and all(n["acked_version"] >= status["version"] for n in nodes)


def test_plain_key_reads_only_its_own_spend(stack: Stack, world: World) -> None:
    """After calls by two keys, a plain key's /spend/logs holds only its own rows; another key's is 403."""
    wait_until(lambda: _acked_everywhere(world.admin), timeout=2.0)
    chat = {"model": world.visible_model, "messages": [{"role": "user", "content": "hi"}]}
    hashes = {}
    for name in ("plain", "team"):
        key = world.keys["plain"] if name == "plain" else world.team_key
        response = httpx.post(
            stack.base_url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=chat
        )
        assert response.status_code == 200, response.text
        hashes[name] = hashlib.sha256(key.encode()).hexdigest()
    wait_until(
        lambda: {r["api_key"] for r in world.admin.get("/spend/logs").json()} >= set(hashes.values()),
        timeout=5.0,
    )
    plain = world.clients["plain"]
    own = _ok(plain.get("/spend/logs"))
    assert own and {r["api_key"] for r in own} == {hashes["plain"]}
    assert _ok(plain.get("/spend/logs", params={"api_key": world.keys["plain"]})) == own
    denied = plain.get("/spend/logs", params={"api_key": hashes["team"]})
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"


def test_team_admin_cannot_attach_a_team_key_to_a_proxy_admin_user(world: World) -> None:
    """A team admin may not give a key of its team the user_id of a proxy_admin (privilege escalation)."""
    team_admin = world.clients["team_admin"]
    proxy_admin_user = world.users["proxy_admin"]
    generated = team_admin.post("/key/generate", json={"team_id": TEAM, "user_id": proxy_admin_user})
    if generated.status_code == 200:
        escalated = generated.json()["key"]
        with httpx.Client(
            base_url=world.admin.base_url, headers={"Authorization": f"Bearer {escalated}"}
        ) as c:
            became_admin = c.get("/user/list").status_code == 200
        _ok(world.admin.post("/key/delete", json={"keys": [escalated]}))
        assert not became_admin, "the team admin minted a key with proxy_admin rights"
    assert generated.status_code in (400, 403), generated.text
    key = world.key()
    for path, body in (
        ("/key/update", {"key": key, "user_id": proxy_admin_user}),
        ("/key/regenerate", {"key": key, "user_id": proxy_admin_user}),
    ):
        response = team_admin.post(path, json=body)
        assert response.status_code in (400, 403), f"{path}: {response.text}"
