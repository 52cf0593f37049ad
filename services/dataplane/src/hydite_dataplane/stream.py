"""Stage 7: relay an upstream SSE stream event by event, never buffered.

One coroutine reads an event and writes it on, so the client's pace sets the upstream's
(the HTTP client stops reading when too much is buffered). When the client goes away the
handler keeps draining the upstream (within a time and byte cap) until the usage frame
arrives, then records the usage event: a vanished client never loses its bill.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from hydite_common.errors import HyditeError, UpstreamError, UpstreamTimeoutError
from hydite_dataplane.http_client import HttpClientError
from hydite_dataplane.providers.base import OperationAdapter, StreamTranslator
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.upstream import UpstreamResponse

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class StreamOutcome:
    """What the relay learned, handed to the usage callback once the upstream is done."""

    __slots__ = ("client_gone_at", "error", "event_count", "first_event_at", "usage")

    def __init__(self) -> None:
        self.usage: TokenUsage | None = None
        self.error: HyditeError | None = None
        self.event_count = 0
        self.first_event_at = 0.0
        self.client_gone_at = 0.0


async def relay_stream(
    http_request: web.Request,
    request: InferenceRequest,
    upstream: UpstreamResponse,
    adapter: OperationAdapter,
    headers: dict[str, str],
    *,
    error_event: Callable[[HyditeError], bytes],
    drain_seconds: float,
    drain_bytes: int,
    on_done: Callable[[StreamOutcome], None],
) -> web.StreamResponse:
    """Send the upstream's events to the client as they arrive; on_done gets the outcome."""
    response = web.StreamResponse(status=200, headers={**SSE_HEADERS, **headers})
    outcome = StreamOutcome()
    translator = adapter.stream_translator(request)
    wants_usage = request.client_wants_stream_usage
    drained = 0
    try:
        try:
            await response.prepare(http_request)
        except ConnectionResetError:
            outcome.client_gone_at = time.monotonic()
        marker = adapter.stream_usage_marker
        async for batch in upstream.event_batches():
            if not outcome.event_count:
                outcome.first_event_at = time.perf_counter()
            data = batch[0] if len(batch) == 1 else b"".join(batch)
            if translator is None and marker not in data:
                outcome.event_count += len(batch)  # nothing to bill in these: relayed as they are
            else:
                data = _inspected(batch, adapter, translator, wants_usage, outcome)
            if not outcome.client_gone_at:
                if data:  # one write per read from the provider, however many events it brought
                    await _send(response, data, outcome)
                continue
            drained += sum(len(event) for event in batch)
            if (
                outcome.usage is not None
                or drained > drain_bytes
                or (time.monotonic() - outcome.client_gone_at > drain_seconds)
            ):
                break
    except TimeoutError:
        outcome.error = UpstreamTimeoutError("the provider stopped sending within the stream timeout")
    except HttpClientError as exc:
        outcome.error = UpstreamError(f"the provider's stream broke off: {exc}")
    finally:
        upstream.release()
        on_done(outcome)
    if outcome.error is not None:
        await _send(response, error_event(outcome.error), outcome)
    if not outcome.client_gone_at:
        try:
            await response.write_eof()
        except ConnectionResetError:
            outcome.client_gone_at = time.monotonic()
    return response


def _inspected(
    batch: list[bytes],
    adapter: OperationAdapter,
    translator: StreamTranslator | None,
    wants_usage: bool,
    outcome: StreamOutcome,
) -> bytes:
    """What to send for a batch of events, event by event: usage noted, translated if asked,
    usage-only chunks dropped unless the client asked for them."""
    outgoing: list[bytes] = []
    for event in batch:
        info = adapter.inspect_stream_event(event)
        if info.usage is not None:
            outcome.usage = info.usage
        outcome.event_count += 1
        if translator is not None:
            outgoing += translator.translate(event)
        elif not info.usage_only or wants_usage:
            outgoing.append(event)
    return b"".join(outgoing)


async def _send(response: web.StreamResponse, data: bytes, outcome: StreamOutcome) -> None:
    """Write to the client unless it is gone; a failed write marks it gone."""
    if outcome.client_gone_at:
        return
    try:
        await response.write(data)
    except ConnectionResetError:
        outcome.client_gone_at = time.monotonic()
