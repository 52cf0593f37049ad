"""Hostile values at the control plane's edge: each is a 4xx with an OpenAI-shaped error naming what
was wrong, and afterwards the control plane still stores, reads and propagates everything else (a
new key works on the very next request, /key/list and /audit answer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from hydite_common.devstack import Stack
from hydite_common.keys import hash_key
from hydite_common.settings import to_libpq_url, with_database_name
from tests.harness import ok_get, ok_post, synced, unique, wait_until

ERROR_KEYS = {"message", "type", "code", "param"}
SYNC_TIMEOUT = 2.0
SPEND_TIMEOUT = 20.0


@dataclass(frozen=True)
class World:
    """Objects the hostile bodies refer to, created with the master key."""

    model: str  # a model name on the mock provider
    model_id: str
    key: str
    team: str
    user: str


@pytest.fixture(scope="module")
def world(admin: httpx.Client) -> World:
    """A mock model, a key, a team and a user."""
    model = unique("hostile-model")
    model_id = ok_post(admin, "/model/new", {"model_name": model, "litellm_params": {"model": "mock/x"}})[
        "model_id"
    ]
    team = ok_post(admin, "/team/new", {"team_id": unique("hostile-team")})["team_id"]
    user = ok_post(admin, "/user/new", {"user_id": unique("hostile-user"), "auto_create_key": False})[
        "user_id"
    ]
    key = ok_post(admin, "/key/generate", {"models": [model]})["key"]
    return World(model=model, model_id=model_id, key=key, team=team, user=user)


def _error(response: httpx.Response, status: int, param: str | None) -> dict[str, Any]:
    """Assert an OpenAI-shaped error with this status and param; return the error object."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= ERROR_KEYS, error
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] in ("invalid_request_error", "authentication_error"), error
    assert "Traceback" not in response.text
    assert error["param"] == param, error
    return dict(error)


