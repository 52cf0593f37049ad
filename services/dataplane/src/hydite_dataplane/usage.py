"""Stage 8: one usage event per request, batched into envelopes and published to JetStream.

Events of a few milliseconds share one message (a publish per request would
cost a third of the proxy's CPU). One sender task publishes sealed batches in
order and awaits each PubAck off the request path; a batch that fails stays at
the head of the outbox and is retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from hydite_common.events import UsageEvent, batch_message_id, encode_batch
from hydite_common.pricing import cost_of
from hydite_dataplane.hooks import CallRecord
from hydite_dataplane.request import InferenceRequest

log = logging.getLogger(__name__)


def build_usage_event(request: InferenceRequest, record: CallRecord) -> UsageEvent:
    """The event recorded for one finished request, with its cost."""
    key = request.key
    target = record.target
    usage = record.usage
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
        "status": record.status,
        "http_status": record.http_status,
        "error_code": record.error_code,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "total_tokens": usage.total_tokens,
        "cost": cost_of(target.price, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
        if target
        else 0.0,
        "usage_estimated": record.usage_estimated,
        "ttft_ms": record.ttft_ms,
        "attempts": max(1, request.attempts),
    }


class UsageRecorder:
    """The post-call hook that turns every finished request into a usage event."""

    def __init__(self, publisher: UsagePublisher) -> None:
        self._publisher = publisher

    def after_call(self, request: InferenceRequest, record: CallRecord) -> None:
        """Queue the request's usage event for publishing."""
        self._publisher.record(build_usage_event(request, record))


class UsagePublisher:
    """Batches usage events and publishes them to JetStream in order."""

    def __init__(
        self,
        *,
        node_id: str,
        subject: str,
        flush_seconds: float,
        max_batch_events: int,
        max_outbox_batches: int,
    ) -> None:
        # A fresh publisher id per process keeps node_id:seq unique across restarts,
        # so the stream's dedup window never drops a restarted node's batches.
        self.publisher_id = f"{node_id}.{uuid.uuid4().hex[:8]}"
        self._subject = subject
        self._flush_seconds = flush_seconds
        self._max_batch_events = max_batch_events
        self._outbox: deque[tuple[int, bytes]] = deque()
        self._max_outbox = max_outbox_batches
        self._current: list[UsageEvent] = []
        self._seq = 0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._js: JetStreamContext | None = None
        self.published_batches = 0
        self.dropped_batches = 0

    def attach(self, js: JetStreamContext) -> None:
        """Start publishing through this JetStream context."""
        self._js = js
        self._wake.set()

    def record(self, event: UsageEvent) -> None:
        """Queue one event; it is sealed into a batch within flush_seconds."""
        self._current.append(event)
        if len(self._current) >= self._max_batch_events:
            self._seal()
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(self._flush_seconds, self._seal)

    def _seal(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._current:
            return
        self._seq += 1
        self._outbox.append((self._seq, encode_batch(self.publisher_id, self._seq, self._current)))
        self._current = []
        if len(self._outbox) > self._max_outbox:
            self._outbox.popleft()
            self.dropped_batches += 1
            log.error(
                "usage outbox full: dropped the oldest batch (%d dropped so far)",
                self.dropped_batches,
            )
        self._wake.set()

    @property
    def pending_batches(self) -> int:
        """Sealed batches not yet acknowledged by JetStream."""
        return len(self._outbox)

    async def run(self) -> None:
        """Publish sealed batches in order, forever; retry a failed one with backoff."""
        backoff = 0.05
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox and self._js is not None:
                seq, data = self._outbox[0]
                try:
                    await self._js.publish(
                        self._subject,
                        data,
                        timeout=5.0,
                        headers={"Nats-Msg-Id": batch_message_id(self.publisher_id, seq)},
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning(
                        "usage publish failed (%s); %d batches waiting",
                        type(exc).__name__,
                        len(self._outbox),
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.05
                if self._outbox and self._outbox[0][0] == seq:
                    self._outbox.popleft()
                self.published_batches += 1

    async def drain(self, max_seconds: float) -> None:
        """Seal what is open and wait (bounded) until the outbox is empty."""
        self._seal()
        deadline = time.monotonic() + max_seconds
        while self._outbox and time.monotonic() < deadline:
            self._wake.set()
            await asyncio.sleep(0.02)
        if self._outbox:
            log.error("shutting down with %d unpublished usage batches", len(self._outbox))


async def connect_nats(url: str, name: str) -> NatsClient:
    """A NatsClient connection that reconnects forever."""
    nc = NatsClient()
    await nc.connect(
        url,
        name=name,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=2,
    )
    return nc
