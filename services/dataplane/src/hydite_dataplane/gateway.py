"""The composition root of the request path: every stage's long-lived object, built once at
start-up from the settings, and the I/O among them closed at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from hydite_dataplane.config.holder import SnapshotHolder
from hydite_dataplane.genai_metrics import exporting_genai_metrics
from hydite_dataplane.hooks import Hooks, PostCallHook
from hydite_dataplane.limits import ClusterLimits
from hydite_dataplane.limits.budgets import BudgetLedger
from hydite_dataplane.limits.deployments import DeploymentLimiter
from hydite_dataplane.limits.limiter import RateLimiter
from hydite_dataplane.metrics import RequestMetrics, labels
from hydite_dataplane.providers.registry import Provider, build_providers
from hydite_dataplane.resources.ids import ResourceIdCodec
from hydite_dataplane.router import CooldownTracker, RetryPolicy, Router
from hydite_dataplane.settings import DataplaneSettings
from hydite_dataplane.stats import LiveStats, export_deployment_stats
from hydite_dataplane.tracing import RequestTracer
from hydite_dataplane.upstream.transport import HttpTransport
from hydite_dataplane.usage.event import UsageRecorder
from hydite_dataplane.usage.outbox import UsageOutbox


@dataclass
class Gateway:
    """Everything the request path needs, built once at start-up."""

    settings: DataplaneSettings
    holder: SnapshotHolder
    providers: dict[str, Provider]
    hooks: Hooks
    router: Router
    cooldowns: CooldownTracker
    stats: LiveStats
    resource_ids: ResourceIdCodec
    tracer: RequestTracer | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _id_prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def next_request_id(self) -> str:
        """Unique across nodes and restarts without a uuid4 per request."""
        return f"{self._id_prefix}-{next(self._ids)}"


@contextlib.asynccontextmanager
async def build_gateway(
    settings: DataplaneSettings,
    holder: SnapshotHolder,
    usage: UsageOutbox,
    metrics: RequestMetrics,
    node_id: str,
    limits: ClusterLimits,
) -> AsyncIterator[Gateway]:
    """The gateway, wired: budgets and rate limits before the call, cooldowns and statistics around
    each attempt, then usage (budgets settled on its way to the outbox), statistics, metrics and
    traces after it. Closes the provider connections on exit."""
    cooldowns = CooldownTracker(
        allowed_fails=settings.cooldown_allowed_fails,
        window_seconds=settings.cooldown_window_seconds,
        cooldown_seconds=settings.cooldown_seconds,
    )
    stats = LiveStats()
    rate_limiter = RateLimiter(limits.shares, default_output_tokens=settings.tpm_default_output_tokens)
    budgets = BudgetLedger(
        limits.shares,
        limits.spend,
        usage,
        default_reservation=settings.budget_default_reservation,
        wait_seconds=settings.limits_gossip_interval_ms / 1000,
    )
    usage.on_sequence = budgets.sealed
    limits.gossip.on_tick = budgets.prune
    metrics.add_gauge(
        "hydite_rate_limit_entities",
        "Keys and owners with live rate-limit counters.",
        lambda: rate_limiter.tracked_entities,
    )
    metrics.add_gauge(
        "hydite_budget_entities",
        "Entities with budget spend reserved or settled here and not yet in the running totals.",
        lambda: budgets.tracked_entities,
    )
    resource_ids = ResourceIdCodec(settings.salt_key)
    transport = HttpTransport(connect_timeout=settings.upstream_connect_timeout_seconds)
    tracer = RequestTracer.of(settings, node_id)
    recorder = UsageRecorder(budgets, settings.salt_key)
    deployment_limits = DeploymentLimiter(limits.shares)
    post_call: list[PostCallHook] = [recorder, deployment_limits, stats, metrics]
    if tracer is not None:
        post_call.append(tracer)
    hooks = Hooks(
        pre_call=[budgets, rate_limiter],
        deployment_filters=[cooldowns, deployment_limits],
        post_call=post_call,
    )
    policy = RetryPolicy(
        num_retries=settings.num_retries,
        backoff_base_seconds=settings.retry_backoff_base_seconds,
        backoff_max_seconds=settings.retry_backoff_max_seconds,
        max_retry_after_seconds=settings.max_retry_after_seconds,
    )
    export_deployment_stats(metrics, stats)
    metrics.add_family(
        "hydite_cooldowns_total",
        "Cooldowns begun: a deployment left out after failing too often, or answering 429.",
        lambda: ((labels(deployment=d), n) for d, n in cooldowns.started.items()),
        "counter",
    )
    metrics.add_gauge("hydite_deployments_cooling", "Deployments cooling down now.", cooldowns.cooling_now)
    try:
        async with exporting_genai_metrics(settings, metrics, node_id):
            yield Gateway(
                settings=settings,
                holder=holder,
                providers=build_providers(transport, resource_ids),
                hooks=hooks,
                router=Router(policy, hooks, [stats, cooldowns, deployment_limits], stats),
                cooldowns=cooldowns,
                stats=stats,
                resource_ids=resource_ids,
                tracer=tracer,
            )
    finally:
        await recorder.drain(settings.usage_drain_seconds)
        await transport.close()
        if tracer is not None:
            await asyncio.get_running_loop().run_in_executor(None, tracer.shutdown)
