"""One bad row never wedges the config: the builder quarantines a row it cannot build, the reader
a row the driver cannot decode, the cache reports both, and the follower drops them from the
snapshot (a blocked stand-in for an owner) and brings them back once the row is fixed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_controlplane.config.builder import RESOURCE_TABLES, build_resources, describe_failure
from hydite_controlplane.config.cache import SnapshotCache
from hydite_controlplane.config.follower import ChangeFollower
from hydite_controlplane.config.reader import read_rows
from hydite_controlplane.db import run_sql
from hydite_controlplane.models import DeploymentRow, TeamRow, VirtualKeyRow
from hydite_controlplane.store.resources import save_resources

KEYS = RESOURCE_TABLES[types.VIRTUAL_KEY]
TEAMS = RESOURCE_TABLES[types.TEAM]
DEPLOYMENTS = RESOURCE_TABLES[types.DEPLOYMENT]
SECRET = "sk-live-0123456789abcdefSECRET"


def key_row(token: str, **fields: Any) -> VirtualKeyRow:
    """A virtual key row as the database would hand it to the builder."""
    return VirtualKeyRow(token=token, key_name=f"sk-...{token[-4:]}", **fields)


def deeply_nested(depth: int) -> dict[str, Any]:
    """A dict nested `depth` levels deep (past orjson's recursion limit at 255)."""
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("metadata_", {"n": 2**64}),
        ("metadata_", {"n": float("inf")}),
        ("metadata_", {"n": [1.0, float("nan")]}),
        ("metadata_", deeply_nested(300)),
        ("metadata_", {"note": SECRET, "bad": {1, 2}}),
        ("model_rpm_limit", {"gpt": 2**70}),
        ("model_tpm_limit", {"gpt": 1.5}),
        ("key_alias", "\udcff"),
    ],
)
def test_one_unbuildable_key_is_quarantined_and_the_others_built(column: str, value: Any) -> None:
    """A key whose column cannot be carried is left out with a reason; its neighbours are built."""
    rows = [key_row("a" * 64), key_row("b" * 64, **{column: value}), key_row("c" * 64, metadata_={"ok": 1})]
    built = build_resources(KEYS, rows)
    assert [r.name for r in built.resources] == ["a" * 64, "c" * 64]
    assert list(built.quarantined) == ["b" * 64]
    reason = built.quarantined["b" * 64]
    assert reason.startswith("cannot build: ")
    assert SECRET not in reason and "18446744073709551616" not in reason


def test_the_reason_names_the_column_and_the_problem() -> None:
    """An integer past 64 bits in metadata is reported as such, without the value."""
    built = build_resources(KEYS, [key_row("d" * 64, metadata_={"n": 2**64})])
    assert built.quarantined == {
        "d" * 64: "cannot build: UnbuildableRow: metadata is not serializable as JSON: "
        "Integer exceeds 64-bit range"
    }


def test_a_failure_description_cuts_out_quoted_text_and_long_tokens() -> None:
    """Whatever an exception's message holds, credentials and values do not reach the reason."""
    failure = ValueError(f"bad value '{SECRET}' near {SECRET} and Bearer {SECRET}\nsecond line {SECRET}")
    reason = describe_failure(failure)
    assert SECRET not in reason and "SECRET" not in reason
    assert reason.startswith("ValueError: bad value")
    assert len(describe_failure(ValueError("x " * 1000))) < 250


def test_an_unbuildable_deployment_is_dropped() -> None:
    """A deployment whose model_info or extra_params cannot be carried is left out (refused)."""
    rows = [
        DeploymentRow(model_id="good", model_name="m", provider="openai", upstream_model="x"),
        DeploymentRow(
            model_id="bad-info",
            model_name="m",
            provider="openai",
            upstream_model="x",
            model_info={"n": 2**64},
        ),
        DeploymentRow(
            model_id="bad-extra",
            model_name="m",
            provider="openai",
            upstream_model="x",
            extra_params={"n": float("-inf")},
        ),
    ]
    built = build_resources(DEPLOYMENTS, rows)
    assert [r.name for r in built.resources] == ["good"]
    assert set(built.quarantined) == {"bad-info", "bad-extra"}
    assert "model_info" in built.quarantined["bad-info"]
    assert "extra_params" in built.quarantined["bad-extra"]


def test_an_unbuildable_team_stands_in_blocked() -> None:
    """A team that cannot be built is published blocked (its keys refused), never left out:
    the data plane would treat a missing team as no team rules at all."""
    rows = [TeamRow(team_id="fine"), TeamRow(team_id="broken", metadata_={"n": 2**64}, blocked=False)]
    built = build_resources(TEAMS, rows, {"unreadable": "cannot read: DataError: timestamp too large"})
    assert set(built.quarantined) == {"broken", "unreadable"}
    teams = {}
    for resource in built.resources:
        team = pb.Team()
        assert resource.body.Unpack(team)
        teams[resource.name] = team
    assert set(teams) == {"fine", "broken", "unreadable"}
    assert not teams["fine"].blocked
    assert teams["broken"] == pb.Team(team_id="broken", blocked=True)
    assert teams["unreadable"] == pb.Team(team_id="unreadable", blocked=True)


