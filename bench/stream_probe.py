"""A lean HTTP/1.1 streaming client for the stream suite: hundreds of concurrent streams, timed per event.

Each worker keeps one keep-alive connection (an asyncio Protocol) and sends streaming requests back
to back. Arrival times are taken in data_received, so the time to the first byte and the gaps
between SSE events are what the socket saw, without the per-chunk task wake-ups of a full HTTP
client, which at 512 streams would saturate the load core and hide what the proxy adds.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from bench.reporting import latency_figures, percentile

if TYPE_CHECKING:
    from bench.load import LoadSpec

# Parser states of a response body.
HEADERS, LENGTH, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, LAST_CHUNK_END, DONE = range(7)


@dataclass
class Exchange:
    """One streamed response: status, time to first body byte, total time, gaps between events."""

    status: int
    ttfb: float
    total: float
    gaps: list[float] = field(default_factory=list)


class StreamConnection(asyncio.Protocol):
    """One keep-alive connection; send() returns a future resolved when the response has ended."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Exchange] | None = None
        self.closed = False
        self.begin(0.0)

    def begin(self, sent_at: float) -> None:
        """Reset the parser for a new response."""
        self.buffer = b""
        self.state = HEADERS
        self.status = 0
        self.remaining = 0
        self.tail = b""
        self.sent_at = sent_at
        self.first = 0.0
        self.last = 0.0
        self.events = 0
        self.gaps: list[float] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """A response cut short is an error."""
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(Exchange(0, math.nan, math.nan))

    def send(self, request: bytes) -> asyncio.Future[Exchange]:
        """Write one request; the future resolves at the end of its response."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.begin(time.perf_counter())
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        """Parse what arrived; time the SSE events it completes."""
        now = time.perf_counter()
        self.buffer += data
        if self.state == HEADERS and not self.read_headers():
            return
        payload = self.read_body()
        if payload:
            if not self.first:
                self.first = now
            events = (self.tail + payload).count(b"\n\n")
            self.tail = payload[-1:]
            if events:
                if self.events:
                    self.gaps.append(now - self.last)
                # Events that arrive in one read are 0 apart.
                self.gaps.extend(itertools.repeat(0.0, events - 1))
                self.events += events
                self.last = now
        if self.state == DONE and self.waiter is not None and not self.waiter.done():
            ttfb = (self.first or now) - self.sent_at
            self.waiter.set_result(Exchange(self.status, ttfb, now - self.sent_at, self.gaps))

    def read_headers(self) -> bool:
        """Status line and headers, once complete; the body framing they announce."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        self.buffer = self.buffer[end + 4 :]
        self.status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if "chunked" in headers.get("transfer-encoding", ""):
            self.state = CHUNK_SIZE
        else:
            self.state = LENGTH
            self.remaining = int(headers.get("content-length", "0"))
            if not self.remaining:
                self.state = DONE
        return True

    def read_body(self) -> bytes:
        """The body bytes decodable from the buffer (chunked or Content-Length)."""
        out: list[bytes] = []
        while self.buffer and self.state != DONE:
            if self.state in (LENGTH, CHUNK_DATA):
                take = self.buffer[: self.remaining]
                out.append(take)
                self.buffer = self.buffer[len(take) :]
                self.remaining -= len(take)
                if not self.remaining:
                    self.state = DONE if self.state == LENGTH else CHUNK_END
            elif self.state == CHUNK_SIZE:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    break
                size = int(self.buffer[:end].split(b";")[0], 16)
                self.buffer = self.buffer[end + 2 :]
                self.state, self.remaining = (CHUNK_DATA, size) if size else (LAST_CHUNK_END, 0)
            else:  # CHUNK_END or LAST_CHUNK_END: the CRLF after a chunk (no trailers expected)
                if len(self.buffer) < 2:
                    break
                self.buffer = self.buffer[2:]
                self.state = DONE if self.state == LAST_CHUNK_END else CHUNK_SIZE
        return b"".join(out)


async def generate_streams(spec: LoadSpec, request_timeout: float) -> dict[str, Any]:
    """Closed loop of spec.concurrency connections; 'start'/'end' printed around the timed window."""
    loop = asyncio.get_running_loop()
    body = spec.body.encode()
    requests: list[tuple[str, int, bytes]] = []
    for url in spec.urls:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {spec.key}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        requests.append((host, port, head.encode() + body))
    latencies: list[float] = []
    ttfbs: list[float] = []
    gaps: list[float] = []
    errors = 0
    recording = False
    stop_at = time.perf_counter() + spec.warmup + spec.duration
    # Connections open over the first half of the warm-up, so no accept queue overflows.
    stagger = min(0.002, spec.warmup / 2 / max(1, spec.concurrency))

    async def worker(index: int) -> None:
        """One connection at a time, requests back to back until the window closes."""
        nonlocal errors
        host, port, request = requests[index % len(requests)]
        await asyncio.sleep(index * stagger)
        while time.perf_counter() < stop_at:
            try:
                transport, connection = await loop.create_connection(StreamConnection, host, port)
            except OSError:
                errors += recording
                await asyncio.sleep(0.05)
                continue
            try:
                while not connection.closed and time.perf_counter() < stop_at:
                    try:
                        exchange = await asyncio.wait_for(connection.send(request), request_timeout)
                    except TimeoutError:
                        errors += recording
                        break
                    if not recording:
                        continue
                    if exchange.status == 200:
                        latencies.append(exchange.total)
                        ttfbs.append(exchange.ttfb)
                        gaps.extend(exchange.gaps)
                    else:
                        errors += 1
            finally:
                transport.close()

    tasks = [asyncio.create_task(worker(i)) for i in range(spec.concurrency)]
    await asyncio.sleep(spec.warmup)
    print("start", flush=True)
    recording = True
    started = time.perf_counter()
    await asyncio.sleep(max(0.0, stop_at - started))
    recording = False
    elapsed = time.perf_counter() - started
    print("end", flush=True)
    await asyncio.gather(*tasks)
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        **latency_figures(latencies),
        "ttfb_p50": percentile(ttfbs, 0.5),
        "ttfb_p99": percentile(ttfbs, 0.99),
        "gap_p50": percentile(gaps, 0.5),
        "gap_p99": percentile(gaps, 0.99),
    }
