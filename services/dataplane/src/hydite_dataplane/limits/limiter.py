"""Stage 4 (admit): rate limits. Requests per minute, tokens per minute and requests in flight, per key
(and per model within a key), user, team, organization and customer; a key, team or customer that
links a budget takes the budget's limits where it sets none of its own.

Counts live in memory as sliding windows: the current minute's count plus the previous
minute's, weighted by how much of it still overlaps the last 60 s. A request is admitted
only if every limit it falls under has room, and only then counted against all of them, so
a refusal never uses up anyone's quota. Tokens are counted when a request finishes, from
the usage the provider reported. Each data plane enforces every limit on its own traffic;
sharing limits across replicas is the limit gossip's job, which divides them between replicas.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from hydite.config.v1 import config_pb2 as pb
from hydite_common.config_types import customer_name
from hydite_common.errors import RateLimitError
from hydite_dataplane.config.snapshot import Snapshot
from hydite_dataplane.limits.windows import WINDOW_SECONDS, RateWindow
from hydite_dataplane.request import InferenceRequest, Outcome, Owner

Limited = pb.VirtualKey | pb.Customer | Owner

PRUNE_EVERY_SECONDS = 60.0


def _limits_of(snapshot: Snapshot, entity: Limited) -> pb.Limits | None:
    """An entity's limits: its own, with those of the budget it links filling what it leaves unset."""
    own = entity.limits if entity.HasField("limits") else None
    budget_id = getattr(entity, "budget_id", "")
    budget = snapshot.budgets.get(budget_id) if budget_id else None
    if budget is None:
        return own
    merged = pb.Limits()
    merged.CopyFrom(budget.limits)
    if own is not None:
        merged.MergeFrom(own)
    return merged


def _limited(request: InferenceRequest) -> Iterator[tuple[str, str, pb.Limits]]:
    """(what, counter id, limits) for every entity of the request that carries limits."""
    snapshot = request.caller.snapshot
    limits = _limits_of(snapshot, request.key)
    if limits is not None:
        yield "key", request.key_hash, limits
    for kind, entity_id, owner in request.caller.owners():
        if owner is not None and (limits := _limits_of(snapshot, owner)) is not None:
            yield kind, f"{kind}:{entity_id}", limits
    customer = request.customer
    if customer is not None and (limits := _limits_of(snapshot, customer)) is not None:
        # The resolved end user's resource name: two tenants' end users of one id never share.
        name = customer_name(customer.customer_id, customer.team_id, customer.organization_id)
        yield "customer", f"customer:{name}", limits


class RateSlots:
    """The windows one admitted request counts in: released, and its tokens counted, when it ends."""

    __slots__ = ("windows",)

    def __init__(self, windows: Sequence[RateWindow]) -> None:
        self.windows = windows

    def settle(self, outcome: Outcome) -> None:
        """Release the request's slots and count its tokens."""
        tokens = outcome.usage.prompt_tokens + outcome.usage.completion_tokens
        for window in self.windows:
            window.in_flight -= 1
            window.tokens += tokens


class RateLimiter:
    """Admits requests within their limits (a pre-call hook whose RateSlots settle them)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, RateWindow] = {}
        self._pruned_at = clock()

    def _window(self, counter_id: str, now: float) -> RateWindow:
        window = self._windows.get(counter_id)
        if window is None:
            window = self._windows[counter_id] = RateWindow(now)
        return window

    async def before_call(self, request: InferenceRequest) -> RateSlots | None:
        """Refuse with a 429 when any limit is reached; otherwise count the request everywhere."""
        now = self._clock()
        admitted: list[RateWindow] = []
        for kind, counter_id, limits in _limited(request):
            window = self._window(counter_id, now)
            self._check(kind, limits, window, now)
            admitted.append(window)
            if kind == "key" and (limits.model_rpm_limit or limits.model_tpm_limit):
                model = request.requested_model or request.model
                model_rpm = limits.model_rpm_limit.get(model)
                model_tpm = limits.model_tpm_limit.get(model)
                if model_rpm is not None or model_tpm is not None:
                    model_window = self._window(f"{counter_id}:{model}", now)
                    self._check_rates(f"key (model {model})", model_rpm, model_tpm, model_window, now)
                    admitted.append(model_window)
        for window in admitted:
            window.requests += 1
            window.in_flight += 1
        if now - self._pruned_at > PRUNE_EVERY_SECONDS:
            self._prune(now)
        return RateSlots(admitted) if admitted else None

    def _check(self, kind: str, limits: pb.Limits, window: RateWindow, now: float) -> None:
        rpm = limits.rpm_limit if limits.HasField("rpm_limit") else None
        tpm = limits.tpm_limit if limits.HasField("tpm_limit") else None
        self._check_rates(kind, rpm, tpm, window, now)
        if limits.HasField("max_parallel_requests") and window.in_flight >= limits.max_parallel_requests:
            raise RateLimitError(
                f"this {kind} allows {limits.max_parallel_requests} requests in flight at once",
                code="max_parallel_requests_exceeded",
                headers={"retry-after": "1"},
            )

    def _check_rates(
        self, kind: str, rpm: int | None, tpm: int | None, window: RateWindow, now: float
    ) -> None:
        carried = window.roll(now)
        if rpm is not None:
            used = window.previous_requests * carried + window.requests
            if used + 1 > rpm:
                wait = window.seconds_until_below(rpm, window.requests, window.previous_requests, carried)
                raise RateLimitError(
                    f"this {kind} allows {rpm} requests per minute; retry in {wait} s",
                    code="rpm_limit_exceeded",
                    headers={"retry-after": str(wait)},
                )
        if tpm is not None:
            used_tokens = window.previous_tokens * carried + window.tokens
            if used_tokens >= tpm:
                wait = window.seconds_until_below(tpm, window.tokens, window.previous_tokens, carried)
                raise RateLimitError(
                    f"this {kind} allows {tpm} tokens per minute; retry in {wait} s",
                    code="tpm_limit_exceeded",
                    headers={"retry-after": str(wait)},
                )

    def _prune(self, now: float) -> None:
        """Forget entities idle for two windows (their counts are zero by now)."""
        self._pruned_at = now
        idle = [
            counter_id
            for counter_id, window in self._windows.items()
            if not window.in_flight and now - window.start >= 2 * WINDOW_SECONDS
        ]
        for counter_id in idle:
            del self._windows[counter_id]

    @property
    def tracked_entities(self) -> int:
        """How many entities have live counters."""
        return len(self._windows)
