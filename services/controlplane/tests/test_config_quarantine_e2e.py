"""Through real processes: rows the config builder cannot build, written straight into Postgres
(as before the admin edge validated, or by hand), never stop config propagation, never keep a
blocked or broken resource working, are listed in /config/status, and come back when fixed; a
control plane starts with such rows present."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from hydite_common import config_types as types
from hydite_common.devstack import Stack, free_port
from hydite_common.keys import hash_key
from hydite_common.settings import to_libpq_url, with_database_name
from hydite_controlplane.config.changelog import CONFIG_WRITE_LOCK_ID, NOTIFY_CHANNEL
from tests.harness import ok_get, ok_post, synced, unique, wait_until

TOO_BIG = '{"n": 18446744073709551616}'


class Database:
    """Writes to the stack's database behind the admin API, each with its change-log entry
    exactly as `record_changes` makes it (advisory lock, next version, NOTIFY on commit)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.broken: list[tuple[str, str, str, str]] = []  # (table, name column, name, type URL)

    def write(self, statement: str, params: tuple[Any, ...], *changes: tuple[str, str]) -> None:
        """Run statement and, in the same transaction, record `changes` ((type URL, name))."""
        with psycopg.connect(self.url) as conn:
            conn.execute(statement, params)
            if changes:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (CONFIG_WRITE_LOCK_ID,))
                row = conn.execute("SELECT coalesce(max(version), 0) + 1 FROM config_changes").fetchone()
                assert row is not None
                for type_url, name in changes:
                    conn.execute(
                        "INSERT INTO config_changes (version, type_url, name, op, committed_at) "
                        "VALUES (%s, %s, %s, 'upsert', now())",
                        (row[0], type_url, name),
                    )
                conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(row[0])))

    def set_json(self, table: str, name: str, value: str, *, also: str = "", announce: bool = True) -> None:
        """Set the row's metadata (a deployment's model_info) to value, with `also` extra SET
        clauses in the same statement; announced as a config change unless told otherwise."""
        column, type_url, target = TABLES[table]
        if value != "{}":
            self.broken.append((table, column, name, type_url))
        extra = f", {also}" if also else ""
        self.write(
            f"UPDATE {table} SET {target} = %s::jsonb{extra} WHERE {column} = %s",
            (value, name),
            *([(type_url, name)] if announce else []),
        )

    def repair_all(self) -> None:
        """Reset every row this test broke, so later tests on the shared stack see clean rows."""
        for table, _, name, _ in list(self.broken):
            self.set_json(table, name, "{}")
        self.broken.clear()


# table -> (name column, type URL, the JSON column a test breaks)
TABLES = {
    "virtual_keys": ("token", types.VIRTUAL_KEY, "metadata"),
    "teams": ("team_id", types.TEAM, "metadata"),
    "deployments": ("model_id", types.DEPLOYMENT, "model_info"),
}


@pytest.fixture
def database(stack: Stack, admin: httpx.Client) -> Iterator[Database]:
    """The stack's database; whatever the test broke is repaired afterwards."""
    assert stack.postgres is not None
    db = Database(with_database_name(to_libpq_url(stack.postgres.url), stack.config.database_name))
    try:
        yield db
    finally:
        db.repair_all()
        synced(admin, timeout=5.0)


def _chat(stack: Stack, key: str, model: str) -> int:
    response = httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    return response.status_code


def _new_key(admin: httpx.Client, model: str, **fields: Any) -> str:
    return str(ok_post(admin, "/key/generate", {"models": [model], **fields})["key"])


def _new_model(admin: httpx.Client) -> tuple[str, str]:
    """A mock model group of its own; (model name, deployment id)."""
    name = unique("quarantine-model")
    created = ok_post(admin, "/model/new", {"model_name": name, "litellm_params": {"model": "mock/q"}})
    return name, str(created["model_info"]["id"])