def test_the_cache_reports_quarantine_and_keeps_its_first_time() -> None:
    """Quarantine follows each version: set with the time first seen, kept, then cleared."""
    cache = SnapshotCache()
    first = datetime(2024, 1, 1, tzinfo=UTC)
    key = (types.VIRTUAL_KEY, "k")
    cache.reset(1, {}, {key: "cannot build: one"}, now=first)
    cache.apply(2, {key: None}, {key: "cannot build: two"}, now=first + timedelta(minutes=1))
    [entry] = cache.quarantined()
    assert (entry.type_url, entry.name, entry.reason, entry.since) == (*key, "cannot build: two", first)
    cache.apply(3, {}, {(types.TEAM, "t"): None})
    assert len(cache.quarantined()) == 1
    cache.apply(4, {key: None}, {key: None})
    assert cache.quarantined() == []


async def _insert(sessions: async_sessionmaker[AsyncSession], *rows: Any) -> None:
    async with sessions() as session:
        await save_resources(*rows, session=session)
        await session.commit()


async def _sql(sessions: async_sessionmaker[AsyncSession], statement: str, **params: Any) -> None:
    """A write behind the change log's back, as by hand."""
    async with sessions() as session:
        await run_sql(session, statement, params)
        await session.commit()


async def test_a_row_the_driver_cannot_decode_fails_alone(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Rows with a year-10000 expiry or a 5,000-digit JSON number are reported; the rest are read."""
    good = [key_row(f"{i:064x}") for i in range(7)]
    late, long_number = key_row("e" * 64), key_row("f" * 64)
    await _insert(sessions, *good, late, long_number)
    await _sql(
        sessions, "UPDATE virtual_keys SET expires = '10000-01-01T00:00:00Z' WHERE token = :t", t=late.token
    )
    await _sql(
        sessions,
        "UPDATE virtual_keys SET metadata = ('{\"n\": 1' || repeat('0', 5000) || '}')::jsonb "
        "WHERE token = :t",
        t=long_number.token,
    )
    async with sessions() as session:
        everything = await read_rows(session, KEYS)
        named = await read_rows(session, KEYS, [good[0].token, late.token, "missing"])
    assert sorted(r.token for r in everything.rows) == sorted(r.token for r in good)
    assert set(everything.unreadable) == {late.token, long_number.token}
    assert all(reason.startswith("cannot read: ") for reason in everything.unreadable.values())
    assert [r.token for r in named.rows] == [good[0].token]
    assert set(named.unreadable) == {late.token}


async def test_follower_drops_a_key_that_goes_bad_and_restores_it_when_fixed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Load with a bad row succeeds; a key blocked together with a bad value is removed by the
    delta (not kept at its old version); a fix by hand comes back through the safety re-check."""
    fine, victim, broken = key_row("1" * 64), key_row("2" * 64), key_row("3" * 64)
    await _insert(sessions, fine, victim, broken)
    await _sql(
        sessions,
        "UPDATE virtual_keys SET metadata = '{\"n\": 18446744073709551616}' WHERE token = :t",
        t=broken.token,
    )
    cache = SnapshotCache()
    follower = ChangeFollower(cache, sessions, "unused")
    await follower.load_full()
    assert cache.loaded
    assert cache.resource((types.VIRTUAL_KEY, fine.token)) is not None
    assert cache.resource((types.VIRTUAL_KEY, broken.token)) is None
    assert [q.name for q in cache.quarantined()] == [broken.token]
    # load_full announced the quarantined row as a new version: catching up applies it.
    announced = cache.version
    await follower.catch_up()
    assert cache.version == announced + 1
    data_plane_at = cache.version

    async with sessions() as session:
        row = await session.get(VirtualKeyRow, victim.token)
        assert row is not None
        row.blocked = True
        row.metadata_ = {"n": 1}
        await save_resources(row, session=session)
        await run_sql(
            session,
            "UPDATE virtual_keys SET metadata = '{\"n\": 1e30}' WHERE token = :t",
            {"t": victim.token},
        )
        await session.commit()
    await follower.catch_up()
    assert cache.resource((types.VIRTUAL_KEY, victim.token)) is None
    [batch], _ = cache.responses_since(data_plane_at)
    [delta] = batch.deltas.deltas
    assert list(delta.removed_names) == [victim.token] and not delta.upserts
    assert {q.name for q in cache.quarantined()} == {broken.token, victim.token}

    await _sql(sessions, "UPDATE virtual_keys SET metadata = '{}' WHERE token = :t", t=broken.token)
    before = cache.version
    await follower.catch_up()  # nothing new: the re-check finds the fixed row and announces it
    await follower.catch_up()
    assert cache.version == before + 1
    assert cache.resource((types.VIRTUAL_KEY, broken.token)) is not None
    assert [q.name for q in cache.quarantined()] == [victim.token]
