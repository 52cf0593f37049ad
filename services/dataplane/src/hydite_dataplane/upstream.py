"""Sending an UpstreamCall: the HTTP transport, its response type, and upstream error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import aiohttp
import orjson

from hydite_common import errors
from hydite_common.telemetry import redact
from hydite_dataplane.providers.base import UpstreamCall

MAX_UPSTREAM_MESSAGE_CHARS = 2000


class UpstreamResponse(Protocol):
    """What the pipeline reads from a provider, whatever carried it."""

    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes:
        """The whole body."""
        ...

    def events(self) -> AsyncIterator[bytes]:
        """Complete SSE events, each ending with its blank line."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body piece by piece, as it arrives (binary responses)."""
        ...

    def release(self) -> None:
        """Return the connection (or close it if the body was not read)."""
        ...


class Transport(Protocol):
    """Carries an UpstreamCall to a provider."""

    async def send(self, call: UpstreamCall, client_timeout: aiohttp.ClientTimeout) -> UpstreamResponse:
        """Send and return once the status line and headers arrived."""
        ...


class HttpUpstreamResponse:
    """An aiohttp response seen as an UpstreamResponse."""

    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        """The whole body."""
        return await self._response.read()

    async def events(self) -> AsyncIterator[bytes]:
        """Group lines into SSE events; accepts LF and CRLF line ends."""
        content = self._response.content
        parts: list[bytes] = []
        while True:
            line = await content.readline()
            if not line:
                if parts:
                    yield b"".join(parts) + b"\n"
                return
            if line in (b"\n", b"\r\n"):
                if parts:
                    parts.append(b"\n")
                    yield b"".join(parts)
                    parts = []
                continue
            parts.append(line.rstrip(b"\r\n") + b"\n")

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, in pieces of at most 64 KB."""
        async for chunk in self._response.content.iter_chunked(64 * 1024):
            yield chunk

    def release(self) -> None:
        """Release the connection back to the pool."""
        self._response.release()


class HttpTransport:
    """Sends calls over the service's one ClientSession (connection reuse per host)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def send(self, call: UpstreamCall, client_timeout: aiohttp.ClientTimeout) -> UpstreamResponse:
        """Send the call; network failures become gateway errors."""
        try:
            response = await self._session.request(
                call.method, call.url, headers=call.headers, data=call.body, timeout=client_timeout
            )
        except TimeoutError:
            raise errors.UpstreamTimeoutError("the provider did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise errors.UpstreamError(f"could not reach the provider: {type(exc).__name__}") from None
        return HttpUpstreamResponse(response)


_STATUS_TO_ERROR: dict[int, type[errors.HyditeError]] = {
    400: errors.InvalidRequestError,
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    408: errors.UpstreamTimeoutError,
    409: errors.ConflictError,
    413: errors.PayloadTooLargeError,
    422: errors.UnprocessableEntityError,
    429: errors.RateLimitError,
    503: errors.ServiceUnavailableError,
    504: errors.UpstreamTimeoutError,
}


def _upstream_error_fields(body: bytes) -> tuple[str, str | None, str | None]:
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:MAX_UPSTREAM_MESSAGE_CHARS].decode(errors="replace").strip(), None, None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        return str(error.get("message") or ""), str(code) if code else None, error.get("param")
    if isinstance(error, str):
        return error, None, None
    return str(parsed)[:MAX_UPSTREAM_MESSAGE_CHARS], None, None


def error_from_upstream(status: int, body: bytes, headers: Mapping[str, str]) -> errors.HyditeError:
    """The gateway error for a provider's error response (message redacted, never raw)."""
    message, code, param = _upstream_error_fields(body)
    message = redact(message)[:MAX_UPSTREAM_MESSAGE_CHARS] or f"provider returned HTTP {status}"
    error_class = _STATUS_TO_ERROR.get(
        status, errors.UpstreamError if status >= 500 else errors.InvalidRequestError
    )
    if status == 401:
        code = "upstream_authentication_error"
    passed_headers = {"retry-after": headers["retry-after"]} if "retry-after" in headers else {}
    return error_class(
        f"provider error: {message}",
        code=code,
        param=param if isinstance(param, str) else None,
        headers=passed_headers,
    )