def _chat(stack: Stack, key: str, model: str) -> httpx.Response:
    return httpx.post(
        stack.base_url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


def assert_still_works(admin: httpx.Client, stack: Stack, world: World) -> None:
    """A key made now works on the very next request, and keys and the audit trail still read."""
    key = ok_post(admin, "/key/generate", {"models": [world.model]})["key"]
    synced(admin, timeout=SYNC_TIMEOUT)
    response = _chat(stack, key, world.model)
    assert response.status_code == 200, response.text
    ok_get(admin, "/key/list", return_full_object="true")
    ok_get(admin, "/audit")
    ok_get(admin, "/key/info", key=world.key)


def _deep(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    result: dict[str, Any] = value
    return result


Body = Callable[[World], dict[str, Any]]

HOSTILE_BODIES: dict[str, tuple[str, Body, str]] = {
    # metadata, model_info and extra litellm_params: JSON values every consumer can hold
    "metadata 2**64": ("/key/generate", lambda w: {"metadata": {"n": 18446744073709551616}}, "metadata"),
    "metadata 1e20": ("/key/generate", lambda w: {"team_id": w.team, "metadata": {"n": 1e20}}, "metadata"),
    "metadata 2**63 on a team": (
        "/team/update",
        lambda w: {"team_id": w.team, "metadata": {"n": 2**63}},
        "metadata",
    ),
    "metadata NUL": ("/user/update", lambda w: {"user_id": w.user, "metadata": {"s": "a\x00"}}, "metadata"),
    "metadata NUL key": ("/group/new", lambda w: {"name": unique("g"), "metadata": {"k\x00": 1}}, "metadata"),
    "metadata 70 KiB": (
        "/customer/new",
        lambda w: {"user_id": unique("c"), "metadata": {"s": "x" * 70_000}},
        "metadata",
    ),
    "model_info 1e20": (
        "/model/new",
        lambda w: {
            "model_name": unique("m"),
            "litellm_params": {"model": "mock/x"},
            "model_info": {"n": 1e20},
        },
        "model_info",
    ),
    "model_info 40 deep": (
        "/model/update",
        lambda w: {"model_id": w.model_id, "model_info": _deep(40)},
        "model_info",
    ),
    "litellm_params extra 2**64": (
        "/model/new",
        lambda w: {
            "model_name": unique("m"),
            "litellm_params": {"model": "mock/x", "x": 18446744073709551616},
        },
        "litellm_params",
    ),
    # timestamps and durations
    "expires year 10000": ("/key/generate", lambda w: {"expires": "9999-12-31T23:59:59-23:59"}, "expires"),
    "expires year 0": (
        "/key/update",
        lambda w: {"key": w.key, "expires": "0001-01-01T00:00:00+23:59"},
        "expires",
    ),
    "duration 1e9 days": ("/key/generate", lambda w: {"duration": "1000000000d"}, "duration"),
    "duration 5,000 digits": (
        "/key/regenerate",
        lambda w: {"key": w.key, "duration": "9" * 5000 + "s"},
        "duration",
    ),
    "budget_duration 1e9 days": (
        "/team/new",
        lambda w: {"budget_duration": "1000000000d"},
        "budget_duration",
    ),
    "user first key duration": (
        "/user/new",
        lambda w: {"user_id": unique("u"), "duration": "1000000000d"},
        "duration",
    ),
    # non-finite and huge numbers in typed fields
    "max_budget Infinity": ("/key/generate", lambda w: {"max_budget": "Infinity"}, "max_budget"),
    "max_budget -Infinity": (
        "/team/update",
        lambda w: {"team_id": w.team, "max_budget": "-Infinity"},
        "max_budget",
    ),
    "max_budget NaN": (
        "/customer/new",
        lambda w: {"user_id": unique("c"), "max_budget": "NaN"},
        "max_budget",
    ),
    "max_budget 1e300": ("/organization/new", lambda w: {"max_budget": 1e300}, "max_budget"),
    "soft_budget '1e300'": (
        "/user/update",
        lambda w: {"user_id": w.user, "soft_budget": "1e300"},
        "soft_budget",
    ),
    "max_retries 2**40": (
        "/model/new",
        lambda w: {"model_name": unique("m"), "litellm_params": {"model": "mock/x", "max_retries": 2**40}},
        "litellm_params.max_retries",
    ),
    "timeout 1e300": (
        "/model/update",
        lambda w: {"model_id": w.model_id, "litellm_params": {"timeout": 1e300}},
        "litellm_params.timeout",
    ),
    "weight Infinity": (
        "/model/update",
        lambda w: {"model_id": w.model_id, "litellm_params": {"weight": "Infinity"}},
        "litellm_params.weight",
    ),
    # NUL and over-long strings anywhere in a body
    "key_alias NUL": ("/key/generate", lambda w: {"key_alias": "a\x00b"}, "key_alias"),
    "team_id NUL": ("/team/new", lambda w: {"team_id": "t\x00"}, "team_id"),
    "member user_id NUL": (
        "/team/member_add",
        lambda w: {"team_id": w.team, "member": {"user_id": "u\x00"}},
        "member.user_id",
    ),
    "tags NUL": ("/key/update", lambda w: {"key": w.key, "tags": ["ok", "x\x00"]}, "tags.1"),
    "key lookup NUL": ("/key/block", lambda w: {"key": "sk-\x00"}, "key"),
    "delete ids NUL": ("/team/delete", lambda w: {"team_ids": ["\x00"]}, "team_ids.0"),
    "api_key NUL": (
        "/model/update",
        lambda w: {"model_id": w.model_id, "litellm_params": {"api_key": "sk-\x00"}},
        "litellm_params.api_key",
    ),
    "key_alias 3,000 chars": ("/key/generate", lambda w: {"key_alias": "q" * 3000}, "key_alias"),
    "team_id 3,000 chars": ("/team/new", lambda w: {"team_id": "t" * 3000}, "team_id"),
    "model_name 3,000 chars": (
        "/model/new",
        lambda w: {"model_name": "m" * 3000, "litellm_params": {"model": "mock/x"}},
        "model_name",
    ),
    "models entry 100k chars": ("/key/generate", lambda w: {"models": ["L" * 100_000]}, "models.0"),
    # keys chosen by the caller
    "custom key 12 chars": ("/key/generate", lambda w: {"key": "sk-123456789"}, "key"),
    "custom key 31 chars": ("/key/generate", lambda w: {"key": "sk-" + "a" * 31}, "key"),
    "custom new_key 20 chars": (
        "/key/regenerate",
        lambda w: {"key": w.key, "new_key": "sk-" + "b" * 20},
        "new_key",
    ),
}
"""Case -> (route, body, the param the 422 names)."""


@pytest.mark.parametrize("case", list(HOSTILE_BODIES))
def test_hostile_body_is_a_422_naming_the_field_and_nothing_breaks(
    admin: httpx.Client, stack: Stack, world: World, case: str
) -> None:
    """A body value no consumer could hold is a 422 naming its field; afterwards everything works."""
    path, body, param = HOSTILE_BODIES[case]
    _error(admin.post(path, json=body(world)), 422, param)
    assert_still_works(admin, stack, world)


def test_metadata_nested_1000_deep_is_a_422(admin: httpx.Client, stack: Stack, world: World) -> None:
    """Metadata nested 1,000 levels deep (sent as raw JSON) is a 422 naming metadata on every entity."""
    deep = b'{"a":' * 1000 + b"1" + b"}" * 1000
    for path, ids in [
        ("/key/generate", b""),
        ("/organization/new", b""),
        ("/team/update", b'"team_id": "' + world.team.encode() + b'", '),
    ]:
        raw = b"{" + ids + b'"metadata": ' + deep + b"}"
        response = admin.post(path, content=raw, headers={"Content-Type": "application/json"})
        _error(response, 422, "metadata")
    assert_still_works(admin, stack, world)


def test_stored_values_beyond_64_bits_still_read(admin: httpx.Client, stack: Stack, world: World) -> None:
    """A key whose stored metadata holds 2**64 (written before the bounds, or by hand) still reads
    exactly in /key/info, /key/list and /key/delete, never a 500."""
    alias = unique("big-stored")
    key = ok_post(admin, "/key/generate", {"models": [world.model], "key_alias": alias})["key"]
    assert stack.postgres is not None
    url = with_database_name(to_libpq_url(stack.postgres.url), stack.config.database_name)
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE virtual_keys SET metadata = %s::jsonb WHERE token = %s",
            ('{"n": 18446744073709551616, "f": 1e20}', hash_key(key)),
        )
    info = ok_get(admin, "/key/info", key=key)["info"]
    assert info["metadata"] == {"n": 2**64, "f": 10**20}
    listed = ok_get(admin, "/key/list", return_full_object="true", key_alias=alias)["keys"]
    assert [k["metadata"] for k in listed] == [{"n": 2**64, "f": 10**20}]
    ok_post(admin, "/key/delete", {"keys": [key]})
    assert_still_works(admin, stack, world)


def test_nothing_was_written_by_a_refused_body(admin: httpx.Client, world: World) -> None:
    """A refused /key/update leaves the key as it was (no NUL tag, same expiry)."""
    before = ok_get(admin, "/key/info", key=world.key)["info"]
    _error(admin.post("/key/update", json={"key": world.key, "tags": ["\x00"]}), 422, "tags.0")
    _error(
        admin.post("/key/update", json={"key": world.key, "expires": "9999-12-31T23:59:59-23:59"}),
        422,
        "expires",
    )
    after = ok_get(admin, "/key/info", key=world.key)["info"]
    assert (after["tags"], after["expires"], after["updated_at"]) == (
        before["tags"],
        before["expires"],
        before["updated_at"],
    )


HOSTILE_QUERIES = [
    ("/team/info", "team_id"),
    ("/user/info", "user_id"),
    ("/key/info", "key"),
    ("/key/list", "user_id"),
    ("/team/list", "organization_id"),
    ("/customer/info", "end_user_id"),
    ("/spend/logs", "team_id"),
    ("/audit", "object_id"),
    ("/model/info", "model_id"),
]


@pytest.mark.parametrize(("path", "name"), HOSTILE_QUERIES)
def test_nul_in_a_query_parameter_is_a_400_naming_it(
    admin: httpx.Client, stack: Stack, world: World, path: str, name: str
) -> None:
    """?<param>=%00 on any admin read is a 400 naming the parameter, never a 500."""
    _error(admin.get(f"{path}?{name}=%00"), 400, name)
    _error(admin.get(f"{path}?{name}=ok%00ok"), 400, name)
    assert_still_works(admin, stack, world)


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "99999-01-01"])
def test_spend_logs_dates_out_of_range_are_a_400(admin: httpx.Client, value: str) -> None:
    """/spend/logs start_date or end_date outside the timestamp bounds is a 400 naming it."""
    _error(admin.get("/spend/logs", params={"start_date": value}), 400, "start_date")
    _error(admin.get("/spend/logs", params={"end_date": value}), 400, "end_date")


