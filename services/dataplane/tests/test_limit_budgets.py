"""Budgets on one data plane: a reservation before the call, settled by the usage event's cost and
held until the running total shows its batch ingested; per-deployment limits route elsewhere."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from hydite.config.v1 import config_pb2 as pb
from hydite_common.errors import BudgetExceededError, RateLimitError
from hydite_common.events import UsageEvent, UsagePayload
from hydite_common.spend_totals import TotalEntry, WindowBaseline, totals_key
from hydite_dataplane.limits.budgets import BudgetLedger
from hydite_dataplane.limits.deployments import DeploymentLimiter
from hydite_dataplane.limits.shares import ClusterShares
from hydite_dataplane.limits.spend_view import SpendView
from hydite_dataplane.request import outcome_of

PUBLISHER = "dp-a.pub"


class Sink:
    def __init__(self) -> None:
        self.events: list[UsageEvent] = []

    def record(self, event: UsageEvent) -> None:
        self.events.append(event)

    def record_payload(self, payload: UsagePayload) -> None:
        raise AssertionError("no payloads here")


def _ledger() -> tuple[BudgetLedger, SpendView]:
    spend = SpendView(PUBLISHER)
    return BudgetLedger(
        ClusterShares("dp-a"), spend, Sink(), default_reservation=0.05, wait_seconds=0.0
    ), spend


def _event(request_id: str, cost: float) -> Any:
    return {"request_id": request_id, "cost": cost}


def _entry(spend: str, ingested: int, windows: dict[str, WindowBaseline] | None = None) -> bytes:
    return TotalEntry(
        "key", "h", {"USD": spend}, 1, 1, 1, None, 0.0, {PUBLISHER: ingested}, windows or {}
    ).encode()


async def test_a_budget_admits_until_reserved_and_settled_spend_reach_it(make_request: Any) -> None:
    ledger, _spend = _ledger()
    key = pb.VirtualKey(limits=pb.Limits(max_budget=0.10))
    first, second, third = (make_request({}, key=key, request_id=f"r{i}") for i in range(3))
    await ledger.before_call(first)
    await ledger.before_call(second)  # 0.10 reserved of 0.10
    with pytest.raises(BudgetExceededError, match="Budget has been exceeded") as refused:
        await ledger.before_call(third)
    assert refused.value.status == 429 and refused.value.error_type == "insufficient_quota"
    assert refused.value.code == "budget_exceeded"
    ledger.record(_event("r0", 0.01))  # settles: 0.05 + 0.01 held
    ledger.record(_event("r1", 0.01))
    await ledger.before_call(third)
    ledger.record(_event("r2", 0.01))
    assert ledger.tracked_entities == 1


async def test_a_settled_cost_counts_here_until_the_total_shows_its_batch(make_request: Any) -> None:
    ledger, spend = _ledger()
    key = pb.VirtualKey(limits=pb.Limits(max_budget=0.10))
    kv_key = totals_key("key", "h")
    await ledger.before_call(make_request({}, key=key, request_id="a"))
    ledger.record(_event("a", 0.06))
    ledger.sealed(7)  # the event went out in batch 7 at most
    # The total does not show batch 7 yet: 0.06 settled here, a 0.05 reservation does not fit.
    spend.apply(kv_key, _entry("0.06", ingested=6))
    with pytest.raises(BudgetExceededError):
        await ledger.before_call(make_request({}, key=key, request_id="b"))
    # Now it does: 0.06 committed, nothing held here, 0.04 left: the request crosses (one replica).
    spend.apply(kv_key, _entry("0.06", ingested=7))
    await ledger.before_call(make_request({}, key=key, request_id="c"))


async def test_a_period_counts_from_its_baseline(make_request: Any) -> None:
    ledger, spend = _ledger()
    key = pb.VirtualKey(limits=pb.Limits(max_budget=0.10, budget_duration="1d"))
    kv_key = totals_key("key", "h")
    spend.apply(
        kv_key, _entry("5.00", ingested=0, windows={"1d": WindowBaseline(0.0, None, {"USD": "4.95"})})
    )
    assert spend.committed(kv_key, "1d") == pytest.approx(0.05)
    await ledger.before_call(make_request({}, key=key, request_id="a"))
    spend.apply(
        kv_key, _entry("5.00", ingested=0, windows={"1d": WindowBaseline(0.0, None, {"USD": "4.90"})})
    )
    assert spend.committed(kv_key, "1d") == pytest.approx(0.10)
    with pytest.raises(BudgetExceededError, match="for 1d"):
        await ledger.before_call(make_request({}, key=key, request_id="b"))


async def test_a_malformed_total_entry_is_counted_and_ignored() -> None:
    spend = SpendView(PUBLISHER)
    spend.apply("key.h", b"{not json")
    spend.apply("key.h", orjson.dumps({"kind": "key"}))
    assert spend.malformed == 2 and spend.committed("key.h", "") == 0.0


async def test_an_unpriced_request_reserves_the_default(make_request: Any) -> None:
    ledger, _ = _ledger()
    assert ledger.reservation(make_request({"max_tokens": 10})) == 0.05


async def test_a_deployment_at_its_rpm_is_passed_over_then_all_full_is_a_429(
    make_request: Any, make_target: Any
) -> None:
    limiter = DeploymentLimiter(ClusterShares("dp-a"))
    full = make_target("full", rpm=1.0)
    free = make_target("free")
    request = make_request({})
    assert limiter.eligible(request, [full, free]) == [full, free]
    limiter.attempt_started(full)
    assert limiter.eligible(request, [full, free]) == [free]
    with pytest.raises(RateLimitError, match="every deployment") as refused:
        limiter.eligible(request, [full])
    assert int(refused.value.headers["retry-after"]) >= 1
    limiter.after_call(request, outcome_of(full))
