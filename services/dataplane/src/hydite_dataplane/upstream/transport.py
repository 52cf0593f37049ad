"""The transport seam: an UpstreamCall goes out, an UpstreamResponse comes back, whatever carries
it (the HTTP/1.1 client, or the mock provider in memory). Failures arrive as gateway errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from hydite_dataplane.upstream.errors import transport_error
from hydite_dataplane.upstream.http11 import HttpClient


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """An HTTP request to a provider, ready to send."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class CallTimeouts:
    """How long a provider call may take: the whole answer, and the longest silence in a stream."""

    total: float | None
    read: float | None = None


class UpstreamResponse(Protocol):
    """What the pipeline reads from a provider, whatever carried it. Reads raise gateway errors."""

    @property
    def status(self) -> int:
        """The HTTP status."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers, looked up case-insensitively."""
        ...

    @property
    def content_type(self) -> str:
        """The Content-Type header, or "" without one."""
        ...

    async def read(self) -> bytes:
        """The whole body."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body piece by piece, as it arrives (streams and binary answers)."""
        ...

    def release(self) -> None:
        """Return the connection (or close it if the body was not read)."""
        ...


class Transport(Protocol):
    """Carries an UpstreamCall to a provider."""

    async def send(self, call: UpstreamCall, timeouts: CallTimeouts) -> UpstreamResponse:
        """Send and return once the status line and headers arrived."""
        ...


class HttpTransport:
    """Sends calls over the service's one provider HTTP client (keep-alive pools per origin),
    whose every failure, at connect, head, body or mid-stream, is a gateway error."""

    def __init__(self, *, connect_timeout: float) -> None:
        self._client = HttpClient(connect_timeout=connect_timeout, map_error=transport_error)

    async def send(self, call: UpstreamCall, timeouts: CallTimeouts) -> UpstreamResponse:
        """Send the call."""
        return await self._client.request(
            call.method,
            call.url,
            call.headers,
            call.body,
            total_timeout=timeouts.total,
            read_timeout=timeouts.read,
        )

    async def close(self) -> None:
        """Close every connection."""
        await self._client.close()


def call_timeouts(
    stream: bool, timeout_seconds: float, stream_timeout_seconds: float, default_seconds: float
) -> CallTimeouts:
    """A deployment's limits for one call (0: the gateway default): a complete answer must arrive
    within the timeout; a stream has no end-to-end limit, only one on silence between reads."""
    upstream_seconds = timeout_seconds or default_seconds
    if stream:
        return CallTimeouts(None, stream_timeout_seconds or upstream_seconds)
    return CallTimeouts(upstream_seconds)
