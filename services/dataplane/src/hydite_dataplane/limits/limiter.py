"""Stage 4 (admit): rate limits held across every data plane. Requests per minute, tokens per
minute and requests in flight, per entity of the request (`limits.plan`).

Each counter is a sliding window here (`windows`): the current minute's count plus the previous
minute's, weighted by how much of it still overlaps the last 60 s. A request is admitted only if
every counter it falls under has room in this replica's share of its limit (`limits.shares`), and
only then counted against all of them, so a refusal never uses up anyone's quota. Tokens are
reserved at admission (the prompt estimated from its size, the output from `max_tokens` or a
default) and settled with the usage the provider reported.

An admitted request's answer carries OpenAI's x-ratelimit-* headers for the tightest requests and
tokens limits, as the cluster sees them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from hydite_common.errors import RateLimitError
from hydite_dataplane.limits.plan import PlanCache, prompt_tokens_by_size, requested_output_tokens
from hydite_dataplane.limits.rules import RateRule
from hydite_dataplane.limits.shares import CONSOLIDATE_ABOVE, UNIT_SLACK, ClusterShares, Share
from hydite_dataplane.limits.windows import WINDOW_SECONDS, RateWindow
from hydite_dataplane.request import InferenceRequest, Outcome

PRUNE_EVERY_SECONDS = 60.0


def estimated_tokens(request: InferenceRequest, default_output: int) -> int:
    """Tokens to reserve for a request: its prompt by size, and its output by max_tokens (or a
    default)."""
    return prompt_tokens_by_size(request) + (requested_output_tokens(request) or default_output)


class _Counter:
    """One entity's window, its three shares and their meters."""

    __slots__ = (
        "flight_meter",
        "flight_share",
        "requests_meter",
        "requests_share",
        "tokens_meter",
        "tokens_share",
        "window",
    )

    def __init__(self, window: RateWindow, clock: Callable[[], float]) -> None:
        self.window = window
        self.requests_share: Share | None = None
        self.tokens_share: Share | None = None
        self.flight_share: Share | None = None

        def requests() -> float:
            return window.requests_in_window(clock())

        def tokens() -> float:
            return window.tokens_in_window(clock()) + window.reserved_tokens

        def in_flight() -> float:
            return float(window.in_flight)

        self.requests_meter = requests
        self.tokens_meter = tokens
        self.flight_meter = in_flight


class RateSlots:
    """The windows one admitted request counts in: released, and its tokens settled, when it ends."""

    __slots__ = ("reserved", "windows")

    def __init__(self, windows: Sequence[RateWindow], reserved: int) -> None:
        self.windows = windows
        self.reserved = reserved

    def settle(self, outcome: Outcome) -> None:
        """Release the request's slots and count its tokens instead of the estimate."""
        tokens = outcome.usage.prompt_tokens + outcome.usage.completion_tokens
        for window in self.windows:
            window.in_flight -= 1
            window.reserved_tokens -= self.reserved
            window.tokens += tokens


_Tightest = tuple[float, float, RateWindow]
"""(share of the limit left in the cluster, the limit, its window)."""


def _headers(requests: _Tightest | None, tokens: _Tightest | None, now: float) -> dict[str, str]:
    """OpenAI's x-ratelimit-* of the tightest requests and tokens limits (a reset within the
    minute in its form "12s")."""
    headers: dict[str, str] = {}
    if requests is not None:
        left, limit, window = requests
        headers["x-ratelimit-limit-requests"] = str(int(limit))
        headers["x-ratelimit-remaining-requests"] = str(int(left * limit)) if left > 0 else "0"
        headers["x-ratelimit-reset-requests"] = f"{int(WINDOW_SECONDS - (now - window.start)) + 1}s"
    if tokens is not None:
        left, limit, window = tokens
        headers["x-ratelimit-limit-tokens"] = str(int(limit))
        headers["x-ratelimit-remaining-tokens"] = str(int(left * limit)) if left > 0 else "0"
        headers["x-ratelimit-reset-tokens"] = f"{int(WINDOW_SECONDS - (now - window.start)) + 1}s"
    return headers


_MEASURES = {
    "rpm": "requests per minute",
    "tpm": "tokens per minute",
    "parallel": "requests in flight at once",
}
_CODES = {
    "rpm": "rpm_limit_exceeded",
    "tpm": "tpm_limit_exceeded",
    "parallel": "max_parallel_requests_exceeded",
}


def _refusal(
    rule: RateRule, which: str, allowed: float, window: RateWindow, carried: float
) -> RateLimitError:
    """The 429 of a limit with no room here, with a retry-after."""
    limit = {"rpm": rule.rpm, "tpm": rule.tpm, "parallel": rule.parallel}[which]
    if which == "parallel":
        return RateLimitError(
            f"this {rule.what} allows {limit:g} {_MEASURES[which]}",
            code=_CODES[which],
            headers={"retry-after": "1"},
        )
    if which == "rpm":
        wait = window.seconds_until_below(allowed, window.requests, window.previous_requests, carried)
    else:
        wait = window.seconds_until_below(allowed, window.tokens, window.previous_tokens, carried)
    return RateLimitError(
        f"this {rule.what} allows {limit:g} {_MEASURES[which]}; retry in {wait} s",
        code=_CODES[which],
        headers={"retry-after": str(wait)},
    )


