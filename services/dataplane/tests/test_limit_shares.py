"""Shares of cluster-wide limits: split among members, moved toward demand by reports, conserved
whatever reports are lost, started over at each epoch; and the gossip's wire form."""

from __future__ import annotations

import random

import orjson
import pytest

from hydite_dataplane.limits.gossip import ENTRIES_PER_PART, ReportAssembler, encode_parts
from hydite_dataplane.limits.shares import UNIT_SLACK, ClusterShares, Report, ReportEntry, Share, whole_base

NODES = ("dp-a", "dp-b", "dp-c")
KEY = "key:k|r"


class Clocks:
    def __init__(self) -> None:
        self.now = 100.0
        self.wall = 1_000_000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall


class Replica:
    """One data plane's shares and what it uses of one limit."""

    def __init__(self, node: str, clocks: Clocks, limit: float) -> None:
        self.shares = ClusterShares(node, clock=clocks.monotonic, wall_clock=clocks.time)
        self.shares.set_members(NODES)
        self.shares.set_connected(True)
        self.used = 0.0
        self.limit = limit

    def share(self) -> Share:
        return self.shares.share(KEY, self.limit, lambda: self.used)

    def try_admit(self, cost: float = 1.0) -> bool:
        share = self.share()
        if self.used + cost <= self.shares.fraction(share) * self.limit + UNIT_SLACK:
            self.used += cost
            share.admitted += cost
            return True
        share.deficit += cost
        return False


def _cluster(limit: float = 60.0) -> tuple[Clocks, list[Replica]]:
    clocks = Clocks()
    return clocks, [Replica(node, clocks, limit) for node in NODES]


def _exchange(
    replicas: list[Replica], clocks: Clocks, lost: float = 0.0, rng: random.Random | None = None
) -> None:
    """One gossip round: every replica reports, every other one hears it (unless lost)."""
    clocks.now += 0.1
    reports = [replica.shares.report() for replica in replicas]
    for report in reports:
        for replica in replicas:
            if rng is not None and rng.random() < lost:
                continue
            replica.shares.receive(report)


def _total_fraction(replicas: list[Replica]) -> float:
    return sum(replica.share().fraction for replica in replicas)


def test_a_limit_splits_in_whole_units_among_members() -> None:
    assert [whole_base(60, NODES, node) * 60 for node in NODES] == [20, 20, 20]
    assert [round(whole_base(100, NODES, node) * 100) for node in NODES] == [34, 33, 33]
    _clocks, replicas = _cluster()
    admitted = [sum(replica.try_admit() for _ in range(50)) for replica in replicas]
    assert admitted == [20, 20, 20]


def test_traffic_on_one_replica_gets_nearly_the_whole_limit_after_one_rebalance() -> None:
    clocks, replicas = _cluster()
    busy = replicas[1]
    first = sum(busy.try_admit() for _ in range(60))
    assert first == 20
    _exchange(replicas, clocks)  # the busy replica reports its refusals
    _exchange(replicas, clocks)  # the idle ones gave, and said so
    more = sum(busy.try_admit() for _ in range(60))
    assert first + more == 60
    assert _total_fraction(replicas) == pytest.approx(1.0)


def test_round_robin_bursts_admit_exactly_the_limit() -> None:
    clocks, replicas = _cluster()
    admitted = 0
    for round_number in range(30):
        for _ in range(4):
            for replica in replicas:
                admitted += replica.try_admit()
        _exchange(replicas, clocks)
        assert _total_fraction(replicas) <= 1.0 + 1e-9, round_number
    assert admitted == 60


def test_fractions_are_conserved_whatever_reports_are_lost() -> None:
    rng = random.Random(7)
    clocks, replicas = _cluster(limit=1000.0)
    admitted = 0.0
    for _ in range(200):
        for replica in replicas:
            for _ in range(rng.randrange(0, 12)):
                cost = rng.choice((1.0, 5.0, 20.0))
                if replica.try_admit(cost):
                    admitted += cost
            # Usage also ends, freeing part of what was used.
            replica.used = max(0.0, replica.used - rng.random() * 30)
        _exchange(replicas, clocks, lost=0.3, rng=rng)
        assert _total_fraction(replicas) <= 1.0 + 1e-9
        assert sum(r.used for r in replicas) <= 1000.0 + 1e-6


