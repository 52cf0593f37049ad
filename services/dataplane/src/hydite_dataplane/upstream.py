"""Sending an UpstreamCall: the HTTP transport, its response type, and upstream error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from hydite_common import errors
from hydite_common.telemetry import redact
from hydite_dataplane.http_client import HttpClient, HttpClientError
from hydite_dataplane.providers.base import UpstreamCall

MAX_UPSTREAM_MESSAGE_CHARS = 2000


class UpstreamResponse(Protocol):
    """What the pipeline reads from a provider, whatever carried it."""

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

    def event_batches(self) -> AsyncIterator[list[bytes]]:
        """Complete SSE events, each ending with its blank line, as many at a time as arrived."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body piece by piece, as it arrives (binary responses)."""
        ...

    def release(self) -> None:
        """Return the connection (or close it if the body was not read)."""
        ...


@dataclass(frozen=True, slots=True)
class CallTimeouts:
    """How long a provider call may take: the whole answer, and the longest silence in a stream."""

    total: float | None
    read: float | None = None


class Transport(Protocol):
    """Carries an UpstreamCall to a provider."""

    async def send(self, call: UpstreamCall, timeouts: CallTimeouts) -> UpstreamResponse:
        """Send and return once the status line and headers arrived."""
        ...


class HttpTransport:
    """Sends calls over the service's one provider HTTP client (keep-alive pools per origin)."""

    def __init__(self, client: HttpClient) -> None:
        self._client = client

    async def send(self, call: UpstreamCall, timeouts: CallTimeouts) -> UpstreamResponse:
        """Send the call; network failures become gateway errors."""
        try:
            return await self._client.request(
                call.method,
                call.url,
                call.headers,
                call.body,
                total_timeout=timeouts.total,
                read_timeout=timeouts.read,
            )
        except TimeoutError:
            raise errors.UpstreamTimeoutError("the provider did not answer in time") from None
        except HttpClientError as exc:
            raise errors.UpstreamError(f"could not reach the provider: {exc}") from None


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
