"""Stage 7 (relay), streams: relay an upstream SSE stream event by event, never buffered (a
provider with a framing of its own, such as Bedrock's binary event stream, hands its messages in as
events through its adapter's `stream_batches`).

One coroutine reads an event and writes it on, so the client's pace sets the upstream's
(the HTTP client stops reading when too much is buffered). When the client goes away the
handler keeps draining the upstream (within a time and byte cap) until the usage frame
arrives, then settles the request: a vanished client never loses its bill. A stream without a
usage frame is billed by estimate, and marked so.

A read without the usage marker and without the bytes `error` is relayed as it is; an error event
(`data: {"error": ...}`, `event: error`) is redacted of credentials before it reaches the client
(or a translator), like every error built from a provider's answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
from aiohttp import web

from hydite_common.errors import HyditeError, ServiceUnavailableError
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.hooks import CallHooks
from hydite_dataplane.providers.base import OperationAdapter, StreamTranslator, stream_event_batches
from hydite_dataplane.request import InferenceRequest, Outcome, TokenUsage, outcome_of
from hydite_dataplane.upstream.errors import deployment_credentials, redacted_stream_event
from hydite_dataplane.upstream.transport import UpstreamResponse

MAX_KEPT_BYTES = 4 * 1024 * 1024
"""The most of a stream kept for counting, should it end without its usage."""

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class StreamProgress:
    """What the relay learned while the upstream was read."""

    __slots__ = (
        "client_gone_at",
        "error",
        "event_count",
        "first_event_at",
        "kept",
        "kept_bytes",
        "response_id",
        "usage",
        "usage_final",
    )

    def __init__(self) -> None:
        self.usage: TokenUsage | None = None
        self.usage_final = False
        self.response_id = ""
        self.error: HyditeError | None = None
        self.event_count = 0
        self.first_event_at = 0.0
        self.client_gone_at = 0.0
        self.kept: list[bytes] = []
        """The upstream's bytes as read (up to MAX_KEPT_BYTES): counted only if no usage comes."""
        self.kept_bytes = 0

    def keep(self, data: bytes) -> None:
        """Keep a read's bytes, while the bound allows."""
        if self.kept_bytes < MAX_KEPT_BYTES:
            self.kept.append(data)
            self.kept_bytes += len(data)


def quick_estimated_usage(request: InferenceRequest, usage: TokenUsage | None) -> TokenUsage:
    """Until the stream's bytes are counted (off the event loop, for the bill): the provider's
    counts so far, else a prompt of a quarter token per byte; no output is guessed."""
    if usage is not None:
        return usage
    prompt = request.body.get("messages") or request.body.get("prompt") or request.body.get("input") or ""
    return TokenUsage(prompt_tokens=max(1, len(orjson.dumps(prompt)) // 4))


def stream_outcome(request: InferenceRequest, target: DeploymentTarget, progress: StreamProgress) -> Outcome:
    """How a relayed stream ended; one without its closing usage carries its bytes to be counted."""
    ttft = (progress.first_event_at - request.start_perf) * 1000 if progress.first_event_at else 0.0
    reported = progress.usage
    estimated = not progress.usage_final
    usage = quick_estimated_usage(request, reported) if estimated else reported
    assert usage is not None
    return outcome_of(
        target,
        usage=usage,
        error=progress.error,
        client_gone=bool(progress.client_gone_at),
        usage_estimated=estimated,
        ttft_ms=ttft,
        response_id=progress.response_id,
        kept_stream=b"".join(progress.kept) if estimated or request.caller.store_prompts else b"",
        reported_usage=reported if estimated else None,
    )


async def relay_stream(
    http_request: web.Request,
    request: InferenceRequest,
    call: CallHooks,
    target: DeploymentTarget,
    upstream: UpstreamResponse,
    adapter: OperationAdapter,
    headers: dict[str, str],
    *,
    error_event: Callable[[HyditeError], bytes],
    drain_seconds: float,
    drain_bytes: int,
) -> web.StreamResponse:
    """Send the upstream's events to the client as they arrive; the request is settled once the
    upstream is done (before the stream's last bytes go out)."""
    response = web.StreamResponse(status=200, headers={**SSE_HEADERS, **headers})
    progress = StreamProgress()
    translator = adapter.stream_translator(request)
    wants_usage = request.client_wants_stream_usage
    hooked = call if call.hooks.stream_events else None
    drained = 0
    try:
        try:
            await response.prepare(http_request)
        except ConnectionResetError:
            progress.client_gone_at = time.monotonic()
        marker = adapter.stream_usage_marker
        async for batch in stream_event_batches(adapter, upstream.chunks()):
            if not progress.event_count:
                progress.first_event_at = time.perf_counter()
            data = batch[0] if len(batch) == 1 else b"".join(batch)
            progress.keep(data)
            if translator is None and hooked is None and marker not in data and b"error" not in data:
                progress.event_count += len(batch)  # nothing to bill or redact: relayed as they are
            else:
                data = _inspected(batch, target, adapter, translator, hooked, wants_usage, progress)
            if not progress.client_gone_at:
                if data:  # one write per read from the provider, however many events it brought
                    await _send(response, data, progress)
                continue
            drained += sum(len(event) for event in batch)
            if (
                progress.usage_final
                or drained > drain_bytes
                or (time.monotonic() - progress.client_gone_at > drain_seconds)
            ):
                break
    except HyditeError as exc:
        progress.error = exc
    except asyncio.CancelledError:
        # Cut at shutdown once the drain time ran out: billed for what it used, and marked so.
        progress.error = ServiceUnavailableError(
            "the gateway shut down before the stream ended", code="shutdown"
        )
        raise
    finally:
        upstream.release()
        call.after_call(stream_outcome(request, target, progress))
    if progress.error is not None:
        await _send(response, error_event(progress.error), progress)
    if not progress.client_gone_at:
        try:
            await response.write_eof()
        except ConnectionResetError:
            progress.client_gone_at = time.monotonic()
    return response


def _inspected(
    batch: list[bytes],
    target: DeploymentTarget,
    adapter: OperationAdapter,
    translator: StreamTranslator | None,
    hooked: CallHooks | None,
    wants_usage: bool,
    progress: StreamProgress,
) -> bytes:
    """What to send for a batch of events, event by event: error events redacted, usage noted,
    translated if asked, usage-only chunks dropped unless the client asked for them, stream-event
    hooks applied."""
    outgoing: list[bytes] = []
    for event in batch:
        if b"error" in event:
            event = redacted_stream_event(event, deployment_credentials(target))
        info = adapter.inspect_stream_event(event)
        if info.usage is not None:
            earlier = progress.usage
            progress.usage = info.usage if earlier is None else earlier.updated_by(info.usage)
            progress.usage_final = info.usage_final
            progress.response_id = info.response_id or progress.response_id
        progress.event_count += 1
        if translator is not None:
            outgoing += translator.translate(event)
        elif not info.usage_only or wants_usage:
            outgoing.append(event)
    if hooked is not None:
        outgoing = [hooked.on_stream_event(event) for event in outgoing]
    return b"".join(outgoing)


async def _send(response: web.StreamResponse, data: bytes, progress: StreamProgress) -> None:
    """Write to the client unless it is gone; a failed write marks it gone."""
    if progress.client_gone_at:
        return
    try:
        await response.write(data)
    except ConnectionResetError:
        progress.client_gone_at = time.monotonic()