def test_an_epoch_ending_mid_burst_keeps_the_fractions_and_never_admits_past_the_limit() -> None:
    """Every replica's fraction becomes its base when the epoch ends (a report of the old epoch
    gives nothing more), so a burst across the end admits the limit and no more."""
    clocks, replicas = _cluster()
    admitted = 0
    for round_number in range(40):
        for _ in range(3):
            for replica in replicas:
                admitted += replica.try_admit()
        if round_number == 3:
            clocks.wall += 31  # the epoch ends in the middle of the burst
        _exchange(replicas, clocks)
        assert _total_fraction(replicas) <= 1.0 + 1e-9
    assert admitted == 60


def test_a_gift_made_just_before_the_epoch_ends_still_reaches_a_replica_that_moved_on() -> None:
    """The idle replicas give in the old epoch; the busy one starts the new epoch before their
    reports arrive: the gifts still count, so no part of the limit is lost for good."""
    clocks, replicas = _cluster()
    busy, idle = replicas[1], [replicas[0], replicas[2]]
    first = sum(busy.try_admit() for _ in range(60))
    _exchange(replicas, clocks)  # the busy replica reports its refusals
    clocks.now += 0.1
    gifts = [replica.shares.report() for replica in idle]
    clocks.wall += 31
    busy.shares.report()  # the busy replica moves on first
    for report in gifts:
        busy.shares.receive(report)
    more = sum(busy.try_admit() for _ in range(60))
    assert first + more == 60
    for _ in range(3):
        _exchange(replicas, clocks)
    assert _total_fraction(replicas) == pytest.approx(1.0)


def test_a_refusing_replica_keeps_gifts_that_arrive_before_its_report() -> None:
    """Gifts reach the busy replica between its refusals and its next report, so at that report
    it holds more than it uses: it keeps it (its demand goes on), rather than giving it back to a
    peer that would give it back again, forever in flight between them."""
    clocks, replicas = _cluster()
    busy, idle = replicas[0], replicas[1:]
    admitted = sum(busy.try_admit() for _ in range(30))
    _exchange(replicas, clocks)  # the busy replica's refusals are heard
    for _ in range(5):
        admitted += sum(busy.try_admit() for _ in range(30))
        clocks.now += 0.1
        gifts = [replica.shares.report() for replica in idle]
        for report in gifts:
            busy.shares.receive(report)
        busy_report = busy.shares.report()
        for replica in idle:
            replica.shares.receive(busy_report)
    assert admitted == 60
    assert busy.share().fraction == pytest.approx(1.0)


def test_an_idle_limit_returns_to_the_equal_split_and_is_forgotten() -> None:
    """After a burst on one replica, while nobody refuses, what it holds over its part goes back;
    once used up and idle, the share is dropped (and made again with the equal part)."""
    clocks, replicas = _cluster()
    busy = replicas[0]
    for _ in range(3):
        for _ in range(60):
            busy.try_admit()
        _exchange(replicas, clocks)
    assert busy.used == 60
    for replica in replicas:
        replica.used = 0.0  # the window has moved past the burst
    for _ in range(6):
        _exchange(replicas, clocks)
    assert [round(r.share().fraction * 60) for r in replicas] == [20, 20, 20]
    clocks.wall += 31
    for _ in range(2):
        _exchange(replicas, clocks)
    assert all(r.shares.tracked == 0 for r in replicas)


def test_members_changing_give_each_what_it_uses_and_an_equal_part_of_the_rest() -> None:
    clocks, replicas = _cluster()
    busy = replicas[0]
    for _ in range(3):
        busy.try_admit(10)
    _exchange(replicas, clocks)
    used = [r.used for r in replicas]
    for replica in replicas:
        replica.shares.set_members((*NODES, "dp-d"))
    fractions = [r.share().fraction for r in replicas]
    left = 60 - sum(used)
    for fraction, own in zip(fractions, used, strict=True):
        assert fraction * 60 == pytest.approx(own + left / 4)