@pytest.mark.parametrize(
    "authorization", [b"Bearer sk-\xff\xfe", b"Bearer \xc3\x28", b"sk-\x80\x80", b"Bearer sk-" + b"\xe9" * 40]
)
@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/key/list"), ("POST", "/key/generate"), ("GET", "/audit")]
)
def test_an_authorization_that_is_not_utf8_is_a_401(
    stack: Stack, authorization: bytes, method: str, path: str
) -> None:
    """Invalid UTF-8 in Authorization is a 401 on the data plane's and the control plane's URL."""
    for base in (stack.base_url, stack.admin_url):
        response = httpx.request(
            method, base + path, json={}, headers=[(b"Authorization", authorization)], timeout=10
        )
        _error(response, 401, None)


def test_values_at_the_bounds_are_stored_and_propagate(
    admin: httpx.Client, stack: Stack, world: World
) -> None:
    """Values at the edges (64-bit ints, 1e18, 31 levels, year 8999) are kept exactly and the key works."""
    metadata = {"max": 2**63 - 1, "min": -(2**63), "big": 1e18, "small": 1.5e-300, "deep": _deep(30)}
    made = ok_post(
        admin,
        "/key/generate",
        {"models": [world.model], "metadata": metadata, "expires": "8999-12-31T00:00:00Z", "duration": None},
    )
    info = ok_get(admin, "/key/info", key=made["key"])["info"]
    assert info["metadata"] == metadata
    assert info["expires"].startswith("8999-12-31")
    synced(admin, timeout=SYNC_TIMEOUT)
    assert _chat(stack, made["key"], world.model).status_code == 200
    assert_still_works(admin, stack, world)