def _quarantined(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {q["name"]: q for q in ok_get(client, "/config/status")["quarantined"]}


def test_bad_rows_are_dropped_and_everything_else_propagates(
    stack: Stack, admin: httpx.Client, database: Database
) -> None:
    """A key blocked in the same write that broke its metadata is refused, a deleted key is
    refused, a new key works at once, a broken team's keys and a broken deployment are refused,
    /config/status lists what was left out, and the admin reads still answer."""
    model, deployment = _new_model(admin)
    other_model, broken_deployment = _new_model(admin)
    team = ok_post(admin, "/team/new", {"team_alias": unique("quarantine-team")})["team_id"]
    steady, victim, doomed = (_new_key(admin, model) for _ in range(3))
    team_key = _new_key(admin, model, team_id=team)
    synced(admin)
    for key in (steady, victim, doomed, team_key):
        assert _chat(stack, key, model) == 200
    assert _chat(stack, steady, other_model) == 403  # not on the key's allowlist, but routable

    database.set_json("virtual_keys", hash_key(victim), TOO_BIG, also="blocked = true")
    database.set_json("teams", team, TOO_BIG)
    database.set_json("deployments", broken_deployment, TOO_BIG)
    ok_post(admin, "/key/delete", {"keys": [doomed]})
    fresh = _new_key(admin, model)
    open_key = _new_key(admin, other_model)
    synced(admin)

    assert _chat(stack, fresh, model) == 200
    assert _chat(stack, steady, model) == 200
    assert _chat(stack, victim, model) == 401
    assert _chat(stack, doomed, model) == 401
    assert _chat(stack, team_key, model) == 403  # a broken team stands in blocked
    assert _chat(stack, open_key, other_model) == 404  # its only deployment was dropped

    quarantined = _quarantined(admin)
    assert {hash_key(victim), team, broken_deployment} <= set(quarantined)
    entry = quarantined[hash_key(victim)]
    assert entry["type"] == "VirtualKey" and entry["since"]
    assert "64-bit" in entry["reason"] and victim not in entry["reason"]
    assert quarantined[broken_deployment]["type"] == "Deployment"
    assert deployment not in quarantined
    for path in ("/key/list", "/audit"):
        assert admin.get(path).status_code == 200, path

    # Fixing the rows (a write through the change log) brings them back.
    database.set_json("virtual_keys", hash_key(victim), "{}", also="blocked = false")
    database.set_json("teams", team, "{}")
    database.set_json("deployments", broken_deployment, "{}")
    synced(admin)
    assert _chat(stack, victim, model) == 200
    assert _chat(stack, team_key, model) == 200
    assert _chat(stack, open_key, other_model) == 200
    assert not {hash_key(victim), team, broken_deployment} & set(_quarantined(admin))


def test_model_info_answers_with_an_unbuildable_deployment_stored(
    admin: httpx.Client, database: Database
) -> None:
    """/model/info lists deployments even when one of them holds a value JSON cannot carry."""
    _, deployment = _new_model(admin)
    database.set_json("deployments", deployment, TOO_BIG)
    synced(admin)
    assert admin.get("/model/info").status_code == 200


def test_a_row_fixed_by_hand_comes_back_on_the_safety_poll(
    stack: Stack, admin: httpx.Client, database: Database
) -> None:
    """A quarantined key whose row is repaired without any change-log entry is re-announced by
    the follower's periodic re-check and works again."""
    model, _ = _new_model(admin)
    key = _new_key(admin, model)
    database.set_json("virtual_keys", hash_key(key), TOO_BIG)
    synced(admin)
    assert _chat(stack, key, model) == 401
    database.set_json("virtual_keys", hash_key(key), "{}", announce=False)
    wait_until(lambda: _chat(stack, key, model) == 200, timeout=15.0, interval=0.2)
    assert hash_key(key) not in _quarantined(admin)


def test_a_control_plane_starts_with_bad_rows_present(
    stack: Stack, admin: httpx.Client, database: Database
) -> None:
    """A second control plane on the same database becomes ready despite rows it cannot build
    (and one it cannot even read), and reports them."""
    model, _ = _new_model(admin)
    key = _new_key(admin, model)
    unreadable = _new_key(admin, model)
    database.set_json("virtual_keys", hash_key(key), TOO_BIG)
    database.write(
        "UPDATE virtual_keys SET expires = '10000-01-01T00:00:00Z' WHERE token = %s",
        (hash_key(unreadable),),
        (types.VIRTUAL_KEY, hash_key(unreadable)),
    )
    admin_port, grpc_port = free_port(), free_port()
    replica = stack.start_controlplane(admin_port=admin_port, grpc_port=grpc_port)
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{admin_port}",
            headers={"Authorization": f"Bearer {stack.config.master_key}"},
            timeout=10,
        ) as second:
            quarantined = _quarantined(second)
            assert quarantined[hash_key(key)]["reason"].startswith("cannot build: ")
            assert quarantined[hash_key(unreadable)]["reason"].startswith("cannot read: ")
    finally:
        stack.stop_service(replica)
        database.write(
            "UPDATE virtual_keys SET expires = NULL WHERE token = %s",
            (hash_key(unreadable),),
            (types.VIRTUAL_KEY, hash_key(unreadable)),
        )
    synced(admin)
    assert _chat(stack, unreadable, model) == 200
