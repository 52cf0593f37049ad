"""Stage 4 (admit): budgets, held across every data plane.

Spend that counts against a budget has three parts:
- committed: the entity's running total in the spend totals KV bucket (spend-ingest writes it once
  a usage batch is in Postgres), minus the baseline of the budget's period (`spend_view`);
- settled here: the cost of this replica's finished requests whose batch the total does not show
  ingested yet (the entry's per-publisher watermark), kept until it does, so a cost never counts
  nowhere between settling and ingest;
- reserved here: each request in flight holds its worst-case cost (its prompt by size and its
  output by max_tokens or the model's output limit, at the dearest deployment of the group; a
  request with no price holds a configured default, never zero).
What is left of a budget (its max minus committed) is shared among the replicas like every limit
(`limits.shares`): a replica admits a request only if its settled and reserved spend, with the
request's reservation, fit in its share, or if it holds most of the budget and some of its share is
left (one request may cross a budget, as LiteLLM lets it, but only one across the cluster).

The reservation is released, and the real cost settled, when the request's usage event reaches the
outbox: for a stream counted in a worker, that is when its count is done.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hydite_common.errors import BudgetExceededError
from hydite_common.events import UsageEvent, UsagePayload
from hydite_dataplane.limits.plan import PlanCache, prompt_tokens_by_size, requested_output_tokens
from hydite_dataplane.limits.rules import BudgetRule
from hydite_dataplane.limits.shares import CONSOLIDATE_ABOVE, ClusterShares, Share
from hydite_dataplane.limits.spend_view import SpendView
from hydite_dataplane.request import InferenceRequest, Outcome, TokenUsage
from hydite_dataplane.usage.event import EventSink

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_TOKENS = 4_096
"""Output tokens a reservation assumes when neither the request nor the model says more."""
PRUNE_EVERY_SECONDS = 5.0
STALE_RESERVATION_SECONDS = 900.0
"""A reservation whose usage event never came (a bug) is dropped after this, not held forever."""


SPLIT_WAIT_ROUNDS = 3
"""Gossip rounds a request waits, when its budget has room only in other replicas' shares, for
them to give it here (a budget smaller than a few requests is split in parts none fits in)."""


class _SplitBudget(Exception):
    """The budget has room in the cluster, not in this replica's share (yet)."""

    def __init__(self, error: BudgetExceededError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(slots=True)
class _Entity:
    """This replica's settled and reserved spend of one entity."""

    reserved: float = 0.0
    settled: float = 0.0
    settled_batches: collections.deque[list[float]] = field(default_factory=collections.deque)
    """[seal generation, cost] of settled costs not shown ingested yet, oldest first."""
    shares: dict[str, Share] = field(default_factory=dict)
    """This replica's share of each of its budgets."""

    def used(self) -> float:
        return self.reserved + self.settled


@dataclass(slots=True)
class _Reservation:
    entities: list[_Entity]
    amount: float
    made_at: float


class BudgetSlot:
    """What a request holds until it ends (the ledger releases it when its event comes)."""

    __slots__ = ()

    def settle(self, outcome: Outcome) -> None:
        """Nothing here: the usage event settles the reservation."""


_SLOT = BudgetSlot()


class BudgetLedger:
    """The budget pre-call hook, and the usage sink in front of the outbox that settles what each
    request reserved with what its event says it cost."""

    def __init__(
        self,
        shares: ClusterShares,
        spend: SpendView,
        sink: EventSink,
        *,
        default_reservation: float,
        wait_seconds: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shares = shares
        self._spend = spend
        self._sink = sink
        self._default_reservation = default_reservation
        self._wait_seconds = wait_seconds
        self._clock = clock
        self._plans = PlanCache()
        self._entities: dict[str, _Entity] = {}
        self._reservations: dict[str, _Reservation] = {}
        self._generation = 0
        self._generation_seq: dict[int, int] = {}
        self._pruned_at = clock()
        spend.on_ingested = self._ingested

    # ------------------------------------------------------------------ admission

    async def before_call(self, request: InferenceRequest) -> BudgetSlot | None:
        """Refuse with a 429 when a budget of the request has no room; else reserve its worst case."""
        rules = self._plans.plan(request).budgets
        if not rules:
            return None
        if request.caller.snapshot is not self._shares.followed:
            self._shares.follow(request.caller.snapshot)
        amount = self.reservation(request)
        try:
            held = [self._checked(rule, amount, count_refusal=True) for rule in rules]
        except _SplitBudget as split:
            held = await self._after_rebalance(rules, amount, split)
        for entity in held:
            entity.reserved += amount
        self._reservations[request.request_id] = _Reservation(held, amount, self._clock())
        return _SLOT

    async def _after_rebalance(
        self, rules: tuple[BudgetRule, ...], amount: float, split: _SplitBudget
    ) -> list[_Entity]:
        """The budgets have room in other replicas' shares: wait a round (up to a few) for them to
        give it here, and check again."""
        for _ in range(SPLIT_WAIT_ROUNDS):
            await asyncio.sleep(self._wait_seconds)
            try:
                return [self._checked(rule, amount, count_refusal=False) for rule in rules]
            except _SplitBudget as again:
                split = again
        raise split.error

    def _checked(self, rule: BudgetRule, amount: float, *, count_refusal: bool) -> _Entity:
        """The rule's entity, if each of its budgets has room for amount here; else BudgetExceeded
        (the cluster has none left) or _SplitBudget (it has, elsewhere)."""
        shares = self._shares
        override = shares.override
        entity = self._entities.get(rule.kv_key)
        if entity is None:
            entity = self._entities[rule.kv_key] = _Entity()
        used = entity.reserved + entity.settled
        for duration, max_budget, share_key in rule.windows:
            committed = self._spend.committed(rule.kv_key, duration)
            left = max_budget - committed
            share = entity.shares.get(share_key)
            if share is None or share.retired:
                share = entity.shares[share_key] = shares.share(share_key, max(left, 0.0), entity.used)
            else:
                share.limit = max(left, 0.0)
            fraction = share.fraction if override is None else override
            room = fraction * left - used
            if left > 0 and (amount <= room or (room > 0 and fraction > CONSOLIDATE_ABOVE)):
                continue
            if count_refusal:
                share.deficit += amount
            period = f" for {duration}" if duration else ""
            error = BudgetExceededError(
                f"Budget has been exceeded! {rule.what}: spend {committed + used:.6g} "
                f"(committed {committed:.6g}), max budget{period} {max_budget:.6g}",
                headers={"retry-after": "60" if duration else "3600"},
            )
            cluster_room = left - used - share.peer_total
            if shares.override is None and cluster_room > 0:
                raise _SplitBudget(error)
            raise error
        return entity

    def reservation(self, request: InferenceRequest) -> float:
        """The request's worst-case cost at the dearest deployment of its model group (the default
        when none is priced)."""
        output = requested_output_tokens(request)
        prompt = prompt_tokens_by_size(request)
        worst = 0.0
        priced = False
        deployments = request.caller.snapshot.deployments_for(request.requested_model or request.model) or ()
        for target in deployments:
            if not target.price.known:
                continue
            priced = True
            limit = output
            if limit is None:
                info = target.model_info
                limit = info.get("max_output_tokens") or info.get("max_tokens") or DEFAULT_OUTPUT_TOKENS
                if not isinstance(limit, int) or limit <= 0:
                    limit = DEFAULT_OUTPUT_TOKENS
            usage = TokenUsage(prompt_tokens=prompt, completion_tokens=limit)
            worst = max(worst, target.price.cost(usage, request.start_time))
        return worst if priced and worst > 0 else self._default_reservation

    # ------------------------------------------------------------------ settling (the usage sink)

    def record(self, event: UsageEvent) -> None:
        """Settle the request's reservation with its cost, then pass the event on."""
        reservation = self._reservations.pop(event["request_id"], None)
        if reservation is not None:
            cost = float(event.get("cost") or 0.0)
            generation = self._generation
            for entity in reservation.entities:
                entity.reserved = max(0.0, entity.reserved - reservation.amount)
                if cost > 0:
                    entity.settled += cost
                    batches = entity.settled_batches
                    if batches and batches[-1][0] == generation:
                        batches[-1][1] += cost
                    else:
                        batches.append([generation, cost])
        self._sink.record(event)

    def record_payload(self, payload: UsagePayload) -> None:
        """Pass a stored prompt and response on."""
        self._sink.record_payload(payload)

    def sealed(self, last_seq: int) -> None:
        """The outbox sealed what it held, up to batch last_seq: costs settled so far are in
        batches numbered at most last_seq."""
        self._generation_seq[self._generation] = last_seq
        self._generation += 1

    def _ingested(self, kv_key: str, watermark: int) -> None:
        """The entity's total now counts every batch of this replica up to watermark."""
        entity = self._entities.get(kv_key)
        if entity is None:
            return
        batches = entity.settled_batches
        while batches:
            seq = self._generation_seq.get(int(batches[0][0]))
            if seq is None or seq > watermark:
                break
            entity.settled = max(0.0, entity.settled - batches.popleft()[1])
        if not batches:
            entity.settled = 0.0

    def prune(self) -> None:
        """Forget what is settled everywhere, and reservations whose event never came (every few
        seconds)."""
        now = self._clock()
        if now - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        for request_id, reservation in list(self._reservations.items()):
            if now - reservation.made_at > STALE_RESERVATION_SECONDS:
                log.error("budget reservation of %s never settled; released", request_id)
                del self._reservations[request_id]
                for entity in reservation.entities:
                    entity.reserved = max(0.0, entity.reserved - reservation.amount)
        idle = [
            key
            for key, entity in self._entities.items()
            if entity.reserved <= 1e-12 and not entity.settled_batches
        ]
        for key in idle:
            del self._entities[key]
        oldest = min(
            (int(e.settled_batches[0][0]) for e in self._entities.values() if e.settled_batches),
            default=self._generation,
        )
        for generation in [g for g in self._generation_seq if g < oldest]:
            del self._generation_seq[generation]

    @property
    def tracked_entities(self) -> int:
        """Entities with reserved or settled spend here."""
        return len(self._entities)
