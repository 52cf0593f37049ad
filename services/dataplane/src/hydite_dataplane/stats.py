"""Live per-deployment statistics of this data plane: in-flight calls, latency, success rate and
recent tokens. They drive the least-busy, lowest-latency and usage-based routing strategies and
GET /model/metrics, and /metrics shows them per deployment (read at scrape time)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from hydite_common.errors import HyditeError
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.metrics import RequestMetrics, labels
from hydite_dataplane.request import InferenceRequest, Outcome

LATENCY_SMOOTHING = 0.2  # weight of the newest sample in the moving average
TOKEN_WINDOW_SECONDS = 60.0


@dataclass(slots=True)
class DeploymentStats:
    """What one deployment has done on this data plane since start."""

    in_flight: int = 0
    attempts: int = 0
    failures: int = 0
    latency_ewma_ms: float = 0.0
    latency_total_ms: float = 0.0
    tokens: deque[list[int]] = field(default_factory=deque)
    """[second, tokens] per second of the last minute: bounded however many calls there are."""

    def add_tokens(self, now: float, tokens: int) -> None:
        """Count tokens billed at time now."""
        second = int(now)
        if self.tokens and self.tokens[-1][0] == second:
            self.tokens[-1][1] += tokens
            return
        self.tokens.append([second, tokens])
        self._forget_before(now)

    def tokens_last_minute(self, now: float) -> int:
        """Tokens billed in the last minute."""
        self._forget_before(now)
        return sum(tokens for _, tokens in self.tokens)

    def _forget_before(self, now: float) -> None:
        while self.tokens and self.tokens[0][0] < now - TOKEN_WINDOW_SECONDS:
            self.tokens.popleft()


class LiveStats:
    """Per-deployment statistics: an attempt observer, and the post-call hook that counts tokens."""

    def __init__(self) -> None:
        self.by_deployment: dict[str, DeploymentStats] = {}

    def of(self, deployment_id: str) -> DeploymentStats:
        """The deployment's statistics (created on first use)."""
        stats = self.by_deployment.get(deployment_id)
        if stats is None:
            stats = self.by_deployment[deployment_id] = DeploymentStats()
        return stats

    def attempt_started(self, target: DeploymentTarget) -> None:
        """An attempt on the deployment began."""
        stats = self.of(target.deployment_id)
        stats.in_flight += 1
        stats.attempts += 1

    def attempt_ended(self, target: DeploymentTarget, seconds: float, error: HyditeError | None) -> None:
        """An attempt ended after `seconds` (streams: when the relay ended)."""
        stats = self.of(target.deployment_id)
        stats.in_flight -= 1
        if error is not None:
            stats.failures += 1
            return
        ms = seconds * 1000
        stats.latency_total_ms += ms
        first = stats.latency_ewma_ms == 0.0
        stats.latency_ewma_ms = (
            ms if first else (1 - LATENCY_SMOOTHING) * stats.latency_ewma_ms + LATENCY_SMOOTHING * ms
        )

    def after_call(self, request: InferenceRequest, outcome: Outcome) -> None:
        """Post-call hook: tokens of a finished request count toward its deployment's usage."""
        if outcome.target is not None and outcome.usage.total_tokens:
            self.of(outcome.target.deployment_id).add_tokens(time.monotonic(), outcome.usage.total_tokens)


def export_deployment_stats(metrics: RequestMetrics, stats: LiveStats) -> None:
    """Show each deployment's attempts, failed attempts and calls in flight on /metrics."""
    by_deployment = stats.by_deployment
    metrics.add_family(
        "hydite_deployment_attempts_total",
        "Upstream calls made to each deployment (retries and fallbacks included).",
        lambda: ((labels(deployment=d), s.attempts) for d, s in by_deployment.items()),
        "counter",
    )
    metrics.add_family(
        "hydite_deployment_failures_total",
        "Upstream calls to each deployment that failed.",
        lambda: ((labels(deployment=d), s.failures) for d, s in by_deployment.items()),
        "counter",
    )
    metrics.add_family(
        "hydite_deployment_in_flight",
        "Upstream calls to each deployment in flight now.",
        lambda: ((labels(deployment=d), s.in_flight) for d, s in by_deployment.items()),
    )
