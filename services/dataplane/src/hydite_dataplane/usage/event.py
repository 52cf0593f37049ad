"""The usage event of one finished request, the bounds of what it may carry, and the post-call
hook that records it.

Values a client sends (model, user, tags) are refused at decode beyond these bounds
(`inbound/`); the key alias and the tag count are cut here; the outbox cuts every other string of
an event too large for one message (`shrunk`) and strips NUL from every event it seals.
"""

from __future__ import annotations

import time
from typing import Any, Protocol, cast

from hydite_common.events import UsageEvent
from hydite_common.pricing import cost_of
from hydite_dataplane.request import InferenceRequest, Outcome

MAX_MODEL_CHARS = 256
"""A model name (body, path or fallback) longer than this is a 400 at decode."""
MAX_USER_CHARS = 256
"""The end user (`user`) longer than this is a 400 at decode."""
MAX_TAGS = 32
"""Tags a request may send, and tags an event carries (the key's first)."""
MAX_TAG_CHARS = 128
"""A request's tag longer than this is a 400 at decode."""
MAX_TEXT_CHARS = 256
"""The key alias in every event, and any string of an event that alone is too large for a message."""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def shrunk(event: UsageEvent) -> UsageEvent:
    """The event with every string cut to MAX_TEXT_CHARS and its tags to MAX_TAGS of MAX_TAG_CHARS:
    the last resort for an event too large to publish (the bill keeps its numbers and ids)."""
    fields: dict[str, Any] = {
        name: _cut(value, MAX_TEXT_CHARS) if isinstance(value, str) else value
        for name, value in event.items()
    }
    tags = fields.get("tags")
    if isinstance(tags, list):
        fields["tags"] = [_cut(str(tag), MAX_TAG_CHARS) for tag in tags[:MAX_TAGS]]
    return cast(UsageEvent, fields)


def without_nul(event: UsageEvent) -> UsageEvent:
    """The event with NUL taken out of every string (Postgres text and jsonb refuse it)."""
    fields: dict[str, Any] = {
        name: value.replace("\x00", "") if isinstance(value, str) else value for name, value in event.items()
    }
    tags = fields.get("tags")
    if isinstance(tags, list):
        fields["tags"] = [str(tag).replace("\x00", "") for tag in tags]
    return cast(UsageEvent, fields)


def build_usage_event(request: InferenceRequest, outcome: Outcome) -> UsageEvent:
    """The event recorded for one finished request, with its cost."""
    key = request.key
    target = outcome.target
    usage = outcome.usage
    alias = key.key_alias
    tags = request.tags
    return {
        "request_id": request.request_id,
        "call_type": request.operation,
        "start_time_ms": request.start_time * 1000,
        "end_time_ms": time.time() * 1000,
        "key_hash": request.key_hash,
        "key_alias": alias if len(alias) <= MAX_TEXT_CHARS else alias[:MAX_TEXT_CHARS],
        "user_id": key.user_id,
        "team_id": key.team_id,
        "organization_id": request.caller.organization_id,
        "customer_id": request.customer_id,
        "tags": tags if len(tags) <= MAX_TAGS else tags[:MAX_TAGS],
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
        "response_id": outcome.response_id,
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
