"""Stage 5 (route): which deployment serves a request, and what happens when one fails.

`Router.call` owns the loops: the model group's attempts with retries, then its fallback models.

- pick: weighted shuffle among the eligible deployments, avoiding ones that already failed
  this request when others remain;
- retry: 429, 5xx, timeouts and connection errors are retried with exponential backoff and
  jitter, honouring the provider's retry-after (up to a cap);
- cooldown: a deployment that fails `allowed_fails` times within a window, or answers 429, is
  left out for a while and comes back by itself (a deployment-eligibility hook);
- fallbacks: when a model group gives up, the request moves to its fallback models: by error
  kind (context window, content policy) or in general.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from hydite_common.errors import (
    HyditeError,
    RateLimitError,
    ServiceUnavailableError,
    UpstreamError,
    UpstreamTimeoutError,
)
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.hooks import Hooks
from hydite_dataplane.request import InferenceRequest
from hydite_dataplane.stats import LiveStats

log = logging.getLogger(__name__)

CONTEXT_WINDOW_CODES = frozenset({"context_length_exceeded", "context_window_exceeded"})
CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "content_filter"})


STRATEGIES = frozenset({"simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing"})


def pick_deployment(
    deployments: Sequence[DeploymentTarget],
    rng: random.Random,
    avoid: frozenset[str] = frozenset(),
    strategy: str = "simple-shuffle",
    stats: LiveStats | None = None,
) -> DeploymentTarget:
    """The deployment for the next attempt, preferring ones not in avoid.

    simple-shuffle: random in proportion to weight; least-busy: fewest calls in flight;
    latency-based-routing: lowest moving-average latency (untried deployments first);
    usage-based-routing: fewest tokens in the last minute. Ties are broken at random.
    """
    fresh = [d for d in deployments if d.deployment_id not in avoid] if avoid else deployments
    candidates = fresh or deployments
    if len(candidates) == 1:
        return candidates[0]
    if stats is None or strategy == "simple-shuffle" or strategy not in STRATEGIES:
        return rng.choices(candidates, weights=[d.weight for d in candidates], k=1)[0]
    now = time.monotonic()

    def score(target: DeploymentTarget) -> float:
        live = stats.of(target.deployment_id)
        if strategy == "least-busy":
            return live.in_flight
        if strategy == "latency-based-routing":
            return live.latency_ewma_ms
        return live.tokens_last_minute(now)

    best = min(score(d) for d in candidates)
    return rng.choice([d for d in candidates if score(d) == best])


def routing_strategy(deployments: Sequence[DeploymentTarget], key_group_strategy: str) -> str:
    """The model group's own strategy (model_info.routing_strategy) wins over the key group's."""
    for deployment in deployments:
        chosen = deployment.model_info.get("routing_strategy")
        if isinstance(chosen, str) and chosen in STRATEGIES:
            return chosen
    return key_group_strategy if key_group_strategy in STRATEGIES else "simple-shuffle"


def is_retryable(error: HyditeError) -> bool:
    """Rate limits, provider failures, timeouts and unreachable providers are worth another try."""
    return isinstance(error, RateLimitError | UpstreamError | UpstreamTimeoutError | ServiceUnavailableError)


def retry_after_seconds(error: HyditeError) -> float | None:
    """The provider's retry-after in seconds, when it sent a numeric one."""
    raw = error.headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a model group is retried."""

    num_retries: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    max_retry_after_seconds: float

    def retries_for(self, request: InferenceRequest, deployments: Sequence[DeploymentTarget]) -> int:
        """The request's `num_retries`, else the deployments' max_retries, else the default."""
        if request.options.num_retries is not None:
            return request.options.num_retries
        configured = [d.max_retries for d in deployments if d.max_retries is not None]
        return max(configured) if configured else self.num_retries

    def delay(self, attempt: int, error: HyditeError, rng: random.Random) -> float | None:
        """Seconds to wait before retry number attempt (1-based); None: do not wait that long."""
        backoff: float = min(self.backoff_max_seconds, self.backoff_base_seconds * 2.0 ** (attempt - 1))
        backoff *= rng.uniform(0.5, 1.5)
        after = retry_after_seconds(error)
        if after is None:
            return backoff
        return None if after > self.max_retry_after_seconds else max(backoff, after)


class AttemptObserver(Protocol):
    """Told about every attempt on a deployment (retries and fallbacks included)."""

    def attempt_started(self, target: DeploymentTarget) -> None:
        """An attempt on target began."""
        ...

    def attempt_ended(self, target: DeploymentTarget, seconds: float, error: HyditeError | None) -> None:
        """The attempt ended after seconds (streams: when the relay ended); error None: it worked."""
        ...


class CooldownTracker:
    """Counts recent failures per deployment and keeps failing ones out for a while.

    It is a deployment-eligibility hook and an attempt observer; state is per data-plane process.
    """

    def __init__(self, *, allowed_fails: int, window_seconds: float, cooldown_seconds: float) -> None:
        self._allowed_fails = allowed_fails
        self._window = window_seconds
        self._cooldown = cooldown_seconds
        self._failures: dict[str, deque[float]] = {}
        self._until: dict[str, float] = {}
        self.started: dict[str, int] = {}
        """Cooldowns begun, per deployment (for /metrics)."""

    def eligible(
        self, request: InferenceRequest, deployments: Sequence[DeploymentTarget]
    ) -> Sequence[DeploymentTarget]:
        """Deployments not cooling down (all of them, if every one is: better a try than nothing)."""
        if not self._until:
            return deployments
        now = time.monotonic()
        available = [d for d in deployments if self._until.get(d.deployment_id, 0.0) <= now]
        return available or deployments

    def cooling(self, deployment_id: str) -> bool:
        """Whether the deployment is cooling down now."""
        return self._until.get(deployment_id, 0.0) > time.monotonic()

    def cooling_now(self) -> int:
        """How many deployments are cooling down now."""
        now = time.monotonic()
        return sum(1 for until in self._until.values() if until > now)

    def _cool(self, deployment_id: str, now: float, pause: float) -> None:
        if self._until.get(deployment_id, 0.0) <= now:  # a cooldown extended is not a new one
            self.started[deployment_id] = self.started.get(deployment_id, 0) + 1
        self._until[deployment_id] = now + pause

    def record_failure(self, target: DeploymentTarget, error: HyditeError) -> None:
        """Count a failure; a 429 or too many failures in the window start a cooldown."""
        if not is_retryable(error):
            return
        now = time.monotonic()
        if isinstance(error, RateLimitError):
            pause = max(self._cooldown, retry_after_seconds(error) or 0.0)
            self._cool(target.deployment_id, now, pause)
            return
        failures = self._failures.setdefault(target.deployment_id, deque())
        failures.append(now)
        while failures and failures[0] < now - self._window:
            failures.popleft()
        if len(failures) >= self._allowed_fails:
            self._cool(target.deployment_id, now, self._cooldown)
            failures.clear()

    def record_success(self, target: DeploymentTarget) -> None:
        """A success clears the deployment's failure count and any cooldown."""
        if self._failures.pop(target.deployment_id, None) is not None or target.deployment_id in self._until:
            self._until.pop(target.deployment_id, None)

    def attempt_started(self, target: DeploymentTarget) -> None:
        """Nothing to note before the outcome."""

    def attempt_ended(self, target: DeploymentTarget, seconds: float, error: HyditeError | None) -> None:
        """Count the failure, or clear the deployment's record."""
        if error is None:
            self.record_success(target)
        else:
            self.record_failure(target, error)


