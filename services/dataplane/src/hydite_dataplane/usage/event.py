"""The usage event of one finished request, and the post-call hook that records it."""

from __future__ import annotations

import time
from typing import Protocol

from hydite_common.events import UsageEvent
from hydite_common.pricing import cost_of
from hydite_dataplane.request import InferenceRequest, Outcome


def build_usage_event(request: InferenceRequest, outcome: Outcome) -> UsageEvent:
    """The event recorded for one finished request, with its cost."""
    key = request.key
    target = outcome.target
    usage = outcome.usage
    return {
        "request_id": request.request_id,
        "call_type": request.operation,
        "start_time_ms": request.start_time * 1000,
        "end_time_ms": time.time() * 1000,
        "key_hash": request.key_hash,
        "key_alias": key.key_alias,
        "user_id": key.user_id,
        "team_id": key.team_id,
        "organization_id": key.organization_id,
        "customer_id": request.customer_id,
        "tags": request.tags,
        "model": request.requested_model or request.model,
        "model_group": request.model,
        "deployment_id": target.deployment_id if target else "",
        "provider": target.provider if target else "",
        "upstream_model": target.upstream_model if target else "",
        "api_base": target.api_base if target else "",
        "stream": request.stream,
        "status": outcome.status,
        "http_status": outcome.http_status,
        "error_code": outcome.error_code,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "total_tokens": usage.total_tokens,
        "cost": cost_of(target.price, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
        if target
        else 0.0,
        "usage_estimated": outcome.usage_estimated,
        "ttft_ms": outcome.ttft_ms,
        "attempts": max(1, request.attempts),
    }


class EventSink(Protocol):
    """Where usage events go (the outbox)."""

    def record(self, event: UsageEvent) -> None:
        """Take one event (must not block)."""
        ...


class UsageRecorder:
    """The post-call hook that turns every finished request into a usage event."""

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink

    def after_call(self, request: InferenceRequest, outcome: Outcome) -> None:
        """Queue the request's usage event for publishing."""
        self._sink.record(build_usage_event(request, outcome))
