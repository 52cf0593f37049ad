"""Budget windows and alerts against a real, freshly migrated database and real NATS: a window
begins with the entity's total as its baseline and its KV entry carries it; two replicas' reset
tasks racing reset a window once; a "2s" window resets within a second of its due time; removal;
reset times aligned as LiteLLM aligns them; a team's and its members' windows; two replicas'
alert watchers racing fire each alert once, on NATS and to a webhook (retried after a failure)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psycopg
import pytest
from aiohttp import web
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from psycopg import sql
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.devstack import Stack, free_port
from hydite_common.embedded import ensure_nats
from hydite_common.settings import BaseServiceSettings, to_libpq_url, to_sqlalchemy_url, with_database_name
from hydite_common.spend_tables import SpendTotal
from hydite_common.spend_totals import TotalEntry, put_if_newer, totals_key
from hydite_controlplane.budget_alerts import BudgetAlerts
from hydite_controlplane.budget_periods import Period, ResetPolicy, next_reset
from hydite_controlplane.db import create_engine, run_sql, session_factory
from hydite_controlplane.messaging import NatsLink
from hydite_controlplane.migrations.runner import upgrade_to_head
from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_controlplane.models.principals import TeamRow
from hydite_controlplane.settings import ControlplaneSettings
from hydite_controlplane.spend_windows import BudgetWindows
from hydite_controlplane.store.spend_windows import entry_of, sync_windows
from hydite_controlplane.team_windows import team_windows

UTC_POLICY = ResetPolicy()
NOW = datetime(2026, 5, 13, 10, 30, 15, 250_000, tzinfo=UTC)  # a Wednesday


@dataclass
class Plane:
    """What a control-plane replica's budget windows run on."""

    sessions: async_sessionmaker[AsyncSession]
    libpq_url: str
    nats: NatsLink
    bucket: KeyValue
    prefix: str


