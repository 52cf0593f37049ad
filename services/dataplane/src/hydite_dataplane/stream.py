"""Stage 7: relay an upstream SSE stream event by event, never buffered.

The upstream is read in its own task, so a slow or vanished client never stalls
accounting: when the client goes away the reader keeps draining (within a time
and byte cap) until the usage frame arrives, then records the usage event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web

from hydite_common.errors import HyditeError, UpstreamError, UpstreamTimeoutError
from hydite_dataplane.http_client import HttpClientError
from hydite_dataplane.providers.base import OperationAdapter
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.upstream import UpstreamResponse

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

# Reader tasks outlive their handler when the client leaves; keep them referenced.
_READERS: set[asyncio.Task[None]] = set()


class StreamOutcome:
    """What the reader learned, handed to the usage callback once the upstream is done."""

    __slots__ = ("client_gone_at", "error", "event_count", "first_event_at", "usage")

    def __init__(self) -> None:
        self.usage: TokenUsage | None = None
        self.error: HyditeError | None = None
        self.event_count = 0
        self.first_event_at = 0.0
        self.client_gone_at = 0.0


async def _read_upstream(
    upstream: UpstreamResponse,
    adapter: OperationAdapter,
    request: InferenceRequest,
    queue: asyncio.Queue[bytes | None],
    outcome: StreamOutcome,
    error_event: Callable[[HyditeError], bytes],
    drain_seconds: float,
    drain_bytes: int,
    on_done: Callable[[StreamOutcome], None],
) -> None:
    drained = 0
    translator = adapter.stream_translator(request)
    try:
        async for event in upstream.events():
            info = adapter.inspect_stream_event(event)
            if info.usage is not None:
                outcome.usage = info.usage
            if not outcome.event_count:
                outcome.first_event_at = time.perf_counter()
            outcome.event_count += 1
            if outcome.client_gone_at:
                drained += len(event)
                if (
                    outcome.usage is not None
                    or drained > drain_bytes
                    or (time.monotonic() - outcome.client_gone_at > drain_seconds)
                ):
                    break
                continue
            if translator is not None:
                for translated in translator.translate(event):
                    queue.put_nowait(translated)
                continue
            if info.usage_only and not request.client_wants_stream_usage:
                continue
            queue.put_nowait(event)
    except TimeoutError:
        outcome.error = UpstreamTimeoutError("the provider stopped sending within the stream timeout")
    except HttpClientError as exc:
        outcome.error = UpstreamError(f"the provider's stream broke off: {type(exc).__name__}")
    finally:
        upstream.release()
        if outcome.error is not None and not outcome.client_gone_at:
            queue.put_nowait(error_event(outcome.error))
        queue.put_nowait(None)
        on_done(outcome)


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
    await response.prepare(http_request)
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    outcome = StreamOutcome()
    reader = asyncio.create_task(
        _read_upstream(
            upstream, adapter, request, queue, outcome, error_event, drain_seconds, drain_bytes, on_done
        )
    )
    _READERS.add(reader)
    reader.add_done_callback(_READERS.discard)
    while (event := await queue.get()) is not None:
        try:
            await response.write(event)
        except ConnectionResetError:
            outcome.client_gone_at = time.monotonic()
            return response
    try:
        await response.write_eof()
    except ConnectionResetError:
        outcome.client_gone_at = time.monotonic()
    return response