def test_a_strong_custom_key_is_accepted_and_works(admin: httpx.Client, stack: Stack, world: World) -> None:
    """Custom keys of 'sk-' and 32 or more characters are accepted by generate and regenerate, and serve."""
    custom = "sk-" + unique("custom").replace("-", "_")[:24].ljust(32, "x")
    ok_post(admin, "/key/generate", {"key": custom, "models": [world.model]})
    synced(admin, timeout=SYNC_TIMEOUT)
    assert _chat(stack, custom, world.model).status_code == 200
    renewed = custom + "-renewed"
    ok_post(admin, "/key/regenerate", {"key": custom, "new_key": renewed})
    synced(admin, timeout=SYNC_TIMEOUT)
    assert _chat(stack, renewed, world.model).status_code == 200
    assert _chat(stack, custom, world.model).status_code == 401


def test_spend_logs_pages_when_asked_and_stays_a_list_otherwise(
    admin: httpx.Client, stack: Stack, world: World
) -> None:
    """/spend/logs is a plain list without page parameters; with page/page_size it pages each row once."""
    key = ok_post(admin, "/key/generate", {"models": [world.model]})["key"]
    synced(admin, timeout=SYNC_TIMEOUT)
    for _ in range(5):
        assert _chat(stack, key, world.model).status_code == 200
    rows = wait_until(
        lambda: (listed := ok_get(admin, "/spend/logs", api_key=key)) and len(listed) == 5 and listed,
        timeout=SPEND_TIMEOUT,
        interval=0.1,
    )
    assert isinstance(rows, list)
    pages = [ok_get(admin, "/spend/logs", api_key=key, page=page, page_size=2) for page in (1, 2, 3)]
    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    assert {(p["total"], p["page_size"], p["total_pages"]) for p in pages} == {(5, 2, 3)}
    paged_ids = [r["request_id"] for p in pages for r in p["data"]]
    assert paged_ids == [r["request_id"] for r in rows]  # newest first, no repeats, no gaps
    assert ok_get(admin, "/spend/logs", api_key=key, page=4, page_size=2)["data"] == []
    _error(admin.get("/spend/logs", params={"page": 0}), 400, "page")
    _error(admin.get("/spend/logs", params={"page_size": 100_000}), 400, "page_size")