@pytest.fixture
async def plane(stack: Stack) -> AsyncIterator[Plane]:
    """A freshly migrated database of its own and a NATS link with its own totals bucket."""
    assert stack.postgres is not None and stack.nats is not None
    name = f"hydite_test_windows_{secrets.token_hex(3)}"
    server = to_libpq_url(stack.postgres.url)
    with psycopg.connect(with_database_name(server, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database_name(server, name)
    upgrade_to_head(url, to_sqlalchemy_url(url))
    engine = create_engine(to_sqlalchemy_url(url))
    prefix = f"windows_{secrets.token_hex(3)}"
    settings = BaseServiceSettings(nats_url=stack.nats.url, nats_prefix=prefix)
    link = NatsLink(settings, name="test-windows")
    await asyncio.wait_for(link.run(), 10)
    try:
        yield Plane(session_factory(engine), url, link, link.totals(), prefix)
    finally:
        await link.totals()._js.delete_key_value(settings.nats_name("SPEND_TOTALS"))
        await link.close()
        await engine.dispose()
        with psycopg.connect(with_database_name(server, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def _spent(plane: Plane, kind: str, entity: str, amount: str) -> None:
    async with plane.sessions() as session:
        session.add(
            SpendTotal(
                kind=kind, entity=entity, currency="USD", spend=Decimal(amount), version=3,
                updated_at=datetime.now(UTC),
            )
        )  # fmt: skip
        await session.commit()


async def _entry(bucket: KeyValue, kind: str, entity: str) -> TotalEntry:
    found = await bucket.get(totals_key(kind, entity))
    assert found.value is not None
    return TotalEntry.decode(found.value)


def test_resets_align_as_litellm_aligns_them() -> None:
    """1d at midnight, 7d on Monday, 30d and 1mo on the first, hours/minutes/seconds at multiples of
    N since midnight, other day counts N days on from midnight; rolling adds the duration; a
    timezone moves the boundaries."""
    at = {d: next_reset(d, NOW, UTC_POLICY).isoformat() for d in ("1d", "7d", "1w", "30d", "1mo", "2s")}
    assert at == {
        "1d": "2026-05-14T00:00:00+00:00", "7d": "2026-05-18T00:00:00+00:00",
        "1w": "2026-05-18T00:00:00+00:00", "30d": "2026-06-01T00:00:00+00:00",
        "1mo": "2026-06-01T00:00:00+00:00", "2s": "2026-05-13T10:30:16+00:00",
    }  # fmt: skip
    assert next_reset("2h", NOW, UTC_POLICY) == datetime(2026, 5, 13, 12, tzinfo=UTC)
    assert next_reset("15m", NOW, UTC_POLICY) == datetime(2026, 5, 13, 10, 45, tzinfo=UTC)
    assert next_reset("3d", NOW, UTC_POLICY) == datetime(2026, 5, 16, tzinfo=UTC)
    assert next_reset("1d", NOW, ResetPolicy("rolling")) == datetime(
        2026, 5, 14, 10, 30, 15, 250_000, tzinfo=UTC
    )
    assert next_reset("1mo", NOW, ResetPolicy("rolling")) == datetime(
        2026, 6, 13, 10, 30, 15, 250_000, tzinfo=UTC
    )
    eastern = next_reset("1d", NOW, ResetPolicy(timezone="US/Eastern"))
    assert eastern.astimezone(UTC) == datetime(2026, 5, 14, 4, tzinfo=UTC)


async def test_a_window_begins_at_the_entity_s_total_and_its_entry_carries_it(plane: Plane) -> None:
    """A key that already spent 2.5 gets a 1d and a 7d window with that baseline (spend in each: 0),
    its entry is newer and carries both; removing one period removes its window."""
    await _spent(plane, "key", "k1", "2.5")
    windows = BudgetWindows(plane.sessions, plane.nats, UTC_POLICY, plane.libpq_url)
    changed: set[tuple[str, str]] = set()
    periods = [Period("1d", 10.0, None, main=True), Period("7d", 50.0, 40.0)]
    async with plane.sessions() as session:
        assert await windows.ensure(session, "key", "k1", periods, changed=changed)
        await session.commit()
    await windows.published(changed)
    entry = await _entry(plane.bucket, "key", "k1")
    assert entry.version == 4
    assert {d: w.baseline for d, w in entry.windows.items()} == {
        "1d": {"USD": "2.500000000000"}, "7d": {"USD": "2.500000000000"},
    }  # fmt: skip
    async with plane.sessions() as session:
        assert not await windows.ensure(session, "key", "k1", periods, changed=changed)
        assert await windows.ensure(session, "key", "k1", periods[:1], changed=changed)
        await session.commit()
    await windows.published(changed)
    entry = await _entry(plane.bucket, "key", "k1")
    assert (set(entry.windows), entry.version) == ({"1d"}, 5)


async def test_an_entity_without_spend_gets_a_zero_total_with_its_window(plane: Plane) -> None:
    """No spend yet: a total of 0 is created so the window has an entry to be in."""
    windows = BudgetWindows(plane.sessions, plane.nats, UTC_POLICY, plane.libpq_url)
    changed: set[tuple[str, str]] = set()
    async with plane.sessions() as session:
        await windows.ensure(session, "user", "u1", [Period("1h", 1.0, None)], changed=changed)
        await session.commit()
    await windows.published(changed)
    entry = await _entry(plane.bucket, "user", "u1")
    assert Decimal(entry.spend["USD"]) == 0
    assert Decimal(entry.windows["1h"].baseline["USD"]) == 0


async def test_two_replicas_racing_reset_a_window_once(plane: Plane) -> None:
    """Two reset tasks at the due time: one resets the window (baseline := total, start := the due
    time, next reset 2 s on), the other finds nothing to do."""
    await _spent(plane, "team", "t1", "1")
    async with plane.sessions() as session:
        await sync_windows(
            "team", "t1", [Period("2s", 1.0, None)], session=session, now=NOW, policy=UTC_POLICY
        )
        await session.commit()
    await _spent_more(plane, "team", "t1", "4")
    replicas = [BudgetWindows(plane.sessions, plane.nats, UTC_POLICY, plane.libpq_url) for _ in range(2)]
    results = await asyncio.gather(*(replica.reset_once() for replica in replicas))
    assert sorted(len(reset) for reset in results) == [0, 1]
    entry = await _entry(plane.bucket, "team", "t1")
    window = entry.windows["2s"]
    assert window.baseline == {"USD": "5.000000000000"}
    assert window.start_ms == datetime(2026, 5, 13, 10, 30, 16, tzinfo=UTC).timestamp() * 1000
    assert window.reset_at_ms is not None and window.reset_at_ms > time.time() * 1000


async def _spent_more(plane: Plane, kind: str, entity: str, amount: str) -> None:
    async with plane.sessions() as session:
        row = await session.get(SpendTotal, (kind, entity, "USD"))
        assert row is not None
        row.spend += Decimal(amount)
        row.version += 1
        session.add(row)
        await session.commit()


async def test_a_2s_window_resets_within_a_second_of_its_due_time(plane: Plane) -> None:
    """The reset task sleeps until the window is due (woken by the window's creation) and writes
    the reset entry within a second of the due time."""
    windows = BudgetWindows(plane.sessions, plane.nats, UTC_POLICY, plane.libpq_url)
    running = asyncio.create_task(windows.run())
    try:
        await asyncio.sleep(0.2)  # the task is asleep with nothing due
        changed: set[tuple[str, str]] = set()
        async with plane.sessions() as session:
            await windows.ensure(session, "key", "fast", [Period("2s", 1.0, None)], changed=changed)
            await session.commit()
        await windows.published(changed)
        first = (await _entry(plane.bucket, "key", "fast")).windows["2s"]
        assert first.reset_at_ms is not None

        async def reset_seen() -> float:
            while True:
                window = (await _entry(plane.bucket, "key", "fast")).windows["2s"]
                if window.start_ms != first.start_ms:
                    return time.time() * 1000
                await asyncio.sleep(0.02)

        seen_ms = await asyncio.wait_for(reset_seen(), 4)
        assert seen_ms - first.reset_at_ms < 1000
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_window_committed_while_nats_is_down_is_written_when_it_is_back(
    plane: Plane, tmp_path: Path
) -> None:
    """NATS not reachable: the window commits in Postgres; once a NATS server is up the background
    task writes the entry."""
    url = f"nats://127.0.0.1:{free_port()}"
    link = NatsLink(
        BaseServiceSettings(nats_url=url, nats_prefix=f"down_{secrets.token_hex(3)}"), "test-down"
    )
    windows = BudgetWindows(plane.sessions, link, UTC_POLICY, plane.libpq_url)
    await _spent(plane, "organization", "o1", "3")
    changed: set[tuple[str, str]] = set()
    async with plane.sessions() as session:
        await windows.ensure(session, "organization", "o1", [Period("1d", 5.0, None)], changed=changed)
        await session.commit()
    await windows.published(changed)
    running = asyncio.create_task(windows.run())
    connecting = asyncio.create_task(link.run())
    server = await asyncio.to_thread(ensure_nats, url, tmp_path)
    try:
        await asyncio.wait_for(connecting, 15)

        async def written() -> TotalEntry:
            while True:
                with contextlib.suppress(KeyNotFoundError):
                    return await _entry(link.totals(), "organization", "o1")
                await asyncio.sleep(0.05)

        entry = await asyncio.wait_for(written(), 5)
        assert set(entry.windows) == {"1d"} and entry.windows["1d"].baseline == {"USD": "3.000000000000"}
    finally:
        running.cancel()
        connecting.cancel()
        await asyncio.gather(running, connecting, return_exceptions=True)
        await link.close()
        await asyncio.to_thread(server.stop)


async def test_alerts_fire_once_per_period_across_two_replicas(plane: Plane) -> None:
    """A key's spend in its day crosses soft_budget, then max_budget: with two replicas watching,
    each alert is one NATS event, one webhook POST in LiteLLM's shape (the first attempt failing is
    retried) and one budget_alerts row; the key appears by hash and alias only."""
    posts: list[dict[str, Any]] = []
    failed_once = asyncio.Event()

    async def webhook(request: web.Request) -> web.Response:
        if not failed_once.is_set():
            failed_once.set()
            return web.Response(status=503)
        posts.append(await request.json())
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/hook", webhook)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    # As operators configure it: LiteLLM's WEBHOOK_URL (HYDITE_ALERTING_WEBHOOK_URL also works).
    settings = ControlplaneSettings.model_validate(
        {"nats_prefix": plane.prefix, "WEBHOOK_URL": f"http://127.0.0.1:{port}/hook"}
    )
    token = "ab" * 32
    async with plane.sessions() as session:
        session.add(
            VirtualKeyRow(
                token=token, key_name="sk-...abcd", key_alias="alerted", max_budget=2.0, soft_budget=1.0,
                budget_duration="1d", user_id="u-alert",
            )
        )  # fmt: skip
        await sync_windows(
            "key", token, [Period("1d", 2.0, 1.0, main=True)], session=session, now=NOW, policy=UTC_POLICY
        )
        await session.commit()
    events: list[dict[str, Any]] = []
    subscription = await plane.nats.connection().subscribe(
        settings.nats_subject("alerts", "budget"), cb=functools.partial(_record, events)
    )
    async with aiohttp.ClientSession() as http:
        replicas = [BudgetAlerts(settings, plane.sessions, plane.nats, http) for _ in range(2)]
        watching = [asyncio.create_task(replica.run()) for replica in replicas]
        try:
            async with plane.sessions() as session:
                entry = await entry_of("key", token, session=session)
            assert entry is not None
            for spend in ("1.5", "1.6", "2.5", "2.5"):
                entry = replace(entry, spend={"USD": spend}, version=entry.version + 1)
                assert await put_if_newer(plane.bucket, entry)

            async def both_posted() -> None:
                while len(posts) < 2:
                    await asyncio.sleep(0.02)

            await asyncio.wait_for(both_posted(), 10)
            await asyncio.sleep(0.3)  # any duplicate would arrive by now
        finally:
            for task in watching:
                task.cancel()
            await asyncio.gather(*watching, return_exceptions=True)
            for replica in replicas:
                await replica.close()
            await subscription.unsubscribe()
            await runner.cleanup()
    # The soft alert's first attempt failed: it arrives after its retry, behind the other.
    alerted = sorted((p["event"], p["spend"]) for p in posts)
    assert alerted == [("budget_crossed", 2.5), ("soft_budget_crossed", 1.5)]
    [first] = [p for p in posts if p["event"] == "soft_budget_crossed"]
    assert (first["token"], first["key_alias"], first["user_id"], first["event_group"]) == (
        token, "alerted", "u-alert", "key",
    )  # fmt: skip
    assert (first["max_budget"], first["soft_budget"], first["budget_duration"]) == (2.0, 1.0, "1d")
    assert first["event_message"] == "Key Budget: Soft Budget Crossed"
    assert sorted(e["event"] for e in events) == ["budget_crossed", "soft_budget_crossed"]
    fired: dict[tuple[str, str], int] = {}
    for replica in replicas:
        for counted, count in replica.fired.items():
            fired[counted] = fired.get(counted, 0) + count
    assert fired == {("key", "budget_crossed"): 1, ("key", "soft_budget_crossed"): 1}
    async with plane.sessions() as session:
        rows = (await run_sql(session, "SELECT event FROM budget_alerts ORDER BY event")).scalars().all()
    assert rows == ["budget_crossed", "soft_budget_crossed"]


async def _record(events: list[dict[str, Any]], msg: Msg) -> None:
    events.append(orjson.loads(msg.data))


async def test_a_team_and_its_members_get_their_windows(plane: Plane) -> None:
    """The team's own period and each member's (the member default, a member's own budget over
    it) get windows; a member who leaves loses its window; a deleted team loses them all."""
    team = TeamRow(
        team_id="tw", max_budget=50.0, budget_duration="7d",
        extra_fields={"team_member_budget": 5.0, "team_member_budget_duration": "1d"},
        members_with_roles=[
            {"user_id": "u1", "role": "user"},
            {"user_id": "u2", "role": "user", "limits": {"max_budget_in_team": 8.0}},
        ],
    )  # fmt: skip
    async with plane.sessions() as session:
        session.add(team)
        await team_windows(session, team)
        await session.commit()
    assert await _windows(plane) == {
        ("team", "tw", "7d"),
        ("team_member", "tw:u1", "1d"),
        ("team_member", "tw:u2", "1d"),
    }
    async with plane.sessions() as session:
        team.members_with_roles = team.members_with_roles[1:]
        await team_windows(session, team)
        await session.commit()
    assert await _windows(plane) == {("team", "tw", "7d"), ("team_member", "tw:u2", "1d")}
    async with plane.sessions() as session:
        await team_windows(session, team, deleting=True)
        await session.commit()
    assert await _windows(plane) == set()


async def _windows(plane: Plane) -> set[tuple[str, str, str]]:
    async with plane.sessions() as session:
        found = await run_sql(session, "SELECT kind, entity, duration FROM spend_windows")
        return {(str(kind), str(entity), str(duration)) for kind, entity, duration in map(tuple, found.all())}