class RateLimiter:
    """Admits requests within their limits (a pre-call hook whose RateSlots settle them)."""

    def __init__(
        self,
        shares: ClusterShares,
        clock: Callable[[], float] = time.monotonic,
        default_output_tokens: int = 256,
    ) -> None:
        self._shares = shares
        self._clock = clock
        self._default_output_tokens = default_output_tokens
        self._counters: dict[str, _Counter] = {}
        self._plans = PlanCache()
        self._pruned_at = clock()

    async def before_call(self, request: InferenceRequest) -> RateSlots | None:
        """Refuse with a 429 when any limit has no room; otherwise count the request everywhere."""
        plan = self._plans.plan(request)
        rules = plan.rates
        if not rules:
            return None
        now = self._clock()
        shares = self._shares
        if request.caller.snapshot is not shares.followed:
            shares.follow(request.caller.snapshot)
        override = shares.override
        reserve = estimated_tokens(request, self._default_output_tokens) if plan.counts_tokens else 0
        admitted: list[tuple[RateWindow, Share | None, Share | None, Share | None]] = []
        tightest_requests: _Tightest | None = None
        tightest_tokens: _Tightest | None = None
        for rule in rules:
            counter = self._counters.get(rule.counter_id)
            if counter is None:
                counter = self._counters[rule.counter_id] = _Counter(RateWindow(now), self._clock)
            window = counter.window
            elapsed = now - window.start
            carried = 1.0 - elapsed / WINDOW_SECONDS if elapsed < WINDOW_SECONDS else window.roll(now)
            rpm_share = tpm_share = flight_share = None
            if rule.rpm is not None:
                limit = rule.rpm
                rpm_share = counter.requests_share
                if rpm_share is None or rpm_share.retired or rpm_share.limit != limit:
                    rpm_share = counter.requests_share = shares.share(
                        rule.share_keys[0], limit, counter.requests_meter
                    )
                allowed = (rpm_share.fraction if override is None else override) * limit + UNIT_SLACK
                used = window.previous_requests * carried + window.requests + 1
                if used > allowed:
                    rpm_share.deficit += 1
                    raise _refusal(rule, "rpm", allowed, window, carried)
                left = (limit - used - rpm_share.peer_total) / limit
                if tightest_requests is None or left < tightest_requests[0]:
                    tightest_requests = (left, limit, window)
            if rule.tpm is not None:
                limit = rule.tpm
                tpm_share = counter.tokens_share
                if tpm_share is None or tpm_share.retired or tpm_share.limit != limit:
                    tpm_share = counter.tokens_share = shares.share(
                        rule.share_keys[1], limit, counter.tokens_meter
                    )
                fraction = tpm_share.fraction if override is None else override
                allowed = fraction * limit + UNIT_SLACK
                used = window.previous_tokens * carried + window.tokens + window.reserved_tokens
                if used + reserve > allowed and not (used < allowed and fraction > CONSOLIDATE_ABOVE):
                    tpm_share.deficit += reserve
                    raise _refusal(rule, "tpm", allowed, window, carried)
                left = (limit - used - reserve - tpm_share.peer_total) / limit
                if tightest_tokens is None or left < tightest_tokens[0]:
                    tightest_tokens = (left, limit, window)
            if rule.parallel is not None:
                limit = rule.parallel
                flight_share = counter.flight_share
                if flight_share is None or flight_share.retired or flight_share.limit != limit:
                    flight_share = counter.flight_share = shares.share(
                        rule.share_keys[2], limit, counter.flight_meter
                    )
                in_flight_allowed = (flight_share.fraction if override is None else override) * limit
                if window.in_flight + 1 > in_flight_allowed + UNIT_SLACK:
                    flight_share.deficit += 1
                    raise _refusal(rule, "parallel", limit, window, carried)
            admitted.append((window, rpm_share, tpm_share, flight_share))
        windows = []
        for window, rpm_share, tpm_share, flight_share in admitted:
            window.requests += 1
            window.in_flight += 1
            window.reserved_tokens += reserve
            windows.append(window)
            if rpm_share is not None:
                rpm_share.admitted += 1
            if tpm_share is not None:
                tpm_share.admitted += reserve
            if flight_share is not None:
                flight_share.admitted += 1
        if tightest_requests is not None or tightest_tokens is not None:
            request.limit_headers = _headers(tightest_requests, tightest_tokens, now)
        if now - self._pruned_at > PRUNE_EVERY_SECONDS:
            self._prune(now)
        return RateSlots(windows, reserve)

    def _prune(self, now: float) -> None:
        """Forget entities idle for two windows (their counts are zero by now)."""
        self._pruned_at = now
        idle = [
            counter_id
            for counter_id, counter in self._counters.items()
            if not counter.window.in_flight and now - counter.window.start >= 2 * WINDOW_SECONDS
        ]
        for counter_id in idle:
            del self._counters[counter_id]

    @property
    def tracked_entities(self) -> int:
        """How many entities have live counters."""
        return len(self._counters)
