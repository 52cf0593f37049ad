"""Retry policy, cooldowns and fallback selection (pure, no network)."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from hydite.config.v1 import config_pb2 as pb
from hydite_common.errors import (
    HyditeError,
    InvalidRequestError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
)
from hydite_common.pricing import UNPRICED
from hydite_dataplane.config.decode import empty_snapshot
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.inbound.openai import gateway_options
from hydite_dataplane.request import Caller, InferenceRequest
from hydite_dataplane.router import (
    CooldownTracker,
    RetryPolicy,
    fallback_models,
    is_retryable,
    pick_deployment,
    retry_after_seconds,
    routing_strategy,
)
from hydite_dataplane.stats import LiveStats

POLICY = RetryPolicy(
    num_retries=2, backoff_base_seconds=0.1, backoff_max_seconds=2.0, max_retry_after_seconds=5.0
)


def _target(deployment_id: str, max_retries: int | None = None, **model_info: Any) -> DeploymentTarget:
    return DeploymentTarget(
        deployment_id, "m", "openai", "m", "", "", "", 0.0, 0.0, 1.0, UNPRICED, {}, model_info, max_retries
    )


def _request(**body: Any) -> InferenceRequest:
    """A request whose body (gateway fields included) went through inbound decoding."""
    options = gateway_options(body)
    return InferenceRequest(
        request_id="r",
        operation="chat",
        wire_format="openai",
        model="m",
        body=body,
        stream=False,
        caller=Caller(empty_snapshot(), "h", pb.VirtualKey(key_hash="h")),
        start_time=time.time(),
        start_perf=time.perf_counter(),
        options=options,
    )


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (RateLimitError("x"), True),
        (UpstreamError("x"), True),
        (UpstreamTimeoutError("x"), True),
        (InvalidRequestError("x"), False),
        (HyditeError("x"), False),
    ],
)
def test_only_transient_errors_are_retried(error: HyditeError, retryable: bool) -> None:
    """429, provider failures and timeouts are retried; bad requests are not."""
    assert is_retryable(error) is retryable


def test_retry_count_comes_from_request_then_deployments_then_default() -> None:
    """A request's num_retries wins, then the deployments' max_retries, then the gateway default."""
    assert POLICY.retries_for(_request(num_retries=0), [_target("a", 5)]) == 0
    assert POLICY.retries_for(_request(), [_target("a", 5), _target("b")]) == 5
    assert POLICY.retries_for(_request(), [_target("a")]) == 2
    assert POLICY.retries_for(_request(num_retries="lots"), [_target("a")]) == 2


def test_backoff_grows_and_honours_retry_after() -> None:
    """Backoff doubles per attempt within the cap; retry-after is waited up to the cap, never beyond."""
    rng = random.Random(1)
    first = POLICY.delay(1, UpstreamError("x"), rng)
    third = POLICY.delay(3, UpstreamError("x"), rng)
    assert first is not None and 0.05 <= first <= 0.15
    assert third is not None and 0.2 <= third <= 0.6
    assert POLICY.delay(1, RateLimitError("x", headers={"retry-after": "1"}), rng) == pytest.approx(
        1.0, abs=0.16
    )
    assert POLICY.delay(1, RateLimitError("x", headers={"retry-after": "60"}), rng) is None
    assert retry_after_seconds(RateLimitError("x", headers={"retry-after": "soon"})) is None


def test_cooldown_after_allowed_fails_and_recovery() -> None:
    """Three failures in the window cool a deployment down; it returns after the cooldown."""
    tracker = CooldownTracker(allowed_fails=3, window_seconds=60, cooldown_seconds=0.2)
    a, b = _target("a"), _target("b")
    for _ in range(2):
        tracker.record_failure(a, UpstreamError("x"))
    assert not tracker.cooling("a")
    tracker.record_failure(a, UpstreamError("x"))
    assert tracker.cooling("a")
    assert [d.deployment_id for d in tracker.eligible(_request(), [a, b])] == ["b"]
    assert [d.deployment_id for d in tracker.eligible(_request(), [a])] == ["a"]  # all cooling: still try
    time.sleep(0.25)
    assert not tracker.cooling("a")


def test_rate_limit_cools_down_at_once_and_success_clears() -> None:
    """A 429 starts a cooldown of at least retry-after; a success ends it."""
    tracker = CooldownTracker(allowed_fails=3, window_seconds=60, cooldown_seconds=0.1)
    a = _target("a")
    tracker.record_failure(a, RateLimitError("x", headers={"retry-after": "30"}))
    assert tracker.cooling("a")
    tracker.record_success(a)
    assert not tracker.cooling("a")
    tracker.record_failure(a, InvalidRequestError("bad input"))
    assert not tracker.cooling("a")


def test_fallbacks_by_error_kind() -> None:
    """Context-window and content-policy errors have their own lists; other retryable errors the general."""
    group = [
        _target(
            "a",
            fallbacks=["general-b"],
            context_window_fallbacks=["long-c"],
            content_policy_fallbacks=["lenient-d"],
        )
    ]
    request = _request(fallbacks=["asked-first"])
    assert fallback_models(request, group, UpstreamError("x")) == ["asked-first", "general-b"]
    context = InvalidRequestError("too long", code="context_length_exceeded")
    assert fallback_models(request, group, context) == ["long-c"]
    policy = InvalidRequestError("no", code="content_policy_violation")
    assert fallback_models(request, group, policy) == ["lenient-d"]
    assert fallback_models(request, group, InvalidRequestError("bad")) == []


def test_pick_prefers_deployments_that_have_not_failed() -> None:
    """After a failure the router picks another deployment while one is left."""
    rng = random.Random(3)
    a, b = _target("a"), _target("b")
    assert all(pick_deployment([a, b], rng, frozenset({"a"})) is b for _ in range(20))
    assert pick_deployment([a], rng, frozenset({"a"})) is a


def test_strategies_pick_by_live_statistics() -> None:
    """least-busy, latency-based and usage-based routing choose by this data plane's live numbers."""
    stats = LiveStats()
    a, b = _target("a"), _target("b")
    rng = random.Random(7)
    stats.attempt_started(a)
    assert pick_deployment([a, b], rng, strategy="least-busy", stats=stats) is b
    stats.attempt_ended(a, 0.5, None)
    stats.attempt_started(b)
    stats.attempt_ended(b, 0.1, None)
    assert pick_deployment([a, b], rng, strategy="latency-based-routing", stats=stats) is b
    c = _target("c")
    assert (
        pick_deployment([a, b, c], rng, strategy="latency-based-routing", stats=stats) is c
    )  # untried first
    stats.of("b").add_tokens(time.monotonic(), 500)
    assert pick_deployment([a, b], rng, strategy="usage-based-routing", stats=stats) is a


def test_token_counts_stay_bounded_and_slide() -> None:
    """A deployment keeps one count per second of the last minute, however many calls it takes."""
    stats = LiveStats().of("a")
    start = 1_000.0
    for call in range(100_000):
        stats.add_tokens(start + call * 0.01, 2)  # 100 calls a second for 1000 s
    now = start + 1_000
    assert len(stats.tokens) <= 61
    assert 11_000 <= stats.tokens_last_minute(now) <= 12_200
    assert stats.tokens_last_minute(now + 120) == 0


def test_model_group_strategy_wins_over_key_group() -> None:
    """model_info.routing_strategy beats the key group's; unknown names fall back to the shuffle."""
    assert (
        routing_strategy([_target("a", routing_strategy="least-busy")], "usage-based-routing") == "least-busy"
    )
    assert routing_strategy([_target("a")], "usage-based-routing") == "usage-based-routing"
    assert routing_strategy([_target("a")], "fastest") == "simple-shuffle"