def test_without_nats_each_replica_admits_its_fallback_share() -> None:
    _clocks, replicas = _cluster(limit=30.0)
    for replica in replicas:
        replica.shares.set_connected(False)
        assert replica.shares.mode == "fallback"
    assert [sum(r.try_admit() for _ in range(30)) for r in replicas] == [10, 10, 10]
    local = ClusterShares("dp-a", fallback="local")
    local.set_members(NODES)
    assert local.override == 1.0


def test_members_changing_start_a_new_epoch() -> None:
    _clocks, replicas = _cluster()
    shares = replicas[0].shares
    epoch = shares.epoch
    shares.set_members(NODES[:2])
    assert shares.epoch != epoch
    assert replicas[0].share().fraction == pytest.approx(0.5)


def test_only_the_replica_holding_most_of_a_budget_may_cross_it() -> None:
    """A budget smaller than one request's cost: nobody may cross it while it is split; the
    replica refusing gets the others' spare within a round or two, and then may (only it)."""
    clocks, replicas = _cluster(limit=0.01)
    assert not any(r.shares.may_cross(r.share()) for r in replicas)
    assert not replicas[2].try_admit(0.05)
    _exchange(replicas, clocks)
    _exchange(replicas, clocks)
    assert [r.shares.may_cross(r.share()) for r in replicas] == [False, False, True]


def test_reports_round_trip_in_parts_and_malformed_ones_are_refused() -> None:
    entries = tuple(
        ReportEntry(f"key:{i}|r", 60.0, float(i % 7), 0.0, {"dp-b": 0.1}, 0.3)
        for i in range(ENTRIES_PER_PART + 5)
    )
    report = Report("dp-a", "inst", "1.abc", 3, entries)
    parts = encode_parts(report)
    assert len(parts) == 2
    assembler = ReportAssembler()
    assert assembler.add(parts[1]) is None
    assert assembler.add(parts[0]) == report
    mixed = {
        "n": "dp-a", "i": "x", "e": "1", "s": 9, "p": 0, "c": 1,
        "r": [["k", -1, 0, 0, {}, 0], ["k2", float("inf"), 0, 0, {}, 0], ["ok", 1, -1e-12, 0, {}, 0.5]],
    }  # fmt: skip
    kept = assembler.add(orjson.dumps(mixed))
    assert kept is not None and [(e.key, e.used) for e in kept.entries] == [("ok", 0.0)]
    assert assembler.malformed_entries == 2
    for bad in (
        b"not json",
        orjson.dumps({"n": "", "i": "x", "e": "1", "s": 1, "p": 0, "c": 1, "r": []}),
        orjson.dumps({"n": "dp-a", "i": "x", "e": "1", "s": True, "p": 0, "c": 1, "r": []}),
        orjson.dumps({"n": "dp-a", "i": "x", "e": "1", "s": 1, "p": 5, "c": 2, "r": []}),
    ):
        with pytest.raises(ValueError):
            assembler.add(bad)


def test_gifts_adding_up_to_more_than_the_whole_limit_survive_the_wire() -> None:
    """A share moving back and forth between busy replicas: the giver's cumulative gift to one
    peer passes 1.0 within an epoch, and the peer must still be credited every new part of it."""
    _clocks, replicas = _cluster()
    giver, taker = replicas[0].shares, replicas[1].shares
    giver.share(KEY, 60.0, lambda: 0.0).given["dp-b"] = 1.7
    (part,) = encode_parts(giver.report())
    (entry,) = ReportAssembler().add(part).entries  # type: ignore[union-attr]
    assert entry.given == {"dp-b": 1.7}
    share = taker.share(KEY, 60.0, lambda: 0.0)
    share.received["dp-a"] = 1.2
    before = share.fraction
    taker.receive(Report("dp-a", giver.instance, giver.epoch, 1, (entry,)))
    assert share.fraction == pytest.approx(before + 0.5)
