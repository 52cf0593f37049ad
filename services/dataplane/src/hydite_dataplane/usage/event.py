"""The usage event of one finished request, the bounds of what it may carry, and the post-call
hook that records it.

Values a client sends (model, user, tags) are refused at decode beyond these bounds
(`inbound/`); the key alias and the tag count are cut here; the outbox cuts every other string of
an event too large for one message (`shrunk`) and strips NUL from every event it seals.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import hashlib
import hmac
import logging
import time
from typing import Any, Protocol, cast

from hydite_common.config_types import customer_name
from hydite_common.events import UsageEvent, UsagePayload
from hydite_common.pricing import UNPRICED, CompiledPrice
from hydite_dataplane.request import InferenceRequest, Outcome, TokenUsage
from hydite_dataplane.usage.estimate import estimated_stream_usage
from hydite_dataplane.usage.payload import build_payload

log = logging.getLogger(__name__)

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


def _unpriced_characters(price: CompiledPrice, usage: TokenUsage, at: float) -> str:
    """ "input_characters" when speech was billed by characters its price has no rate for (a
    model priced per token, whose audio tokens a binary answer never reports): cost 0, said so."""
    if usage.input_characters and price.known and not price.rates_at(at).base.per_input_character:
        return "input_characters"
    return ""


MAX_METADATA_ENTRIES = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
"""The request metadata an event carries (OpenAI's own bounds): scalar values only, cut."""


def bounded_metadata(raw: Any) -> dict[str, Any]:
    """The scalar entries of a request's `metadata`, within the bounds."""
    if not isinstance(raw, dict) or not raw:
        return {}
    kept: dict[str, Any] = {}
    for name, value in raw.items():
        if len(kept) >= MAX_METADATA_ENTRIES:
            break
        if not isinstance(name, str):
            continue
        if isinstance(value, str):
            value = _cut(value, MAX_METADATA_VALUE_CHARS)
        elif not isinstance(value, (bool, int, float)) or (isinstance(value, int) and abs(value) > 2**53):
            continue
        kept[_cut(name, MAX_METADATA_KEY_CHARS)] = value
    return kept


def build_usage_event(request: InferenceRequest, outcome: Outcome, client_ip_hash: str = "") -> UsageEvent:
    """The event recorded for one finished request, with its cost at the deployment's compiled
    price when the request arrived (a request that reached no deployment costs 0, source unknown)."""
    key = request.key
    target = outcome.target
    usage = outcome.usage
    alias = key.key_alias
    tags = request.tags
    price = target.price if target is not None else UNPRICED
    start_ms = request.start_time * 1000
    end_ms = time.time() * 1000
    attempts = request.attempts or 1
    ttft_ms = outcome.ttft_ms
    if outcome.usage_estimated:
        source = "estimated"
    else:
        source = (
            "provider" if target is not None and (usage.prompt_tokens or usage.completion_tokens) else "none"
        )
    event: UsageEvent = {
        "request_id": request.request_id,
        "call_type": request.operation,
        "start_time_ms": start_ms,
        "end_time_ms": end_ms,
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
        "error_type": outcome.error_type,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "total_tokens": usage.total_tokens,
        "cost": price.cost(usage, request.start_time),
        "currency": price.currency,
        "cost_source": price.source,
        "cache_write_tokens": usage.cache_write_tokens,
        "audio_prompt_tokens": usage.audio_prompt_tokens,
        "audio_completion_tokens": usage.audio_completion_tokens,
        "input_characters": usage.input_characters,
        "audio_seconds": usage.audio_seconds,
        "images": usage.images,
        "search_units": usage.search_units,
        "unmetered": usage.unmetered or _unpriced_characters(price, usage, request.start_time),
        "usage_estimated": outcome.usage_estimated,
        "usage_source": source,
        "ttft_ms": ttft_ms,
        "first_token_ms": start_ms + ttft_ms if ttft_ms else 0.0,
        "latency_ms": end_ms - start_ms,
        "attempts": attempts,
        "retries": attempts - 1 - request.fallbacks,
        "fallbacks": request.fallbacks,
        "route": request.route,
        "client_ip_hash": client_ip_hash,
        "response_id": outcome.response_id,
    }
    metadata = request.body.get("metadata")
    if metadata:
        event["metadata"] = bounded_metadata(metadata)
    if request.upstream_traceparent is not None:
        event["trace_id"] = request.upstream_traceparent[3:35]
    customer = request.customer
    if customer is not None and (customer.team_id or customer.organization_id):
        scope = (customer.team_id, customer.organization_id)
        event["customer_entity"] = customer_name(customer.customer_id, *scope)
    return event


class EventSink(Protocol):
    """Where usage events go (the outbox)."""

    def record(self, event: UsageEvent) -> None:
        """Take one event (must not block)."""
        ...

    def record_payload(self, payload: UsagePayload) -> None:
        """Take one stored prompt and response (must not block)."""
        ...


class ClientAddressHasher:
    """A keyed hash of a client address (HMAC-SHA256 under the salt key, cut to 32 hex), cached:
    the same client is one group in the logs, and nobody can read its address back."""

    def __init__(self, salt_key: str) -> None:
        self._key = hashlib.sha256(b"hydite-client-ip:" + salt_key.encode()).digest()
        self._hash = functools.lru_cache(maxsize=4096)(self._compute)

    def _compute(self, address: str) -> str:
        return hmac.new(self._key, address.encode(), hashlib.sha256).hexdigest()[:32]

    def __call__(self, address: str) -> str:
        return self._hash(address) if address else ""


class UsageRecorder:
    """The post-call hook that turns every finished request into a usage event. A stream that ended
    without its usage is counted first, in a worker thread (its event follows when counted)."""

    def __init__(self, sink: EventSink, salt_key: str = "") -> None:
        self._sink = sink
        self._client_hash = ClientAddressHasher(salt_key)
        self._counting: dict[asyncio.Future[tuple[UsageEvent, UsagePayload | None]], UsageEvent] = {}
        """Streams being counted, each with the event it is billed by should counting not end in time."""
        self._counter: concurrent.futures.ThreadPoolExecutor | None = None

    def after_call(self, request: InferenceRequest, outcome: Outcome) -> None:
        """Queue the request's usage event for publishing, and its payload if the caller stores
        them (once counted, for a stream that needs counting or parsing)."""
        client_hash = self._client_hash(request.client_ip)
        store = request.caller.store_prompts
        if not (request.stream and (outcome.usage_estimated or (store and outcome.kept_stream))):
            event = build_usage_event(request, outcome, client_hash)
            if store:
                event["payload_stored"] = True
                self._sink.record_payload(build_payload(request, outcome.answer, b""))
            self._sink.record(event)
            return
        if self._counter is None:
            self._counter = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="usage-count")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._counter, _counted_event, request, outcome, client_hash, store)
        self._counting[future] = build_usage_event(request, outcome, client_hash)
        future.add_done_callback(self._record_counted)

    def _record_counted(self, future: asyncio.Future[tuple[UsageEvent, UsagePayload | None]]) -> None:
        if self._counting.pop(future, None) is None:
            return  # billed by its quick estimate at shutdown already
        event, payload = future.result()
        if payload is not None:
            self._sink.record_payload(payload)
        self._sink.record(event)

    async def drain(self, max_seconds: float) -> None:
        """Wait (bounded) for streams still being counted, so their events go out before shutdown;
        one still counting then is billed by its quick estimate (prompt only), never lost."""
        if self._counting:
            await asyncio.wait(set(self._counting), timeout=max_seconds)
        for future, quick in list(self._counting.items()):
            del self._counting[future]
            log.warning(
                "stream %s not counted before shutdown; billed by its quick estimate", quick["request_id"]
            )
            self._sink.record(quick)
        if self._counter is not None:
            self._counter.shutdown(wait=False, cancel_futures=True)


def _counted_event(
    request: InferenceRequest, outcome: Outcome, client_hash: str, store: bool
) -> tuple[UsageEvent, UsagePayload | None]:
    """The event of a stream that needs its tokens counted (falling back on the quick estimate
    should counting fail: the bill must still go out), and its payload when stored."""
    usage = outcome.usage
    if outcome.usage_estimated:
        target = outcome.target
        model = target.upstream_model if target is not None and target.upstream_model else request.model
        try:
            usage = estimated_stream_usage(model, request.body, outcome.reported_usage, outcome.kept_stream)
        except Exception:
            log.exception(
                "counting the tokens of stream %s failed; billed by the quick estimate", request.request_id
            )
    payload = build_payload(request, None, outcome.kept_stream) if store else None
    counted = dataclasses.replace(outcome, usage=usage, kept_stream=b"", reported_usage=None)
    event = build_usage_event(request, counted, client_hash)
    if payload is not None:
        event["payload_stored"] = True
    return event, payload