def _names(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def fallback_models(
    request: InferenceRequest, deployments: Sequence[DeploymentTarget], error: HyditeError
) -> list[str]:
    """Models to try next after this model group failed with error.

    Context-window and content-policy errors use their own lists; other retryable errors use the
    general list (the request's `fallbacks`, then the group's `model_info.fallbacks`).
    """
    if error.code in CONTEXT_WINDOW_CODES:
        key = "context_window_fallbacks"
    elif error.code in CONTENT_POLICY_CODES:
        key = "content_policy_fallbacks"
    elif is_retryable(error):
        key = "fallbacks"
    else:
        return []
    models = list(getattr(request.options, key))
    for deployment in deployments:
        models += [m for m in _names(deployment.model_info.get(key)) if m not in models]
    return [m for m in models if m != request.model]


T = TypeVar("T")
Attempt = Callable[[DeploymentTarget], Awaitable[T]]
"""One upstream call to a deployment, relay included."""
Authorize = Callable[[str], Sequence[DeploymentTarget]]
"""The deployments of a fallback model the request may use (raises HyditeError if none)."""

_ATTEMPT_BROKE = HyditeError("the attempt ended without an answer", code="internal_error")


class Router:
    """Runs a request's attempts: deployment choice, retries with backoff, fallback models."""

    def __init__(
        self,
        policy: RetryPolicy,
        hooks: Hooks,
        observers: Sequence[AttemptObserver],
        stats: LiveStats,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self.hooks = hooks
        self.observers = tuple(observers)
        self.stats = stats
        self.rng = rng or random.Random()

    async def call(
        self,
        request: InferenceRequest,
        deployments: Sequence[DeploymentTarget],
        key_group_strategy: str,
        authorize: Authorize,
        attempt: Attempt[T],
    ) -> T:
        """The first answer of the model group, then of its fallbacks (each authorized like the
        model itself) in turn; the last error when none answers."""
        tried_models = {request.model}
        while True:
            try:
                strategy = routing_strategy(deployments, key_group_strategy)
                return await self._call_group(request, deployments, strategy, attempt)
            except HyditeError as error:
                for candidate in fallback_models(request, deployments, error):
                    if candidate in tried_models:
                        continue
                    tried_models.add(candidate)
                    try:
                        deployments = authorize(candidate)
                    except HyditeError:
                        continue
                    request.model = candidate
                    request.fallbacks += 1
                    break
                else:
                    raise

    async def _call_group(
        self,
        request: InferenceRequest,
        deployments: Sequence[DeploymentTarget],
        strategy: str,
        attempt: Attempt[T],
    ) -> T:
        """Call the group's deployments, retrying retryable failures with backoff; no retry once a
        response has started (the attempt then returns instead of raising)."""
        policy = self.policy
        retries = policy.retries_for(request, deployments)
        failed: set[str] = set()
        for number in itertools.count(1):
            eligible = self.hooks.eligible(request, deployments)
            target = pick_deployment(eligible, self.rng, frozenset(failed), strategy, self.stats)
            request.deployment = target
            request.attempts += 1
            try:
                return await self._observed(target, attempt)
            except HyditeError as error:
                failed.add(target.deployment_id)
                if not is_retryable(error) or number > retries:
                    raise
                log.debug("attempt %d on %s failed (%s); retrying", number, target.deployment_id, error.code)
                # Another deployment is tried at once; the same one only after a backoff.
                fresh = any(d.deployment_id not in failed for d in eligible)
                delay = 0.0 if fresh else policy.delay(number, error, self.rng)
                if delay is None:
                    raise
                if delay:
                    await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _observed(self, target: DeploymentTarget, attempt: Attempt[T]) -> T:
        """One attempt, reported to every observer however it ends."""
        for observer in self.observers:
            observer.attempt_started(target)
        started = time.perf_counter()
        error: HyditeError | None = _ATTEMPT_BROKE
        try:
            result = await attempt(target)
            error = None
            return result
        except HyditeError as exc:
            error = exc
            raise
        finally:
            seconds = time.perf_counter() - started
            for observer in self.observers:
                observer.attempt_ended(target, seconds, error)
